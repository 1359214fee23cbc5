//! `roster-core`: the contract shared by the `roster` host and its plugins.
//!
//! - [`record`]: the roster record model every plugin emits.
//! - [`sdk`]: what a plugin author writes against: [`sdk::Plugin`], [`sdk::RecordSource`],
//!   [`sdk::Host`] and the [`export_plugin!`] macro.
//! - [`loader`]: what the host uses to load plugin files and pull records from them.
//! - [`allocator`]: the one setting the host and the bundled plugins give their allocators.
//!
//! **Architecture invariant:** abi_stable is named only inside this crate (the private
//! `abi` module and the export macro). Plugins and the host see plain Rust types, so the
//! ABI layer can be replaced without touching either.

#[doc(hidden)]
pub mod abi;
pub mod allocator;
pub mod conformance;
mod error;
mod handover;
pub mod loader;
pub mod record;
pub mod sdk;

pub use error::{ErrorKind, LoadError, PluginError};

/// The version of the plugin ABI this crate speaks. Bump it when the boundary changes
/// incompatibly; the host refuses plugins that speak another version.
pub const ABI_VERSION: u32 = 1;

/// The version of this crate, reported in load errors so users know what to rebuild with.
pub const CORE_VERSION: &str = env!("CARGO_PKG_VERSION");

#[doc(hidden)]
pub mod __private {
    pub use abi_stable;
}
