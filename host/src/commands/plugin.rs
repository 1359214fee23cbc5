//! `roster plugin check PATH`: the conformance kit, for plugin authors.

use std::path::{Path, PathBuf};

use roster_core::conformance;
use roster_core::loader::PluginFile;

use crate::error::CliError;

pub fn check(
    path: &Path,
    source: Option<&str>,
    plugin_config: Option<&Path>,
    config_file: &Path,
) -> Result<(), CliError> {
    let plugin = PluginFile::load(path)?;
    let (good_config, base_dir) =
        match (source, plugin_config) {
            (Some(name), _) => {
                let config = crate::config::Config::load(config_file)?;
                let source = config.source(name).ok_or_else(|| {
                    CliError::new(format!(
                        "no [[source]] named `{name}` in {}",
                        config_file.display()
                    ))
                })?;
                (source.plugin_config.clone(), config.base_dir.clone())
            }
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| CliError::new(format!("cannot read {}: {e}", file.display())))?;
                let base = file
                    .parent()
                    .map(Path::to_path_buf)
                    .filter(|p| !p.as_os_str().is_empty());
                (text, base.unwrap_or_else(|| PathBuf::from(".")))
            }
            (None, None) => return Err(CliError::new("the kit needs a config the plugin accepts")
                .with_hint(
                    "pass --source NAME (a [[source]] in importer.toml) or --plugin-config FILE",
                )),
        };
    let report = conformance::check(&plugin, &good_config, &base_dir);
    crate::outln!("{report}");
    if report.passed() {
        Ok(())
    } else {
        Err(CliError::new(format!(
            "{} of {} checks failed",
            report.failures().len(),
            report.checks.len()
        )))
    }
}
