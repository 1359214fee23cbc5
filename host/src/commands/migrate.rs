//! `roster migrate`: the switch from manual files to a new source (Clever), previewed.
//!
//! The preview is the real import under the `link` policy, rolled back: it shows who is
//! linked to an existing contact (and why), who is new, what conflicts stop the switch,
//! and which existing contacts the new source does not have (left behind: they stay, but
//! the next steps of a clean slate would remove them). `--apply` then runs it for real.

use rusqlite::params;

use crate::cli::MigrateArgs;
use crate::commands::events::require;
use crate::config::DedupePolicy;
use crate::error::CliError;
use crate::jobs::{Env, RunKind, Runner};
use crate::pipeline::dedupe::Rule;
use crate::store::Store;
use crate::ui::{confirm, table};

pub fn run(env: &Env, args: &MigrateArgs) -> Result<(), CliError> {
    let mut store = Store::open(&env.config.database)?;
    let _writer = store.lock_writer()?;
    let mut event = require(&store, &args.event)?;
    if let Some(source) = &args.source {
        if env.config.source(source).is_none() {
            return Err(CliError::new(format!("no [[source]] named `{source}`")));
        }
        event.source = Some(source.clone());
    }
    let job = event.job().ok_or_else(|| {
        CliError::new(format!(
            "event `{}` has no source; pass --source",
            event.name
        ))
    })?;
    let mut runner = Runner::new(env);
    runner.dedupe = Some(DedupePolicy::Link);
    let preview = runner.run(&mut store, &job, RunKind::Import, true);
    let summary = match preview {
        Ok(summary) => summary,
        Err(error) => {
            return Err(CliError {
                message: format!("the switch cannot be made yet: {}", error.message),
                hint: error.hint,
            })
        }
    };
    let linked = summary
        .findings
        .iter()
        .filter(|f| f.rule == Rule::CrossSource)
        .count();
    let new_people: u64 = ["students", "teachers", "parents", "staff"]
        .iter()
        .map(|e| {
            summary
                .entities
                .iter()
                .find(|(k, _)| k.label() == *e)
                .map(|(_, c)| c.inserted)
                .unwrap_or(0)
        })
        .sum();
    let source = job.source.clone();
    let mut statement = store.conn.prepare(
        "SELECT role, count(*) FROM contacts c WHERE c.active = 1
           AND NOT EXISTS (SELECT 1 FROM contact_sources s WHERE s.contact_id = c.id AND s.source = ?1)
         GROUP BY role ORDER BY role",
    )?;
    let not_in_new: Vec<(String, i64)> = statement
        .query_map(params![source], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    drop(statement);
    let mut left_by_role: Vec<Vec<String>> = Vec::new();
    for (role, count) in &not_in_new {
        let linked_here = summary
            .findings
            .iter()
            .filter(|f| {
                f.rule == Rule::CrossSource && f.existing.as_ref().is_some_and(|e| &e.role == role)
            })
            .count() as i64;
        left_by_role.push(vec![role.clone(), (count - linked_here).max(0).to_string()]);
    }
    crate::outln!("Switching `{}` to source `{source}`:", event.name);
    crate::outln!("  linked to existing contacts  {linked}");
    crate::outln!("  new contacts                 {new_people}");
    crate::outln!("  left behind (not in `{source}`):");
    crate::outln!("{}", table(&["role", "contacts"], &left_by_role));
    if !args.apply {
        crate::outln!("\nnothing was changed; run again with --apply to make the switch");
        return Ok(());
    }
    confirm(
        &format!("Switch `{}` to `{source}` now?", event.name),
        args.yes,
    )?;
    store.conn.execute(
        "UPDATE events SET source = ?2 WHERE id = ?1",
        params![event.id, source],
    )?;
    runner.run(&mut store, &job, RunKind::Import, false)?;
    crate::outln!("switched `{}` to `{source}`", event.name);
    Ok(())
}
