//! `roster contacts`: the account's contacts, and the clean-slate deletion by access level.

use crate::cli::ContactsCommand;
use crate::config::{AccessLevel, Config};
use crate::error::CliError;
use crate::store::Store;
use crate::ui::{confirm, table};

const LEVELS: [AccessLevel; 6] = [
    AccessLevel::Customer,
    AccessLevel::AppointmentViewer,
    AccessLevel::AppointmentMaker,
    AccessLevel::ResourceAdmin,
    AccessLevel::EventAdmin,
    AccessLevel::Admin,
];

pub fn run(config: &Config, command: &ContactsCommand) -> Result<(), CliError> {
    let store = Store::open(&config.database)?;
    match command {
        ContactsCommand::List => {
            crate::outln!(
                "{}",
                table(
                    &["level", "role", "contacts", "active"],
                    &counts(&store, AccessLevel::Admin)?
                )
            );
            Ok(())
        }
        ContactsCommand::Delete { level, yes } => delete(&store, *level, *yes),
    }
}

fn levels_up_to(level: AccessLevel) -> Vec<&'static str> {
    LEVELS
        .iter()
        .filter(|l| **l <= level)
        .map(|l| l.as_str())
        .collect()
}

fn counts(store: &Store, level: AccessLevel) -> Result<Vec<Vec<String>>, CliError> {
    let mut rows = Vec::new();
    for name in levels_up_to(level) {
        let mut statement = store.conn.prepare(
            "SELECT role, count(*), sum(active) FROM contacts WHERE access_level = ?1 GROUP BY role ORDER BY role",
        )?;
        for row in statement.query_map([name], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })? {
            let (role, all, active) = row?;
            rows.push(vec![
                name.to_string(),
                role,
                all.to_string(),
                active.to_string(),
            ]);
        }
    }
    Ok(rows)
}

fn delete(store: &Store, level: AccessLevel, yes: bool) -> Result<(), CliError> {
    let rows = counts(store, level)?;
    let total: i64 = rows.iter().map(|r| r[2].parse::<i64>().unwrap_or(0)).sum();
    if total == 0 {
        crate::outln!("no contacts at {} or below", level.as_str());
        return Ok(());
    }
    eprintln!(
        "These contacts will be deleted for good, with their ids, enrollments and relationships\n(administrators are kept; export reports first with `roster export`):"
    );
    eprintln!("{}", table(&["level", "role", "contacts", "active"], &rows));
    confirm(&format!("Delete {total} contact(s)?"), yes)?;
    let levels = levels_up_to(level);
    let placeholders = vec!["?"; levels.len()].join(", ");
    let tx = store.conn.unchecked_transaction()?;
    let deleted = tx.execute(
        &format!("DELETE FROM contacts WHERE access_level IN ({placeholders})"),
        rusqlite::params_from_iter(levels.iter()),
    )?;
    tx.commit()?;
    crate::outln!("deleted {deleted} contact(s)");
    Ok(())
}
