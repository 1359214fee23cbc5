//! A re-sync's floor: SQLite itself applying the rows the re-sync changed, and nothing
//! else.
//!
//! The import's floor (`sqlite3 .import`) is the least a first import can cost. A
//! re-sync's is the least its changes can: the rows it left different from the roster
//! it started from, written by SQLite alone — no files read, nothing compared, each
//! change known in advance and applied in key order with one statement per row that
//! sets only the columns that differ. What the re-sync costs beyond that is finding the
//! changes; what that costs is the schema's pages.
//!
//! [`collect`] compares the two databases table by table (by primary key, every column)
//! into a small database of changes; [`apply`] is the measured part, run in a child
//! process; [`differences`] checks that the floor's database ended as the re-sync's did.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OpenFlags};
use serde::{Deserialize, Serialize};

/// One table's shape: its columns, and which of them are its primary key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Table {
    name: String,
    columns: Vec<String>,
    key: Vec<String>,
}

impl Table {
    /// The columns outside the key: those an update can set.
    fn values(&self) -> impl Iterator<Item = (usize, &String)> {
        self.columns
            .iter()
            .filter(|c| !self.key.contains(c))
            .enumerate()
    }

    fn key_list(&self, alias: &str) -> String {
        let keys: Vec<String> = self.key.iter().map(|k| format!("{alias}.{k}")).collect();
        keys.join(", ")
    }

    fn key_match(&self, a: &str, b: &str) -> String {
        let each: Vec<String> = self
            .key
            .iter()
            .map(|k| format!("{a}.{k} = {b}.{k}"))
            .collect();
        each.join(" AND ")
    }
}

/// The roster's tables in the order their rows may be inserted (a table after those its
/// foreign keys refer to: the order the migrations created them in).
fn tables(conn: &Connection) -> Result<Vec<Table>> {
    let mut statement = conn.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
         ORDER BY rowid",
    )?;
    let names: Vec<String> = statement
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut found = Vec::new();
    for name in names {
        let mut info = conn.prepare(&format!("PRAGMA table_info(\"{name}\")"))?;
        let mut columns = Vec::new();
        let mut key: Vec<(i64, String)> = Vec::new();
        for row in info.query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, i64>(5)?)))? {
            let (column, pk) = row?;
            if pk > 0 {
                key.push((pk, column.clone()));
            }
            columns.push(column);
        }
        if key.is_empty() {
            anyhow::bail!("table {name} has no primary key to match its rows by");
        }
        key.sort();
        let key = key.into_iter().map(|(_, c)| c).collect();
        found.push(Table { name, columns, key });
    }
    Ok(found)
}

/// How many rows a re-sync changed.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub struct Changed {
    pub updated: u64,
    pub inserted: u64,
    pub deleted: u64,
}

impl Changed {
    pub fn rows(&self) -> u64 {
        self.updated + self.inserted + self.deleted
    }
}

/// Writes into `out` (a new database) what turns `before` into `after`: for each table
/// `t`, `updated_t` (the row as `after` has it and a bit mask of the columns that differ,
/// by [`Table::values`] position), `inserted_t` (rows `before` lacks) and `deleted_t`
/// (keys `after` lacks), each in key order.
pub fn collect(before: &Path, after: &Path, out: &Path) -> Result<Changed> {
    let _ = std::fs::remove_file(out);
    let conn = Connection::open(out)?;
    let attach = |path: &Path, name: &str| -> Result<()> {
        conn.execute(
            &format!("ATTACH DATABASE ?1 AS {name}"),
            [format!("file:{}?mode=ro", path.display())],
        )
        .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(())
    };
    attach(before, "before")?;
    attach(after, "after")?;
    let tables = tables(&Connection::open_with_flags(
        after,
        OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?)?;
    let mut changed = Changed::default();
    for table in &tables {
        let name = &table.name;
        let mask: Vec<String> = table
            .values()
            .map(|(i, c)| format!("((a.{c} IS NOT b.{c}) << {i})"))
            .collect();
        let mask = if mask.is_empty() {
            "0".to_string()
        } else {
            mask.join(" | ")
        };
        let all: Vec<String> = table.columns.iter().map(|c| format!("a.{c}")).collect();
        let all = all.join(", ");
        let first_key = &table.key[0];
        conn.execute(
            &format!(
                "CREATE TABLE updated_{name} AS SELECT {all}, {mask} AS changed_columns
                 FROM after.\"{name}\" a JOIN before.\"{name}\" b ON {on}
                 WHERE {mask} != 0 ORDER BY {keys}",
                on = table.key_match("a", "b"),
                keys = table.key_list("a"),
            ),
            [],
        )?;
        conn.execute(
            &format!(
                "CREATE TABLE inserted_{name} AS SELECT {all}
                 FROM after.\"{name}\" a LEFT JOIN before.\"{name}\" b ON {on}
                 WHERE b.{first_key} IS NULL ORDER BY {keys}",
                on = table.key_match("a", "b"),
                keys = table.key_list("a"),
            ),
            [],
        )?;
        conn.execute(
            &format!(
                "CREATE TABLE deleted_{name} AS SELECT {keys}
                 FROM before.\"{name}\" a LEFT JOIN after.\"{name}\" b ON {on}
                 WHERE b.{first_key} IS NULL ORDER BY {keys}",
                on = table.key_match("a", "b"),
                keys = table.key_list("a"),
            ),
            [],
        )?;
        let count = |kind: &str| -> rusqlite::Result<u64> {
            conn.query_row(&format!("SELECT count(*) FROM {kind}_{name}"), [], |r| {
                r.get(0)
            })
        };
        changed.updated += count("updated")?;
        changed.inserted += count("inserted")?;
        changed.deleted += count("deleted")?;
    }
    conn.execute(
        "CREATE TABLE tables (position INTEGER PRIMARY KEY, shape TEXT NOT NULL)",
        [],
    )?;
    for (position, table) in tables.iter().enumerate() {
        conn.execute(
            "INSERT INTO tables VALUES (?1, ?2)",
            rusqlite::params![position as i64, serde_json::to_string(table)?],
        )?;
    }
    Ok(changed)
}

/// One change, read into memory before the clock starts.
enum Change {
    Delete(Vec<Value>),
    Insert(Vec<Value>),
    /// The row, and the mask of its columns that differ.
    Update(Vec<Value>, i64),
}

/// Applies the changes `collect` wrote to `changes` to `db` in one transaction, as the
/// host writes a re-sync (WAL, `synchronous=NORMAL`, foreign keys on, the page cache a
/// large run gets), through SQLite's own VFS; returns the seconds from opening `db` to
/// closing it, the changes already in memory.
pub fn apply(db: &Path, changes: &Path) -> Result<f64> {
    let source = Connection::open_with_flags(changes, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut shapes = source.prepare("SELECT shape FROM tables ORDER BY position")?;
    let tables: Vec<Table> = shapes
        .query_map([], |r| r.get::<_, String>(0))?
        .map(|shape| Ok(serde_json::from_str(&shape?)?))
        .collect::<Result<_>>()?;
    let read = |sql: &str, make: &dyn Fn(Vec<Value>) -> Change| -> Result<Vec<Change>> {
        let mut statement = source.prepare(sql)?;
        let width = statement.column_count();
        let mut rows = statement.query([])?;
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            let values = (0..width)
                .map(|i| row.get::<_, Value>(i))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            found.push(make(values));
        }
        Ok(found)
    };
    // Deletions first, the tables that refer to others before those they refer to; then
    // insertions and updates the other way round.
    let mut plan: Vec<(&Table, Vec<Change>)> = Vec::new();
    for table in tables.iter().rev() {
        let sql = format!("SELECT * FROM deleted_{} ORDER BY rowid", table.name);
        plan.push((table, read(&sql, &Change::Delete)?));
    }
    for table in &tables {
        let sql = format!("SELECT * FROM inserted_{} ORDER BY rowid", table.name);
        plan.push((table, read(&sql, &Change::Insert)?));
        let sql = format!("SELECT * FROM updated_{} ORDER BY rowid", table.name);
        plan.push((
            table,
            read(&sql, &|mut row: Vec<Value>| {
                let mask = match row.pop() {
                    Some(Value::Integer(mask)) => mask,
                    _ => 0,
                };
                Change::Update(row, mask)
            })?,
        ));
    }
    drop(shapes);
    drop(source);

    let started = Instant::now();
    let mut conn = Connection::open(db)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "cache_size", -128 * 1024)?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for (table, changes) in &plan {
        let name = &table.name;
        let key_at = |i: usize| {
            table
                .columns
                .iter()
                .position(|c| *c == table.key[i])
                .expect("a key is a column")
        };
        let by_key: Vec<String> = table
            .key
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} = ?{}", i + 1))
            .collect();
        let by_key = by_key.join(" AND ");
        for change in changes {
            match change {
                Change::Delete(key) => {
                    tx.prepare_cached(&format!("DELETE FROM \"{name}\" WHERE {by_key}"))?
                        .execute(params_from_iter(key))?;
                }
                Change::Insert(row) => {
                    let marks: Vec<String> = (1..=row.len()).map(|i| format!("?{i}")).collect();
                    tx.prepare_cached(&format!(
                        "INSERT INTO \"{name}\" ({}) VALUES ({})",
                        table.columns.join(", "),
                        marks.join(", ")
                    ))?
                    .execute(params_from_iter(row))?;
                }
                Change::Update(row, mask) => {
                    let set: Vec<String> = table
                        .values()
                        .filter(|(i, _)| mask & (1 << i) != 0)
                        .map(|(_, c)| c.clone())
                        .collect();
                    let assignments: Vec<String> = set
                        .iter()
                        .enumerate()
                        .map(|(i, c)| format!("{c} = ?{}", table.key.len() + i + 1))
                        .collect();
                    let mut values: Vec<&Value> =
                        (0..table.key.len()).map(|i| &row[key_at(i)]).collect();
                    for column in &set {
                        let at = table.columns.iter().position(|c| c == column);
                        values.push(&row[at.expect("a value is a column")]);
                    }
                    tx.prepare_cached(&format!(
                        "UPDATE \"{name}\" SET {} WHERE {by_key}",
                        assignments.join(", ")
                    ))?
                    .execute(params_from_iter(values))?;
                }
            }
        }
    }
    tx.commit()?;
    conn.close().map_err(|(_, e)| e)?;
    Ok(started.elapsed().as_secs_f64())
}

/// Rows of any table that one database has and the other has not, up to `limit` shown
/// per table; empty when both hold the same rows.
pub fn differences(a: &Path, b: &Path) -> Result<Vec<String>> {
    let conn = Connection::open_with_flags(a, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.execute(
        "ATTACH DATABASE ?1 AS other",
        [format!("file:{}?mode=ro", b.display())],
    )?;
    let mut found = Vec::new();
    for table in tables(&conn)? {
        let columns = table.columns.join(", ");
        let name = &table.name;
        for (from, to) in [("main", "other"), ("other", "main")] {
            let n: i64 = conn.query_row(
                &format!(
                    "SELECT count(*) FROM (SELECT {columns} FROM {from}.\"{name}\"
                     EXCEPT SELECT {columns} FROM {to}.\"{name}\")"
                ),
                [],
                |r| r.get(0),
            )?;
            if n > 0 {
                found.push(format!("{name}: {n} rows in {from} that {to} lacks"));
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roster(path: &Path, rows: &str) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT,
                 active INTEGER NOT NULL DEFAULT 1);
             CREATE INDEX contacts_email ON contacts (email);
             CREATE TABLE links (owner INTEGER NOT NULL REFERENCES contacts (id),
                 other INTEGER NOT NULL, active INTEGER NOT NULL DEFAULT 1,
                 PRIMARY KEY (owner, other)) WITHOUT ROWID;",
        )
        .unwrap();
        conn.execute_batch(rows).unwrap();
    }

    #[test]
    fn applying_the_changes_turns_one_roster_into_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let (before, after, changes) = (
            dir.path().join("before.db"),
            dir.path().join("after.db"),
            dir.path().join("changes.db"),
        );
        roster(
            &before,
            "INSERT INTO contacts VALUES (1, 'Ann', 'a@x', 1), (2, 'Bob', NULL, 1), (3, 'Cy', 'c@x', 1);
             INSERT INTO links VALUES (1, 10, 1), (1, 11, 1), (3, 12, 1);",
        );
        roster(
            &after,
            "INSERT INTO contacts VALUES (1, 'Ann', 'ann@x', 1), (2, 'Bob', NULL, 0), (4, 'Di', NULL, 1);
             INSERT INTO links VALUES (1, 10, 0), (1, 11, 1), (1, 13, 1), (4, 10, 1);",
        );
        let changed = collect(&before, &after, &changes).unwrap();
        // Contact 1's email, 2's active and link (1, 10)'s active; contact 4 and two
        // links new; contact 3 and its link gone.
        assert_eq!(
            (changed.updated, changed.inserted, changed.deleted),
            (3, 3, 2)
        );
        assert_ne!(differences(&before, &after).unwrap(), Vec::<String>::new());
        let seconds = apply(&before, &changes).unwrap();
        assert!(seconds > 0.0);
        assert_eq!(differences(&before, &after).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn an_update_sets_only_the_columns_that_differ() {
        let dir = tempfile::tempdir().unwrap();
        let (before, after, changes) = (
            dir.path().join("before.db"),
            dir.path().join("after.db"),
            dir.path().join("changes.db"),
        );
        roster(&before, "INSERT INTO contacts VALUES (1, 'Ann', 'a@x', 1);");
        roster(&after, "INSERT INTO contacts VALUES (1, 'Ann', 'a@x', 0);");
        collect(&before, &after, &changes).unwrap();
        // A trigger sees which columns the update set.
        Connection::open(&before)
            .unwrap()
            .execute_batch(
                "CREATE TABLE seen (what TEXT);
                 CREATE TRIGGER email_set AFTER UPDATE OF email ON contacts
                 BEGIN INSERT INTO seen VALUES ('email'); END;
                 CREATE TRIGGER active_set AFTER UPDATE OF active ON contacts
                 BEGIN INSERT INTO seen VALUES ('active'); END;",
            )
            .unwrap();
        apply(&before, &changes).unwrap();
        let conn = Connection::open(&before).unwrap();
        let seen: Vec<String> = conn
            .prepare("SELECT what FROM seen")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(seen, ["active"]);
    }
}
