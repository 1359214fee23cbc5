//! `roster-plugin-csv`: rosters from data files.
//!
//! Formats (`format = …` in the source's table of `importer.toml`):
//! - `"pickatime"`: pickAtime's manual import files in one folder — see [`pickatime`]
//!   for the files, the record mapping, and where this reader goes beyond the format
//!   (co-taught classes, duplicate parents, passwords).
//! - `"clever-sftp"`: Clever's SFTP CSV upload layout (schools, students with inline
//!   contacts, teachers, sections with terms and co-teachers, enrollments, optional
//!   staff) — see [`clever_sftp`] for the mapping, contact matching and date rules.
//!
//! Every file may be UTF-8 (with or without BOM), UTF-16 with a BOM, or Windows-1252;
//! with `\n`, `\r\n` or `\r` line endings; tab-, comma- or semicolon-delimited. Errors
//! in a file are located as `path/File.txt:line:column` (1-based, physical lines), the
//! path spelled as the config's `path` key spells it.
//!
//! The parser is usable without the plugin ABI: [`config::Config::parse`], then
//! [`pickatime::PickatimeSource::open`] / [`clever_sftp::CleverSftpSource::open`] (iterators
//! of records) or [`pickatime::read_all`] / [`clever_sftp::read_all`].

// The plugin file's own allocator (a cdylib does not share the host's): reading a
// district makes and drops millions of short strings, and glibc malloc spent a third of
// the read on them. A binary that links this crate (the bench, tests) gets it as its own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod clever_sftp;
pub mod config;
mod dates;
mod hash;
mod mapped;
pub mod pickatime;
mod table;
mod text;

use roster_core::sdk::{OpenContext, Plugin, RecordSource};
use roster_core::PluginError;

pub use clever_sftp::CleverSftpSource;
pub use config::{Config, Delimiter, Format};
pub use pickatime::PickatimeSource;
pub use table::DataFile;

/// The `csv` plugin.
pub struct CsvPlugin;

impl Plugin for CsvPlugin {
    const NAME: &'static str = "csv";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "Rosters from data files: pickAtime manual files, Clever SFTP CSV";

    fn open(config: &str, ctx: OpenContext) -> Result<Box<dyn RecordSource>, PluginError> {
        // This file's allocator hands freed memory back as the host's does.
        roster_core::allocator::return_freed_memory_soon();
        let config = Config::parse(config)?;
        match config.format {
            Format::Pickatime => Ok(Box::new(PickatimeSource::open_from(
                &config,
                &ctx.base_dir,
                ctx.host,
                ctx.checkpoint,
            )?)),
            Format::CleverSftp => Ok(Box::new(CleverSftpSource::open(
                &config,
                &ctx.base_dir,
                ctx.host,
            )?)),
        }
    }
}

roster_core::export_plugin!(CsvPlugin);
