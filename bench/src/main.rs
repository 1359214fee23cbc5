//! `roster-bench`: imports a generated district every way roster can, side by side with
//! SQLite's own `.import` of the same rows into the same indexed schema, and prints one
//! table. See `docs/performance.md` for what each scenario measures and the latest figures.
//!
//! ```sh
//! bench/run.sh --size nyc            # builds the release binaries, then runs this
//! bench/run.sh --size tiny --check   # what CI runs: structural checks, no timing asserts
//! ```

// No `#[global_allocator]` here: the linked csv plugin crate sets mimalloc, the one the
// `roster` binary uses, so the in-process imports compare with the CLI ones.
mod changes;
mod child;
mod clever;
mod generate;
mod measure;
mod sqlplan;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use generate::{Counts, District, Spec};
use measure::Measured;

#[derive(Parser)]
#[command(
    name = "roster-bench",
    about = "Benchmark roster imports against SQLite's own .import of the same rows"
)]
struct Cli {
    #[command(subcommand)]
    internal: Option<Internal>,
    /// District size: tiny (1k students), small (10k), medium (100k), nyc (1.1M).
    #[arg(long, default_value = "tiny")]
    size: String,
    /// Any number of students instead of a named size.
    #[arg(long)]
    students: Option<u64>,
    #[arg(long, default_value_t = generate::DEFAULT_SEED)]
    seed: u64,
    /// Structural checks (row counts, replay fidelity, query plans); fail on any mismatch.
    /// Never asserts timings.
    #[arg(long)]
    check: bool,
    /// Where inputs (cached between runs) and databases go; default `target/bench`.
    #[arg(long)]
    work: Option<PathBuf>,
    /// Scenarios to run (default all): floor, files, resync, clever, clever-resync, linked,
    /// dedupe.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Contacts in the database for the dedupe benchmark (default by size).
    #[arg(long, value_delimiter = ',')]
    dedupe_sizes: Vec<u64>,
    /// The largest database whose people are all imported again through a second source
    /// (the import-size axis of the dedupe benchmark).
    #[arg(long, default_value_t = 100_000)]
    dedupe_import_max: u64,
    /// How the Clever scenario serves the district (see clever.rs).
    #[arg(long, value_enum)]
    clever: Option<CleverMode>,
    /// Run the static/ABI pair this many times and keep the fastest of each.
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Keep the databases (they are large) instead of deleting them after their checks.
    #[arg(long)]
    keep: bool,
    /// Run each re-sync this many times, each on a copy of the database its import left,
    /// and show the median (every run is in the notes). A re-sync lasts seconds, and this
    /// machine's drift from one run to the next is a tenth of that.
    #[arg(long, default_value_t = 1)]
    resync_runs: u32,
    /// Run the file import and the Clever import this many times each, in turns, and show
    /// each one's median (every run is in the notes): the first pair where the scenarios
    /// run, the others after the re-syncs. A whole import's time moves by a fifth from one
    /// hour to the next on this kind of machine, and a ratio of two single runs with it.
    #[arg(long, default_value_t = 1)]
    import_runs: u32,
}

#[derive(Subcommand)]
enum Internal {
    /// (internal) one in-process import, run by the bench as a child process.
    #[command(hide = true)]
    ChildImport(child::ChildArgs),
    /// (internal) run a command and write its wall time and peak RSS to a file.
    #[command(hide = true)]
    MeasureChild {
        #[arg(long)]
        out: PathBuf,
        #[arg(last = true, required = true)]
        command: Vec<std::ffi::OsString>,
    },
    /// (internal) apply the changes `changes.rs` collected to a database, and write the
    /// seconds it took to `out`.
    #[command(hide = true)]
    ApplyChanges {
        #[arg(long)]
        db: PathBuf,
        #[arg(long)]
        changes: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// (internal) collect what turns one roster into another, as the harness does after
    /// a re-sync, into a database `apply-changes` reads: to profile a floor by hand.
    #[command(hide = true)]
    CollectChanges {
        before: PathBuf,
        after: PathBuf,
        out: PathBuf,
    },
    /// (internal) serve captured Clever pages until interrupted, to profile an import by
    /// hand: prints the base URL; the token is `bench-token`.
    #[command(hide = true)]
    ServeReplay {
        /// Folders of captured pages (`inputs/clever-*` under the work folder).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CleverMode {
    /// Pages rendered once by the mock, replayed from disk.
    Replay,
    /// The mock server itself serving the whole district.
    Direct,
    Both,
}

fn serve_replay(dirs: &[PathBuf]) -> Result<ExitCode> {
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let server = clever::Replay::start(&dirs)?;
    println!("{}", server.base_url());
    loop {
        std::thread::park();
    }
}

const SCHOOL: &str = "Synthetic District";
const TERM: &str = "2025-26";
const EVENT: &str = "Bench Conferences 2026";
const FILE_SOURCE: &str = "district-files";
const CLEVER_SOURCE: &str = "district-clever";
const TOKEN_ENV: &str = "ROSTER_BENCH_CLEVER_TOKEN";

/// The roster tables an import of the district writes (besides `sync_runs`).
const TABLES: [&str; 12] = generate::FLOOR_TABLES;

fn main() -> ExitCode {
    // As the `roster` binary does, before any thread touches SQLite.
    roster_host::store::configure_sqlite();
    let cli = Cli::parse();
    let result = match &cli.internal {
        Some(Internal::ChildImport(args)) => child::run(args).map(|()| ExitCode::SUCCESS),
        Some(Internal::MeasureChild { out, command }) => measure::child_main(out, command),
        Some(Internal::ServeReplay { dirs }) => serve_replay(dirs),
        Some(Internal::CollectChanges { before, after, out }) => {
            changes::collect(before, after, out).map(|changed| {
                println!("{} rows changed", changed.rows());
                ExitCode::SUCCESS
            })
        }
        Some(Internal::ApplyChanges { db, changes, out }) => changes::apply(db, changes)
            .and_then(|seconds| Ok(std::fs::write(out, serde_json::to_string(&seconds)?)?))
            .map(|()| ExitCode::SUCCESS),
        None => Bench::new(&cli)
            .and_then(|mut bench| bench.run(&cli))
            .map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("roster-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct Row {
    scenario: String,
    rows: u64,
    seconds: f64,
    cpu_seconds: f64,
    max_rss_mib: f64,
    /// What the ratio column compares against, and the ratio.
    ratios: Vec<(String, f64)>,
}

/// The median of `runs` by wall time (the lower of the middle two for an even count).
fn median(runs: &[Measured]) -> Measured {
    let mut sorted = runs.to_vec();
    sorted.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    sorted[(sorted.len() - 1) / 2]
}

const FLOOR_SCENARIO: &str = "sqlite3 .import (floor)";

/// What a row's ratio compares against (its first column: `Row::ratios`).
const TO_FLOOR: &str = "floor";
const TO_FILE_IMPORT: &str = "file import";
const TO_FULL_IMPORT: &str = "full import";
const TO_FULL_CLEVER_IMPORT: &str = "full Clever import";

/// The runs of one import scenario, in the order they ran, and its row in the table.
#[derive(Default)]
struct ImportRuns {
    runs: Vec<Measured>,
    row: Option<usize>,
}

/// `--import-runs`: each import's runs. Every ratio to an import names it
/// ([`TO_FILE_IMPORT`], [`TO_FULL_IMPORT`], [`TO_FULL_CLEVER_IMPORT`]).
#[derive(Default)]
struct Imports {
    files: ImportRuns,
    clever: ImportRuns,
}

/// A re-sync's median run, and its floor.
struct Resynced {
    median: Measured,
    floor: Measured,
    changed: changes::Changed,
}

/// The row of a re-sync's floor, and the re-sync's ratio to it.
fn floor_row(resynced: &Resynced, what: &str) -> (Row, (String, f64)) {
    let Resynced {
        median,
        floor,
        changed,
    } = resynced;
    let row = Row {
        scenario: format!("{what}: its changes applied by SQLite alone (floor)"),
        rows: changed.rows(),
        seconds: floor.seconds,
        cpu_seconds: floor.cpu_seconds,
        max_rss_mib: floor.max_rss_mib,
        ratios: vec![],
    };
    (
        row,
        (
            "its changes in SQLite".into(),
            median.seconds / floor.seconds,
        ),
    )
}

#[derive(Debug, Clone, Serialize)]
struct DedupeRow {
    /// "db size": a fixed set of incoming people against databases of growing size;
    /// "import size": the whole database's people again (incoming grows with it).
    axis: &'static str,
    contacts: u64,
    incoming: u64,
    dedupe_seconds: f64,
    import_seconds: f64,
    first_tenth_us: f64,
    last_tenth_us: f64,
    linked: u64,
    statements: usize,
    full_scans: Vec<String>,
    max_rss_mib: f64,
}

struct Bench {
    bin_dir: PathBuf,
    roster: PathBuf,
    csv_plugin: PathBuf,
    inputs: PathBuf,
    runs: PathBuf,
    check: bool,
    keep: bool,
    resync_runs: u32,
    import_runs: u32,
    imports: Imports,
    rows: Vec<Row>,
    dedupe: Vec<DedupeRow>,
    failures: Vec<String>,
    notes: Vec<String>,
}

/// Each repeated import's row shows its median run (and the largest peak RSS of its
/// runs, which is what the memory target is about), and every ratio to an import is to
/// that median. Returns the notes that list every run.
fn import_medians(rows: &mut [Row], imports: &Imports, floor: Option<f64>) -> Vec<String> {
    let mut notes = Vec::new();
    for (name, import) in [
        ("file import", &imports.files),
        ("Clever import", &imports.clever),
    ] {
        let (Some(row), true) = (import.row, import.runs.len() > 1) else {
            continue;
        };
        let middle = median(&import.runs);
        let row = &mut rows[row];
        row.scenario = format!("{}, median of {}", row.scenario, import.runs.len());
        row.seconds = middle.seconds;
        row.cpu_seconds = middle.cpu_seconds;
        row.max_rss_mib = import
            .runs
            .iter()
            .map(|m| m.max_rss_mib)
            .fold(0.0, f64::max);
        let each: Vec<String> = import
            .runs
            .iter()
            .map(|m| {
                format!(
                    "{:.2} s ({:.2} s CPU, {:.0} MiB)",
                    m.seconds, m.cpu_seconds, m.max_rss_mib
                )
            })
            .collect();
        notes.push(format!(
            "{name}: {} runs, in turns with the other import's, in the order they ran (the median in the table, with the largest peak RSS): {}",
            import.runs.len(),
            each.join(", ")
        ));
    }
    let seconds_of = |import: &ImportRuns| import.row.map(|row| rows[row].seconds);
    let (files, clever) = (seconds_of(&imports.files), seconds_of(&imports.clever));
    for row in rows.iter_mut() {
        for (what, ratio) in &mut row.ratios {
            let to = match what.as_str() {
                TO_FLOOR => floor,
                TO_FILE_IMPORT | TO_FULL_IMPORT => files,
                TO_FULL_CLEVER_IMPORT => clever,
                _ => None,
            };
            if let Some(to) = to {
                *ratio = row.seconds / to;
            }
        }
    }
    notes
}

fn say(message: impl AsRef<str>) {
    eprintln!("[bench] {}", message.as_ref());
}

/// The folder the file scenarios import from, under the runs folder.
const FILE_FOLDER: &str = "school-files";

/// `to`, emptied and filled with `from`'s files (hard links where the file system allows,
/// copies elsewhere).
fn stage(from: &Path, to: &Path) -> Result<PathBuf> {
    if to.exists() {
        std::fs::remove_dir_all(to)?;
    }
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if !entry.file_type()?.is_file() || name.to_string_lossy().starts_with('.') {
            continue;
        }
        let target = to.join(&name);
        if std::fs::hard_link(entry.path(), &target).is_err() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(to.to_path_buf())
}

/// Every byte of `path` (a file, or the files of a folder) read once, so that a measured
/// run finds it in memory as the import and the floors find theirs (just written, or just
/// read). This kind of machine pages out memory left idle for a minute, page cache
/// included (docs/performance.md, item 32's runs), and a re-sync whose database was paged
/// out reads it back from the disk page by page. (The first re-syncs after an import
/// still cost more than the later ones: the kernel copies their new WAL into pages new
/// to its cache, dearer on this machine soon after a large process ended; see the Intel
/// runs there.)
fn read_through(path: &Path) -> Result<()> {
    let read = |file: &Path| -> Result<()> {
        std::fs::File::open(file)
            .and_then(|mut opened| std::io::copy(&mut opened, &mut std::io::sink()))
            .with_context(|| format!("cannot read {}", file.display()))?;
        Ok(())
    };
    if path.is_dir() {
        let entries =
            std::fs::read_dir(path).with_context(|| format!("cannot list {}", path.display()))?;
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                read(&entry.path())?;
            }
        }
        Ok(())
    } else {
        read(path)
    }
}

/// `from` copied to `to`, and the copy written to the disk before a measured run opens
/// it. A roster a night's sync starts from was written long before; a copy just made is
/// a gigabyte of dirty page cache, which the run's own `fsync` of the database (its
/// commit's checkpoint) would have to write first: 0.3 s of a nyc re-sync that was the
/// harness's, not the run's (docs/performance.md, item 67).
fn copy_written(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(to)
        .and_then(|copy| copy.sync_all())
        .with_context(|| format!("cannot write {} to the disk", to.display()))?;
    Ok(())
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut name = path.as_os_str().to_os_string();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

fn table_counts(db: &Path) -> Result<BTreeMap<String, u64>> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut counts = BTreeMap::new();
    for table in TABLES {
        let n: u64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
        counts.insert(table.to_string(), n);
    }
    Ok(counts)
}

/// Active rows of each table that has them: what a roster holds, without what earlier
/// runs deactivated.
fn active_counts(db: &Path) -> Result<BTreeMap<String, u64>> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut counts = BTreeMap::new();
    for table in [
        "schools",
        "terms",
        "classes",
        "contacts",
        "contact_sources",
        "enrollments",
        "class_teachers",
        "relationships",
    ] {
        let n: u64 = conn.query_row(
            &format!("SELECT count(*) FROM {table} WHERE active = 1"),
            [],
            |r| r.get(0),
        )?;
        counts.insert(table.to_string(), n);
    }
    Ok(counts)
}

fn total_rows(counts: &BTreeMap<String, u64>) -> u64 {
    counts.values().sum()
}

fn toml_path(path: &Path) -> String {
    path.display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

/// Generated inputs are cached: `stamp` says what a folder holds.
fn cached(dir: &Path, stamp: &str, build: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let stamp_file = dir.join(".stamp");
    if std::fs::read_to_string(&stamp_file).ok().as_deref() == Some(stamp) {
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let started = std::time::Instant::now();
    build(dir)?;
    std::fs::write(&stamp_file, stamp)?;
    say(format!(
        "generated {} in {:.1} s",
        dir.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

impl Bench {
    fn new(cli: &Cli) -> Result<Bench> {
        let exe = std::env::current_exe()?;
        let bin_dir = exe
            .parent()
            .context("the bench binary has a folder")?
            .to_path_buf();
        let roster = bin_dir.join(format!("roster{}", std::env::consts::EXE_SUFFIX));
        let csv_plugin = bin_dir.join(roster_core::loader::plugin_file_name("csv"));
        let clever_plugin = bin_dir.join(roster_core::loader::plugin_file_name("clever"));
        for needed in [&roster, &csv_plugin, &clever_plugin] {
            if !needed.is_file() {
                bail!(
                    "{} is missing: build it first (bench/run.sh does: cargo build --release -p roster-host -p roster-plugin-csv -p roster-plugin-clever -p roster-bench)",
                    needed.display()
                );
            }
        }
        let students = match cli.students {
            Some(n) => n,
            None => generate::students_for(&cli.size).with_context(|| {
                format!("unknown size `{}` (tiny, small, medium, nyc)", cli.size)
            })?,
        };
        let label = match cli.students {
            Some(n) => format!("custom-{n}"),
            None => cli.size.clone(),
        };
        let work = match &cli.work {
            Some(dir) => dir.clone(),
            // target/release/roster-bench -> target/bench
            None => bin_dir
                .parent()
                .map(|target| target.join("bench"))
                .context("no target folder")?,
        };
        let _ = students;
        Ok(Bench {
            bin_dir,
            roster,
            csv_plugin,
            inputs: work.join("inputs"),
            runs: work.join(format!("runs-{label}")),
            check: cli.check,
            keep: cli.keep,
            resync_runs: cli.resync_runs,
            import_runs: cli.import_runs.max(1),
            imports: Imports::default(),
            rows: Vec::new(),
            dedupe: Vec::new(),
            failures: Vec::new(),
            notes: Vec::new(),
        })
    }

    fn fail(&mut self, message: String) {
        say(format!("CHECK FAILED: {message}"));
        self.failures.push(message);
    }

    fn expect_equal(
        &mut self,
        what: &str,
        a: &BTreeMap<String, u64>,
        b: &BTreeMap<String, u64>,
        tables: &[&str],
    ) {
        for table in tables {
            let (x, y) = (a.get(*table), b.get(*table));
            if x != y {
                self.fail(format!("{what}: {table}: {x:?} vs {y:?}"));
            }
        }
    }

    fn run(&mut self, cli: &Cli) -> Result<()> {
        let students = cli
            .students
            .or_else(|| generate::students_for(&cli.size))
            .expect("checked in new");
        let spec = Spec::from_students(students, cli.seed);
        let wants = |name: &str| cli.only.is_empty() || cli.only.iter().any(|o| o == name);
        std::fs::create_dir_all(&self.runs)?;
        say(format!(
            "district: {} students, {} schools, {} teachers, {} classes (seed {})",
            spec.students, spec.schools, spec.teachers, spec.classes, spec.seed
        ));
        let district = District::new(spec, 0);
        let counts = district.counts();
        self.notes
            .push(format!("load average at start: {}", loadavg()));
        say(format!(
            "  {} parents, {} enrollments, {} class-teacher links, {} relationships",
            counts.parents, counts.enrollments, counts.class_teachers, counts.relationships
        ));
        let key = format!("{}-s{}", spec.students, spec.seed);
        let stamp = format!("generator v{} {:?}", generate::VERSION, spec);
        let files = self.inputs.join(format!("files-{key}"));
        let needs_files = ["floor", "files", "resync", "linked"]
            .iter()
            .any(|s| wants(s));
        if needs_files {
            cached(&files, &format!("{stamp} rev0"), |dir| {
                generate::write_pickatime(&district, dir)
            })?;
        }

        let mut floor: Option<(Measured, BTreeMap<String, u64>)> = None;
        if wants("floor") {
            floor = Some(self.floor(&district, &key, &stamp)?);
        }
        let mut file_import: Option<(Measured, u64)> = None;
        if wants("files") || wants("resync") {
            file_import = Some(self.files(&files, &counts, floor.as_ref().map(|f| &f.1))?);
        }
        if wants("resync") {
            let changed = District::new(spec, 1);
            let files1 = self.inputs.join(format!("files-{key}-rev1"));
            cached(&files1, &format!("{stamp} rev1"), |dir| {
                generate::write_pickatime(&changed, dir)
            })?;
            let (full, rows) = file_import.expect("ran above");
            self.resync(&files1, full, rows, &changed)?;
        }
        if !self.keep {
            remove_db(&self.runs.join("files.db"));
        }
        if wants("clever") || wants("clever-resync") {
            let mode = cli.clever.unwrap_or(if self.check {
                CleverMode::Both
            } else {
                CleverMode::Replay
            });
            let resync = wants("clever-resync");
            self.clever(
                &district,
                &key,
                &stamp,
                mode,
                file_import.map(|f| f.0),
                resync,
            )?;
        }
        if self.import_runs > 1 {
            self.imports_again(&files, &key)?;
        }
        if wants("linked") {
            self.linked(&files, cli.repeat, floor.as_ref().map(|f| f.0))?;
        }
        if wants("dedupe") {
            let sizes = if !cli.dedupe_sizes.is_empty() {
                cli.dedupe_sizes.clone()
            } else {
                match spec.students {
                    0..=5_000 => vec![1_000, 3_000, 10_000],
                    5_001..=50_000 => vec![10_000, 30_000, 100_000],
                    _ => vec![10_000, 100_000, 1_000_000],
                }
            };
            // Cost per person against the database's size: the same two thousand or so
            // people (a fifth of the smallest database, few enough that the within-run
            // growth below stays out of it) into databases of every size...
            let incoming = (sizes[0] as f64 / 2.71 / 5.0).round() as u64;
            for &contacts in &sizes {
                self.dedupe_size(contacts, cli.seed, Some(incoming))?;
            }
            // ...and against the import's size: everyone again, as a switch to a new
            // source does (capped: a quadratic pass would make the largest run for hours).
            for &contacts in sizes.iter().filter(|&&n| n <= cli.dedupe_import_max) {
                self.dedupe_size(contacts, cli.seed, None)?;
            }
        }

        self.notes
            .push(format!("load average at end: {}", loadavg()));
        let paces: Vec<String> = measure::paces()
            .iter()
            .map(|(name, seconds)| format!("{name} {seconds:.3}"))
            .collect();
        if !paces.is_empty() {
            self.notes.push(format!(
                "the machine's pace before each measured command, in order (seconds of a fixed loop, \
                 lower is faster; `measure::pace`): {}",
                paces.join(", ")
            ));
        }
        let report = self.report(cli, &spec, &counts);
        println!("{report}");
        std::fs::write(self.runs.join("report.md"), &report)?;
        std::fs::write(
            self.runs.join("results.json"),
            serde_json::to_vec_pretty(&serde_json::json!({
                "spec": spec, "counts": counts, "rows": self.rows, "dedupe": self.dedupe,
                "failures": self.failures,
            }))?,
        )?;
        if !self.failures.is_empty() {
            bail!(
                "{} check(s) failed:\n  {}",
                self.failures.len(),
                self.failures.join("\n  ")
            );
        }
        Ok(())
    }

    fn log_paths(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.runs.join(format!("{name}.out")),
            self.runs.join(format!("{name}.err")),
        )
    }

    /// (1, floor) `sqlite3 .import` of the same rows into a database the host created.
    fn floor(
        &mut self,
        district: &District,
        key: &str,
        stamp: &str,
    ) -> Result<(Measured, BTreeMap<String, u64>)> {
        let csv = self.inputs.join(format!("floor-{key}"));
        cached(
            &csv,
            &format!("{stamp} floor v{}", generate::FLOOR_VERSION),
            |dir| generate::write_floor_csv(district, dir, FILE_SOURCE, SCHOOL, TERM, EVENT),
        )?;
        let db = self.runs.join("floor.db");
        remove_db(&db);
        {
            let store = roster_host::store::Store::open(&db).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut schema = String::new();
            let mut query = store
                .conn
                .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")?;
            for sql in query.query_map([], |r| r.get::<_, String>(0))? {
                writeln!(schema, "{};", sql?)?;
            }
            std::fs::write(self.runs.join("schema.sql"), schema)?;
        }
        // The host's own settings (store/mod.rs): WAL, synchronous=NORMAL, foreign keys
        // on, default cache; one transaction, like an import.
        let mut script = String::from(
            ".bail on\nPRAGMA journal_mode=WAL;\nPRAGMA synchronous=NORMAL;\nPRAGMA foreign_keys=ON;\nBEGIN IMMEDIATE;\n",
        );
        for table in generate::FLOOR_TABLES {
            writeln!(
                script,
                ".import --csv '{}' {table}",
                csv.join(format!("{table}.csv")).display()
            )?;
        }
        script.push_str("COMMIT;\n");
        let script_path = self.runs.join("floor.sql");
        std::fs::write(&script_path, &script)?;
        say("floor: sqlite3 .import ...");
        let (out, err) = self.log_paths("floor");
        let measured = measure::run(
            Path::new("sqlite3"),
            &[db.clone().into_os_string()],
            &[],
            Some(std::fs::File::open(&script_path)?),
            &out,
            &err,
        )
        .context("the floor needs the sqlite3 shell (apt-get install -y sqlite3)")?;
        let counts = table_counts(&db)?;
        let rows = total_rows(&counts);
        say(format!("floor: {rows} rows in {:.2} s", measured.seconds));
        self.rows.push(Row {
            scenario: FLOOR_SCENARIO.into(),
            rows,
            seconds: measured.seconds,
            cpu_seconds: measured.cpu_seconds,
            max_rss_mib: measured.max_rss_mib,
            ratios: vec![],
        });
        if !self.keep {
            remove_db(&db);
        }
        Ok((measured, counts))
    }

    fn file_config(
        &self,
        name: &str,
        db: &Path,
        folder: &Path,
        source: &str,
        event: &str,
    ) -> Result<PathBuf> {
        let config = format!(
            r#"[database]
path = "{db}"

[safety]
max_deactivate_count = 1000000000

[[source]]
name = "{source}"
plugin = "csv"
format = "pickatime"
path = "{folder}"
school = "{SCHOOL}"
term = "{TERM}"

[[event]]
name = "{event}"
source = "{source}"
sync = false
"#,
            db = toml_path(db),
            folder = toml_path(folder),
        );
        let path = self.runs.join(format!("{name}.toml"));
        std::fs::write(&path, config)?;
        Ok(path)
    }

    fn roster(&self, config: &Path, name: &str, extra: &[&str]) -> Result<Measured> {
        let (out, err) = self.log_paths(name);
        let mut args: Vec<std::ffi::OsString> = vec![
            "--config".into(),
            config.into(),
            "-q".into(),
            "import".into(),
        ];
        args.extend(extra.iter().map(Into::into));
        measure::run(
            &self.roster,
            &args,
            &[(TOKEN_ENV, clever::TOKEN), ("NO_COLOR", "1")],
            None,
            &out,
            &err,
        )
    }

    /// (1) `roster import` of the pickAtime files: the real binary and plugin file.
    fn files(
        &mut self,
        files: &Path,
        counts: &Counts,
        floor: Option<&BTreeMap<String, u64>>,
    ) -> Result<(Measured, u64)> {
        let db = self.runs.join("files.db");
        remove_db(&db);
        // The school's folder: revision 0 now, revision 1 for the re-sync, as a school
        // replaces its files in place.
        let folder = stage(files, &self.runs.join(FILE_FOLDER))?;
        let config = self.file_config("files", &db, &folder, FILE_SOURCE, EVENT)?;
        say("files: roster import ...");
        read_through(&folder)?;
        let measured = self.roster(&config, "files", &[])?;
        let found = table_counts(&db)?;
        let rows = total_rows(&found);
        say(format!(
            "files: {rows} rows in {:.2} s, {:.0} MiB",
            measured.seconds, measured.max_rss_mib
        ));
        if let Some(floor) = floor {
            self.expect_equal("file import vs floor", &found, floor, &TABLES);
        }
        let expected = [
            ("contacts", counts.people()),
            ("enrollments", counts.enrollments),
            ("class_teachers", counts.class_teachers),
            ("relationships", counts.relationships),
            ("classes", counts.classes),
        ];
        for (table, n) in expected {
            if found.get(table) != Some(&n) {
                self.fail(format!(
                    "file import: {table}: {:?}, the generator made {n}",
                    found.get(table)
                ));
            }
        }
        let floor_seconds = self.floor_seconds();
        self.imports.files.runs.push(measured);
        self.imports.files.row = Some(self.rows.len());
        self.rows.push(Row {
            scenario: "roster import, files (ABI, CLI)".into(),
            rows,
            seconds: measured.seconds,
            cpu_seconds: measured.cpu_seconds,
            max_rss_mib: measured.max_rss_mib,
            ratios: floor_seconds
                .map(|f| vec![(TO_FLOOR.to_string(), measured.seconds / f)])
                .unwrap_or_default(),
        });
        Ok((measured, rows))
    }

    /// The `sqlite3 .import` floor's seconds, once it has run.
    fn floor_seconds(&self) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.scenario == FLOOR_SCENARIO)
            .map(|r| r.seconds)
    }

    /// `--import-runs`: the file and Clever imports that ran once each so far, again in
    /// turns into databases of their own (each checked against the first run's counts,
    /// then deleted); then the table shows each one's median.
    fn imports_again(&mut self, files: &Path, key: &str) -> Result<()> {
        let file_rows = self.imports.files.row.map(|row| self.rows[row].rows);
        let clever_rows = self.imports.clever.row.map(|row| self.rows[row].rows);
        // The re-sync left revision 1 in the school's folder.
        let folder = match file_rows {
            Some(_) => Some(stage(files, &self.runs.join(FILE_FOLDER))?),
            None => None,
        };
        let pages = self.inputs.join(format!("clever-{key}"));
        let server = match clever_rows {
            Some(_) => Some(clever::Replay::start(&[&pages])?),
            None => None,
        };
        for run in 2..=self.import_runs {
            if let (Some(expected), Some(folder)) = (file_rows, &folder) {
                let db = self.runs.join("files-again.db");
                remove_db(&db);
                let config = self.file_config("files-again", &db, folder, FILE_SOURCE, EVENT)?;
                say(format!("files: roster import, run {run} ..."));
                read_through(folder)?;
                let measured = self.roster(&config, "files-again", &[])?;
                self.check_again("file import", &db, expected, run)?;
                say(format!("files: {:.2} s", measured.seconds));
                self.imports.files.runs.push(measured);
            }
            if let (Some(expected), Some(server)) = (clever_rows, &server) {
                let db = self.runs.join("clever-again.db");
                remove_db(&db);
                let config = self.clever_config("clever-again", &db, &server.base_url())?;
                say(format!(
                    "clever: roster import from the replayed mock, run {run} ..."
                ));
                read_through(&pages)?;
                let measured = self.roster(&config, "clever-again", &[])?;
                self.check_again("Clever import", &db, expected, run)?;
                say(format!("clever: {:.2} s", measured.seconds));
                self.imports.clever.runs.push(measured);
            }
        }
        drop(server);
        self.use_import_medians();
        Ok(())
    }

    /// A repeated import wrote as many rows as the first; its database goes.
    fn check_again(&mut self, what: &str, db: &Path, expected: u64, run: u32) -> Result<()> {
        let rows = total_rows(&table_counts(db)?);
        if rows != expected {
            self.fail(format!(
                "{what}, run {run}: {rows} rows, the first run wrote {expected}"
            ));
        }
        remove_db(db);
        Ok(())
    }

    fn use_import_medians(&mut self) {
        let floor = self.floor_seconds();
        let notes = import_medians(&mut self.rows, &self.imports, floor);
        self.notes.extend(notes);
    }

    /// (3) The same database, files with about 1% of records changed.
    fn resync(
        &mut self,
        files1: &Path,
        full: Measured,
        rows: u64,
        changed: &District,
    ) -> Result<()> {
        let db = self.runs.join("files.db");
        let folder = stage(files1, &self.runs.join(FILE_FOLDER))?;
        let config = self.file_config("resync", &db, &folder, FILE_SOURCE, EVENT)?;
        say("resync: roster import (1% changed) ...");
        let resynced = self.resync_runs(&db, &config, "resync", &[&folder])?;
        let measured = resynced.median;
        let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let summary: String = conn.query_row(
            "SELECT summary FROM sync_runs WHERE status = 'ok' ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )?;
        let active: u64 = conn.query_row(
            "SELECT count(*) FROM enrollments WHERE active = 1",
            [],
            |r| r.get(0),
        )?;
        let counts = changed.counts();
        if active != counts.enrollments {
            self.fail(format!(
                "re-sync: {active} active enrollments, the changed files have {}",
                counts.enrollments
            ));
        }
        let summary: serde_json::Value = serde_json::from_str(&summary)?;
        if summary["continued"] != serde_json::Value::Bool(true) {
            self.fail("the file re-sync read every row instead of continuing".into());
        }
        let changed_records = changed_total(&summary);
        self.notes.push(format!(
            "re-sync: {changed_records} records inserted, updated or deactivated ({:.2}% of {rows} rows)",
            100.0 * changed_records as f64 / rows as f64
        ));
        if self.check {
            if changed_records == 0 {
                self.fail("re-sync changed nothing".into());
            }
            // The roster a complete import of revision 1 leaves, active rows compared.
            let db1 = self.runs.join("files-rev1.db");
            remove_db(&db1);
            let config1 = self.file_config("files-rev1", &db1, files1, FILE_SOURCE, EVENT)?;
            self.roster(&config1, "files-rev1", &[])?;
            let (a, b) = (active_counts(&db)?, active_counts(&db1)?);
            let tables: Vec<&str> = a.keys().map(String::as_str).collect();
            self.expect_equal("file re-sync vs complete import", &a, &b, &tables);
            if !self.keep {
                remove_db(&db1);
            }
        }
        let (floor, to_floor) = floor_row(&resynced, "re-sync, files");
        self.rows.push(Row {
            scenario: "re-sync, files, 1% changed (CLI)".into(),
            rows,
            seconds: measured.seconds,
            cpu_seconds: measured.cpu_seconds,
            max_rss_mib: measured.max_rss_mib,
            ratios: vec![
                (TO_FULL_IMPORT.into(), measured.seconds / full.seconds),
                to_floor,
            ],
        });
        self.rows.push(floor);
        Ok(())
    }

    fn clever_config(&self, name: &str, db: &Path, base_url: &str) -> Result<PathBuf> {
        let config = format!(
            r#"[database]
path = "{db}"

[[source]]
name = "{CLEVER_SOURCE}"
plugin = "clever"
api_version = "{version}"
base_url = "{base_url}"
token_env = "{TOKEN_ENV}"
include_contacts = true
page_size = {page}

# The re-sync changes all classes of 1% of the students: more enrollments than the
# default guard lets go.
[safety]
max_deactivate_count = 1000000000

[[event]]
name = "{EVENT}"
source = "{CLEVER_SOURCE}"
sync = false
"#,
            db = toml_path(db),
            version = clever::VERSION,
            page = clever::PAGE_SIZE,
        );
        let path = self.runs.join(format!("{name}.toml"));
        std::fs::write(&path, config)?;
        Ok(path)
    }

    /// (2) `roster import` from the Clever plugin, the district on loopback; with
    /// `resync`, then (3) the sync after it, from the Events API, with about 1% changed.
    fn clever(
        &mut self,
        district: &District,
        key: &str,
        stamp: &str,
        mode: CleverMode,
        files: Option<Measured>,
        resync: bool,
    ) -> Result<()> {
        let mut found = Vec::new();
        if matches!(mode, CleverMode::Replay | CleverMode::Both) {
            let pages = self.inputs.join(format!("clever-{key}"));
            cached(
                &pages,
                &format!("{stamp} clever {} {}", clever::VERSION, clever::PAGE_SIZE),
                |dir| {
                    let n = clever::capture(district, dir)?;
                    say(format!("clever: captured {n} pages"));
                    Ok(())
                },
            )?;
            let changed = District::new(district.spec, 1);
            let events = self.inputs.join(format!("clever-{key}-events"));
            if resync {
                cached(
                    &events,
                    &format!("{stamp} rev1 clever events {}", clever::PAGE_SIZE),
                    |dir| {
                        let n = clever::capture_events(district, &changed, dir)?;
                        say(format!("clever: captured {n} events"));
                        Ok(())
                    },
                )?;
            }
            let dirs: Vec<&Path> = if resync {
                vec![&pages, &events]
            } else {
                vec![&pages]
            };
            let server = clever::Replay::start(&dirs)?;
            let db = self.runs.join("clever.db");
            remove_db(&db);
            let config = self.clever_config("clever", &db, &server.base_url())?;
            say("clever: roster import from the replayed mock ...");
            // As a server holds what it serves: the replay reads each page from its file.
            read_through(&pages)?;
            let measured = self.roster(&config, "clever", &[])?;
            self.imports.clever.runs.push(measured);
            self.imports.clever.row = Some(self.rows.len());
            found.push((
                "replay",
                self.clever_row(
                    &db,
                    measured,
                    "roster import, Clever v3.0 (replayed mock, CLI)",
                    files,
                    resync,
                )?,
            ));
            if resync {
                self.clever_resync(&db, &config, measured, &changed, key, stamp)?;
            }
            drop(server);
            if !self.keep {
                remove_db(&db);
            }
        }
        if matches!(mode, CleverMode::Direct | CleverMode::Both) {
            let server =
                roster_clever_mock::MockServer::start(clever::whole(district), clever::TOKEN)?;
            let db = self.runs.join("clever-direct.db");
            remove_db(&db);
            let config = self.clever_config("clever-direct", &db, server.base_url())?;
            say("clever: roster import from the mock server ...");
            let measured = self.roster(&config, "clever-direct", &[])?;
            drop(server);
            found.push((
                "direct",
                self.clever_row(
                    &db,
                    measured,
                    "roster import, Clever v3.0 (MockServer, CLI)",
                    files,
                    false,
                )?,
            ));
        }
        if let [(_, a), (_, b)] = found.as_slice() {
            let (a, b) = (a.clone(), b.clone());
            self.expect_equal("Clever replay vs MockServer", &a, &b, &TABLES);
        }
        Ok(())
    }

    /// `keep_db`: the database stays for a sync after the import.
    fn clever_row(
        &mut self,
        db: &Path,
        measured: Measured,
        scenario: &str,
        files: Option<Measured>,
        keep_db: bool,
    ) -> Result<BTreeMap<String, u64>> {
        let found = table_counts(db)?;
        let rows = total_rows(&found);
        say(format!(
            "clever: {rows} rows in {:.2} s, {:.0} MiB",
            measured.seconds, measured.max_rss_mib
        ));
        // The same people and links as the files; schools and contact_schools differ
        // (the files are one school).
        if let Ok(file_counts) = table_counts(&self.runs.join("files.db")) {
            self.expect_equal(
                "Clever vs file import",
                &found,
                &file_counts,
                &[
                    "contacts",
                    "classes",
                    "enrollments",
                    "class_teachers",
                    "relationships",
                ],
            );
        }
        let mut ratios = Vec::new();
        if let Some(floor) = self.floor_seconds() {
            ratios.push((TO_FLOOR.into(), measured.seconds / floor));
        }
        if let Some(files) = files {
            ratios.push((TO_FILE_IMPORT.into(), measured.seconds / files.seconds));
        }
        self.rows.push(Row {
            scenario: scenario.into(),
            rows,
            seconds: measured.seconds,
            cpu_seconds: measured.cpu_seconds,
            max_rss_mib: measured.max_rss_mib,
            ratios,
        });
        if !self.keep && !keep_db {
            remove_db(db);
        }
        Ok(found)
    }

    /// (3) for Clever: the sync after the import, which continues from the import's
    /// checkpoint and reads the events of revision 1's changes. With `--check`, the
    /// roster it leaves is compared with a complete import of revision 1.
    fn clever_resync(
        &mut self,
        db: &Path,
        config: &Path,
        full: Measured,
        changed: &District,
        key: &str,
        stamp: &str,
    ) -> Result<()> {
        say("clever-resync: roster import from the events (1% changed) ...");
        let resynced = self.resync_runs(db, config, "clever-resync", &[])?;
        let measured = resynced.median;
        let summary: String = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?
            .query_row(
                "SELECT summary FROM sync_runs WHERE status = 'ok' ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )?;
        let summary: serde_json::Value = serde_json::from_str(&summary)?;
        if summary["continued"] != serde_json::Value::Bool(true) {
            self.fail("the Clever re-sync read the whole district instead of the events".into());
        }
        let rows = total_rows(&table_counts(db)?);
        let changed_records = changed_total(&summary);
        self.notes.push(format!(
            "Clever re-sync: {changed_records} records inserted, updated or deactivated ({:.2}% of {rows} rows)",
            100.0 * changed_records as f64 / rows as f64
        ));
        if self.check {
            if changed_records == 0 {
                self.fail("the Clever re-sync changed nothing".into());
            }
            // The roster a complete read of revision 1 leaves, active rows compared.
            let pages1 = self.inputs.join(format!("clever-{key}-rev1"));
            cached(
                &pages1,
                &format!(
                    "{stamp} rev1 clever {} {}",
                    clever::VERSION,
                    clever::PAGE_SIZE
                ),
                |dir| clever::capture(changed, dir).map(|_| ()),
            )?;
            let server = clever::Replay::start(&[&pages1])?;
            let db1 = self.runs.join("clever-rev1.db");
            remove_db(&db1);
            let config1 = self.clever_config("clever-rev1", &db1, &server.base_url())?;
            self.roster(&config1, "clever-rev1", &[])?;
            drop(server);
            let (a, b) = (active_counts(db)?, active_counts(&db1)?);
            let tables: Vec<&str> = a.keys().map(String::as_str).collect();
            self.expect_equal("Clever re-sync vs complete import", &a, &b, &tables);
            if !self.keep {
                remove_db(&db1);
            }
        }
        let (floor, to_floor) = floor_row(&resynced, "re-sync, Clever");
        self.rows.push(Row {
            scenario: "re-sync, Clever events, 1% changed (CLI)".into(),
            rows,
            seconds: measured.seconds,
            cpu_seconds: measured.cpu_seconds,
            max_rss_mib: measured.max_rss_mib,
            ratios: vec![
                (
                    TO_FULL_CLEVER_IMPORT.into(),
                    measured.seconds / full.seconds,
                ),
                to_floor,
            ],
        });
        self.rows.push(floor);
        Ok(())
    }

    /// The re-sync `name` of `db` run `--resync-runs` times, each on a copy of `db` as
    /// its import left it, with `db` and its `inputs` (files or folders) read first: the
    /// median run, the others in the notes.
    ///
    /// Then its floor ([`changes`]): SQLite applying the rows the re-sync changed to the
    /// database it started from, in a process of its own.
    fn resync_runs(
        &mut self,
        db: &Path,
        config: &Path,
        name: &str,
        inputs: &[&Path],
    ) -> Result<Resynced> {
        let runs = self.resync_runs.max(1);
        let base = self.runs.join(format!("{name}-base.db"));
        // The import's process has ended: its database is whole, without a WAL.
        copy_written(db, &base)?;
        let mut measured = Vec::new();
        for run in 0..runs {
            if run > 0 {
                remove_db(db);
                copy_written(&base, db)?;
            }
            for path in std::iter::once(db).chain(inputs.iter().copied()) {
                read_through(path)?;
            }
            let one = self.roster(config, name, &[])?;
            say(format!("{name}: {:.2} s", one.seconds));
            measured.push(one);
        }
        let floor = self.changes_floor(&base, db, name);
        remove_db(&base);
        let (floor, changed) = floor?;
        if runs > 1 {
            let each: Vec<String> = measured
                .iter()
                .map(|m| {
                    format!(
                        "{:.2} s ({:.2} s CPU, {:.2} s of it the kernel's; {} page faults)",
                        m.seconds, m.cpu_seconds, m.system_seconds, m.page_faults
                    )
                })
                .collect();
            self.notes.push(format!(
                "{name}: {runs} runs, each from the import's database, in the order they ran (the median in the table): {}",
                each.join(", ")
            ));
        }
        Ok(Resynced {
            median: median(&measured),
            floor,
            changed,
        })
    }

    /// SQLite alone applying what the re-sync of `base` into `db` changed (`changes.rs`),
    /// to `base` itself (renamed); with `--check`, it must end as `db` did.
    fn changes_floor(
        &mut self,
        base: &Path,
        db: &Path,
        name: &str,
    ) -> Result<(Measured, changes::Changed)> {
        let collected = self.runs.join(format!("{name}-changes.db"));
        let changed = changes::collect(base, db, &collected)?;
        // The starting database is needed no more: the floor starts from it as it is.
        let floor_db = self.runs.join(format!("{name}-floor.db"));
        remove_db(&floor_db);
        std::fs::rename(base, &floor_db)?;
        say(format!(
            "{name}: SQLite applying its {} changed rows ...",
            changed.rows()
        ));
        let (out, err) = self.log_paths(&format!("{name}-floor"));
        let seconds_file = self.runs.join(format!("{name}-floor.json"));
        let args: Vec<std::ffi::OsString> = vec![
            "apply-changes".into(),
            "--db".into(),
            floor_db.clone().into(),
            "--changes".into(),
            collected.clone().into(),
            "--out".into(),
            seconds_file.clone().into(),
        ];
        read_through(&floor_db)?;
        read_through(&collected)?;
        let mut measured = measure::run(&std::env::current_exe()?, &args, &[], None, &out, &err)?;
        // From opening the database to closing it: the changes were in memory before.
        measured.seconds = serde_json::from_slice(&std::fs::read(&seconds_file)?)?;
        say(format!(
            "{name}: its changes in SQLite: {:.2} s",
            measured.seconds
        ));
        if self.check {
            let left = changes::differences(&floor_db, db)?;
            if !left.is_empty() {
                self.fail(format!(
                    "{name}: SQLite applying its changes left another roster: {}",
                    left.join("; ")
                ));
            }
        }
        if !self.keep {
            remove_db(&floor_db);
            remove_db(&collected);
        }
        Ok((measured, changed))
    }

    fn child_import(
        &self,
        name: &str,
        config: &Path,
        linkage: child::Linkage,
        extra: &[&str],
    ) -> Result<(Measured, child::ChildResult)> {
        let (out, err) = self.log_paths(name);
        let json = self.runs.join(format!("{name}.json"));
        let mut args: Vec<std::ffi::OsString> = vec![
            "child-import".into(),
            "--config".into(),
            config.into(),
            "--out".into(),
            json.clone().into(),
            "--plugin".into(),
            match linkage {
                child::Linkage::Static => "static",
                child::Linkage::Abi => "abi",
            }
            .into(),
            "--plugin-file".into(),
            self.csv_plugin.clone().into(),
        ];
        args.extend(extra.iter().map(Into::into));
        let measured = measure::run(&std::env::current_exe()?, &args, &[], None, &out, &err)?;
        let result: child::ChildResult = serde_json::from_slice(&std::fs::read(&json)?)?;
        Ok((measured, result))
    }

    /// (4) The same import in-process: plugin linked in vs loaded through the ABI.
    fn linked(&mut self, files: &Path, repeat: u32, floor: Option<Measured>) -> Result<()> {
        let mut best: BTreeMap<&str, (Measured, u64)> = BTreeMap::new();
        let mut counts: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
        for round in 0..repeat.max(1) {
            // Alternate the order, so neither always runs on a warmer page cache.
            let order = if round % 2 == 0 {
                [
                    ("static", child::Linkage::Static),
                    ("abi", child::Linkage::Abi),
                ]
            } else {
                [
                    ("abi", child::Linkage::Abi),
                    ("static", child::Linkage::Static),
                ]
            };
            for (name, linkage) in order {
                let db = self.runs.join(format!("{name}.db"));
                remove_db(&db);
                let config = self.file_config(name, &db, files, FILE_SOURCE, EVENT)?;
                say(format!("linked: in-process import, plugin {name} ..."));
                let (measured, _) = self.child_import(name, &config, linkage, &[])?;
                say(format!(
                    "linked: {name} {:.2} s, {:.0} MiB",
                    measured.seconds, measured.max_rss_mib
                ));
                let found = table_counts(&db)?;
                let rows = total_rows(&found);
                counts.insert(name, found);
                let slot = best.entry(name).or_insert((measured, rows));
                if measured.seconds < slot.0.seconds {
                    *slot = (measured, rows);
                }
                if !self.keep {
                    remove_db(&db);
                }
            }
        }
        if let (Some(a), Some(b)) = (counts.get("static"), counts.get("abi")) {
            let (a, b) = (a.clone(), b.clone());
            self.expect_equal("static vs ABI", &a, &b, &TABLES);
        }
        let (stat, rows) = best["static"];
        let (abi, _) = best["abi"];
        let floor_ratio = |m: Measured| {
            floor
                .map(|f| vec![("floor".to_string(), m.seconds / f.seconds)])
                .unwrap_or_default()
        };
        self.rows.push(Row {
            scenario: "in-process import, plugin linked statically".into(),
            rows,
            seconds: stat.seconds,
            cpu_seconds: stat.cpu_seconds,
            max_rss_mib: stat.max_rss_mib,
            ratios: floor_ratio(stat),
        });
        let mut ratios = floor_ratio(abi);
        ratios.push(("static (ABI/static)".into(), abi.seconds / stat.seconds));
        self.rows.push(Row {
            scenario: "in-process import, plugin through the ABI".into(),
            rows,
            seconds: abi.seconds,
            cpu_seconds: abi.cpu_seconds,
            max_rss_mib: abi.max_rss_mib,
            ratios,
        });
        // What reading alone costs: the plugin's records pulled through the ABI, no
        // database work.
        let config = self.file_config(
            "drain",
            &self.runs.join("drain.db"),
            files,
            FILE_SOURCE,
            EVENT,
        )?;
        say("linked: csv plugin alone (records pulled, not applied) ...");
        let (drain, result) =
            self.child_import("drain", &config, child::Linkage::Abi, &["--drain"])?;
        remove_db(&self.runs.join("drain.db"));
        let mut ratios = floor_ratio(drain);
        ratios.push(("ABI import".into(), drain.seconds / abi.seconds));
        self.rows.push(Row {
            scenario: format!(
                "csv plugin alone through the ABI ({} records, no database)",
                result.persons
            ),
            rows,
            seconds: drain.seconds,
            cpu_seconds: drain.cpu_seconds,
            max_rss_mib: drain.max_rss_mib,
            ratios,
        });
        Ok(())
    }

    /// (6) Dedupe cost per incoming person on a database of `contacts` contacts: the
    /// district imported as source A, then the same people through source B under
    /// `--dedupe report` (every person is checked and matched; nothing is written).
    /// `incoming`: only the first families, about that many students, come again.
    fn dedupe_size(&mut self, contacts: u64, seed: u64, incoming: Option<u64>) -> Result<()> {
        // Contacts per student: 1 + 80/1100 teachers + ~1.64 parents.
        let students = (contacts as f64 / 2.71).round() as u64;
        let spec = Spec::from_students(students, seed);
        let district = District::new(spec, 0);
        let people = district.counts().people();
        let stamp = format!("generator v{} {:?} rev0", generate::VERSION, spec);
        let dir = self
            .inputs
            .join(format!("dedupe-{}-s{seed}", spec.students));
        cached(&dir, &stamp, |dir| {
            generate::write_pickatime(&district, dir)
        })?;
        let (axis, part) = match incoming {
            Some(n) if n < spec.students => {
                let part = self
                    .inputs
                    .join(format!("dedupe-{}-s{seed}-part-{n}", spec.students));
                cached(&part, &format!("{stamp} part {n}"), |dir| {
                    generate::write_pickatime_part(&district, dir, n)
                })?;
                ("db size", part)
            }
            Some(_) => ("db size", dir.clone()),
            None => ("import size", dir.clone()),
        };
        let name = format!(
            "dedupe-{contacts}-{}",
            if incoming.is_some() { "db" } else { "all" }
        );
        let db = self.runs.join(format!("{name}.db"));
        remove_db(&db);
        let config_a = self.file_config(&format!("{name}-a"), &db, &dir, "files-a", "Event A")?;
        say(format!("{name}: import as source A ..."));
        let setup = self.roster(&config_a, &format!("{name}-a"), &[])?;
        say(format!(
            "{name}: {people} contacts in {:.1} s; people again as source B ...",
            setup.seconds
        ));
        let config_b = self.file_config(&format!("{name}-b"), &db, &part, "files-b", "Event B")?;
        let (measured, result) = self.child_import(
            &format!("{name}-b"),
            &config_b,
            child::Linkage::Static,
            &["--report", "--trace"],
        )?;
        let plans = &result.plans;
        std::fs::write(
            self.runs.join(format!("{name}-plans.json")),
            serde_json::to_vec_pretty(plans)?,
        )?;
        let full_scans: Vec<String> = plans
            .iter()
            .filter(|p| !p.full_scans.is_empty())
            .map(|p| format!("{} [{}]", p.sql, p.full_scans.join("; ")))
            .collect();
        for scan in &full_scans {
            self.fail(format!(
                "{name}: a per-record statement scans a contacts table: {scan}"
            ));
        }
        // Every person is found as the same person from source A (a few are ambiguous:
        // another child with the same name and birth date).
        let linked = result.findings;
        if (linked as f64) < 0.99 * result.persons as f64
            || (incoming.is_none() && result.persons != people)
        {
            self.fail(format!(
                "{name}: {} persons checked, {linked} matched, of {people} people",
                result.persons
            ));
        }
        let tenth = (result.windows.len() / 10).max(1);
        let per_person = |w: &[f64]| {
            if w.is_empty() {
                f64::NAN
            } else {
                w.iter().sum::<f64>() / (w.len() as f64 * child::WINDOW as f64) * 1e6
            }
        };
        let first = per_person(&result.windows[..tenth.min(result.windows.len())]);
        let last = per_person(&result.windows[result.windows.len().saturating_sub(tenth)..]);
        say(format!(
            "{name}: {} persons, dedupe {:.2} s ({:.1} µs/person), import {:.2} s",
            result.persons,
            result.dedupe_seconds,
            result.dedupe_seconds / result.persons.max(1) as f64 * 1e6,
            result.seconds
        ));
        self.dedupe.push(DedupeRow {
            axis,
            contacts: people,
            incoming: result.persons,
            dedupe_seconds: result.dedupe_seconds,
            import_seconds: result.seconds,
            first_tenth_us: first,
            last_tenth_us: last,
            linked,
            statements: plans.len(),
            full_scans,
            max_rss_mib: measured.max_rss_mib,
        });
        if !self.keep {
            remove_db(&db);
        }
        Ok(())
    }

    fn report(&self, cli: &Cli, spec: &Spec, counts: &Counts) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "## roster-bench --size {}{} (seed {})\n",
            cli.students
                .map_or(cli.size.clone(), |n| format!("custom --students {n}")),
            if cli.check { " --check" } else { "" },
            spec.seed
        );
        let _ = writeln!(
            out,
            "District: {} students, {} teachers, {} parents, {} schools, {} classes, {} enrollments, {} class-teacher links, {} relationships.\n",
            spec.students, spec.teachers, counts.parents, spec.schools, spec.classes, counts.enrollments,
            counts.class_teachers, counts.relationships
        );
        let _ = writeln!(out, "{}\n", machine());
        if !self.rows.is_empty() {
            let _ = writeln!(
                out,
                "| scenario | rows | seconds | rows/s | ratio | CPU s | peak RSS MiB |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---|---:|---:|");
            for row in &self.rows {
                let ratios: Vec<String> = row
                    .ratios
                    .iter()
                    .map(|(what, r)| format!("{}× {what}", ratio_shown(*r)))
                    .collect();
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.2} | {:.0} | {} | {:.2} | {:.0} |",
                    row.scenario,
                    row.rows,
                    row.seconds,
                    row.rows as f64 / row.seconds,
                    if ratios.is_empty() {
                        "1.00 (baseline)".into()
                    } else {
                        ratios.join(", ")
                    },
                    row.cpu_seconds,
                    row.max_rss_mib
                );
            }
            let _ = writeln!(out);
        }
        for note in &self.notes {
            let _ = writeln!(out, "- {note}");
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out);
        }
        if !self.dedupe.is_empty() {
            let _ = writeln!(out, "Dedupe stage: people already in the database (source A) come again through a second source B (`--dedupe report`: every one is checked and matched, nothing is written); time inside the dedupe stage per incoming person. *db size*: the same few thousand people against databases of growing size; *import size*: all of a database's people again.\n");
            let _ = writeln!(out, "| axis | contacts in db | incoming | matched | dedupe s | µs/person | vs first | first 10% µs | last 10% µs | whole import s | per-record statements | full scans | peak RSS MiB |");
            let _ = writeln!(
                out,
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"
            );
            for row in &self.dedupe {
                let first = self
                    .dedupe
                    .iter()
                    .find(|r| r.axis == row.axis)
                    .expect("itself");
                let base = first.dedupe_seconds / first.incoming.max(1) as f64;
                let per = row.dedupe_seconds / row.incoming.max(1) as f64;
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {:.2} | {:.1} | {:.2}× | {:.1} | {:.1} | {:.2} | {} | {} | {:.0} |",
                    row.axis,
                    row.contacts,
                    row.incoming,
                    row.linked,
                    row.dedupe_seconds,
                    per * 1e6,
                    per / base,
                    row.first_tenth_us,
                    row.last_tenth_us,
                    row.import_seconds,
                    row.statements,
                    if row.full_scans.is_empty() { "none".to_string() } else { row.full_scans.len().to_string() },
                    row.max_rss_mib
                );
            }
            let _ = writeln!(out);
        }
        if !self.failures.is_empty() {
            let _ = writeln!(out, "**{} check(s) failed.**", self.failures.len());
        } else if self.check {
            let _ = writeln!(out, "All structural checks passed.");
        }
        let _ = self.bin_dir.as_os_str();
        out
    }
}

/// Inserted + updated + deactivated over every entity of a `sync_runs.summary`
/// (`{"entities": {"students": {"inserted": …}, …}, …}`).
fn changed_total(summary: &serde_json::Value) -> u64 {
    let mut total = 0;
    if let Some(map) = summary.get("entities").and_then(|e| e.as_object()) {
        for value in map.values() {
            if let Some(counts) = value.as_object() {
                for key in ["inserted", "updated", "deactivated"] {
                    total += counts.get(key).and_then(|v| v.as_u64()).unwrap_or(0);
                }
            }
        }
    }
    total
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or("?".into(), |kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let sqlite = Command::new("sqlite3")
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()
                .unwrap_or("?")
                .to_string()
        })
        .unwrap_or_else(|| "?".into());
    format!(
        "Machine: {cores} cores ({cpu}), {memory} RAM; sqlite3 shell {sqlite}, roster's bundled SQLite {}.",
        rusqlite::version()
    )
}

/// A ratio as the report shows it: two decimals, and three significant digits below 0.2,
/// where a re-sync's share of its import sits next to the 10% target (10.4% is not
/// "0.10×", nor 9.95% "0.100×").
fn ratio_shown(ratio: f64) -> String {
    let decimals = if ratio >= 0.2 {
        2
    } else if ratio >= 0.1 {
        3
    } else {
        4
    };
    format!("{ratio:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::{
        copy_written, import_medians, ratio_shown, read_through, ImportRuns, Imports, Measured,
        Row, TO_FILE_IMPORT, TO_FLOOR, TO_FULL_CLEVER_IMPORT, TO_FULL_IMPORT,
    };

    fn run(seconds: f64, max_rss_mib: f64) -> Measured {
        Measured {
            seconds,
            cpu_seconds: seconds * 1.5,
            system_seconds: 1.0,
            page_faults: 0,
            max_rss_mib,
        }
    }

    fn row(scenario: &str, seconds: f64, ratios: &[(&str, f64)]) -> Row {
        Row {
            scenario: scenario.into(),
            rows: 1,
            seconds,
            cpu_seconds: 0.0,
            max_rss_mib: 0.0,
            ratios: ratios.iter().map(|(w, r)| (w.to_string(), *r)).collect(),
        }
    }

    #[test]
    fn repeated_imports_show_their_medians_and_every_ratio_to_them_follows() {
        // As the bench pushes them: floor, file import, re-sync, Clever, Clever re-sync,
        // each with the ratios of its first run.
        let mut rows = vec![
            row("floor", 100.0, &[]),
            row("files", 44.0, &[(TO_FLOOR, 0.44)]),
            row(
                "resync",
                4.0,
                &[(TO_FULL_IMPORT, 4.0 / 44.0), ("its changes in SQLite", 2.0)],
            ),
            row(
                "clever",
                60.0,
                &[(TO_FLOOR, 0.6), (TO_FILE_IMPORT, 60.0 / 44.0)],
            ),
            row("clever resync", 5.0, &[(TO_FULL_CLEVER_IMPORT, 5.0 / 60.0)]),
        ];
        let imports = Imports {
            files: ImportRuns {
                runs: vec![run(44.0, 800.0), run(30.0, 790.0), run(36.0, 810.0)],
                row: Some(1),
            },
            clever: ImportRuns {
                runs: vec![run(60.0, 870.0), run(48.0, 880.0), run(54.0, 860.0)],
                row: Some(3),
            },
        };
        rows.push(row("direct", 66.0, &[(TO_FILE_IMPORT, 1.5)]));
        let notes = import_medians(&mut rows, &imports, Some(100.0));

        let ratio = |row: &Row, what: &str| {
            row.ratios
                .iter()
                .find(|(w, _)| w == what)
                .map(|(_, r)| *r)
                .unwrap()
        };
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert_eq!(rows[1].scenario, "files, median of 3");
        assert!(close(rows[1].seconds, 36.0) && close(rows[1].cpu_seconds, 54.0));
        assert!(
            close(rows[1].max_rss_mib, 810.0),
            "the largest peak of the runs"
        );
        assert!(close(ratio(&rows[1], TO_FLOOR), 0.36));
        assert!(close(ratio(&rows[2], TO_FULL_IMPORT), 4.0 / 36.0));
        assert!(
            close(ratio(&rows[2], "its changes in SQLite"), 2.0),
            "not an import's"
        );
        assert_eq!(rows[3].scenario, "clever, median of 3");
        assert!(close(rows[3].seconds, 54.0) && close(rows[3].max_rss_mib, 880.0));
        assert!(close(ratio(&rows[3], TO_FLOOR), 0.54));
        assert!(close(ratio(&rows[3], TO_FILE_IMPORT), 1.5));
        assert!(close(ratio(&rows[4], TO_FULL_CLEVER_IMPORT), 5.0 / 54.0));
        assert!(
            close(ratio(&rows[5], TO_FILE_IMPORT), 66.0 / 36.0),
            "any row's"
        );
        assert_eq!(rows[5].seconds, 66.0, "a row run once stays");
        assert_eq!(notes.len(), 2);
        assert!(
            notes[0].contains("44.00 s") && notes[0].contains("30.00 s"),
            "{}",
            notes[0]
        );
        assert_eq!(rows[0].seconds, 100.0, "the floor is not an import");
    }

    #[test]
    fn an_import_run_once_keeps_its_row_as_it_was() {
        let mut rows = vec![row("files", 44.0, &[(TO_FLOOR, 0.44)])];
        let imports = Imports {
            files: ImportRuns {
                runs: vec![run(44.0, 800.0)],
                row: Some(0),
            },
            ..Imports::default()
        };
        assert!(import_medians(&mut rows, &imports, Some(100.0)).is_empty());
        assert_eq!(rows[0].scenario, "files");
        assert!((rows[0].ratios[0].1 - 0.44).abs() < 1e-9);
    }

    #[test]
    fn a_share_near_the_re_syncs_target_shows_which_side_it_is_on() {
        assert_eq!(ratio_shown(0.104), "0.104");
        assert_eq!(ratio_shown(0.1), "0.100");
        assert_eq!(ratio_shown(0.09951), "0.0995");
        assert_eq!(ratio_shown(0.0965), "0.0965");
        assert_eq!(ratio_shown(0.45), "0.45");
        assert_eq!(ratio_shown(1.476), "1.48");
    }

    #[test]
    fn a_copied_database_is_on_the_disk_before_a_run_opens_it() {
        // Beside the test binary, on the target folder's disk: a tmpfs has no writeback.
        let exe = std::env::current_exe().unwrap();
        let dir = tempfile::tempdir_in(exe.parent().unwrap()).unwrap();
        let (from, to) = (dir.path().join("files.db"), dir.path().join("resync.db"));
        let bytes: Vec<u8> = (0..8u32 << 20).map(|i| ((i * 7) >> 5) as u8).collect();
        std::fs::write(&from, &bytes).unwrap();
        copy_written(&from, &to).unwrap();
        assert!(std::fs::read(&to).unwrap() == bytes, "the copy differs");
        #[cfg(target_os = "linux")]
        {
            let unwritten = roster_host::pipeline::unwritten_pages(&to)
                .expect("cachestat (Linux 6.5 and later)");
            assert_eq!(unwritten, 0, "pages of the copy left for the run's fsync");
        }
        let error = format!(
            "{:#}",
            copy_written(&dir.path().join("gone.db"), &to).unwrap_err()
        );
        assert!(
            error.contains("cannot copy") && error.contains("gone.db"),
            "{error}"
        );
    }

    #[test]
    fn what_a_run_reads_first_is_a_file_or_a_folders_files_and_must_be_there() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("school-files");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("Student.txt"), "StudentID\n1\n").unwrap();
        std::fs::create_dir(folder.join("old")).unwrap();
        read_through(&folder).unwrap();
        read_through(&folder.join("Student.txt")).unwrap();
        let missing = dir.path().join("roster.db");
        let error = format!("{:#}", read_through(&missing).unwrap_err());
        assert!(
            error.contains("cannot read") && error.contains("roster.db"),
            "{error}"
        );
    }
}
