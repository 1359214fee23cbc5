//! Events (e.g. "Fall Conferences 2026") and the record of every run against them.

use rusqlite::{params, Connection, OptionalExtension};

use crate::config::EventConfig;

/// The event's id, creating it from its `[[event]]` job if it does not exist yet. An
/// existing event keeps its sync setting: after creation, `roster sync start|stop` owns it.
pub fn ensure(conn: &Connection, event: &EventConfig) -> rusqlite::Result<(i64, bool)> {
    if let Some(id) = find(conn, &event.name)? {
        return Ok((id, false));
    }
    let terms = event
        .terms
        .as_ref()
        .map(|t| serde_json::to_string(t).expect("string list"));
    conn.execute(
        "INSERT INTO events (name, source, school, terms, sync_enabled) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![event.name, event.source, event.school, terms, event.sync],
    )?;
    Ok((conn.last_insert_rowid(), true))
}

/// An event as stored.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub name: String,
    pub source: Option<String>,
    pub school: Option<String>,
    pub terms: Option<Vec<String>>,
    pub sync_enabled: bool,
    pub created_at: String,
}

impl EventRow {
    /// The job that imports or syncs this event, as if it were an `[[event]]` entry.
    pub fn job(&self) -> Option<EventConfig> {
        Some(EventConfig {
            name: self.name.clone(),
            source: self.source.clone()?,
            school: self.school.clone(),
            terms: self.terms.clone(),
            sync: self.sync_enabled,
        })
    }
}

const EVENT_COLUMNS: &str = "id, name, source, school, terms, sync_enabled, created_at";

fn event_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    let terms: Option<String> = row.get(4)?;
    Ok(EventRow {
        id: row.get(0)?,
        name: row.get(1)?,
        source: row.get(2)?,
        school: row.get(3)?,
        terms: terms.and_then(|t| serde_json::from_str(&t).ok()),
        sync_enabled: row.get(5)?,
        created_at: row.get(6)?,
    })
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<EventRow>> {
    let mut statement =
        conn.prepare(&format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY name"))?;
    let rows = statement.query_map([], event_row)?;
    rows.collect()
}

pub fn get(conn: &Connection, name: &str) -> rusqlite::Result<Option<EventRow>> {
    conn.query_row(
        &format!("SELECT {EVENT_COLUMNS} FROM events WHERE name = ?1"),
        [name],
        event_row,
    )
    .optional()
}

/// Create `name` as a copy of `template`: its source, selection, sync setting, and the
/// classes attached with their hidden flags.
pub fn create_from(conn: &Connection, name: &str, template: &EventRow) -> rusqlite::Result<i64> {
    let terms = template
        .terms
        .as_ref()
        .map(|t| serde_json::to_string(t).expect("strings"));
    conn.execute(
        "INSERT INTO events (name, source, school, terms, sync_enabled) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![name, template.source, template.school, terms, template.sync_enabled],
    )?;
    let id = conn.last_insert_rowid();
    conn.execute(
        "INSERT INTO event_classes (event_id, class_id, hidden)
         SELECT ?1, class_id, hidden FROM event_classes WHERE event_id = ?2",
        params![id, template.id],
    )?;
    Ok(id)
}

pub fn find(conn: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row("SELECT id FROM events WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .optional()
}

/// Now, as RFC 3339 in UTC, the form every timestamp in the database has.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A run in `sync_runs`: started when created, finished with a status.
pub struct Run {
    pub id: i64,
}

impl Run {
    pub fn start(conn: &Connection, event_id: Option<i64>, kind: &str) -> rusqlite::Result<Run> {
        conn.execute(
            "INSERT INTO sync_runs (event_id, kind, started_at, status) VALUES (?1, ?2, ?3, 'running')",
            params![event_id, kind, now()],
        )?;
        Ok(Run {
            id: conn.last_insert_rowid(),
        })
    }

    /// An import creates its event inside its transaction; the run learns the id after.
    pub fn set_event(&self, conn: &Connection, event_id: Option<i64>) -> rusqlite::Result<()> {
        conn.execute(
            "UPDATE sync_runs SET event_id = ?2 WHERE id = ?1",
            params![self.id, event_id],
        )?;
        Ok(())
    }

    pub fn finish(
        &self,
        conn: &Connection,
        status: &str,
        summary: Option<&str>,
        error: Option<&str>,
    ) -> rusqlite::Result<()> {
        conn.execute(
            "UPDATE sync_runs SET finished_at = ?2, status = ?3, summary = ?4, error = ?5 WHERE id = ?1",
            params![self.id, now(), status, summary, error],
        )?;
        Ok(())
    }
}
