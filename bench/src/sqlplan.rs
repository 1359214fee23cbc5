//! Which statements an import executes, and whether any of them scans a contacts table.
//!
//! [`record`] hooks `sqlite3_trace_v2` (profile events) on a connection and counts, per
//! statement text, how often it ran and for how long. [`check`] then asks SQLite for the
//! `EXPLAIN QUERY PLAN` of every statement that ran more than once (the per-record ones)
//! and reports any full `SCAN` of `contacts` or `contact_ids` — the quadratic shape the
//! dedupe stage must never have.

use std::collections::HashMap;
use std::ffi::{c_int, c_uint, c_void, CStr};
use std::sync::Mutex;

use rusqlite::{ffi, Connection};
use serde::{Deserialize, Serialize};

struct Entry {
    sql_ptr: usize,
    sql: String,
    count: u64,
    nanos: u64,
}

/// Statement handle → what it ran. Keyed by handle so the hot path does not hash SQL.
static STATS: Mutex<Option<HashMap<usize, Entry>>> = Mutex::new(None);
/// Entries whose handle was reused for another statement.
static RETIRED: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

unsafe extern "C" fn on_trace(
    event: c_uint,
    _: *mut c_void,
    p: *mut c_void,
    x: *mut c_void,
) -> c_int {
    if event != ffi::SQLITE_TRACE_PROFILE as c_uint {
        return 0;
    }
    let stmt = p as *mut ffi::sqlite3_stmt;
    // SAFETY: for SQLITE_TRACE_PROFILE, P is the statement and X points at an i64 of
    // nanoseconds (sqlite3_trace_v2's documented contract).
    let nanos = unsafe { *(x as *const i64) }.max(0) as u64;
    let sql_ptr = unsafe { ffi::sqlite3_sql(stmt) };
    let Ok(mut guard) = STATS.lock() else {
        return 0;
    };
    let stats = guard.get_or_insert_with(HashMap::new);
    let entry = stats.entry(stmt as usize).or_insert_with(|| Entry {
        sql_ptr: 0,
        sql: String::new(),
        count: 0,
        nanos: 0,
    });
    if entry.sql_ptr != sql_ptr as usize {
        let sql = if sql_ptr.is_null() {
            String::new()
        } else {
            // SAFETY: sqlite3_sql returns a NUL-terminated string owned by the statement.
            unsafe { CStr::from_ptr(sql_ptr) }
                .to_string_lossy()
                .into_owned()
        };
        let old = std::mem::replace(
            entry,
            Entry {
                sql_ptr: sql_ptr as usize,
                sql,
                count: 0,
                nanos: 0,
            },
        );
        if old.count > 0 {
            if let Ok(mut retired) = RETIRED.lock() {
                retired.push(old);
            }
        }
    }
    entry.count += 1;
    entry.nanos += nanos;
    0
}

/// Start counting the statements `conn` runs.
pub fn record(conn: &Connection) {
    // SAFETY: the callback only reads what SQLite hands it; the handle outlives the
    // registration (it is cleared when the connection closes).
    unsafe {
        ffi::sqlite3_trace_v2(
            conn.handle(),
            ffi::SQLITE_TRACE_PROFILE as c_uint,
            Some(on_trace),
            std::ptr::null_mut(),
        );
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Statement {
    pub sql: String,
    pub count: u64,
    pub seconds: f64,
}

/// Everything recorded so far, one entry per statement text, most run first.
pub fn recorded() -> Vec<Statement> {
    let mut by_sql: HashMap<String, (u64, u64)> = HashMap::new();
    let mut add = |entry: &Entry| {
        let slot = by_sql.entry(normalize(&entry.sql)).or_default();
        slot.0 += entry.count;
        slot.1 += entry.nanos;
    };
    if let Ok(guard) = STATS.lock() {
        guard.iter().flat_map(|m| m.values()).for_each(&mut add);
    }
    if let Ok(retired) = RETIRED.lock() {
        retired.iter().for_each(&mut add);
    }
    let mut out: Vec<Statement> = by_sql
        .into_iter()
        .map(|(sql, (count, nanos))| Statement {
            sql,
            count,
            seconds: nanos as f64 / 1e9,
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.sql.cmp(&b.sql)));
    out
}

fn normalize(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub sql: String,
    pub count: u64,
    pub plan: Vec<String>,
    /// The plan lines that scan `contacts` or `contact_ids` in full.
    pub full_scans: Vec<String>,
}

const WATCHED: [&str; 2] = ["contacts", "contact_ids"];

/// The names `contacts` and `contact_ids` go by in `sql`: themselves and their aliases.
fn watched_names(sql: &str) -> Vec<String> {
    const KEYWORDS: [&str; 18] = [
        "where", "join", "on", "set", "inner", "left", "cross", "natural", "using", "group",
        "order", "limit", "values", "select", "default", "as", "union", "indexed",
    ];
    let tokens: Vec<String> = sql
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut names: Vec<String> = WATCHED.iter().map(|s| s.to_string()).collect();
    for (n, token) in tokens.iter().enumerate() {
        if !WATCHED.contains(&token.as_str()) {
            continue;
        }
        let mut next = tokens.get(n + 1);
        if next.is_some_and(|t| t == "as") {
            next = tokens.get(n + 2);
        }
        if let Some(alias) = next {
            if !KEYWORDS.contains(&alias.as_str()) && !WATCHED.contains(&alias.as_str()) {
                names.push(alias.clone());
            }
        }
    }
    names
}

/// The query plan of every statement that ran more than once.
pub fn check(conn: &Connection, statements: &[Statement]) -> rusqlite::Result<Vec<Plan>> {
    let mut plans = Vec::new();
    for statement in statements.iter().filter(|s| s.count > 1) {
        let sql = statement.sql.trim();
        if sql.is_empty() || sql.starts_with("--") {
            continue;
        }
        let mut query = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        // The parameters stay unbound (NULL): the plan does not depend on them, and
        // `raw_query` does not insist on them.
        let mut rows = query.raw_query();
        let mut plan: Vec<String> = Vec::new();
        while let Some(row) = rows.next()? {
            plan.push(row.get(3)?);
        }
        let names = watched_names(sql);
        let full_scans = plan
            .iter()
            .filter(|line| {
                let mut words = line.split_whitespace();
                words.next() == Some("SCAN")
                    && words
                        .next()
                        .is_some_and(|name| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
            })
            .cloned()
            .collect();
        plans.push(Plan {
            sql: sql.to_string(),
            count: statement.count,
            plan,
            full_scans,
        });
    }
    Ok(plans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_found() {
        let names = watched_names(
            "SELECT i.contact_id FROM contact_ids i JOIN contacts AS c ON c.id = i.contact_id WHERE x",
        );
        assert!(names.contains(&"i".to_string()) && names.contains(&"c".to_string()));
        let names = watched_names("UPDATE contacts SET a = 1 WHERE id = ?1");
        assert_eq!(names, ["contacts", "contact_ids"]);
    }

    #[test]
    fn a_scan_of_contacts_is_caught_and_a_search_is_not() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT);
             CREATE TABLE contact_ids (contact_id INTEGER, kind TEXT, value TEXT);
             CREATE INDEX contact_ids_value ON contact_ids (kind, value);",
        )
        .unwrap();
        let statements = [
            Statement {
                sql: "SELECT id FROM contacts c WHERE c.email = ?1".into(),
                count: 2,
                seconds: 0.0,
            },
            Statement {
                sql: "SELECT contact_id FROM contact_ids WHERE kind = ?1 AND value = ?2".into(),
                count: 2,
                seconds: 0.0,
            },
        ];
        let plans = check(&conn, &statements).unwrap();
        assert_eq!(plans[0].full_scans.len(), 1, "{:?}", plans[0]);
        assert!(plans[1].full_scans.is_empty(), "{:?}", plans[1]);
    }
}
