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
    std_types::{RBox, ROption, RResult, RStr, RString, RVec},
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
}

/// The checkpoint a source's last applied run sent rides to `open` in the config text, as
/// a first line `# roster-checkpoint: <hex>` that the SDK takes off before the plugin sees
/// the config. Not a field of the root module: abi_stable refuses a library whose module
/// has fewer fields than the host's, so a new field would shut out every plugin built
/// before it. A plugin that predates checkpoints never sent one, so the host never has one
/// to give it (and a TOML comment would be harmless to it anyway).
const CHECKPOINT_LINE: &str = "# roster-checkpoint: ";

/// `config` with `checkpoint` in front of it, for `open`.
pub(crate) fn config_with_checkpoint(config: &str, checkpoint: Option<&[u8]>) -> String {
    let Some(checkpoint) = checkpoint else {
        return config.to_string();
    };
    // A file source's checkpoint runs to tens of MiB, and a continuing run cannot start
    // before it is written out: two digits per byte from a table, into a buffer sized
    // once (no formatting machinery, no capacity check per digit).
    const PAIRS: [[u8; 2]; 256] = {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut pairs = [[0; 2]; 256];
        let mut i = 0;
        while i < 256 {
            pairs[i] = [DIGITS[i >> 4], DIGITS[i & 0xf]];
            i += 1;
        }
        pairs
    };
    let mut text =
        Vec::with_capacity(CHECKPOINT_LINE.len() + 2 * checkpoint.len() + 1 + config.len());
    text.extend_from_slice(CHECKPOINT_LINE.as_bytes());
    let start = text.len();
    text.resize(start + 2 * checkpoint.len(), 0);
    for (digits, &byte) in text[start..].chunks_exact_mut(2).zip(checkpoint) {
        digits.copy_from_slice(&PAIRS[usize::from(byte)]);
    }
    text.push(b'\n');
    text.extend_from_slice(config.as_bytes());
    String::from_utf8(text).expect("hex digits and the config's own text")
}

/// The checkpoint `open` was given, if any, and the config as the host wrote it. A line
/// that does not decode is no checkpoint: the source then runs in full.
pub(crate) fn checkpoint_and_config(text: &str) -> (Option<Vec<u8>>, &str) {
    let Some(rest) = text.strip_prefix(CHECKPOINT_LINE) else {
        return (None, text);
    };
    let (hex, config) = rest.split_once('\n').unwrap_or((rest, ""));
    (decode_hex(hex.as_bytes()), config)
}

/// Lowercase hex digits as bytes; `None` for anything else. A loop over a table: tens of
/// MiB of checkpoint go through it before a continuing run can start.
fn decode_hex(hex: &[u8]) -> Option<Vec<u8>> {
    const NOT: u8 = 0xff;
    const VALUES: [u8; 256] = {
        let mut values = [NOT; 256];
        let mut i = 0;
        while i < 16 {
            values[b"0123456789abcdef"[i] as usize] = i as u8;
            i += 1;
        }
        values
    };
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let mut bytes = vec![0; hex.len() / 2];
    // Bad digits are looked for once at the end: a branch per byte costs more than the
    // table, and a checkpoint that fails is rare.
    let mut any_bad = 0;
    for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
        let (high, low) = (VALUES[usize::from(pair[0])], VALUES[usize::from(pair[1])]);
        any_bad |= (high | low) & 0xf0;
        *byte = high << 4 | low;
    }
    (any_bad == 0).then_some(bytes)
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
    use super::{checkpoint_and_config, config_with_checkpoint};

    #[test]
    fn a_checkpoint_rides_in_front_of_the_config_and_comes_off_whole() {
        let config = "path = \"files\"\nformat = \"pickatime\"\n";
        let state: Vec<u8> = (0..=255).chain([b'\n', b'#']).collect();
        let text = config_with_checkpoint(config, Some(&state));
        assert_eq!(checkpoint_and_config(&text), (Some(state.clone()), config));
        assert_eq!(
            checkpoint_and_config(&config_with_checkpoint(config, Some(&[]))),
            (Some(Vec::new()), config)
        );
        // No checkpoint: the config as it was, even one that starts with a comment.
        assert_eq!(config_with_checkpoint(config, None), config);
        let commented = "# roster checkpoints are not this\npath = \"x\"";
        assert_eq!(checkpoint_and_config(commented), (None, commented));
        // A line that does not decode is no checkpoint, and still not the plugin's.
        assert_eq!(
            checkpoint_and_config("# roster-checkpoint: 0g\npath = \"x\""),
            (None, "path = \"x\"")
        );
        assert_eq!(
            checkpoint_and_config("# roster-checkpoint: 0A\n"),
            (None, "")
        );
        assert_eq!(
            checkpoint_and_config("# roster-checkpoint: abc\n"),
            (None, "")
        );
    }

    #[test]
    fn export_macro_uses_the_symbol_abi_stable_looks_up() {
        assert_eq!(
            super::ROOT_MODULE_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
