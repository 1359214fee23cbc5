//! Finding and loading plugin files. Each file is loaded explicitly by path.

use std::path::{Path, PathBuf};

use roster_core::loader::{plugin_file_name, PluginFile, PluginHandle};
use roster_core::LoadError;

/// Where plugin files are looked for, in order: `--plugin-dir`, `$ROSTER_PLUGIN_DIR`,
/// `[plugins] dirs` from the config, then the folder of the `roster` binary and its
/// `plugins/` subfolder (where `cargo build` and the release layout put them).
pub fn search_path(cli_dirs: &[PathBuf], config_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = cli_dirs.to_vec();
    if let Some(env) = std::env::var_os("ROSTER_PLUGIN_DIR") {
        dirs.extend(std::env::split_paths(&env));
    }
    dirs.extend(config_dirs.iter().cloned());
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        dirs.push(exe_dir.join("plugins"));
        dirs.push(exe_dir);
    }
    dirs
}

/// Load the plugin called `name` from the first folder that has its file.
pub fn load(name: &str, dirs: &[PathBuf]) -> Result<PluginFile, LoadError> {
    let file_name = plugin_file_name(name);
    let Some(path) = dirs
        .iter()
        .map(|d| d.join(&file_name))
        .find(|p| p.is_file())
    else {
        return Err(LoadError::NotFound {
            path: format!(
                "{file_name} (plugin `{name}`; looked in {})",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    };
    PluginFile::load(&path)
}

/// Every plugin file in the search path, loaded or with the reason it could not be.
/// A name found in an earlier folder shadows the same name later on.
pub fn discover(dirs: &[PathBuf]) -> Vec<(PathBuf, Result<PluginFile, LoadError>)> {
    let prefix = format!("{}roster_plugin_", std::env::consts::DLL_PREFIX);
    let mut seen = std::collections::HashSet::new();
    let mut found = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with(&prefix) && n.ends_with(std::env::consts::DLL_SUFFIX)
                })
            })
            .collect();
        paths.sort();
        for path in paths {
            let file_name = path.file_name().map(|n| n.to_owned());
            if seen.insert(file_name) {
                let loaded = PluginFile::load(&path);
                found.push((path, loaded));
            }
        }
    }
    found
}

pub fn describe(plugin: &dyn PluginHandle) -> String {
    let info = plugin.info();
    format!(
        "{:<12} {:<10} abi v{:<4} {}",
        info.name,
        info.version,
        info.abi_version,
        plugin.origin()
    )
}
