//! The conformance kit: checks any plugin — linked in or loaded from its file — against
//! the contract the host relies on, and says what it found, check by check.
//!
//! ```no_run
//! use std::path::{Path, PathBuf};
//! use roster_core::conformance;
//! use roster_core::loader::PluginFile;
//!
//! let plugin = PluginFile::load(Path::new("target/debug/libroster_plugin_mysis.so")).unwrap();
//! let report = conformance::check(&plugin, "path = \"fixtures/mysis\"\n", Path::new("."));
//! println!("{report}");
//! report.assert_ok();
//! ```
//!
//! What [`check`] does, in order (each step is one or more named [`Check`]s):
//!
//! 1. **metadata** — `metadata.name`: non-empty, only `a-z`, `0-9` and `-` (it is what
//!    `plugin = "…"` says and part of the file name); `metadata.version`: looks like
//!    semver (`MAJOR.MINOR.PATCH`, optional `-pre` / `+build`); `metadata.abi_version`:
//!    equals [`ABI_VERSION`]; `metadata.description`: not empty.
//! 2. **bad config** — `config.bad_toml`: opening with [`BAD_TOML`] must fail with
//!    [`ErrorKind::Config`]; `config.unknown_key`: the good config with
//!    `no_such_key_xyz = 1` added as a *top-level* key (it is put first, so that it does
//!    not land inside a table the good config ends with) must fail with
//!    [`ErrorKind::Config`] and name the key in its message or location. A panic, another
//!    kind of error or success fails the check.
//! 3. **the good config** — `open` must succeed, then the whole stream is drained
//!    (`stream`: no error, no panic, ends within [`Options::max_batches`]) and every record
//!    is checked as the host will check it (see [`RecordChecker`]): `records.ids` (no empty
//!    `source_id`, people have a role and a name, no record of unknown kind),
//!    `records.references` (every reference names a record sent *earlier* in the run,
//!    with the right role), `records.repeats` (an id sent twice carries the same data),
//!    `records.identifiers` (no identifier `(kind, value)` given to two people of the same
//!    role — the host refuses that; shared across roles, like a student and a teacher
//!    with one `sis_id`, is a warning, as the host keeps it on the first and logs it) and
//!    `records.snapshot` (at most one `Snapshot`, naming known entities only).
//! 4. **cancellation** — `cancel`: the good config is opened again with a host whose
//!    `is_cancelled` turns true once the first batch has been returned. Passing: the
//!    plugin answers `Err` of kind [`ErrorKind::Cancelled`], or ends the stream cleanly
//!    (`Ok(None)`), within [`Options::batches_after_cancel`] further `next_batch` calls.
//!    Failing: any other error, a panic, or still more batches after that. A source that
//!    ends before or right after its first batch passes (there was nothing left to
//!    cancel), with a note saying so; a plugin that never asked `is_cancelled` gets a
//!    warning (it passes, but a large source would not stop when asked).
//!
//! Warnings never fail a report; [`Report::assert_ok`] panics on any failed check. The
//! report prints one line per check (`Display`), so a command line tool can show it as is.
//!
//! Also here: [`RecordChecker`], the record checks on their own (for a plugin's unit
//! tests), and [`build_plugin_file`], which builds a workspace plugin's `cdylib` from a
//! test so that it can be loaded with [`PluginFile::load`](crate::loader::PluginFile::load).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prost::Message;

use crate::loader::PluginHandle;
use crate::record::{Entity, Kind, Person, Record, Role};
use crate::sdk::{HostHooks, Level, PluginInfo, RecordSource};
use crate::{ErrorKind, PluginError, ABI_VERSION};

/// The config text the kit feeds to see a TOML syntax error reported as a config error.
pub const BAD_TOML: &str = "this is = not [ toml";
/// The key the kit adds to the good config to see unknown keys refused.
pub const UNKNOWN_KEY: &str = "no_such_key_xyz";

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Pass,
    /// Passes, with something worth knowing.
    Warn,
    Fail,
}

impl Outcome {
    /// `ok`, `warn` or `FAIL`: what a report line starts with.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "ok",
            Outcome::Warn => "warn",
            Outcome::Fail => "FAIL",
        }
    }
}

/// One named check and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Stable dotted name, e.g. `config.unknown_key`.
    pub name: String,
    pub outcome: Outcome,
    pub message: String,
}

impl Check {
    fn new(name: &str, outcome: Outcome, message: impl Into<String>) -> Check {
        // One line per check: a plugin's multi-line error is folded.
        let message: String = message.into();
        Check {
            name: name.to_string(),
            outcome,
            message: message.split_whitespace().collect::<Vec<_>>().join(" "),
        }
    }

    fn pass(name: &str, message: impl Into<String>) -> Check {
        Check::new(name, Outcome::Pass, message)
    }

    fn fail(name: &str, message: impl Into<String>) -> Check {
        Check::new(name, Outcome::Fail, message)
    }
}

/// What the good config's stream held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub batches: u64,
    pub records: u64,
    pub schools: u64,
    pub terms: u64,
    pub classes: u64,
    pub students: u64,
    pub teachers: u64,
    pub parents: u64,
    pub staff: u64,
    /// People sent with `removed = true` (also counted under their role).
    pub removed: u64,
    pub enrollments: u64,
    pub class_teachers: u64,
    pub relationships: u64,
    pub snapshots: u64,
    pub checkpoints: u64,
}

/// The outcome of [`check`]: every check in the order it ran.
#[derive(Debug, Clone)]
pub struct Report {
    pub info: PluginInfo,
    /// Where the plugin came from (a file path, or "(linked in)").
    pub origin: String,
    pub checks: Vec<Check>,
    /// What the good config delivered (zero when it could not be opened).
    pub counts: Counts,
}

impl Report {
    /// No check failed (warnings are fine).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.outcome != Outcome::Fail)
    }

    pub fn failures(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .collect()
    }

    /// The check called `name`, if it ran.
    pub fn get(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// Panics with the whole report when a check failed.
    #[track_caller]
    pub fn assert_ok(&self) {
        if !self.passed() {
            panic!("the plugin fails the conformance kit:\n{self}");
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "plugin {} {} (plugin ABI v{}) from {}",
            self.info.name, self.info.version, self.info.abi_version, self.origin
        )?;
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for check in &self.checks {
            writeln!(
                f,
                "  {:<4}  {:<width$}  {}",
                check.outcome.label(),
                check.name,
                check.message
            )?;
        }
        let c = &self.counts;
        writeln!(
            f,
            "records: {} in {} batches — {} schools, {} terms, {} classes, {} students, {} teachers, {} parents, {} staff ({} removed), {} enrollments, {} class teachers, {} relationships, {} snapshot",
            c.records, c.batches, c.schools, c.terms, c.classes, c.students, c.teachers,
            c.parents, c.staff, c.removed, c.enrollments, c.class_teachers, c.relationships,
            c.snapshots
        )?;
        let count = |o: Outcome| self.checks.iter().filter(|c| c.outcome == o).count();
        write!(
            f,
            "{} checks: {} passed, {} warned, {} failed",
            self.checks.len(),
            count(Outcome::Pass),
            count(Outcome::Warn),
            count(Outcome::Fail)
        )
    }
}

/// Limits of a run of the kit.
#[derive(Debug, Clone)]
pub struct Options {
    /// The stream must end within this many batches (a guard against endless sources).
    pub max_batches: u64,
    /// After cancelling, how many more `next_batch` calls may still return records
    /// before the plugin must stop (the host stops pulling at once; this is slack for a
    /// batch that was already being assembled).
    pub batches_after_cancel: u64,
    /// Run the cancellation check (off for sources whose second open is costly).
    pub cancel: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_batches: 1_000_000,
            batches_after_cancel: 2,
            cancel: true,
        }
    }
}

/// Run the whole kit with the default [`Options`]. `good_config` is the source's table as
/// the host would hand it over (TOML text without `name`/`plugin`), `base_dir` the folder
/// relative paths in it are relative to.
pub fn check(plugin: &dyn PluginHandle, good_config: &str, base_dir: &Path) -> Report {
    check_with(plugin, good_config, base_dir, &Options::default())
}

/// [`check`] with explicit limits.
pub fn check_with(
    plugin: &dyn PluginHandle,
    good_config: &str,
    base_dir: &Path,
    options: &Options,
) -> Report {
    let info = plugin.info().clone();
    let mut checks = metadata_checks(&info);
    checks.push(bad_config(
        plugin,
        "config.bad_toml",
        BAD_TOML,
        base_dir,
        None,
    ));
    let unknown = format!("{UNKNOWN_KEY} = 1\n{good_config}");
    checks.push(bad_config(
        plugin,
        "config.unknown_key",
        &unknown,
        base_dir,
        Some(UNKNOWN_KEY),
    ));
    let counts = drain_checks(plugin, good_config, base_dir, options, &mut checks);
    if options.cancel
        && checks
            .iter()
            .any(|c| c.name == "open" && c.outcome != Outcome::Fail)
    {
        checks.push(cancel_check(plugin, good_config, base_dir, options));
    }
    Report {
        info,
        origin: plugin.origin(),
        checks,
        counts,
    }
}

fn metadata_checks(info: &PluginInfo) -> Vec<Check> {
    let name_ok = !info.name.is_empty()
        && info
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let name = if name_ok {
        Check::pass("metadata.name", format!("`{}`", info.name))
    } else {
        Check::fail(
            "metadata.name",
            format!(
                "`{}`: a plugin name must be non-empty and use only a-z, 0-9 and `-`",
                info.name
            ),
        )
    };
    let version = if looks_like_semver(&info.version) {
        Check::pass("metadata.version", format!("`{}`", info.version))
    } else {
        Check::fail(
            "metadata.version",
            format!(
                "`{}` is not a semantic version (MAJOR.MINOR.PATCH); use env!(\"CARGO_PKG_VERSION\")",
                info.version
            ),
        )
    };
    let abi = if info.abi_version == ABI_VERSION {
        Check::pass("metadata.abi_version", format!("v{}", info.abi_version))
    } else {
        Check::fail(
            "metadata.abi_version",
            format!(
                "the plugin speaks ABI v{}, this roster-core speaks v{ABI_VERSION}; rebuild it",
                info.abi_version
            ),
        )
    };
    let description = if info.description.trim().is_empty() {
        Check::fail("metadata.description", "empty: say what the plugin reads")
    } else {
        Check::pass("metadata.description", info.description.clone())
    };
    vec![name, version, abi, description]
}

/// `MAJOR.MINOR.PATCH` with numbers without leading zeros, then optional `-pre` and
/// `+build` of `[0-9A-Za-z.-]`.
pub fn looks_like_semver(version: &str) -> bool {
    let (core, build) = match version.split_once('+') {
        Some((core, build)) => (core, Some(build)),
        None => (version, None),
    };
    let (core, pre) = match core.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (core, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    let number_ok = |n: &&str| {
        !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
            && (n.len() == 1 || !n.starts_with('0'))
    };
    let label_ok = |l: Option<&str>| {
        l.is_none_or(|l| {
            !l.is_empty()
                && l.split('.').all(|part| {
                    !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
        })
    };
    numbers.len() == 3 && numbers.iter().all(number_ok) && label_ok(pre) && label_ok(build)
}

/// Hooks for the kit's runs: never cancelled until told, counting what the plugin asks.
#[derive(Default)]
struct KitHooks {
    cancelled: AtomicBool,
    polls: AtomicU64,
    polls_after_cancel: AtomicU64,
    logs: Mutex<Vec<(Level, String)>>,
}

impl HostHooks for KitHooks {
    fn log(&self, level: Level, message: &str) {
        if let Ok(mut logs) = self.logs.lock() {
            if logs.len() < 1000 {
                logs.push((level, message.to_string()));
            }
        }
    }
    fn progress(&self, _stage: &str, _done: u64, _total: Option<u64>) {}
    fn is_cancelled(&self) -> bool {
        self.polls.fetch_add(1, Ordering::Relaxed);
        let cancelled = self.cancelled.load(Ordering::SeqCst);
        if cancelled {
            self.polls_after_cancel.fetch_add(1, Ordering::Relaxed);
        }
        cancelled
    }
}

fn describe(error: &PluginError) -> String {
    let mut text = format!("{:?}: {error}", error.kind);
    if let Some(hint) = &error.hint {
        text.push_str(&format!(" (hint: {hint})"));
    }
    text
}

fn open(
    plugin: &dyn PluginHandle,
    config: &str,
    base_dir: &Path,
    hooks: Arc<KitHooks>,
) -> Result<Box<dyn RecordSource>, PluginError> {
    // A linked-in plugin's open is already guarded by the SDK; a second guard costs nothing
    // and keeps a misbehaving `PluginHandle` from taking the kit down.
    catch_unwind(AssertUnwindSafe(|| plugin.open(config, base_dir, hooks))).unwrap_or_else(
        |payload| {
            Err(PluginError::new(
                ErrorKind::Panic,
                panic_text(payload.as_ref()),
            ))
        },
    )
}

/// One `next_batch`, with panics turned into errors: a linked-in source is not behind the
/// ABI's guard.
fn next(source: &mut dyn RecordSource) -> Result<Option<Vec<Record>>, PluginError> {
    catch_unwind(AssertUnwindSafe(|| source.next_batch())).unwrap_or_else(|payload| {
        Err(PluginError::new(
            ErrorKind::Panic,
            format!("panicked: {}", panic_text(payload.as_ref())),
        ))
    })
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

fn bad_config(
    plugin: &dyn PluginHandle,
    name: &str,
    config: &str,
    base_dir: &Path,
    key: Option<&str>,
) -> Check {
    let what = match key {
        Some(key) => format!("an unknown key `{key}`"),
        None => format!("invalid TOML `{config}`"),
    };
    match open(plugin, config, base_dir, Arc::new(KitHooks::default())) {
        Ok(_) => Check::fail(name, format!("accepted {what}; it must be a config error")),
        Err(error) if error.kind == ErrorKind::Config => {
            let named = key.is_none_or(|key| {
                error.message.contains(key)
                    || error.location.as_deref().is_some_and(|l| l.contains(key))
            });
            if named {
                Check::pass(name, format!("refused: {error}"))
            } else {
                Check::fail(
                    name,
                    format!("refused {what}, but the message does not name the key: {error}"),
                )
            }
        }
        Err(error) => Check::fail(
            name,
            format!(
                "refused {what} with the wrong kind of error (expected Config): {}",
                describe(&error)
            ),
        ),
    }
}

fn drain_checks(
    plugin: &dyn PluginHandle,
    config: &str,
    base_dir: &Path,
    options: &Options,
    checks: &mut Vec<Check>,
) -> Counts {
    let hooks = Arc::new(KitHooks::default());
    let mut source = match open(plugin, config, base_dir, hooks.clone()) {
        Ok(source) => {
            checks.push(Check::pass("open", "the good config opens"));
            source
        }
        Err(error) => {
            checks.push(Check::fail(
                "open",
                format!("the good config does not open: {}", describe(&error)),
            ));
            return Counts::default();
        }
    };
    let mut checker = RecordChecker::new();
    let mut batches = 0u64;
    let stream = loop {
        if batches >= options.max_batches {
            break Check::fail(
                "stream",
                format!("still sending records after {batches} batches"),
            );
        }
        match next(source.as_mut()) {
            Ok(Some(records)) => {
                batches += 1;
                for record in &records {
                    checker.record(record);
                }
            }
            Ok(None) => {
                break Check::pass(
                    "stream",
                    format!("{} records in {batches} batches", checker.counts.records),
                )
            }
            Err(error) => {
                break Check::fail(
                    "stream",
                    format!(
                        "the good config fails after {batches} batches: {}",
                        describe(&error)
                    ),
                )
            }
        }
    };
    checks.push(stream);
    checker.counts.batches = batches;
    checks.extend(checker.checks());
    checker.counts
}

fn cancel_check(
    plugin: &dyn PluginHandle,
    config: &str,
    base_dir: &Path,
    options: &Options,
) -> Check {
    const NAME: &str = "cancel";
    let hooks = Arc::new(KitHooks::default());
    let mut source = match open(plugin, config, base_dir, hooks.clone()) {
        Ok(source) => source,
        Err(error) => {
            return Check::fail(
                NAME,
                format!(
                    "the good config did not open a second time: {}",
                    describe(&error)
                ),
            )
        }
    };
    match next(source.as_mut()) {
        Ok(Some(_)) => {}
        Ok(None) => return Check::pass(NAME, "the source sent nothing: nothing to cancel"),
        Err(error) => {
            return Check::fail(
                NAME,
                format!("the first batch failed: {}", describe(&error)),
            )
        }
    }
    hooks.cancelled.store(true, Ordering::SeqCst);
    let mut extra = 0u64;
    loop {
        match next(source.as_mut()) {
            Ok(Some(_)) => {
                extra += 1;
                if extra > options.batches_after_cancel {
                    return Check::fail(
                        NAME,
                        format!(
                            "still sending batches {extra} calls after the host cancelled (allowed: {})",
                            options.batches_after_cancel
                        ),
                    );
                }
            }
            Ok(None) => {
                let polled = hooks.polls.load(Ordering::Relaxed) > 0;
                let message = if extra == 0 {
                    "the stream ended right after the first batch: nothing was left to cancel"
                        .to_string()
                } else {
                    format!("ended cleanly {extra} batches after the cancel")
                };
                return if polled || extra == 0 {
                    Check::pass(NAME, message)
                } else {
                    Check::new(
                        NAME,
                        Outcome::Warn,
                        format!("{message}, but the plugin never asked is_cancelled: a large source would not stop"),
                    )
                };
            }
            Err(error) if error.kind == ErrorKind::Cancelled => {
                return Check::pass(
                    NAME,
                    format!("stopped with Cancelled after {extra} further batches"),
                )
            }
            Err(error) => {
                return Check::fail(
                    NAME,
                    format!(
                        "answered the cancel with the wrong kind of error (expected Cancelled): {}",
                        describe(&error)
                    ),
                )
            }
        }
    }
}

/// Builds the plugin file of the workspace package `package` with cargo and returns its
/// path, for tests that load a plugin the way the host does ([`PluginFile::load`]).
///
/// Meant to be called from a test: it runs [`cargo_build_from_test`] and assumes the
/// library has its default name (the package name with `-` as `_`).
///
/// [`PluginFile::load`]: crate::loader::PluginFile::load
pub fn build_plugin_file(package: &str) -> Result<PathBuf, String> {
    let (mut build, profile_dir) = cargo_build_from_test()?;
    let status = build
        .status()
        .map_err(|e| format!("cannot run cargo build for {package}: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build for {package} failed ({status})"));
    }
    let file = profile_dir.join(format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        package.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    ));
    if file.is_file() {
        Ok(file)
    } else {
        Err(format!(
            "cargo built {package}, but {} is not there: is its crate-type cdylib?",
            file.display()
        ))
    }
}

/// `cargo build --workspace --all-targets`, for a test that needs what `cargo test` does
/// not leave in the target folder (a `cdylib`, another package's binary), and the
/// profile folder (`target/debug`) it builds into: the running test binary's profile,
/// `--release` when that is `release`. cargo has released its lock by the time tests run.
///
/// After `cargo test --workspace` this finds everything fresh, and two choices keep it so.
/// The selection is the whole workspace rather than `-p package`: cargo unifies features
/// over what it is asked to build, so `-p` would build the dependencies again with other
/// features (and the next `cargo test` would build them back). And the variables cargo
/// sets for the test process (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`, ...) are removed:
/// passed on, they would reach build scripts that watch them (ring's does) and rebuild
/// their crates and everything above them, differently for each test package.
pub fn cargo_build_from_test() -> Result<(std::process::Command, PathBuf), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
    // target/<profile>/deps/<test binary>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("{} is not in a cargo target folder", exe.display()))?
        .to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "--workspace", "--all-targets"]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_for_tests) {
            build.env_remove(name);
        }
    }
    Ok((build, profile_dir))
}

/// The variables cargo sets when it runs a test binary, as opposed to the ones that
/// configure cargo itself (`CARGO_HOME`, `CARGO_TARGET_DIR`, `CARGO_TERM_COLOR`, ...).
fn set_by_cargo_for_tests(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
    ];
    EXACT.contains(&name) || name.starts_with("CARGO_PKG_") || name.starts_with("CARGO_BIN_EXE_")
}

/// Checks a stream of records the way the host's pipeline will, without a database:
/// feed it every record in order with [`RecordChecker::record`], then read
/// [`RecordChecker::checks`]. Usable on its own in a plugin's unit tests.
#[derive(Default)]
pub struct RecordChecker {
    schools: HashSet<String>,
    terms: HashSet<String>,
    classes: HashSet<String>,
    people: HashMap<String, Role>,
    /// Id → hash of the record first sent with it, per kind.
    seen: HashMap<(u8, String), u64>,
    /// (kind, value) → the person that has it, and their role.
    identifiers: HashMap<(String, String), (String, Role)>,
    pub counts: Counts,
    ids: Problems,
    references: Problems,
    repeats: Problems,
    identifier_clashes: Problems,
    /// The same identifier on people of different roles: the host keeps it on the first
    /// and logs it (districts number students and staff separately).
    identifier_shared: Problems,
    snapshot: Problems,
}

/// The first few problems of one kind, and how many there were.
#[derive(Default)]
struct Problems {
    total: u64,
    first: Vec<String>,
}

impl Problems {
    const SHOWN: usize = 5;

    fn add(&mut self, message: impl FnOnce() -> String) {
        self.total += 1;
        if self.first.len() < Self::SHOWN {
            self.first.push(message());
        }
    }

    fn check(&self, name: &str, ok: impl Into<String>) -> Check {
        if self.total == 0 {
            return Check::pass(name, ok);
        }
        let mut message = self.first.join("; ");
        if self.total > self.first.len() as u64 {
            message.push_str(&format!(" … ({} problems in all)", self.total));
        }
        Check::fail(name, message)
    }
}

fn record_hash(record: &impl Message) -> u64 {
    let mut hasher = DefaultHasher::new();
    record.encode_to_vec().hash(&mut hasher);
    hasher.finish()
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Unspecified => "person without a role",
        other => other.as_db_str(),
    }
}

impl RecordChecker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Check one record against everything sent before it.
    pub fn record(&mut self, record: &Record) {
        self.counts.records += 1;
        let Some(kind) = &record.kind else {
            self.ids
                .add(|| "a record of unknown kind (built against a newer roster-core?)".into());
            return;
        };
        match kind {
            Kind::School(school) => {
                self.counts.schools += 1;
                if self.id_ok("school", &school.source_id, &school.name)
                    && self.first_or_same(1, "school", &school.source_id, school)
                {
                    self.schools.insert(school.source_id.clone());
                }
                if school.name.trim().is_empty() {
                    self.ids
                        .add(|| format!("school `{}` has no name", school.source_id));
                }
            }
            Kind::Term(term) => {
                self.counts.terms += 1;
                let referrer = format!("term `{}`", term.source_id);
                self.school_ref(&referrer, term.school_id.as_deref());
                if self.id_ok("term", &term.source_id, &term.name)
                    && self.first_or_same(2, "term", &term.source_id, term)
                {
                    self.terms.insert(term.source_id.clone());
                }
            }
            Kind::Class(class) => {
                self.counts.classes += 1;
                let referrer = format!("class `{}`", class.source_id);
                self.school_ref(&referrer, class.school_id.as_deref());
                if let Some(term) = class.term_id.as_deref().filter(|t| !t.trim().is_empty()) {
                    if !self.terms.contains(term) {
                        self.references
                            .add(|| format!("{referrer} refers to term `{term}`, not sent before"));
                    }
                }
                if self.id_ok("class", &class.source_id, &class.name)
                    && self.first_or_same(3, "class", &class.source_id, class)
                {
                    self.classes.insert(class.source_id.clone());
                }
            }
            Kind::Person(person) => self.person(person),
            Kind::Enrollment(link) => {
                self.counts.enrollments += 1;
                let referrer =
                    format!("enrollment of `{}` in `{}`", link.student_id, link.class_id);
                self.class_ref(&referrer, &link.class_id);
                self.by_other_id(&referrer, &link.student_id_kind);
                self.person_ref(&referrer, &link.student_id, &[Role::Student]);
            }
            Kind::ClassTeacher(link) => {
                self.counts.class_teachers += 1;
                let referrer =
                    format!("teacher `{}` of class `{}`", link.teacher_id, link.class_id);
                self.class_ref(&referrer, &link.class_id);
                self.by_other_id(&referrer, &link.teacher_id_kind);
                self.person_ref(&referrer, &link.teacher_id, &[Role::Teacher, Role::Staff]);
            }
            Kind::Relationship(link) => {
                self.counts.relationships += 1;
                let referrer = format!(
                    "relationship of `{}` to `{}`",
                    link.parent_id, link.student_id
                );
                self.by_other_id(&referrer, &link.student_id_kind);
                self.person_ref(&referrer, &link.parent_id, &[Role::Parent]);
                self.person_ref(&referrer, &link.student_id, &[Role::Student]);
            }
            Kind::Snapshot(snapshot) => {
                self.counts.snapshots += 1;
                if self.counts.snapshots == 2 {
                    self.snapshot.add(|| "more than one Snapshot record".into());
                }
                if snapshot.continues {
                    self.snapshot.add(|| {
                        "the Snapshot says the run continues from a checkpoint, but none was given".into()
                    });
                }
                for &value in &snapshot.complete {
                    match Entity::try_from(value) {
                        Ok(Entity::Unspecified) | Err(_) => self
                            .snapshot
                            .add(|| format!("the Snapshot names an unknown entity ({value})")),
                        Ok(_) => {}
                    }
                }
            }
            // The kit opens sources without a checkpoint: a run that sends these anyway
            // would have the host deactivate what it never looked at.
            Kind::Removal(removal) => self.snapshot.add(|| {
                format!(
                    "a Removal of `{}` in a run that does not continue from a checkpoint",
                    removal.source_id
                )
            }),
            Kind::LinksReplaced(replaced) => self.snapshot.add(|| {
                format!(
                    "a LinksReplaced for `{}` in a run that does not continue from a checkpoint",
                    replaced.owner_id
                )
            }),
            Kind::Checkpoint(checkpoint) => {
                self.counts.checkpoints += 1;
                if checkpoint.extends {
                    self.snapshot.add(|| {
                        "a Checkpoint that extends the one the run was given, but none was given".into()
                    });
                }
            }
        }
    }

    /// A reference by another identifier than the source id is for continuing runs only.
    fn by_other_id(&mut self, referrer: &str, kind: &Option<String>) {
        if let Some(kind) = kind {
            self.references.add(|| {
                format!("{referrer} names a person by `{kind}` in a run that does not continue from a checkpoint")
            });
        }
    }

    fn person(&mut self, person: &Person) {
        let role = Role::try_from(person.role).unwrap_or(Role::Unspecified);
        match role {
            Role::Student => self.counts.students += 1,
            Role::Teacher => self.counts.teachers += 1,
            Role::Parent => self.counts.parents += 1,
            Role::Staff => self.counts.staff += 1,
            Role::Unspecified => {}
        }
        if person.removed {
            self.counts.removed += 1;
        }
        let id = &person.source_id;
        if id.trim().is_empty() {
            self.ids.add(|| {
                format!(
                    "a {} named `{} {}` has an empty source_id",
                    role_name(role),
                    person.first_name,
                    person.last_name
                )
            });
            return;
        }
        if role == Role::Unspecified {
            self.ids.add(|| format!("person `{id}` has no role"));
        }
        // The host wants a name even on a removal.
        if person.first_name.trim().is_empty() && person.last_name.trim().is_empty() {
            self.ids
                .add(|| format!("{} `{id}` has no name", role_name(role)));
        }
        let referrer = format!("{} `{id}`", role_name(role));
        for school in &person.school_ids {
            self.school_ref(&referrer, Some(school));
        }
        if !self.first_or_same(4, role_name(role), id, person) {
            return;
        }
        if let Some(earlier) = self.people.insert(id.clone(), role) {
            if earlier != role {
                self.repeats.add(|| {
                    format!(
                        "`{id}` was sent as a {} and as a {}",
                        role_name(earlier),
                        role_name(role)
                    )
                });
            }
        }
        if person.removed {
            return;
        }
        let mut own: Vec<(String, String)> = person
            .identifiers
            .iter()
            .filter(|i| !i.kind.trim().is_empty() && !i.value.trim().is_empty())
            .map(|i| (i.kind.clone(), i.value.clone()))
            .collect();
        own.sort();
        own.dedup();
        for key in own {
            match self.identifiers.get(&key) {
                Some((holder, holder_role)) if holder != id => {
                    let (holder, holder_role) = (holder.clone(), *holder_role);
                    let message = || {
                        format!(
                            "{referrer} has identifier {} `{}`, which {} `{holder}` already has",
                            key.0,
                            key.1,
                            role_name(holder_role)
                        )
                    };
                    if holder_role == role {
                        self.identifier_clashes.add(message)
                    } else {
                        self.identifier_shared.add(message)
                    }
                }
                Some(_) => {}
                None => {
                    self.identifiers.insert(key, (id.clone(), role));
                }
            }
        }
    }

    /// Whether the id is usable; an empty one is a problem.
    fn id_ok(&mut self, what: &str, id: &str, name: &str) -> bool {
        if id.trim().is_empty() {
            self.ids
                .add(|| format!("a {what} named `{name}` has an empty source_id"));
            false
        } else {
            true
        }
    }

    /// `true` the first time an id is sent; a repeat must carry the same data.
    fn first_or_same(&mut self, kind: u8, what: &str, id: &str, record: &impl Message) -> bool {
        let hash = record_hash(record);
        match self.seen.get(&(kind, id.to_string())) {
            None => {
                self.seen.insert((kind, id.to_string()), hash);
                true
            }
            Some(&first) => {
                if first != hash {
                    self.repeats
                        .add(|| format!("{what} `{id}` was sent twice with different data"));
                }
                false
            }
        }
    }

    fn school_ref(&mut self, referrer: &str, school: Option<&str>) {
        if let Some(school) = school.filter(|s| !s.trim().is_empty()) {
            if !self.schools.contains(school) {
                self.references
                    .add(|| format!("{referrer} refers to school `{school}`, not sent before"));
            }
        }
    }

    fn class_ref(&mut self, referrer: &str, class: &str) {
        if !self.classes.contains(class) {
            self.references
                .add(|| format!("{referrer} refers to class `{class}`, not sent before"));
        }
    }

    fn person_ref(&mut self, referrer: &str, id: &str, roles: &[Role]) {
        match self.people.get(id) {
            None => self.references.add(|| {
                format!(
                    "{referrer} refers to {} `{id}`, not sent before",
                    role_name(roles[0])
                )
            }),
            Some(role) if !roles.contains(role) => {
                let role = *role;
                self.references.add(|| {
                    format!(
                        "{referrer} refers to `{id}` as a {}, but it was sent as a {}",
                        role_name(roles[0]),
                        role_name(role)
                    )
                })
            }
            Some(_) => {}
        }
    }

    /// One check per kind of problem: `records.ids`, `records.references`,
    /// `records.repeats`, `records.identifiers`, `records.snapshot`.
    pub fn checks(&self) -> Vec<Check> {
        let snapshot_ok = match self.counts.snapshots {
            0 => "no Snapshot: nothing will be deactivated".to_string(),
            _ => "one Snapshot".to_string(),
        };
        vec![
            self.ids.check(
                "records.ids",
                "every record has an id; every person a role and a name",
            ),
            self.references.check(
                "records.references",
                "every reference names a record sent earlier, with the right role",
            ),
            self.repeats
                .check("records.repeats", "no id sent twice with different data"),
            if self.identifier_clashes.total == 0 && self.identifier_shared.total > 0 {
                let mut check = self.identifier_shared.check("records.identifiers", "");
                check.outcome = Outcome::Warn;
                check.message = format!(
                    "people of different roles share identifiers (the host keeps each on the first only): {}",
                    check.message
                );
                check
            } else {
                self.identifier_clashes.check(
                    "records.identifiers",
                    "no identifier is given to two people",
                )
            },
            self.snapshot.check("records.snapshot", snapshot_ok),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ClassTeacher, Enrollment, Identifier, Relationship, School, Snapshot};

    #[test]
    fn semver() {
        for ok in [
            "0.1.0",
            "1.2.3",
            "10.20.30",
            "1.0.0-alpha.1",
            "1.0.0+build.5",
            "1.0.0-rc-1+x",
        ] {
            assert!(looks_like_semver(ok), "{ok}");
        }
        for bad in [
            "", "1", "1.2", "1.2.3.4", "01.2.3", "1.2.x", "v1.2.3", "1.2.3-", "1.2.3+",
        ] {
            assert!(!looks_like_semver(bad), "{bad}");
        }
    }

    fn person(id: &str, role: Role) -> Record {
        Person {
            source_id: id.into(),
            role: role as i32,
            first_name: "A".into(),
            last_name: "B".into(),
            identifiers: vec![Identifier {
                kind: "sis_id".into(),
                value: id.into(),
            }],
            ..Default::default()
        }
        .into()
    }

    fn problems(records: Vec<Record>) -> Vec<(String, String)> {
        let mut checker = RecordChecker::new();
        for record in &records {
            checker.record(record);
        }
        checker
            .checks()
            .into_iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .map(|c| (c.name, c.message))
            .collect()
    }

    #[test]
    fn a_good_stream_passes() {
        let school = School {
            source_id: "s".into(),
            name: "S".into(),
            ..Default::default()
        };
        let class = crate::record::Class {
            source_id: "c".into(),
            name: "C".into(),
            school_id: Some("s".into()),
            ..Default::default()
        };
        let records = vec![
            school.clone().into(),
            school.into(),
            person("st", Role::Student),
            person("t", Role::Staff),
            person("p", Role::Parent),
            class.into(),
            Enrollment {
                student_id_kind: None,
                class_id: "c".into(),
                student_id: "st".into(),
            }
            .into(),
            ClassTeacher {
                teacher_id_kind: None,
                class_id: "c".into(),
                teacher_id: "t".into(),
                primary: true,
            }
            .into(),
            Relationship {
                parent_id: "p".into(),
                student_id: "st".into(),
                ..Default::default()
            }
            .into(),
            Snapshot::of(&[Entity::Students]).into(),
        ];
        assert_eq!(problems(records), vec![]);
    }

    #[test]
    fn an_identifier_shared_across_roles_is_a_warning() {
        let mut checker = RecordChecker::new();
        checker.record(&person("1001", Role::Student));
        let mut teacher = person("t", Role::Teacher);
        if let Some(Kind::Person(p)) = &mut teacher.kind {
            p.identifiers[0].value = "1001".into();
        }
        checker.record(&teacher);
        let check = checker
            .checks()
            .into_iter()
            .find(|c| c.name == "records.identifiers")
            .unwrap();
        assert_eq!(check.outcome, Outcome::Warn);
        assert!(
            check.message.contains(
                "teacher `t` has identifier sis_id `1001`, which student `1001` already has"
            ),
            "{}",
            check.message
        );
    }

    #[test]
    fn each_problem_is_named() {
        let mut twin = match person("a", Role::Student).kind {
            Some(Kind::Person(p)) => p,
            _ => unreachable!(),
        };
        twin.source_id = "b".into();
        twin.identifiers[0].value = "a".into();
        let changed = Person {
            first_name: "Other".into(),
            ..match person("a", Role::Student).kind {
                Some(Kind::Person(p)) => p,
                _ => unreachable!(),
            }
        };
        let records = vec![
            person("a", Role::Student),
            twin.into(),
            changed.into(),
            person("", Role::Teacher),
            Enrollment {
                student_id_kind: None,
                class_id: "nope".into(),
                student_id: "a".into(),
            }
            .into(),
            Relationship {
                parent_id: "a".into(),
                student_id: "a".into(),
                ..Default::default()
            }
            .into(),
            Record { kind: None },
            Snapshot::of(&[]).into(),
            Snapshot {
                complete: vec![99],
                continues: false,
            }
            .into(),
        ];
        let found = problems(records);
        let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "records.ids",
                "records.references",
                "records.repeats",
                "records.identifiers",
                "records.snapshot"
            ],
            "{found:?}"
        );
        assert!(found[1].1.contains("class `nope`"), "{found:?}");
        assert!(found[1]
            .1
            .contains("refers to `a` as a parent, but it was sent as a student"));
        assert!(found[2]
            .1
            .contains("student `a` was sent twice with different data"));
        assert!(found[3]
            .1
            .contains("sis_id `a`, which student `a` already has"));
        assert!(found[4].1.contains("more than one Snapshot"));
        assert!(found[4].1.contains("unknown entity (99)"));
    }

    /// The kit gives no checkpoint: a run that continues anyway is named, and so is each
    /// record only a continuing run may send. A checkpoint itself is fine.
    #[test]
    fn continuing_without_a_checkpoint_is_named() {
        use crate::record::{Checkpoint, LinksReplaced, Removal};
        let found = problems(vec![
            Snapshot::continuing().into(),
            person("a", Role::Student),
            Removal {
                entity: Entity::Students as i32,
                source_id: "b".into(),
                ..Default::default()
            }
            .into(),
            LinksReplaced {
                entity: Entity::Relationships as i32,
                owner_id: "p".into(),
            }
            .into(),
            Enrollment {
                class_id: "c".into(),
                student_id: "clever-a".into(),
                student_id_kind: Some("clever_id".into()),
            }
            .into(),
            Checkpoint {
                state: b"where to go on".to_vec(),
                extends: false,
            }
            .into(),
            Checkpoint {
                state: b"and on".to_vec(),
                extends: true,
            }
            .into(),
        ]);
        let text = format!("{found:?}");
        for expected in [
            "continues from a checkpoint, but none was given",
            "a Removal of `b`",
            "a LinksReplaced for `p`",
            "names a person by `clever_id`",
            "a Checkpoint that extends the one the run was given, but none was given",
        ] {
            assert!(text.contains(expected), "{expected}: {found:?}");
        }
        assert!(!text.contains("where to go on"), "{found:?}");
    }
}
