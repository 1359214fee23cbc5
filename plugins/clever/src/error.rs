//! Why a fetch from Clever could not be completed, and how that reads as a [`PluginError`].

use roster_core::{ErrorKind, PluginError};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Clever (or something in front of it) answered with a status we do not retry, or
    /// kept answering with one we do until the retries ran out.
    #[error("Clever answered HTTP {status}{}: {excerpt}", attempts_note(*attempts))]
    Status {
        url: String,
        status: u16,
        excerpt: String,
        attempts: u32,
    },
    /// No usable response: connection refused or reset, timeout, body cut off.
    #[error("could not fetch from Clever{}: {detail}", attempts_note(*attempts))]
    Transport {
        url: String,
        detail: String,
        attempts: u32,
    },
    /// A 200 whose body is not the envelope we expect.
    #[error("Clever's response is not a valid page{}: {detail}", attempts_note(*attempts))]
    Body {
        url: String,
        detail: String,
        attempts: u32,
    },
    /// `next` links that lead back to a page already fetched: following them would never end.
    #[error("Clever's pagination loops: the next link {next} was already fetched")]
    Loop { url: String, next: String },
    /// A `next` link to another host would receive the token; refuse it.
    #[error("Clever's next link {next} leaves {base}; refusing to send the token there")]
    ForeignLink {
        url: String,
        next: String,
        base: String,
    },
    /// The v2 `/contacts` endpoint answered 404/410: Clever retired it on 2025-07-31.
    #[error("Clever's v2 contacts endpoint is gone ({status} at {url}): set api_version = \"v3.0\" or include_contacts = false")]
    ContactsGone { url: String, status: u16 },
    #[error("cancelled")]
    Cancelled,
}

fn attempts_note(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

impl FetchError {
    pub fn url(&self) -> Option<&str> {
        match self {
            FetchError::Status { url, .. }
            | FetchError::Transport { url, .. }
            | FetchError::Body { url, .. }
            | FetchError::Loop { url, .. }
            | FetchError::ForeignLink { url, .. }
            | FetchError::ContactsGone { url, .. } => Some(url),
            FetchError::Cancelled => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status, .. } | FetchError::ContactsGone { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// The error as the host shows it. `token_env` names the variable in auth hints.
    pub fn into_plugin_error(self, token_env: &str) -> PluginError {
        if let FetchError::Cancelled = self {
            return PluginError::cancelled();
        }
        let message = self.to_string();
        let url = self.url().unwrap_or_default().to_string();
        let (kind, location) = match &self {
            FetchError::Status {
                status: s @ (401 | 403),
                ..
            } => (ErrorKind::Auth, format!("{url} (HTTP {s})")),
            FetchError::Status { status, .. } => {
                (ErrorKind::Network, format!("{url} (HTTP {status})"))
            }
            FetchError::Transport { .. } => (ErrorKind::Network, url),
            // Fixed in the source's settings, not by retrying.
            FetchError::ContactsGone { status, .. } => {
                (ErrorKind::Config, format!("{url} (HTTP {status})"))
            }
            _ => (ErrorKind::Input, url),
        };
        let hint = match (&self, self.status()) {
            (FetchError::ContactsGone { .. }, _) => Some("Clever retired the v2 contacts endpoint on 2025-07-31; v3 serves guardians as users with role \"contact\"".into()),
            (_, status) => match status {
            Some(401) => Some(format!(
                "the token in {token_env} was refused: check that it is the district's current Clever token (tokens change when a district re-authorizes the app)"
            )),
            Some(403) => Some("the token lacks a scope this import needs (read:students, read:teachers, read:sections, read:student_contacts…); check the app's data access settings in Clever".into()),
            Some(413) => Some("lower `page_size` (Clever's maximum is 10000)".into()),
            Some(429) => Some("Clever kept rate-limiting this token; try again later or lower `concurrency`".into()),
            Some(s) if s >= 500 => Some("Clever is failing; nothing was imported, try again later".into()),
            _ => None,
            },
        };
        let error = PluginError::new(kind, message).at(location);
        match hint {
            Some(hint) => error.with_hint(hint),
            None => error,
        }
    }
}
