//! The district bearer token. It is read from the environment, sent only in the
//! `Authorization` header, and scrubbed from everything the plugin says.

use std::fmt;

use roster_core::PluginError;

/// A bearer token whose `Debug`/`Display` print `***`.
#[derive(Clone)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Token {
    /// Read the token from the environment variable `var`. Errors name the variable (and
    /// the `token_env` key), never a value.
    pub fn from_env(var: &str) -> Result<Token, PluginError> {
        let missing = |why: &str| {
            PluginError::config(format!(
                "environment variable {var} (named by `token_env`) {why}; it must hold the district's Clever bearer token"
            ))
            .at("token_env")
            .with_hint(format!("export {var}=<district token> before running the import"))
        };
        match std::env::var(var) {
            Ok(value) if !value.trim().is_empty() => Ok(Token(value.trim().to_string())),
            Ok(_) => Err(missing("is empty")),
            Err(std::env::VarError::NotPresent) => Err(missing("is not set")),
            Err(std::env::VarError::NotUnicode(_)) => Err(missing("is not valid UTF-8")),
        }
    }

    #[cfg(test)]
    pub fn new(value: &str) -> Token {
        Token(value.to_string())
    }

    /// The value, for the `Authorization` header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the token replaced by `***`: the last line of
    /// defence for error bodies or transport errors that echo it.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.0, "***")
        }
    }

    pub fn scrub_error(&self, mut error: PluginError) -> PluginError {
        error.message = self.scrub(&error.message);
        error.location = error.location.map(|l| self.scrub(&l));
        error.hint = error.hint.map(|h| self.scrub(&h));
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_itself() {
        let token = Token::new("s3cr3t-token");
        assert_eq!(format!("{token:?} {token}"), "*** ***");
        assert_eq!(token.scrub("bad token s3cr3t-token!"), "bad token ***!");
    }
}
