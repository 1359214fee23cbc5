//! The dedupe stage every plugin's people pass through before they are written.
//!
//! The stage decides, for a person the source has not supplied before, whether it is a
//! new contact or one the roster already holds under another source. This is the seam
//! where cross-source matching plugs in; [`PassThrough`] trusts the source's own keys.

use roster_core::record::Person;
use rusqlite::Transaction;

/// What to do with an incoming person the source has not supplied before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Create a new contact.
    New,
    /// Attach the source's ids to an existing contact instead of creating a duplicate.
    Link { contact_id: i64, reason: String },
}

pub trait DedupeStage {
    fn resolve(
        &mut self,
        tx: &Transaction<'_>,
        source: &str,
        person: &Person,
    ) -> rusqlite::Result<Resolution>;
}

/// Every unknown person is new.
pub struct PassThrough;

impl DedupeStage for PassThrough {
    fn resolve(
        &mut self,
        _tx: &Transaction<'_>,
        _source: &str,
        _person: &Person,
    ) -> rusqlite::Result<Resolution> {
        Ok(Resolution::New)
    }
}
