//! The source's table in `importer.toml`, checked up front so that every mistake is
//! reported with the key it is about.

use std::time::Duration;

use roster_core::PluginError;
use serde::Deserialize;

/// Clever's largest page (`limit`); more is answered with HTTP 413.
pub const MAX_PAGE_SIZE: u32 = 10_000;
const KEYS: &str = "api_version, base_url, token_env, include_contacts, page_size, schools, timeout_seconds, max_retries, max_retry_wait_ms, concurrency";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    V2_0,
    V2_1,
    V3_0,
    V3_1,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V2_0 => "v2.0",
            ApiVersion::V2_1 => "v2.1",
            ApiVersion::V3_0 => "v3.0",
            ApiVersion::V3_1 => "v3.1",
        }
    }

    /// v3.x: one `/users` resource with role objects; v2.x: one resource per kind of person.
    pub fn is_v3(self) -> bool {
        matches!(self, ApiVersion::V3_0 | ApiVersion::V3_1)
    }

    fn parse(text: &str) -> Option<ApiVersion> {
        match text.trim() {
            "v2.0" => Some(ApiVersion::V2_0),
            "v2.1" => Some(ApiVersion::V2_1),
            "v3.0" => Some(ApiVersion::V3_0),
            "v3.1" => Some(ApiVersion::V3_1),
            _ => None,
        }
    }
}

/// The keys as written; `deny_unknown_fields` turns a typo into an error naming it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    api_version: Option<String>,
    base_url: Option<String>,
    token_env: Option<String>,
    include_contacts: Option<bool>,
    page_size: Option<i64>,
    schools: Option<Vec<String>>,
    timeout_seconds: Option<f64>,
    max_retries: Option<u32>,
    max_retry_wait_ms: Option<u64>,
    concurrency: Option<u32>,
}

/// A checked configuration. Holds the *name* of the token variable, never the token.
#[derive(Debug, Clone)]
pub struct Config {
    pub api_version: ApiVersion,
    /// Without a trailing slash, e.g. `https://api.clever.com`.
    pub base_url: String,
    pub token_env: String,
    pub include_contacts: bool,
    pub page_size: u32,
    /// School ids or names to limit the import to; empty means every school.
    pub schools: Vec<String>,
    pub timeout: Duration,
    pub max_retries: u32,
    /// The longest single wait between attempts (429 resets and 5xx backoff alike).
    pub max_retry_wait: Duration,
    pub concurrency: usize,
}

impl Config {
    pub fn parse(text: &str) -> Result<Config, PluginError> {
        let table: toml::Table = toml::from_str(text).map_err(|error| {
            PluginError::config(format!(
                "the clever source's settings are not valid TOML: {}",
                error.message()
            ))
        })?;
        let raw: RawConfig =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|error| {
                let key = error.path().to_string();
                let inner = error.into_inner().to_string();
                if key.is_empty() || key == "." {
                    // Unknown keys surface here; serde's message already names the key.
                    PluginError::config(format!("{inner} (clever source keys: {KEYS})"))
                } else {
                    PluginError::config(format!("`{key}`: {inner}")).at(key)
                }
            })?;
        Config::check(raw)
    }

    fn check(raw: RawConfig) -> Result<Config, PluginError> {
        let bad =
            |key: &str, message: String| PluginError::config(format!("`{key}` {message}")).at(key);

        let api_version = match raw.api_version.as_deref() {
            None => {
                return Err(bad(
                    "api_version",
                    "is required: set it to \"v2.0\", \"v2.1\", \"v3.0\" or \"v3.1\"".into(),
                ))
            }
            Some(text) => ApiVersion::parse(text).ok_or_else(|| {
                bad(
                    "api_version",
                    format!("is {text:?}; Clever's supported versions are \"v2.0\", \"v2.1\", \"v3.0\" and \"v3.1\""),
                )
            })?,
        };

        let base_url = check_base_url(raw.base_url.as_deref().unwrap_or("https://api.clever.com"))
            .map_err(|why| bad("base_url", why))?;

        let token_env = raw.token_env.unwrap_or_else(|| "CLEVER_TOKEN".into());
        if token_env.trim().is_empty() || token_env.contains(['=', '\0']) {
            return Err(bad(
                "token_env",
                "must name an environment variable, e.g. \"CLEVER_TOKEN\"".into(),
            ));
        }

        let page_size = match raw.page_size {
            None => MAX_PAGE_SIZE,
            Some(n) if (1..=i64::from(MAX_PAGE_SIZE)).contains(&n) => n as u32,
            Some(n) => {
                return Err(bad(
                    "page_size",
                    format!("is {n}; Clever pages hold 1 to {MAX_PAGE_SIZE} records"),
                ))
            }
        };

        let schools = match raw.schools {
            None => Vec::new(),
            Some(list) if list.iter().all(|s| s.trim().is_empty()) => {
                return Err(bad(
                    "schools",
                    "is empty: leave it out to import every school".into(),
                ))
            }
            Some(list) => list
                .into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        };

        let timeout_seconds = raw.timeout_seconds.unwrap_or(30.0);
        if !(timeout_seconds > 0.0 && timeout_seconds <= 3600.0) {
            return Err(bad(
                "timeout_seconds",
                format!("is {timeout_seconds}; it must be more than 0 and at most 3600"),
            ));
        }

        let max_retries = raw.max_retries.unwrap_or(5);
        if max_retries > 100 {
            return Err(bad("max_retries", format!("is {max_retries}; at most 100")));
        }

        let max_retry_wait_ms = raw.max_retry_wait_ms.unwrap_or(120_000);
        if max_retry_wait_ms > 3_600_000 {
            return Err(bad(
                "max_retry_wait_ms",
                format!("is {max_retry_wait_ms}; at most 3600000 (one hour)"),
            ));
        }

        let concurrency = raw.concurrency.unwrap_or(4);
        if !(1..=32).contains(&concurrency) {
            return Err(bad(
                "concurrency",
                format!("is {concurrency}; it must be between 1 and 32"),
            ));
        }

        Ok(Config {
            api_version,
            base_url,
            token_env: token_env.trim().to_string(),
            include_contacts: raw.include_contacts.unwrap_or(true),
            page_size,
            schools,
            timeout: Duration::from_secs_f64(timeout_seconds),
            max_retries,
            max_retry_wait: Duration::from_millis(max_retry_wait_ms),
            concurrency: concurrency as usize,
        })
    }
}

/// Whether `base_url` (already checked) is plain http to anything but loopback.
pub fn sends_token_in_clear(base_url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(base_url) else {
        return false;
    };
    let loopback = match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    };
    url.scheme() == "http" && !loopback
}

fn check_base_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text.trim())
        .map_err(|error| format!("is {text:?}, which is not a URL ({error})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "is {text:?}; it must be an http:// or https:// URL"
        ));
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(format!(
            "is {text:?}; give only scheme, host and (optionally) a path, without credentials or query"
        ));
    }
    let trimmed = url.as_str().trim_end_matches('/').to_string();
    let last = trimmed.rsplit('/').next().unwrap_or_default();
    if ApiVersion::parse(last).is_some() {
        return Err(format!(
            "is {text:?}, which includes the API version; give the host only (e.g. \"https://api.clever.com\") and set `api_version`"
        ));
    }
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let config = Config::parse("api_version = \"v3.0\"").unwrap();
        assert_eq!(config.api_version, ApiVersion::V3_0);
        assert_eq!(config.base_url, "https://api.clever.com");
        assert_eq!(config.token_env, "CLEVER_TOKEN");
        assert!(config.include_contacts);
        assert_eq!(config.page_size, 10_000);
        assert_eq!(config.timeout, Duration::from_secs(30));
        assert_eq!(config.max_retries, 5);
        assert_eq!(config.concurrency, 4);
        assert!(config.schools.is_empty());
    }

    fn error(text: &str) -> PluginError {
        Config::parse(text).unwrap_err()
    }

    #[test]
    fn errors_name_the_key() {
        let e = error("api_version = \"v3.0\"\ncolour = \"red\"");
        assert!(e.message.contains("colour"), "{e}");
        let e = error("api_version = \"v4\"");
        assert!(
            e.message.contains("api_version") && e.message.contains("v4"),
            "{e}"
        );
        let e = error("base_url = \"https://api.clever.com\"");
        assert!(e.message.contains("api_version"), "{e}");
        let e = error("api_version = \"v3.0\"\npage_size = 20000");
        assert!(e.message.contains("page_size"), "{e}");
        let e = error("api_version = \"v3.0\"\npage_size = \"big\"");
        assert!(e.message.contains("page_size"), "{e}");
        assert_eq!(e.location.as_deref(), Some("page_size"));
        let e = error("api_version = \"v3.0\"\nbase_url = \"https://api.clever.com/v3.0\"");
        assert!(e.message.contains("base_url"), "{e}");
        let e = error("api_version = \"v3.0\"\nschools = []");
        assert!(e.message.contains("schools"), "{e}");
        let e = error("api_version = \"v3.0\"\nconcurrency = 0");
        assert!(e.message.contains("concurrency"), "{e}");
        let e = error("api_version = \"v3.0\"\ntimeout_seconds = 0");
        assert!(e.message.contains("timeout_seconds"), "{e}");
    }

    #[test]
    fn plain_http_is_only_quiet_on_loopback() {
        assert!(!sends_token_in_clear("https://api.clever.com"));
        assert!(!sends_token_in_clear("http://127.0.0.1:7070"));
        assert!(!sends_token_in_clear("http://localhost:7070"));
        assert!(!sends_token_in_clear("http://[::1]:7070"));
        assert!(sends_token_in_clear("http://clever-proxy.example.org"));
    }

    #[test]
    fn fractional_timeouts_for_tests() {
        let config = Config::parse("api_version = \"v2.1\"\ntimeout_seconds = 0.25").unwrap();
        assert_eq!(config.timeout, Duration::from_millis(250));
        let config = Config::parse("api_version = \"v2.1\"\ntimeout_seconds = 2").unwrap();
        assert_eq!(config.timeout, Duration::from_secs(2));
    }
}
