//! `roster classes`: the Class Editor of one event.

use rusqlite::params;

use crate::cli::{ClassIdsArgs, ClassesCommand};
use crate::commands::events::require;
use crate::config::Config;
use crate::error::CliError;
use crate::store::Store;
use crate::ui::{confirm, table};

pub fn run(config: &Config, command: &ClassesCommand) -> Result<(), CliError> {
    let store = Store::open(&config.database)?;
    match command {
        ClassesCommand::List { event } => list(&store, event),
        ClassesCommand::Delete(args) => change(&store, args, Change::Delete),
        ClassesCommand::Hide(args) => change(&store, args, Change::Hide),
        ClassesCommand::Unhide(args) => change(&store, args, Change::Unhide),
    }
}

fn list(store: &Store, event: &str) -> Result<(), CliError> {
    let event = require(store, event)?;
    let mut statement = store.conn.prepare(
        "SELECT c.id, c.source_id, c.name, coalesce(t.name, ''),
                coalesce((SELECT group_concat(p.first_name || ' ' || p.last_name, ', ')
                          FROM class_teachers ct JOIN contacts p ON p.id = ct.contact_id
                          WHERE ct.class_id = c.id AND ct.active = 1), ''),
                (SELECT count(*) FROM enrollments e WHERE e.class_id = c.id AND e.active = 1),
                ec.hidden, c.active
         FROM event_classes ec JOIN classes c ON c.id = ec.class_id
         LEFT JOIN terms t ON t.id = c.term_id
         WHERE ec.event_id = ?1 ORDER BY c.name, c.id",
    )?;
    let rows: Vec<Vec<String>> = statement
        .query_map([event.id], |r| {
            let hidden: bool = r.get(6)?;
            let active: bool = r.get(7)?;
            Ok(vec![
                r.get::<_, i64>(0)?.to_string(),
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get::<_, i64>(5)?.to_string(),
                match (hidden, active) {
                    (_, false) => "inactive",
                    (true, true) => "hidden",
                    (false, true) => "shown",
                }
                .to_string(),
            ])
        })?
        .collect::<Result<_, _>>()?;
    crate::outln!(
        "{}",
        table(
            &[
                "id",
                "source id",
                "class",
                "term",
                "teachers",
                "students",
                "type"
            ],
            &rows
        )
    );
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
enum Change {
    Delete,
    Hide,
    Unhide,
}

/// A class named by its database id or its source id, among the event's classes.
fn resolve(store: &Store, event_id: i64, id: &str) -> Result<(i64, String), CliError> {
    let mut statement = store.conn.prepare(
        "SELECT c.id, c.name FROM event_classes ec JOIN classes c ON c.id = ec.class_id
         WHERE ec.event_id = ?1 AND (CAST(c.id AS TEXT) = ?2 OR c.source_id = ?2)",
    )?;
    let found: Vec<(i64, String)> = statement
        .query_map(params![event_id, id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    match found.len() {
        1 => Ok(found.into_iter().next().expect("one")),
        0 => Err(CliError::new(format!("the event has no class `{id}`"))
            .with_hint("`roster classes list --event NAME` shows its classes with their ids")),
        _ => Err(CliError::new(format!(
            "`{id}` names {} classes of the event; use the database id",
            found.len()
        ))),
    }
}

fn change(store: &Store, args: &ClassIdsArgs, change: Change) -> Result<(), CliError> {
    let event = require(store, &args.event)?;
    let mut classes = Vec::new();
    for id in &args.ids {
        classes.push(resolve(store, event.id, id)?);
    }
    if change == Change::Delete {
        eprintln!("These classes will be removed from `{}` (the next sync brings them back; hide keeps them out):", event.name);
        for (id, name) in &classes {
            eprintln!("  {id}  {name}");
        }
        confirm(&format!("Remove {} class(es)?", classes.len()), args.yes)?;
    }
    let tx = store.conn.unchecked_transaction()?;
    for (id, _) in &classes {
        match change {
            Change::Delete => tx.execute(
                "DELETE FROM event_classes WHERE event_id = ?1 AND class_id = ?2",
                params![event.id, id],
            )?,
            Change::Hide | Change::Unhide => tx.execute(
                "UPDATE event_classes SET hidden = ?3 WHERE event_id = ?1 AND class_id = ?2",
                params![event.id, id, change == Change::Hide],
            )?,
        };
    }
    tx.commit()?;
    let verb = match change {
        Change::Delete => "removed",
        Change::Hide => "hid",
        Change::Unhide => "unhid",
    };
    crate::outln!("{verb} {} class(es) in `{}`", classes.len(), event.name);
    Ok(())
}
