//! Statements a job runs again and again, found by the address of their SQL text.
//!
//! rusqlite's `prepare_cached` finds a statement by hashing its whole text, and hashes it
//! again to put it back when the statement is dropped: two passes over a few hundred
//! bytes for every statement run. A continuing run at nyc runs about a million, one or
//! more for every record it is sent, and that came to 5% of its job's thread (with the
//! link statements' texts formatted anew each time). Here a statement's text is a
//! `&'static str`, so its address and length name it: finding it is one lookup of two
//! numbers. Texts made at run time are made once ([`interned`]).
//!
//! Like rusqlite's cache, the pool hands each statement to one user at a time: asked
//! for a statement that is in use (a query inside another's rows), it prepares a second.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

use rusqlite::{Connection, Statement};

/// A statement's SQL text, by where it lies and its length.
type Key = (usize, usize);

pub(super) struct Statements<'c> {
    conn: &'c Connection,
    idle: RefCell<foldhash::HashMap<Key, Vec<Statement<'c>>>>,
}

impl<'c> Statements<'c> {
    pub fn new(conn: &'c Connection) -> Self {
        Statements {
            conn,
            idle: RefCell::default(),
        }
    }

    /// `sql`, prepared on the first call and kept for the next.
    pub fn get(&self, sql: &'static str) -> rusqlite::Result<Lent<'_, 'c>> {
        let key = (sql.as_ptr() as usize, sql.len());
        let idle = self.idle.borrow_mut().get_mut(&key).and_then(Vec::pop);
        let statement = match idle {
            Some(statement) => statement,
            None => self.conn.prepare(sql)?,
        };
        Ok(Lent {
            pool: self,
            key,
            statement: Some(statement),
        })
    }
}

/// A statement of the pool, back in it when dropped.
pub(super) struct Lent<'p, 'c> {
    pool: &'p Statements<'c>,
    key: Key,
    /// `None` only in `drop`.
    statement: Option<Statement<'c>>,
}

impl<'c> Deref for Lent<'_, 'c> {
    type Target = Statement<'c>;

    fn deref(&self) -> &Statement<'c> {
        self.statement.as_ref().expect("taken only in drop")
    }
}

impl<'c> DerefMut for Lent<'_, 'c> {
    fn deref_mut(&mut self) -> &mut Statement<'c> {
        self.statement.as_mut().expect("taken only in drop")
    }
}

impl Drop for Lent<'_, '_> {
    fn drop(&mut self) {
        if let Some(mut statement) = self.statement.take() {
            // rusqlite resets a statement after `execute` and when its rows are dropped;
            // its parameters stay bound until then, and go here (a bound text is a copy).
            statement.clear_bindings();
            self.pool
                .idle
                .borrow_mut()
                .entry(self.key)
                .or_default()
                .push(statement);
        }
    }
}

/// A text made at run time, made once for the process: `make`'s result the first time
/// `slot` is asked, the same `&'static str` ever after.
pub(super) fn interned(
    slot: &'static OnceLock<String>,
    make: impl FnOnce() -> String,
) -> &'static str {
    slot.get_or_init(make)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::params;

    const INSERT: &str = "INSERT INTO t (v) VALUES (?1)";
    const SELECT: &str = "SELECT v FROM t ORDER BY v";

    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        conn
    }

    /// Every value in the table, through the pool.
    fn all(statements: &Statements<'_>) -> Vec<i64> {
        statements
            .get(SELECT)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// How many statements of `sql` wait in the pool.
    fn idle(statements: &Statements<'_>, sql: &'static str) -> usize {
        statements.idle.borrow()[&(sql.as_ptr() as usize, sql.len())].len()
    }

    #[test]
    fn a_statement_is_prepared_once_and_reused() {
        let conn = table();
        let statements = Statements::new(&conn);
        for v in 0..3 {
            statements.get(INSERT).unwrap().execute(params![v]).unwrap();
        }
        assert_eq!(statements.idle.borrow().len(), 1);
        assert_eq!(idle(&statements, INSERT), 1);
        let count: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 3);
    }

    #[test]
    fn a_statement_in_use_is_not_handed_out_again() {
        let conn = table();
        conn.execute_batch("INSERT INTO t VALUES (1), (2)").unwrap();
        let statements = Statements::new(&conn);
        let mut outer = statements.get(SELECT).unwrap();
        let mut rows = outer.query([]).unwrap();
        let mut seen = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            let v: i64 = row.get(0).unwrap();
            // The same text, while the first is still stepping through its rows.
            seen.push((v, all(&statements)));
        }
        drop(rows);
        drop(outer);
        assert_eq!(seen, [(1, vec![1, 2]), (2, vec![1, 2])]);
        // Both went back, for two users at once next time.
        assert_eq!(idle(&statements, SELECT), 2);
    }

    #[test]
    fn a_statement_back_in_the_pool_starts_afresh() {
        let conn = table();
        conn.execute_batch("INSERT INTO t VALUES (1), (2), (3)")
            .unwrap();
        let statements = Statements::new(&conn);
        {
            // Left after its first row.
            let mut first = statements.get(SELECT).unwrap();
            let mut rows = first.query([]).unwrap();
            assert_eq!(rows.next().unwrap().unwrap().get::<_, i64>(0).unwrap(), 1);
        }
        assert_eq!(all(&statements), [1, 2, 3]);
    }

    #[test]
    fn a_text_made_at_run_time_is_made_once() {
        static SLOT: OnceLock<String> = OnceLock::new();
        let first = interned(&SLOT, || format!("SELECT {}", 1));
        let second = interned(&SLOT, || unreachable!("made already"));
        assert_eq!(first, "SELECT 1");
        assert!(std::ptr::eq(first, second));
    }
}
