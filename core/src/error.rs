//! The error a plugin reports, and the errors of loading a plugin.

use std::fmt;

/// What went wrong inside a plugin. Crosses the ABI as plain data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The source's table in `importer.toml` is wrong (unknown key, bad value).
    Config,
    /// The data the source read is malformed (a file, a response body).
    Input,
    /// The remote service failed or could not be reached.
    Network,
    /// The remote service refused the credentials.
    Auth,
    /// The host asked the plugin to stop.
    Cancelled,
    /// The plugin panicked; the SDK caught it at the boundary.
    Panic,
    Other,
}

impl ErrorKind {
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            ErrorKind::Config => 1,
            ErrorKind::Input => 2,
            ErrorKind::Network => 3,
            ErrorKind::Auth => 4,
            ErrorKind::Cancelled => 5,
            ErrorKind::Panic => 6,
            ErrorKind::Other => 0,
        }
    }

    pub(crate) fn from_u8(value: u8) -> Self {
        match value {
            1 => ErrorKind::Config,
            2 => ErrorKind::Input,
            3 => ErrorKind::Network,
            4 => ErrorKind::Auth,
            5 => ErrorKind::Cancelled,
            6 => ErrorKind::Panic,
            _ => ErrorKind::Other,
        }
    }
}

/// An error from a plugin: a message for people, where it happened, and an optional hint.
///
/// `location` is `file:line:column`, a URL with its status, or a config key — whatever
/// lets a person find the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PluginError {
    pub kind: ErrorKind,
    pub message: String,
    pub location: Option<String>,
    pub hint: Option<String>,
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(location) => write!(f, "{location}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl PluginError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        PluginError {
            kind,
            message: message.into(),
            location: None,
            hint: None,
        }
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub fn input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Input, message)
    }

    pub fn network(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Network, message)
    }

    pub fn cancelled() -> Self {
        Self::new(ErrorKind::Cancelled, "cancelled")
    }

    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Why a plugin file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("plugin file {path} was not found")]
    NotFound { path: String },
    #[error("{path} is not a roster plugin: {reason}")]
    NotAPlugin { path: String, reason: String },
    #[error("plugin {path} speaks plugin ABI v{found}, this roster speaks v{expected}")]
    AbiVersion {
        path: String,
        found: u32,
        expected: u32,
    },
    #[error("plugin {path} was built against an incompatible roster-core: {reason}")]
    Incompatible { path: String, reason: String },
    #[error("refusing to load plugin {path}: {reason}")]
    Unsafe { path: String, reason: String },
}

impl LoadError {
    /// What the user should do about it, on a line of its own.
    pub fn hint(&self) -> Option<String> {
        match self {
            LoadError::AbiVersion { .. } | LoadError::Incompatible { .. } => Some(format!(
                "rebuild the plugin against roster-core {} (plugin ABI v{})",
                crate::CORE_VERSION,
                crate::ABI_VERSION
            )),
            LoadError::NotFound { .. } => Some(
                "build the plugins with `cargo build --workspace`, or set [plugins] dir in importer.toml"
                    .to_string(),
            ),
            LoadError::Unsafe { .. } => Some(
                "make the file and its folder writable by their owner only (chmod go-w)".to_string(),
            ),
            LoadError::NotAPlugin { .. } => None,
        }
    }
}
