//! End-to-end tests: the real `roster` binary, real plugin files loaded through the ABI,
//! real SQLite databases. One test binary, one module per area.

mod clever;
mod conformance;
mod dedupe;
mod foundation;
mod harness;
mod output;
mod resync;
mod safety;
mod sync;
mod workflow;
