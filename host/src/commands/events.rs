//! `roster events`: create (optionally from a template), list, show, delete.

use rusqlite::params;

use crate::cli::{CreateEventArgs, DeleteEventsArgs, EventsCommand};
use crate::config::Config;
use crate::error::CliError;
use crate::events::{self, EventRow};
use crate::store::Store;
use crate::ui::{confirm, table};

pub fn run(config: &Config, command: &EventsCommand) -> Result<(), CliError> {
    let store = Store::open(&config.database)?;
    match command {
        EventsCommand::List => list(&store),
        EventsCommand::Show { name } => show(&store, name),
        EventsCommand::Create(args) => create(config, &store, args),
        EventsCommand::Delete(args) => delete(&store, args),
    }
}

pub fn require(store: &Store, name: &str) -> Result<EventRow, CliError> {
    events::get(&store.conn, name)?.ok_or_else(|| {
        let known: Vec<String> = events::list(&store.conn)
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.name)
            .collect();
        CliError::new(format!("no event named `{name}`")).with_hint(if known.is_empty() {
            "there are no events yet; `roster import` creates the config's events".to_string()
        } else {
            format!("events: {}", known.join(", "))
        })
    })
}

fn list(store: &Store) -> Result<(), CliError> {
    let mut rows = Vec::new();
    for event in events::list(&store.conn)? {
        let classes: i64 = store.conn.query_row(
            "SELECT count(*) FROM event_classes WHERE event_id = ?1",
            [event.id],
            |r| r.get(0),
        )?;
        rows.push(vec![
            event.name,
            event.source.unwrap_or_default(),
            if event.sync_enabled { "on" } else { "off" }.to_string(),
            classes.to_string(),
            event.created_at,
        ]);
    }
    crate::outln!(
        "{}",
        table(&["event", "source", "sync", "classes", "created"], &rows)
    );
    Ok(())
}

fn show(store: &Store, name: &str) -> Result<(), CliError> {
    let event = require(store, name)?;
    let (classes, hidden): (i64, i64) = store.conn.query_row(
        "SELECT count(*), coalesce(sum(hidden), 0) FROM event_classes WHERE event_id = ?1",
        [event.id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    crate::outln!("event    {}", event.name);
    crate::outln!("source   {}", event.source.as_deref().unwrap_or("(none)"));
    crate::outln!("school   {}", event.school.as_deref().unwrap_or("(all)"));
    crate::outln!(
        "terms    {}",
        event
            .terms
            .as_ref()
            .map(|t| t.join(", "))
            .unwrap_or_else(|| "(all)".into())
    );
    crate::outln!("sync     {}", if event.sync_enabled { "on" } else { "off" });
    crate::outln!("classes  {classes} ({hidden} hidden)");
    crate::outln!("created  {}", event.created_at);
    let mut statement = store.conn.prepare(
        "SELECT kind, started_at, status, coalesce(error, '') FROM sync_runs
         WHERE event_id = ?1 ORDER BY id DESC LIMIT 5",
    )?;
    let runs: Vec<Vec<String>> = statement
        .query_map([event.id], |r| {
            Ok(vec![r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?])
        })?
        .collect::<Result<_, _>>()?;
    if !runs.is_empty() {
        crate::outln!("\n{}", table(&["run", "started", "status", "error"], &runs));
    }
    Ok(())
}

fn create(config: &Config, store: &Store, args: &CreateEventArgs) -> Result<(), CliError> {
    if events::get(&store.conn, &args.name)?.is_some() {
        return Err(CliError::new(format!(
            "an event named `{}` already exists",
            args.name
        )));
    }
    if let Some(template) = &args.from {
        let template = require(store, template)?;
        events::create_from(&store.conn, &args.name, &template)?;
        crate::outln!("created `{}` from `{}`", args.name, template.name);
        return Ok(());
    }
    let source = args
        .source
        .as_deref()
        .ok_or_else(|| CliError::new("a new event needs --source (or --from TEMPLATE)"))?;
    if config.source(source).is_none() {
        return Err(CliError::new(format!(
            "no [[source]] named `{source}` in {}",
            config.path.display()
        )));
    }
    let terms =
        (!args.terms.is_empty()).then(|| serde_json::to_string(&args.terms).expect("strings"));
    store.conn.execute(
        "INSERT INTO events (name, source, school, terms, sync_enabled) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![args.name, source, args.school, terms, args.sync],
    )?;
    crate::outln!(
        "created `{}`; run `roster sync run --event \"{}\"` to import into it",
        args.name,
        args.name
    );
    Ok(())
}

fn delete(store: &Store, args: &DeleteEventsArgs) -> Result<(), CliError> {
    let all = events::list(&store.conn)?;
    let doomed: Vec<&EventRow> = match &args.all_except {
        Some(keep) => {
            require(store, keep)?;
            all.iter().filter(|e| &e.name != keep).collect()
        }
        None => {
            if args.names.is_empty() {
                return Err(CliError::new(
                    "name the events to delete, or pass --all-except EVENT",
                ));
            }
            let mut doomed = Vec::new();
            for name in &args.names {
                require(store, name)?;
                doomed.extend(all.iter().filter(|e| &e.name == name));
            }
            doomed
        }
    };
    if doomed.is_empty() {
        crate::outln!("no events to delete");
        return Ok(());
    }
    eprintln!("These events will be deleted (classes stay in the roster, contacts are untouched):");
    for event in &doomed {
        eprintln!("  {}", event.name);
    }
    confirm(&format!("Delete {} event(s)?", doomed.len()), args.yes)?;
    let tx = store.conn.unchecked_transaction()?;
    for event in &doomed {
        tx.execute("DELETE FROM events WHERE id = ?1", [event.id])?;
    }
    tx.commit()?;
    crate::outln!("deleted {} event(s)", doomed.len());
    Ok(())
}
