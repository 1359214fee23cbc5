//! Everything the plugin says to the host goes through here, so the token is scrubbed
//! from every log line no matter where the text came from.

use roster_core::sdk::Host;

use crate::secret::Token;

#[derive(Clone)]
pub struct Reporter {
    host: Host,
    token: Token,
}

impl Reporter {
    pub fn new(host: Host, token: Token) -> Self {
        Reporter { host, token }
    }

    pub fn info(&self, message: &str) {
        self.host.info(&self.token.scrub(message));
    }

    pub fn warn(&self, message: &str) {
        self.host.warn(&self.token.scrub(message));
    }

    pub fn debug(&self, message: &str) {
        self.host.debug(&self.token.scrub(message));
    }

    pub fn progress(&self, stage: &str, done: u64) {
        self.host.progress(stage, done, None);
    }

    pub fn check_cancelled(&self) -> Result<(), roster_core::PluginError> {
        self.host.check_cancelled()
    }

    pub fn is_cancelled(&self) -> bool {
        self.host.is_cancelled()
    }

    pub fn token(&self) -> &Token {
        &self.token
    }
}
