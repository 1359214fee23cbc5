//! The source's table from `importer.toml`.

use std::path::PathBuf;

use roster_core::PluginError;
use serde::Deserialize;

/// The keys a `plugin = "oneroster"` source accepts (the host removes `name`, `plugin`,
/// `dedupe` before handing the table over).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The package: a folder with `manifest.csv` and the data files, or a `.zip` of them;
    /// relative to the config file's folder.
    pub path: PathBuf,
}

const KEYS: &[&str] = &["path"];

impl Config {
    /// Parse the source's table, given as TOML text. Every mistake names its key.
    pub fn parse(text: &str) -> Result<Config, PluginError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            PluginError::config(format!("not valid TOML: {}", e.message().trim()))
        })?;
        if let Some(key) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(PluginError::config(format!(
                "unknown key `{key}` in source config, expected one of `path`"
            ))
            .at(key.clone()));
        }
        let config: Config = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().replace("missing field", "missing key");
            if message.contains("`path`") || !table.contains_key("path") {
                PluginError::config(message).at("path")
            } else {
                PluginError::config(format!("path: {message}")).at("path")
            }
        })?;
        if config.path.as_os_str().is_empty() {
            return Err(
                PluginError::config("path: must name the package folder or .zip file").at("path"),
            );
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roster_core::ErrorKind;

    #[test]
    fn path_only() {
        let config = Config::parse("path = \"fixtures/oneroster/v1.1\"\n").unwrap();
        assert_eq!(config.path, PathBuf::from("fixtures/oneroster/v1.1"));
    }

    #[test]
    fn mistakes_name_the_key() {
        let error = Config::parse("path = \"x\"\npaht = 1\n").unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config);
        assert_eq!(
            error.message,
            "unknown key `paht` in source config, expected one of `path`"
        );
        let error = Config::parse("").unwrap_err();
        assert_eq!(error.message, "missing key `path`");
        let error = Config::parse("path = 3").unwrap_err();
        assert!(error.message.starts_with("path: "), "{}", error.message);
        let error = Config::parse("path = \"\"").unwrap_err();
        assert!(error.message.starts_with("path: "), "{}", error.message);
        let error = Config::parse("this is = not [ toml").unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config);
    }
}
