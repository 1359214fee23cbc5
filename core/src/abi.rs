//! The binary interface between the host and a plugin file. Every abi_stable type of the
//! project lives in this module; the rest of the code speaks plain Rust.
//!
//! The boundary is deliberately narrow and synchronous: one root module with three
//! functions, one record-source object with one method, and a host-context object with
//! three callbacks. Records cross it as encoded protobuf batches (see `record.rs`), so the
//! record model can grow without changing any layout checked here.

#![allow(non_local_definitions)] // emitted by abi_stable's sabi_trait macro
use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, ROption, RResult, RSlice, RStr, RString, RVec},
    StableAbi,
};

use crate::error::{ErrorKind, PluginError};

/// Plugin metadata as it crosses the boundary.
#[repr(C)]
#[derive(StableAbi, Clone)]
pub struct PluginInfoAbi {
    pub name: RString,
    pub version: RString,
    pub description: RString,
}

#[repr(C)]
#[derive(StableAbi, Clone)]
pub struct PluginErrorAbi {
    pub kind: u8,
    pub message: RString,
    pub location: ROption<RString>,
    pub hint: ROption<RString>,
}

impl From<PluginError> for PluginErrorAbi {
    fn from(error: PluginError) -> Self {
        PluginErrorAbi {
            kind: error.kind.to_u8(),
            message: error.message.into(),
            location: error.location.map(RString::from).into(),
            hint: error.hint.map(RString::from).into(),
        }
    }
}

impl From<PluginErrorAbi> for PluginError {
    fn from(error: PluginErrorAbi) -> Self {
        PluginError {
            kind: ErrorKind::from_u8(error.kind),
            message: error.message.into(),
            location: error.location.map(String::from).into_option(),
            hint: error.hint.map(String::from).into_option(),
        }
    }
}

/// The host's side of the boundary: logs, progress and cancellation flow through it, so a
/// plugin needs no logger or runtime shared with the host.
#[sabi_trait]
pub trait HostAbi: Send + Sync {
    fn log(&self, level: u8, message: RStr<'_>);
    fn progress(&self, stage: RStr<'_>, done: u64, total: u64);
    fn is_cancelled(&self) -> bool;
}

pub type HostBox = HostAbi_TO<'static, RBox<()>>;

#[sabi_trait]
pub trait RecordSourceAbi: Send {
    /// `ROk(RSome(bytes))`: one encoded `Batch`; `ROk(RNone)`: the source is exhausted.
    fn next_batch(&mut self) -> RResult<ROption<RVec<u8>>, PluginErrorAbi>;
}

pub type SourceBox = RecordSourceAbi_TO<'static, RBox<()>>;

/// The root module every plugin exports. Fields may be appended (it is a prefix type);
/// existing ones never change.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    pub abi_version: u32,
    pub info: extern "C" fn() -> PluginInfoAbi,
    /// `config`: the source's table from importer.toml as TOML text, without the host's
    /// keys. `base_dir`: the folder relative paths in it are relative to.
    #[sabi(last_prefix_field)]
    pub open: extern "C" fn(
        config: RStr<'_>,
        base_dir: RStr<'_>,
        host: HostBox,
    ) -> RResult<SourceBox, PluginErrorAbi>,
    /// `open`, with the checkpoint the source's last applied run sent (`RNone`: none).
    /// Appended later: a plugin built before has no such field, and is opened with
    /// `open` (it never sends a checkpoint either).
    #[sabi(missing_field(option))]
    pub open_from: extern "C" fn(
        config: RStr<'_>,
        base_dir: RStr<'_>,
        checkpoint: ROption<RSlice<'_, u8>>,
        host: HostBox,
    ) -> RResult<SourceBox, PluginErrorAbi>,
}

impl RootModule for PluginModuleRef {
    declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "roster_plugin";
    const NAME: &'static str = "roster_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// The symbol name abi_stable looks up in a plugin file. The export macro must spell it
/// as a literal; a test keeps the two in step.
#[doc(hidden)]
pub const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

#[cfg(test)]
mod tests {
    #[test]
    fn export_macro_uses_the_symbol_abi_stable_looks_up() {
        assert_eq!(
            super::ROOT_MODULE_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
