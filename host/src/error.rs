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

    /// One failure is reported as itself; several as a list (each was logged already).
    pub fn from_failures(
        mut failures: Vec<(String, CliError)>,
        what: &str,
    ) -> Result<(), CliError> {
        match failures.len() {
            0 => Ok(()),
            1 => {
                let (name, error) = failures.pop().expect("one failure");
                Err(CliError {
                    message: format!("event `{name}`: {}", error.message),
                    hint: error.hint,
                })
            }
            n => Err(CliError::new(format!(
                "{n} {what} jobs failed: {}",
                failures
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
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
from_error!(crate::config::ConfigError, std::io::Error);

/// Errors that know what a user can do about them.
macro_rules! from_hinted_error {
    ($($ty:ty),*) => {$(
        impl From<$ty> for CliError {
            fn from(error: $ty) -> Self {
                let hint = error.hint();
                CliError {
                    message: error.to_string(),
                    hint,
                }
            }
        }
    )*};
}
from_hinted_error!(
    crate::store::StoreError,
    roster_core::LoadError,
    crate::pipeline::ImportError
);

impl From<rusqlite::Error> for CliError {
    fn from(error: rusqlite::Error) -> Self {
        CliError {
            message: error.to_string(),
            hint: crate::store::sqlite_hint(&error),
        }
    }
}
