//! Bulk loading: the first import into an empty roster builds its secondary indexes once,
//! at the end, instead of row by row.
//!
//! At district scale (millions of contacts and enrollments) keeping the lookup indexes
//! current on every insert is most of the writing: each insert lands on a random page of
//! an index much larger than the page cache. Into an empty roster nothing reads those
//! indexes while the import runs (every contact is new, the dedupe stage has no other
//! source to look in, links are resolved from the run's own maps), so they are dropped
//! inside the import's transaction and created again by sorting just before it commits.
//! The committed database has exactly the schema it had; a failed or cancelled import
//! rolls the drops back with everything else. Unique indexes and primary keys stay: they
//! are what refuses a duplicate.

use rusqlite::Transaction;

/// The indexes only lookups use (see `store/schema.rs`). Unique constraints are not here.
const DEFERRABLE: &[&str] = &[
    "contacts_email",
    "contacts_student_match",
    "contact_sources_contact",
    "contact_ids_contact",
    "class_teachers_contact",
    "enrollments_contact",
    "relationships_student",
];

/// The statements that build the deferred indexes again, in schema order.
#[derive(Debug, Default)]
pub struct Deferred {
    create: Vec<String>,
}

impl Deferred {
    /// Drop the deferrable indexes if the roster has no contacts yet (and so no links to
    /// them either); otherwise keep everything as it is.
    pub fn begin(tx: &Transaction<'_>) -> rusqlite::Result<Deferred> {
        let empty: bool = tx.query_row("SELECT NOT EXISTS (SELECT 1 FROM contacts)", [], |r| {
            r.get(0)
        })?;
        if !empty {
            return Ok(Deferred::default());
        }
        let mut statement = tx.prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
        )?;
        let indexes: Vec<(String, String)> = statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut create = Vec::new();
        for (name, sql) in indexes {
            if DEFERRABLE.contains(&name.as_str()) {
                tx.execute_batch(&format!("DROP INDEX \"{name}\""))?;
                create.push(sql);
            }
        }
        Ok(Deferred { create })
    }

    /// Build the dropped indexes again; call before committing.
    pub fn finish(self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        for sql in &self.create {
            let started = std::time::Instant::now();
            tx.execute_batch(sql)?;
            tracing::debug!("{sql}: {:.2} s", started.elapsed().as_secs_f64());
        }
        Ok(())
    }

    pub fn is_active(&self) -> bool {
        !self.create.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(conn: &rusqlite::Connection) -> Vec<(String, String)> {
        let mut statement = conn
            .prepare("SELECT name, coalesce(sql, '') FROM sqlite_master ORDER BY name")
            .unwrap();
        statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn an_empty_roster_defers_its_lookup_indexes_and_gets_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = crate::store::Store::open(&dir.path().join("roster.db")).unwrap();
        let before = schema(&store.conn);
        for name in DEFERRABLE {
            assert!(
                before.iter().any(|(n, _)| n == name),
                "{name} is in the schema"
            );
        }
        let tx = store.conn.transaction().unwrap();
        let deferred = Deferred::begin(&tx).unwrap();
        assert!(deferred.is_active());
        let during = schema(&tx);
        assert_eq!(during.len(), before.len() - DEFERRABLE.len());
        deferred.finish(&tx).unwrap();
        tx.commit().unwrap();
        assert_eq!(schema(&store.conn), before);

        // A rollback brings them back too.
        let tx = store.conn.transaction().unwrap();
        assert!(Deferred::begin(&tx).unwrap().is_active());
        tx.rollback().unwrap();
        assert_eq!(schema(&store.conn), before);
    }

    #[test]
    fn a_roster_with_contacts_keeps_every_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = crate::store::Store::open(&dir.path().join("roster.db")).unwrap();
        store
            .conn
            .execute(
                "INSERT INTO contacts (role, first_name, last_name, access_level) VALUES ('student', 'A', 'B', 'customer')",
                [],
            )
            .unwrap();
        let before = schema(&store.conn);
        let tx = store.conn.transaction().unwrap();
        let deferred = Deferred::begin(&tx).unwrap();
        assert!(!deferred.is_active());
        assert_eq!(schema(&tx), before);
    }
}
