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

use std::io;

use crate::error::{ErrorKind, PluginError};
use crate::handover::CheckpointBytes;

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

/// The same checkpoint in sealed shared memory (see `handover`): `<descriptor> <length>`.
/// The host writes it only for a plugin file whose roster-core reads it
/// ([`takes_checkpoint_descriptor`]); one built before would see a comment, and run in
/// full.
const CHECKPOINT_DESCRIPTOR_LINE: &str = "# roster-checkpoint-fd: ";

/// The first roster-core whose SDK takes [`CHECKPOINT_DESCRIPTOR_LINE`]. abi_stable loads
/// a plugin file built against any 0.1.x of this crate, so a patch number is what tells
/// the host which line the plugin's SDK reads.
const DESCRIPTOR_SINCE: (u32, u32, u32) = (0, 1, 1);

/// Whether a plugin file built against roster-core `version` takes its checkpoint by
/// descriptor.
pub(crate) fn takes_checkpoint_descriptor(version: VersionStrings) -> bool {
    abi_stable::sabi_types::VersionNumber::new(version)
        .is_ok_and(|v| (v.major, v.minor, v.patch) >= DESCRIPTOR_SINCE)
}

/// `config` with `checkpoint` in front of it, for `open`: by its descriptor when the
/// plugin takes one and the bytes are in sealed memory, as hex otherwise.
pub(crate) fn config_with_checkpoint(
    config: &str,
    checkpoint: Option<&CheckpointBytes>,
    takes_descriptor: bool,
) -> String {
    #[cfg(target_os = "linux")]
    if let Some((checkpoint, fd)) = checkpoint
        .filter(|_| takes_descriptor)
        .and_then(|bytes| Some((bytes, bytes.descriptor()?)))
    {
        let len = checkpoint.len();
        return format!("{CHECKPOINT_DESCRIPTOR_LINE}{fd} {len}\n{config}");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = takes_descriptor;
    config_with_hex(config, checkpoint.map(|bytes| &bytes[..]))
}

/// `config` with `checkpoint` in front of it as hex.
fn config_with_hex(config: &str, checkpoint: Option<&[u8]>) -> String {
    let Some(checkpoint) = checkpoint else {
        return config.to_string();
    };
    // A file source's checkpoint runs to tens of MiB, and a continuing run cannot start
    // before it is written out: two digits per byte from a table, into a buffer sized
    // once (no formatting machinery, no capacity check per digit), in halves.
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
    let start = CHECKPOINT_LINE.len();
    let end = start + 2 * checkpoint.len();
    // Zeroed, not resized: a buffer this large is fresh pages, which come zeroed, so
    // nothing writes it twice.
    let mut text = vec![0; end + 1 + config.len()];
    text[..start].copy_from_slice(CHECKPOINT_LINE.as_bytes());
    in_halves(&mut text[start..end], 2, checkpoint, 1, |digits, bytes| {
        for (pair, &byte) in digits.chunks_exact_mut(2).zip(bytes) {
            pair.copy_from_slice(&PAIRS[usize::from(byte)]);
        }
    });
    text[end] = b'\n';
    text[end + 1..].copy_from_slice(config.as_bytes());
    String::from_utf8(text).expect("hex digits and the config's own text")
}

/// The checkpoint `open` was given, if any, and the config as the host wrote it. A line
/// that cannot be taken (hex that does not decode, a descriptor that names no sealed
/// memory of that length) is an error, and still not the plugin's config: the source
/// then runs in full.
pub(crate) fn checkpoint_and_config(text: &str) -> (io::Result<Option<CheckpointBytes>>, &str) {
    if let Some(rest) = text.strip_prefix(CHECKPOINT_LINE) {
        let (hex, config) = rest.split_once('\n').unwrap_or((rest, ""));
        let bytes = decode_hex(hex.as_bytes())
            .map(|bytes| Some(bytes.into()))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not hex"));
        return (bytes, config);
    }
    if let Some(rest) = text.strip_prefix(CHECKPOINT_DESCRIPTOR_LINE) {
        let (named, config) = rest.split_once('\n').unwrap_or((rest, ""));
        return (from_descriptor(named).map(Some), config);
    }
    (Ok(None), text)
}

/// The bytes a `<descriptor> <length>` line names.
fn from_descriptor(named: &str) -> io::Result<CheckpointBytes> {
    let unnamed = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("`{named}` names no descriptor and length"),
        )
    };
    let (fd, len) = named.split_once(' ').ok_or_else(unnamed)?;
    let (fd, len) = (
        fd.parse::<i32>().map_err(|_| unnamed())?,
        len.parse::<usize>().map_err(|_| unnamed())?,
    );
    #[cfg(target_os = "linux")]
    return CheckpointBytes::from_descriptor(fd, len);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (fd, len);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a descriptor's memory is read on Linux only",
        ))
    }
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
    let any_bad = std::sync::atomic::AtomicU8::new(0);
    in_halves(&mut bytes, 1, hex, 2, |bytes, hex| {
        let mut bad = 0;
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            let (high, low) = (VALUES[usize::from(pair[0])], VALUES[usize::from(pair[1])]);
            bad |= (high | low) & 0xf0;
            *byte = high << 4 | low;
        }
        any_bad.fetch_or(bad, std::sync::atomic::Ordering::Relaxed);
    });
    (any_bad.into_inner() == 0).then_some(bytes)
}

/// `work(out, input)` over all of `out`, in two halves on two threads once it is large.
/// `out_unit` bytes of `out` come from `in_unit` bytes of `input`; the halves split at a
/// whole unit. Hex in or out of a checkpoint is all a continuing run does at its start,
/// the plugin's thread is not running yet, and most of the time goes to the kernel
/// handing out fresh pages: two threads take them in about half the time.
fn in_halves<F>(out: &mut [u8], out_unit: usize, input: &[u8], in_unit: usize, work: F)
where
    F: Fn(&mut [u8], &[u8]) + Sync,
{
    const SPLIT_FROM: usize = 4 << 20;
    let half = out.len() / out_unit / 2;
    if out.len() < SPLIT_FROM || half == 0 {
        work(out, input);
        return;
    }
    let (out_a, out_b) = out.split_at_mut(half * out_unit);
    let (in_a, in_b) = input.split_at(half * in_unit);
    std::thread::scope(|scope| {
        // As for the job's other threads: no thread, no import.
        std::thread::Builder::new()
            .name("checkpoint hex".into())
            .spawn_scoped(scope, || work(out_b, in_b))
            .expect("a thread for the checkpoint's second half");
        work(out_a, in_a);
    });
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
    use super::{checkpoint_and_config, config_with_checkpoint, takes_checkpoint_descriptor};
    use abi_stable::sabi_types::VersionStrings;

    /// What `open` takes off the text: the bytes (`None` for an error) and the config.
    fn taken(text: &str) -> (Option<Option<Vec<u8>>>, &str) {
        let (checkpoint, config) = checkpoint_and_config(text);
        (
            checkpoint.ok().map(|c| c.map(|bytes| bytes.to_vec())),
            config,
        )
    }

    fn hex(config: &str, state: &[u8]) -> String {
        config_with_checkpoint(config, Some(&state.to_vec().into()), false)
    }

    #[test]
    fn a_checkpoint_rides_in_front_of_the_config_and_comes_off_whole() {
        let config = "path = \"files\"\nformat = \"pickatime\"\n";
        let state: Vec<u8> = (0..=255).chain([b'\n', b'#']).collect();
        let text = hex(config, &state);
        assert!(text.starts_with("# roster-checkpoint: 0001"));
        assert_eq!(taken(&text), (Some(Some(state.clone())), config));
        assert_eq!(taken(&hex(config, &[])), (Some(Some(Vec::new())), config));
        // No checkpoint: the config as it was, even one that starts with a comment.
        assert_eq!(config_with_checkpoint(config, None, true), config);
        let commented = "# roster checkpoints are not this\npath = \"x\"";
        assert_eq!(taken(commented), (Some(None), commented));
        // A line that does not decode is an error, and still not the plugin's.
        assert_eq!(
            taken("# roster-checkpoint: 0g\npath = \"x\""),
            (None, "path = \"x\"")
        );
        assert_eq!(taken("# roster-checkpoint: 0A\n"), (None, ""));
        assert_eq!(taken("# roster-checkpoint: abc\n"), (None, ""));
    }

    #[test]
    fn a_checkpoint_large_enough_to_go_in_halves_comes_off_whole() {
        // Over the size that splits the work, and odd, so the halves differ by a byte.
        let state: Vec<u8> = (0..(5 << 20) + 1)
            .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let config = "path = \"files\"\n";
        let text = hex(config, &state);
        assert_eq!(
            text.len(),
            "# roster-checkpoint: ".len() + 2 * state.len() + 1 + config.len()
        );
        assert_eq!(taken(&text), (Some(Some(state)), config));
        // A bad digit is found in either half.
        for at in [text.len() / 4, text.len() * 3 / 4] {
            let mut bad = text.clone().into_bytes();
            bad[at] = b'G';
            let bad = String::from_utf8(bad).unwrap();
            assert_eq!(taken(&bad), (None, config), "bad digit at {at}");
        }
    }

    #[test]
    fn only_a_plugin_built_against_roster_core_0_1_1_or_later_takes_a_descriptor() {
        for (version, takes) in [
            ("0.1.0", false),
            ("0.1.1", true),
            ("0.1.12", true),
            ("0.2.0", true),
            ("1.0.0", true),
            ("not a version", false),
        ] {
            assert_eq!(
                takes_checkpoint_descriptor(VersionStrings::new(version)),
                takes,
                "{version}"
            );
        }
        // This crate's own plugins do.
        assert!(takes_checkpoint_descriptor(VersionStrings::new(env!(
            "CARGO_PKG_VERSION"
        ))));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_checkpoint_in_sealed_memory_rides_by_its_descriptor_to_a_plugin_that_takes_one() {
        use crate::handover::CheckpointBytes;
        let state: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let sealed = CheckpointBytes::filled::<std::io::Error>(state.len(), |out| {
            out.copy_from_slice(&state);
            Ok(())
        })
        .unwrap();
        let config = "path = \"files\"\n";
        let text = config_with_checkpoint(config, Some(&sealed), true);
        assert!(
            text.starts_with("# roster-checkpoint-fd: "),
            "{}",
            &text[..40]
        );
        assert!(text.len() < 100, "no hex: {} bytes", text.len());
        assert_eq!(taken(&text), (Some(Some(state.clone())), config));
        // A plugin built before gets hex, from the same memory.
        let old = config_with_checkpoint(config, Some(&sealed), false);
        assert!(old.starts_with("# roster-checkpoint: "));
        assert_eq!(taken(&old), (Some(Some(state.clone())), config));
        // Bytes that are not in sealed memory go as hex whatever the plugin takes.
        let owned = config_with_checkpoint(config, Some(&state.clone().into()), true);
        assert!(owned.starts_with("# roster-checkpoint: "));
        // A length that is not the memory's, or a descriptor of something else, is an
        // error, and the config still the plugin's alone.
        let (fd, _) = text["# roster-checkpoint-fd: ".len()..]
            .split_once(' ')
            .unwrap();
        for line in [
            format!("# roster-checkpoint-fd: {fd} {}\n", state.len() + 1),
            format!("# roster-checkpoint-fd: {fd}\n"),
            "# roster-checkpoint-fd: 0 10\n".to_string(),
            "# roster-checkpoint-fd: 987654 10\n".to_string(),
        ] {
            let text = format!("{line}{config}");
            let (checkpoint, rest) = checkpoint_and_config(&text);
            assert!(checkpoint.is_err(), "{line}");
            assert_eq!(rest, config);
        }
    }

    #[test]
    fn export_macro_uses_the_symbol_abi_stable_looks_up() {
        assert_eq!(
            super::ROOT_MODULE_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
