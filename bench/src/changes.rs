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

    /// `k1 = ?1 AND k2 = ?2 …`: the row by its key, bound first.
    fn by_key(&self) -> String {
        let each: Vec<String> = self
            .key
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} = ?{}", i + 1))
            .collect();
        each.join(" AND ")
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
        let (on, keys, first_key) = (
            table.key_match("a", "b"),
            table.key_list("a"),
            &table.key[0],
        );
        // The rows of `a` (in `from`) that `condition` picks against `b` (in `to`), as
        // table `{kind}_{name}` in key order; how many.
        let gather =
            |kind: &str, select: &str, from: &str, to: &str, join: &str, condition: &str| {
                conn.execute(
                    &format!(
                        "CREATE TABLE {kind}_{name} AS SELECT {select}
                     FROM {from}.\"{name}\" a {join} {to}.\"{name}\" b ON {on}
                     WHERE {condition} ORDER BY {keys}"
                    ),
                    [],
                )?;
                conn.query_row(&format!("SELECT count(*) FROM {kind}_{name}"), [], |r| {
                    r.get::<_, u64>(0)
                })
            };
        let absent = format!("b.{first_key} IS NULL");
        changed.updated += gather(
            "updated",
            &format!("{all}, {mask} AS changed_columns"),
            "after",
            "before",
            "JOIN",
            &format!("{mask} != 0"),
        )?;
        changed.inserted += gather("inserted", &all, "after", "before", "LEFT JOIN", &absent)?;
        changed.deleted += gather("deleted", &keys, "before", "after", "LEFT JOIN", &absent)?;
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

/// The statements the changes need, and each change as the statement it runs and the
/// values it binds: everything but the writing done before the clock starts.
#[derive(Default)]
struct Plan {
    statements: Vec<String>,
    changes: Vec<(usize, Vec<Value>)>,
}

impl Plan {
    fn statement(&mut self, sql: String) -> usize {
        match self.statements.iter().position(|s| *s == sql) {
            Some(at) => at,
            None => {
                self.statements.push(sql);
                self.statements.len() - 1
            }
        }
    }

    /// Every row `sql` reads from the changes, in key order (the order they were written).
    fn read(source: &Connection, sql: &str) -> Result<Vec<Vec<Value>>> {
        let mut statement = source.prepare(sql)?;
        let width = statement.column_count();
        let mut rows = statement.query([])?;
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            found.push(
                (0..width)
                    .map(|i| row.get::<_, Value>(i))
                    .collect::<rusqlite::Result<Vec<_>>>()?,
            );
        }
        Ok(found)
    }

    fn deletions(&mut self, source: &Connection, table: &Table) -> Result<()> {
        let sql = format!("DELETE FROM \"{}\" WHERE {}", table.name, table.by_key());
        self.each_row(source, sql, &format!("deleted_{}", table.name))
    }

    /// `sql` once for each row of the collected table `rows` (its values bound in order).
    fn each_row(&mut self, source: &Connection, sql: String, rows: &str) -> Result<()> {
        let statement = self.statement(sql);
        let rows = Self::read(source, &format!("SELECT * FROM {rows}"))?;
        self.changes
            .extend(rows.into_iter().map(|row| (statement, row)));
        Ok(())
    }

    fn insertions(&mut self, source: &Connection, table: &Table) -> Result<()> {
        let marks: Vec<String> = (1..=table.columns.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO \"{}\" ({}) VALUES ({})",
            table.name,
            table.columns.join(", "),
            marks.join(", ")
        );
        self.each_row(source, sql, &format!("inserted_{}", table.name))
    }

    /// One statement per set of columns that differ: the key bound first, then those.
    fn updates(&mut self, source: &Connection, table: &Table) -> Result<()> {
        let at = |column: &String| {
            table
                .columns
                .iter()
                .position(|c| c == column)
                .expect("a column of the table")
        };
        for mut row in Self::read(source, &format!("SELECT * FROM updated_{}", table.name))? {
            let Some(Value::Integer(mask)) = row.pop() else {
                anyhow::bail!("updated_{}: a row without its mask", table.name);
            };
            let set: Vec<&String> = table
                .values()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, c)| c)
                .collect();
            let assignments: Vec<String> = set
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c} = ?{}", table.key.len() + i + 1))
                .collect();
            let sql = format!(
                "UPDATE \"{}\" SET {} WHERE {}",
                table.name,
                assignments.join(", "),
                table.by_key()
            );
            let statement = self.statement(sql);
            let mut values: Vec<Value> = table.key.iter().map(|k| row[at(k)].clone()).collect();
            values.extend(
                set.iter()
                    .map(|c| std::mem::replace(&mut row[at(c)], Value::Null)),
            );
            self.changes.push((statement, values));
        }
        Ok(())
    }
}

/// Applies the changes `collect` wrote to `changes` to `db` in one transaction, as the
/// host writes a re-sync (WAL, `synchronous=NORMAL`, foreign keys on, the page cache a
/// large run gets), through SQLite's own VFS; returns the seconds from opening `db` to
/// closing it, the changes already in memory.
pub fn apply(db: &Path, changes: &Path) -> Result<f64> {
    let source = Connection::open_with_flags(changes, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let tables: Vec<Table> = {
        let mut shapes = source.prepare("SELECT shape FROM tables ORDER BY position")?;
        let shapes = shapes.query_map([], |r| r.get::<_, String>(0))?;
        shapes
            .map(|shape| Ok(serde_json::from_str(&shape?)?))
            .collect::<Result<_>>()?
    };
    // Deletions first, the tables that refer to others before those they refer to; then
    // insertions and updates the other way round.
    let mut plan = Plan::default();
    for table in tables.iter().rev() {
        plan.deletions(&source, table)?;
    }
    for table in &tables {
        plan.insertions(&source, table)?;
        plan.updates(&source, table)?;
    }
    drop(source);

    let started = Instant::now();
    let mut conn = Connection::open(db)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "cache_size", -128 * 1024)?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut statements = plan
            .statements
            .iter()
            .map(|sql| tx.prepare(sql))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (statement, values) in &plan.changes {
            statements[*statement].execute(params_from_iter(values))?;
        }
    }
    tx.commit()?;
    conn.close().map_err(|(_, e)| e)?;
    Ok(started.elapsed().as_secs_f64())
}

/// For each table, how many rows one database has and the other has not; empty when
/// both hold the same rows.
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
