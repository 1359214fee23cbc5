//! The host's way in: load a plugin file (or link a plugin in-process) and open sources.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use abi_stable::library::{lib_header_from_path, LibraryError};

use crate::abi::PluginModuleRef;
use crate::error::{LoadError, PluginError};
use crate::sdk::{self, CheckpointBytes, HostHooks, Plugin, PluginInfo, RecordSource};
use crate::ABI_VERSION;

/// A plugin the host can open sources from, whether loaded from a file or linked in.
pub trait PluginHandle: Send + Sync {
    fn info(&self) -> &PluginInfo;
    /// Where the plugin came from: a file path, or "(built in)".
    fn origin(&self) -> String;
    fn open(
        &self,
        config: &str,
        base_dir: &Path,
        hooks: Arc<dyn HostHooks>,
    ) -> Result<Box<dyn RecordSource>, PluginError> {
        self.open_from(config, base_dir, None, hooks)
    }
    /// `open`, handing the source the checkpoint its last applied run sent.
    fn open_from(
        &self,
        config: &str,
        base_dir: &Path,
        checkpoint: Option<CheckpointBytes>,
        hooks: Arc<dyn HostHooks>,
    ) -> Result<Box<dyn RecordSource>, PluginError>;
}

/// A plugin loaded from a shared library through the stable ABI.
pub struct PluginFile {
    path: PathBuf,
    module: PluginModuleRef,
    info: PluginInfo,
    /// Whether the plugin's SDK maps a checkpoint by its descriptor (see `handover`).
    takes_checkpoint_descriptor: bool,
}

impl PluginFile {
    /// Load one plugin file. Each file is loaded on its own (never by scanning a folder),
    /// its ABI version is checked, and files that other users could have replaced are
    /// refused.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let shown = path.display().to_string();
        if !path.is_file() {
            return Err(LoadError::NotFound { path: shown });
        }
        check_not_writable_by_others(path)?;
        let header = lib_header_from_path(path).map_err(|error| classify(&shown, error))?;
        let takes_checkpoint_descriptor =
            crate::abi::takes_checkpoint_descriptor(header.version_strings());
        let module = header
            .init_root_module::<PluginModuleRef>()
            .map_err(|error| classify(&shown, error))?;
        let found = module.abi_version();
        if found != ABI_VERSION {
            return Err(LoadError::AbiVersion {
                path: shown,
                found,
                expected: ABI_VERSION,
            });
        }
        let info = sdk::info_from_abi(module.info()(), found);
        Ok(PluginFile {
            path: path.to_path_buf(),
            module,
            info,
            takes_checkpoint_descriptor,
        })
    }
}

fn classify(path: &str, error: LibraryError) -> LoadError {
    match error {
        LibraryError::OpenError { .. } | LibraryError::GetSymbolError { .. } => {
            LoadError::NotAPlugin {
                path: path.to_string(),
                reason: one_line(&error.to_string()),
            }
        }
        other => LoadError::Incompatible {
            path: path.to_string(),
            reason: one_line(&other.to_string()),
        },
    }
}

fn one_line(text: &str) -> String {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(text);
    first.to_string()
}

#[cfg(unix)]
fn check_not_writable_by_others(path: &Path) -> Result<(), LoadError> {
    use std::os::unix::fs::PermissionsExt;
    let refuse = |what: &Path| {
        Err(LoadError::Unsafe {
            path: path.display().to_string(),
            reason: format!("{} is writable by other users", what.display()),
        })
    };
    let canonical = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mode = |p: &Path| fs::metadata(p).map(|m| m.permissions().mode()).unwrap_or(0);
    if mode(&canonical) & 0o022 != 0 {
        return refuse(&canonical);
    }
    if let Some(dir) = canonical.parent() {
        let dir_mode = mode(dir);
        // A sticky world-writable folder (like /tmp) still lets only the owner replace
        // the file; group/other write without the sticky bit does not.
        if dir_mode & 0o022 != 0 && dir_mode & 0o1000 == 0 {
            return refuse(dir);
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_not_writable_by_others(_path: &Path) -> Result<(), LoadError> {
    Ok(())
}

impl PluginHandle for PluginFile {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn origin(&self) -> String {
        self.path.display().to_string()
    }

    fn open_from(
        &self,
        config: &str,
        base_dir: &Path,
        checkpoint: Option<CheckpointBytes>,
        hooks: Arc<dyn HostHooks>,
    ) -> Result<Box<dyn RecordSource>, PluginError> {
        let base_dir = base_dir.to_string_lossy();
        let host = sdk::host_box(hooks);
        let config = crate::abi::config_with_checkpoint(
            config,
            checkpoint.as_ref(),
            self.takes_checkpoint_descriptor,
        );
        // The plugin has mapped or decoded the checkpoint by the time `open` returns;
        // `checkpoint` (and its descriptor) lives until then.
        let opened = self.module.open()(config.as_str().into(), base_dir.as_ref().into(), host);
        drop(checkpoint);
        match opened {
            abi_stable::std_types::RResult::ROk(source) => Ok(Box::new(sdk::SourceFromAbi(source))),
            abi_stable::std_types::RResult::RErr(error) => Err(error.into()),
        }
    }
}

/// A plugin linked into the host binary: the same SDK, without the ABI in between. Used
/// to measure what the boundary costs, and by tests that need no plugin file.
pub struct LinkedPlugin<P: Plugin> {
    info: PluginInfo,
    _plugin: std::marker::PhantomData<fn() -> P>,
}

impl<P: Plugin> Default for LinkedPlugin<P> {
    fn default() -> Self {
        LinkedPlugin {
            info: PluginInfo {
                name: P::NAME.to_string(),
                version: P::VERSION.to_string(),
                description: P::DESCRIPTION.to_string(),
                abi_version: ABI_VERSION,
            },
            _plugin: std::marker::PhantomData,
        }
    }
}

impl<P: Plugin> PluginHandle for LinkedPlugin<P> {
    fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn origin(&self) -> String {
        "(linked in)".to_string()
    }

    fn open_from(
        &self,
        config: &str,
        base_dir: &Path,
        checkpoint: Option<CheckpointBytes>,
        hooks: Arc<dyn HostHooks>,
    ) -> Result<Box<dyn RecordSource>, PluginError> {
        sdk::open_in_process::<P>(config, base_dir, checkpoint, hooks)
    }
}

/// The file name a plugin called `name` has on this platform: `libroster_plugin_csv.so`.
pub fn plugin_file_name(name: &str) -> String {
    let stem = format!("roster_plugin_{}", name.replace('-', "_"));
    format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        stem,
        std::env::consts::DLL_SUFFIX
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;
    use crate::sdk::{OpenContext, Silent};
    use crate::ErrorKind;

    struct Boom;
    struct BoomSource;
    impl RecordSource for BoomSource {
        fn next_batch(&mut self) -> Result<Option<Vec<Record>>, PluginError> {
            panic!("boom in next_batch")
        }
    }
    impl Plugin for Boom {
        const NAME: &'static str = "boom";
        const VERSION: &'static str = "1.0.0";
        const DESCRIPTION: &'static str = "panics";
        fn open(config: &str, _ctx: OpenContext) -> Result<Box<dyn RecordSource>, PluginError> {
            if config == "panic" {
                panic!("boom in open");
            }
            Ok(Box::new(BoomSource))
        }
    }

    #[test]
    fn a_linked_plugin_that_panics_returns_errors_and_is_not_called_again() {
        let plugin = LinkedPlugin::<Boom>::default();
        let error = plugin
            .open("panic", Path::new("."), Arc::new(Silent))
            .err()
            .unwrap();
        assert_eq!(error.kind, ErrorKind::Panic);
        assert!(error.message.contains("boom in open"), "{}", error.message);

        let mut source = plugin.open("", Path::new("."), Arc::new(Silent)).unwrap();
        let error = source.next_batch().unwrap_err();
        assert_eq!(error.kind, ErrorKind::Panic);
        assert!(
            error.message.contains("boom in next_batch"),
            "{}",
            error.message
        );
        assert!(
            error.message.contains("loader.rs"),
            "the location is kept: {}",
            error.message
        );
        let again = source.next_batch().unwrap_err();
        assert!(
            again.message.contains("after it panicked"),
            "{}",
            again.message
        );
    }

    #[test]
    fn plugin_file_names_follow_the_platform() {
        let name = plugin_file_name("one-roster");
        assert!(name.contains("roster_plugin_one_roster"), "{name}");
    }
}
