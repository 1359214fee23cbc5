//! Running one measured child process: its wall time, and its own peak RSS.
//!
//! Peak RSS comes from `wait4`'s `ru_maxrss`, which Linux carries over from the image a
//! process had *before* `exec` — for a child forked straight from the bench, that is the
//! bench's own high-water mark (hundreds of MiB after generating a district). So every
//! measured command is started through `roster-bench measure-child`: a fresh exec of this
//! small binary (about 4 MiB resident) forks the command, waits for it with `wait4`, and
//! writes what it measured to a file. The figures are therefore the command's own peak,
//! or at most the wrapper's few MiB.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Measured {
    pub seconds: f64,
    /// User + system CPU time: less disturbed than wall time by other load.
    pub cpu_seconds: f64,
    /// The kernel's share of `cpu_seconds`, and the page faults it served: on a virtual
    /// machine a page new to the guest can cost several times more in one minute than in
    /// the next, which shows here first.
    pub system_seconds: f64,
    pub page_faults: u64,
    pub max_rss_mib: f64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Report {
    seconds: f64,
    cpu_seconds: f64,
    system_seconds: f64,
    page_faults: u64,
    max_rss_kib: i64,
    code: Option<i32>,
    signal: Option<i32>,
}

/// Integer steps of [`pace`]: about a tenth of a second on the 2-core machines here, in
/// a release build. A dev build (CI's tiny run, where no timing is read) takes a tenth of
/// them.
const PACE_STEPS: u64 = if cfg!(debug_assertions) {
    5_000_000
} else {
    50_000_000
};

/// Seconds a fixed loop of integer steps takes on this thread now: how fast the machine
/// runs at that moment. A virtual machine's cores are not always as fast as they were a
/// minute ago (here a loop in Python took 0.34 s at rest and 0.43 s after a few minutes
/// of the harness), so each measured command is preceded by this one, for the report.
pub fn pace() -> f64 {
    let started = Instant::now();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..PACE_STEPS {
        // xorshift64: each step depends on the last, so nothing runs ahead or folds away.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    std::hint::black_box(x);
    started.elapsed().as_secs_f64()
}

/// The pace before each measured command, by the name of its output file, in order.
static PACES: Mutex<Vec<(String, f64)>> = Mutex::new(Vec::new());

/// Every measured command's pace so far, in the order they ran.
pub fn paces() -> Vec<(String, f64)> {
    PACES.lock().expect("no panic while held").clone()
}

/// Runs `program args` (with `envs` added, stdin from `stdin`), stdout and stderr to the
/// given files, and fails (showing the end of stderr) unless it exits 0.
pub fn run(
    program: &Path,
    args: &[OsString],
    envs: &[(&str, &str)],
    stdin: Option<File>,
    stdout: &Path,
    stderr: &Path,
) -> Result<Measured> {
    let report_path = PathBuf::from(format!("{}.measure.json", stdout.display()));
    let _ = std::fs::remove_file(&report_path);
    let shown = format!(
        "{} {}",
        program.display(),
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    // Each command starts on an idle disk: what the one before left dirty (a first
    // import leaves over a GB for the kernel to write back in the next minute) is
    // written first, not measured against the next: a nightly re-sync comes hours after
    // the import, not while the kernel writes the import back on the same two cores.
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let name = stdout
        .file_stem()
        .map_or_else(String::new, |stem| stem.to_string_lossy().into_owned());
    PACES
        .lock()
        .expect("no panic while held")
        .push((name, pace()));
    let mut wrapper = Command::new(std::env::current_exe()?);
    wrapper
        .arg("measure-child")
        .arg("--out")
        .arg(&report_path)
        .arg("--")
        .arg(program)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(stdin.map_or_else(Stdio::null, Stdio::from))
        .stdout(Stdio::from(File::create(stdout)?))
        .stderr(Stdio::from(File::create(stderr)?));
    let status = wrapper
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    let report: Option<Report> = std::fs::read(&report_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let failed = match &report {
        Some(r) => r.code != Some(0),
        None => true,
    };
    if failed || !status.success() {
        let text = std::fs::read_to_string(stderr).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        let how = match &report {
            Some(Report {
                code: Some(code), ..
            }) => format!("exit status {code}"),
            Some(Report {
                signal: Some(signal),
                ..
            }) => format!("signal {signal}"),
            _ => format!("wrapper {status}"),
        };
        bail!("{shown} failed ({how}):\n{}", tail.join("\n"));
    }
    let report = report.expect("checked");
    Ok(Measured {
        seconds: report.seconds,
        cpu_seconds: report.cpu_seconds,
        system_seconds: report.system_seconds,
        page_faults: report.page_faults,
        // Linux reports ru_maxrss in KiB.
        max_rss_mib: report.max_rss_kib as f64 / 1024.0,
    })
}

/// The wrapper's side (`roster-bench measure-child --out FILE -- PROGRAM ARGS…`).
pub fn child_main(out: &Path, argv: &[OsString]) -> Result<ExitCode> {
    let (program, args) = argv.split_first().context("nothing to run")?;
    let started = Instant::now();
    let child = Command::new(program)
        .args(args)
        .spawn()
        .with_context(|| format!("cannot start {}", program.to_string_lossy()))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it in for the child started above.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if waited == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            bail!("waiting for {}: {error}", program.to_string_lossy());
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    // wait4 reaped it; `Child` has no Drop that waits.
    drop(child);
    let exited = libc::WIFEXITED(status);
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let report = Report {
        seconds,
        cpu_seconds: tv(usage.ru_utime) + tv(usage.ru_stime),
        system_seconds: tv(usage.ru_stime),
        page_faults: (usage.ru_minflt + usage.ru_majflt) as u64,
        max_rss_kib: usage.ru_maxrss,
        code: exited.then(|| libc::WEXITSTATUS(status)),
        signal: (!exited).then(|| libc::WTERMSIG(status)),
    };
    std::fs::write(out, serde_json::to_vec(&report)?)?;
    Ok(match report.code {
        Some(0) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}
