//! `importer.toml`: the host's keys, checked strictly, and each source's own table, passed
//! to its plugin as TOML text.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Keys of a `[[source]]` table that belong to the host; everything else goes to the plugin.
const HOST_SOURCE_KEYS: &[&str] = &["name", "plugin", "dedupe"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// toml's message already points at the line, column and key.
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The config file, and the folder relative paths in it are relative to.
    pub path: PathBuf,
    pub base_dir: PathBuf,
    pub database: PathBuf,
    pub plugin_dirs: Vec<PathBuf>,
    pub access: AccessDefaults,
    pub sources: Vec<SourceConfig>,
    pub events: Vec<EventConfig>,
    pub sync: SyncSettings,
    pub notify: NotifySettings,
    pub fees: FeeSettings,
    pub safety: crate::pipeline::DeactivationGuard,
}

/// When the nightly sync runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSettings {
    /// Local time of day, `HH:MM`.
    #[serde(default = "one_am")]
    pub time: String,
    /// IANA time zone the time is in; the system's zone when absent.
    pub time_zone: Option<String>,
}

fn one_am() -> String {
    "01:00".to_string()
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            time: one_am(),
            time_zone: None,
        }
    }
}

/// Who hears about a failed sync.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// Run through `sh -c` with the failure summary as JSON on stdin and in
    /// `ROSTER_SYNC_SUMMARY`.
    pub command: Option<String>,
    /// POSTed the failure summary as JSON.
    pub webhook: Option<String>,
    /// Names or emails of the people responsible, included in the summary.
    #[serde(default)]
    pub contacts: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeSettings {
    /// Yearly integration fee per school attached, in dollars.
    #[serde(default = "default_fee")]
    pub per_school: u32,
}

fn default_fee() -> u32 {
    230
}

impl Default for FeeSettings {
    fn default() -> Self {
        FeeSettings {
            per_school: default_fee(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessDefaults {
    #[serde(default = "appointment_viewer")]
    pub teachers: AccessLevel,
    #[serde(default = "appointment_viewer")]
    pub staff: AccessLevel,
}

impl Default for AccessDefaults {
    fn default() -> Self {
        AccessDefaults {
            teachers: AccessLevel::AppointmentViewer,
            staff: AccessLevel::AppointmentViewer,
        }
    }
}

fn appointment_viewer() -> AccessLevel {
    AccessLevel::AppointmentViewer
}

/// Access levels, lowest first (the order `contacts delete --level` relies on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessLevel {
    Customer,
    AppointmentViewer,
    AppointmentMaker,
    ResourceAdmin,
    EventAdmin,
    Admin,
}

impl AccessLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::Customer => "customer",
            AccessLevel::AppointmentViewer => "appointment_viewer",
            AccessLevel::AppointmentMaker => "appointment_maker",
            AccessLevel::ResourceAdmin => "resource_admin",
            AccessLevel::EventAdmin => "event_admin",
            AccessLevel::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum DedupePolicy {
    /// Dry run: write nothing, report conflicts.
    Report,
    /// Attach the new source's ids to the existing contact.
    Link,
    /// Stop before writing if any conflict is found.
    Fail,
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub name: String,
    pub plugin: String,
    pub dedupe: Option<DedupePolicy>,
    /// The plugin's own keys, re-serialised as TOML text for the plugin.
    pub plugin_config: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventConfig {
    pub name: String,
    pub source: String,
    /// Name or source id of one school; all schools when absent.
    pub school: Option<String>,
    /// Term names or ids; all terms when absent.
    pub terms: Option<Vec<String>>,
    #[serde(default)]
    pub sync: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    database: RawDatabase,
    #[serde(default)]
    plugins: RawPlugins,
    #[serde(default)]
    access: Option<AccessDefaults>,
    #[serde(default)]
    source: Vec<toml::Table>,
    #[serde(default)]
    event: Vec<EventConfig>,
    #[serde(default)]
    sync: SyncSettings,
    #[serde(default)]
    notify: NotifySettings,
    #[serde(default)]
    fees: FeeSettings,
    #[serde(default)]
    safety: crate::pipeline::DeactivationGuard,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    path: PathBuf,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPlugins {
    #[serde(default)]
    dirs: Vec<PathBuf>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let raw: RawConfig = toml::from_str(text).map_err(|error| ConfigError::Parse {
            path: shown.clone(),
            message: error.to_string().trim_end().to_string(),
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: shown.clone(),
            message,
        };
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));

        let mut sources = Vec::new();
        let mut names = BTreeSet::new();
        for (index, table) in raw.source.into_iter().enumerate() {
            let source = parse_source(index, table).map_err(&invalid)?;
            if !names.insert(source.name.clone()) {
                return Err(invalid(format!(
                    "source[{index}].name: a source named `{}` is already defined",
                    source.name
                )));
            }
            sources.push(source);
        }
        let mut event_names = BTreeSet::new();
        for (index, event) in raw.event.iter().enumerate() {
            if event.name.trim().is_empty() {
                return Err(invalid(format!("event[{index}].name: must not be empty")));
            }
            if !names.contains(&event.source) {
                return Err(invalid(format!(
                    "event[{index}].source: no [[source]] is named `{}` (defined: {})",
                    event.source,
                    names.iter().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            if !event_names.insert(event.name.clone()) {
                return Err(invalid(format!(
                    "event[{index}].name: an event named `{}` is already defined",
                    event.name
                )));
            }
        }

        crate::schedule::Schedule::from_settings(&raw.sync)
            .map_err(|message| invalid(format!("sync.{message}")))?;
        Ok(Config {
            sync: raw.sync,
            notify: raw.notify,
            fees: raw.fees,
            safety: raw.safety,
            database: base_dir.join(&raw.database.path),
            plugin_dirs: raw.plugins.dirs.iter().map(|d| base_dir.join(d)).collect(),
            access: raw.access.unwrap_or_default(),
            sources,
            events: raw.event,
            path: path.to_path_buf(),
            base_dir,
        })
    }

    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
    }
}

fn parse_source(index: usize, mut table: toml::Table) -> Result<SourceConfig, String> {
    let mut take_string = |key: &str| -> Result<Option<String>, String> {
        match table.remove(key) {
            None => Ok(None),
            Some(toml::Value::String(value)) => Ok(Some(value)),
            Some(other) => Err(format!(
                "source[{index}].{key}: expected a string, found {}",
                other.type_str()
            )),
        }
    };
    let name = take_string("name")?.ok_or(format!("source[{index}]: missing key `name`"))?;
    let plugin = take_string("plugin")?.ok_or(format!(
        "source[{index}] (`{name}`): missing key `plugin` (e.g. \"csv\" or \"clever\")"
    ))?;
    let dedupe = match take_string("dedupe")? {
        None => None,
        Some(value) => Some(match value.as_str() {
            "report" => DedupePolicy::Report,
            "link" => DedupePolicy::Link,
            "fail" => DedupePolicy::Fail,
            other => {
                return Err(format!(
                "source[{index}].dedupe: expected \"report\", \"link\" or \"fail\", found \"{other}\""
            ))
            }
        }),
    };
    debug_assert!(HOST_SOURCE_KEYS.iter().all(|k| !table.contains_key(*k)));
    let plugin_config = toml::to_string(&table).map_err(|e| e.to_string())?;
    Ok(SourceConfig {
        name,
        plugin,
        dedupe,
        plugin_config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("conf/importer.toml"))
    }

    #[test]
    fn host_keys_are_taken_and_the_rest_goes_to_the_plugin() {
        let config = parse(
            r#"
            [database]
            path = "roster.db"
            [[source]]
            name = "manual"
            plugin = "csv"
            dedupe = "link"
            format = "pickatime"
            path = "fixtures/pickatime"
            [[event]]
            name = "Fall"
            source = "manual"
            "#,
        )
        .unwrap();
        assert_eq!(config.database, PathBuf::from("conf/roster.db"));
        let source = &config.sources[0];
        assert_eq!(source.dedupe, Some(DedupePolicy::Link));
        let plugin: toml::Table = toml::from_str(&source.plugin_config).unwrap();
        assert_eq!(plugin.len(), 2);
        assert_eq!(plugin["format"].as_str(), Some("pickatime"));
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let error = parse("[database]\npath = \"x.db\"\npth = 1\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("pth"), "{error}");
    }

    #[test]
    fn an_event_must_name_a_defined_source() {
        let error = parse(
            "[database]\npath = \"x.db\"\n[[source]]\nname = \"a\"\nplugin = \"csv\"\n[[event]]\nname = \"E\"\nsource = \"b\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("event[0].source"), "{error}");
        assert!(error.contains("`b`"), "{error}");
    }

    #[test]
    fn a_bad_dedupe_policy_names_the_key() {
        let error = parse(
            "[database]\npath = \"x.db\"\n[[source]]\nname = \"a\"\nplugin = \"csv\"\ndedupe = \"merge\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("source[0].dedupe"), "{error}");
    }
}
