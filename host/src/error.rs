//! The one error type of the command line: a message, and a hint on its own line.

use std::fmt;

pub struct CliError {
    pub message: String,
    pub hint: Option<String>,
}

impl CliError {
    pub fn new(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Debug for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

macro_rules! from_error {
    ($($ty:ty),*) => {$(
        impl From<$ty> for CliError {
            fn from(error: $ty) -> Self {
                CliError::new(error.to_string())
            }
        }
    )*};
}
from_error!(
    crate::config::ConfigError,
    crate::store::StoreError,
    rusqlite::Error,
    std::io::Error
);

impl From<roster_core::LoadError> for CliError {
    fn from(error: roster_core::LoadError) -> Self {
        let hint = error.hint();
        CliError {
            message: error.to_string(),
            hint,
        }
    }
}

impl From<crate::pipeline::ImportError> for CliError {
    fn from(error: crate::pipeline::ImportError) -> Self {
        let hint = error.hint();
        CliError {
            message: error.to_string(),
            hint,
        }
    }
}
