//! Pulls every record of a pickAtime folder through the plugin, the way the host does,
//! and prints the count and the time: for profiling the reader on its own.
//!
//! `cargo run --release -p roster-plugin-csv --example drain -- FOLDER [PLUGIN.so] [--dump FILE]`
//!
//! With a plugin file the records cross the ABI; without one the plugin is linked in.
//! `--dump` writes every record, re-encoded, to compare two builds. `--keep FILE` writes
//! the run's checkpoint; `--from FILE` continues from one (a re-sync without the host).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use roster_core::loader::{LinkedPlugin, PluginFile, PluginHandle};
use roster_core::record::Kind;
use roster_core::sdk::{encode_record, HostHooks, Level};

struct Quiet;

impl HostHooks for Quiet {
    fn log(&self, level: Level, message: &str) {
        if level <= Level::Warn || std::env::var_os("DRAIN_DEBUG").is_some() {
            eprintln!("{level:?}: {message}");
        }
    }
    fn progress(&self, stage: &str, done: u64, total: Option<u64>) {
        if std::env::var_os("DRAIN_MEMORY").is_some() && total == Some(done) {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let field = |name: &str| {
                status
                    .lines()
                    .find(|l| l.starts_with(name))
                    .map_or(String::new(), |l| {
                        l.split_whitespace().nth(1).unwrap_or("").to_string()
                    })
            };
            eprintln!(
                "{stage}: {done} rows; RSS {} KiB, peak {} KiB",
                field("VmRSS:"),
                field("VmHWM:")
            );
        }
    }
    fn is_cancelled(&self) -> bool {
        false
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut folder = None;
    let mut plugin = None;
    let mut dump = None;
    let (mut from, mut keep) = (None, None);
    while let Some(arg) = args.next() {
        if arg == "--dump" {
            dump = Some(PathBuf::from(args.next().expect("--dump FILE")));
        } else if arg == "--from" {
            from = Some(std::fs::read(args.next().expect("--from FILE")).expect("a checkpoint"));
        } else if arg == "--keep" {
            keep = Some(PathBuf::from(args.next().expect("--keep FILE")));
        } else if folder.is_none() {
            folder = Some(PathBuf::from(arg));
        } else {
            plugin = Some(PathBuf::from(arg));
        }
    }
    let folder =
        folder.expect("usage: drain FOLDER [PLUGIN.so] [--dump FILE] [--from FILE] [--keep FILE]");
    let handle: Box<dyn PluginHandle> = match &plugin {
        Some(path) => Box::new(PluginFile::load(path).expect("a plugin file")),
        None => Box::new(LinkedPlugin::<roster_plugin_csv::CsvPlugin>::default()),
    };
    let config = format!(
        "format = \"pickatime\"\npath = {:?}\nschool = \"Synthetic District\"\nterm = \"2025-26\"\n",
        folder.display().to_string()
    );
    let mut out = dump
        .map(|path| std::io::BufWriter::new(std::fs::File::create(path).expect("the dump file")));
    let started = Instant::now();
    let mut source = handle
        .open_from(
            &config,
            Path::new("."),
            from.map(Into::into),
            Arc::new(Quiet),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let (mut records, mut batches) = (0u64, 0u64);
    loop {
        match source.next_batch() {
            Ok(Some(batch)) => {
                records += batch.len() as u64;
                batches += 1;
                for record in &batch {
                    if let (Some(Kind::Checkpoint(kept)), Some(path)) = (&record.kind, &keep) {
                        std::fs::write(path, &kept.state).expect("the checkpoint file");
                    }
                }
                if let Some(out) = &mut out {
                    let mut bytes = Vec::new();
                    for record in &batch {
                        encode_record(record, &mut bytes);
                    }
                    out.write_all(&bytes).unwrap();
                }
            }
            Ok(None) => break,
            Err(error) => {
                println!("error: {error}");
                break;
            }
        }
    }
    if let Some(out) = &mut out {
        out.flush().unwrap();
    }
    println!(
        "{records} records in {batches} batches, {:.3} s",
        started.elapsed().as_secs_f64()
    );
}
