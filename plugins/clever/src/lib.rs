//! `roster-plugin-clever`: rosters from Clever's Data API, v2.0/v2.1 and v3.0/v3.1.
//!
//! Configured by a `[[source]]` table with `plugin = "clever"` (keys: see [`config`]); the
//! district token is read from the environment variable `token_env` names. One import
//! fetches schools, terms, courses, sections and people concurrently, maps both data models
//! onto the one roster (see [`mapping`] for which id keys whom), and hands the host records
//! in dependency order ending with a snapshot — streaming, while later pages are still
//! being fetched (`stream.rs`), except under a `schools` filter. A v3 source whose last run
//! left a checkpoint reads only the Events API's changes since (`events.rs`).

// The plugin file's own allocator (a cdylib does not share the host's): parsing a
// district's JSON pages makes and drops millions of short strings.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod client;
pub mod config;
mod error;
mod events;
mod fetch;
#[doc(hidden)]
pub mod fuzzing;
pub mod mapping;
mod model;
mod model_v2;
mod model_v3;
pub mod normalize;
mod report;
mod roster;
mod secret;
mod source;
mod stream;

use roster_core::sdk::{OpenContext, Plugin, RecordSource};
use roster_core::PluginError;

pub use client::RATE_LIMIT_RETRIES;
pub use roster::BATCH_SIZE;

/// The Clever plugin (`plugin = "clever"`).
pub struct Clever;

impl Plugin for Clever {
    const NAME: &'static str = "clever";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Clever Data API v2.0/v2.1/v3.0/v3.1: schools, terms, sections, students, teachers, staff, contacts";

    fn open(config: &str, ctx: OpenContext) -> Result<Box<dyn RecordSource>, PluginError> {
        // This file's allocator hands freed memory back as the host's does.
        roster_core::allocator::return_freed_memory_soon();
        let config = config::Config::parse(config)?;
        let token = secret::Token::from_env(&config.token_env)?;
        let report = report::Reporter::new(ctx.host, token);
        if config::sends_token_in_clear(&config.base_url) {
            report.warn(&format!(
                "clever: base_url {} is plain http to a host that is not this machine: the token travels unencrypted",
                config.base_url
            ));
        }
        Ok(Box::new(source::CleverSource::new(
            config,
            report,
            ctx.checkpoint,
        )))
    }
}

roster_core::export_plugin!(Clever);
