//! `roster export`: an event's reports as CSV, safe to open in a spreadsheet.

use rusqlite::Connection;

use crate::cli::ExportArgs;
use crate::commands::events::require;
use crate::config::Config;
use crate::error::CliError;
use crate::report::{slug, write_csv};
use crate::store::Store;

fn rows(conn: &Connection, sql: &str, event_id: i64) -> Result<Vec<Vec<String>>, CliError> {
    let mut statement = conn.prepare(sql)?;
    let columns = statement.column_count();
    let rows = statement
        .query_map([event_id], |r| {
            (0..columns)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => String::new(),
                        rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                        rusqlite::types::ValueRef::Real(n) => n.to_string(),
                        rusqlite::types::ValueRef::Text(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                        rusqlite::types::ValueRef::Blob(_) => String::new(),
                    })
                })
                .collect()
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn run(config: &Config, args: &ExportArgs) -> Result<(), CliError> {
    let store = Store::open_read_only(&config.database)?;
    let event = require(&store, &args.event)?;
    let dir = args.dir.join(slug(&event.name));
    let classes = rows(
        &store.conn,
        "SELECT c.id, c.source, c.source_id, c.name, coalesce(t.name, ''), c.group_name, c.appointments_per_parent,
                CASE ec.hidden WHEN 1 THEN 'hidden' ELSE 'shown' END, c.active
         FROM event_classes ec JOIN classes c ON c.id = ec.class_id LEFT JOIN terms t ON t.id = c.term_id
         WHERE ec.event_id = ?1 ORDER BY c.name",
        event.id,
    )?;
    let enrollments = rows(
        &store.conn,
        "SELECT c.source_id, c.name, p.id, p.first_name, p.last_name, 'student', e.active
         FROM event_classes ec JOIN classes c ON c.id = ec.class_id
         JOIN enrollments e ON e.class_id = c.id JOIN contacts p ON p.id = e.contact_id
         WHERE ec.event_id = ?1
         UNION ALL
         SELECT c.source_id, c.name, p.id, p.first_name, p.last_name, 'teacher', t.active
         FROM event_classes ec JOIN classes c ON c.id = ec.class_id
         JOIN class_teachers t ON t.class_id = c.id JOIN contacts p ON p.id = t.contact_id
         WHERE ec.event_id = ?1
         ORDER BY 1, 6, 5",
        event.id,
    )?;
    let contacts = rows(
        &store.conn,
        "WITH people AS (
             SELECT e.contact_id AS id FROM event_classes ec JOIN enrollments e ON e.class_id = ec.class_id WHERE ec.event_id = ?1
             UNION SELECT t.contact_id FROM event_classes ec JOIN class_teachers t ON t.class_id = ec.class_id WHERE ec.event_id = ?1
             UNION SELECT r.parent_id FROM event_classes ec JOIN enrollments e ON e.class_id = ec.class_id
                   JOIN relationships r ON r.student_id = e.contact_id WHERE ec.event_id = ?1)
         SELECT c.id, c.role, c.first_name, c.last_name, c.email, c.phone, c.room, c.access_level, c.active,
                coalesce((SELECT group_concat(source || ':' || kind || '=' || value, ' ') FROM contact_ids WHERE contact_id = c.id), '')
         FROM contacts c JOIN people ON people.id = c.id ORDER BY c.role, c.last_name, c.first_name",
        event.id,
    )?;
    let io = |e: std::io::Error| CliError::new(format!("cannot write to {}: {e}", dir.display()));
    write_csv(
        &dir.join("classes.csv"),
        &[
            "id",
            "source",
            "source_id",
            "name",
            "term",
            "group",
            "appointments_per_parent",
            "type",
            "active",
        ],
        classes.clone(),
    )
    .map_err(io)?;
    write_csv(
        &dir.join("enrollments.csv"),
        &[
            "class_source_id",
            "class",
            "contact_id",
            "first_name",
            "last_name",
            "role",
            "active",
        ],
        enrollments.clone(),
    )
    .map_err(io)?;
    write_csv(
        &dir.join("contacts.csv"),
        &[
            "id",
            "role",
            "first_name",
            "last_name",
            "email",
            "phone",
            "room",
            "access_level",
            "active",
            "ids",
        ],
        contacts.clone(),
    )
    .map_err(io)?;
    crate::outln!(
        "exported `{}` to {}: {} classes, {} enrollments and teacher links, {} contacts",
        event.name,
        dir.display(),
        classes.len(),
        enrollments.len(),
        contacts.len()
    );
    Ok(())
}
