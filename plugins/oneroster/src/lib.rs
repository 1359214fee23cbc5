//! `roster-plugin-oneroster`: rosters from OneRoster CSV packages, versions 1.1 and 1.2
//! (1.0 packages read as 1.1).
//!
//! Written only against `roster-core`'s public SDK — `Plugin`, `RecordSource`, `Host`,
//! the record model and `export_plugin!` — the way an outside author would write a
//! plugin. See `README.md` beside this crate for the mapping in full.
//!
//! ```toml
//! [[source]]
//! name = "district"
//! plugin = "oneroster"
//! path = "exports/oneroster.zip"   # a package folder, or a .zip of one
//! ```
//!
//! `path` is the only key; any other key is a config error naming it.
//!
//! - **manifest.csv** decides, per file, `bulk` (complete), `delta` (changed rows with
//!   `status` `active` | `tobedeleted`) or `absent` (not supplied). A package without a
//!   manifest is refused. Only entities whose files are `bulk` go into the `Snapshot`, so
//!   an absent or delta file never deactivates anything.
//! - `tobedeleted` users become `Person { removed: true }`; other deleted rows (orgs,
//!   sessions, classes, enrollments, …) are not sent, and rows referring to them are left
//!   out — the record model has no removal for them, and only a bulk file deactivates.
//! - A reference to a record the package should hold (its file is bulk) but does not is
//!   an error at `file:line:column`; a reference into a file that is delta or absent
//!   cannot be resolved in this run, so the row is skipped with a warning, and its entity
//!   is then left out of the Snapshot.
//! - Tolerated: UTF-8 BOM, UTF-16 with BOM, Windows-1252, CRLF/CR line endings, columns
//!   in any order, header names in another case, `metadata.*` extension columns (kept in
//!   `attributes`), files zipped inside a folder.

mod config;
mod manifest;
mod package;
mod source;
mod table;

use roster_core::sdk::{OpenContext, Plugin, RecordSource};
use roster_core::PluginError;

pub use config::Config;
pub use manifest::Mode;
pub use source::{date, read_all, role_of, user_ids, OneRosterSource, BATCH_SIZE};

/// The `oneroster` plugin.
pub struct OneRosterPlugin;

impl Plugin for OneRosterPlugin {
    const NAME: &'static str = "oneroster";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "Rosters from OneRoster CSV 1.1/1.2 packages (folder or .zip; bulk, delta, absent)";

    fn open(config: &str, ctx: OpenContext) -> Result<Box<dyn RecordSource>, PluginError> {
        let config = Config::parse(config)?;
        Ok(Box::new(OneRosterSource::open(
            &config,
            &ctx.base_dir,
            ctx.host,
        )?))
    }
}

roster_core::export_plugin!(OneRosterPlugin);
