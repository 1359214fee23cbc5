//! `roster fees`: the schools attached to events and what the integration costs a year.

use crate::cli::FeesArgs;
use crate::config::Config;
use crate::error::CliError;
use crate::store::Store;
use crate::ui::table;

pub fn run(config: &Config, args: &FeesArgs) -> Result<(), CliError> {
    let fee = args.per_school.unwrap_or(config.fees.per_school) as u64;
    let store = Store::open(&config.database)?;
    let mut statement = store.conn.prepare(
        "SELECT s.name, s.source, group_concat(DISTINCT e.name)
         FROM schools s
         JOIN classes c ON c.school_id = s.id AND c.active = 1
         JOIN event_classes ec ON ec.class_id = c.id
         JOIN events e ON e.id = ec.event_id
         WHERE s.active = 1
         GROUP BY s.id ORDER BY s.name",
    )?;
    let rows: Vec<Vec<String>> = statement
        .query_map([], |r| {
            Ok(vec![r.get(0)?, r.get(1)?, r.get(2)?, format!("${fee}")])
        })?
        .collect::<Result<_, _>>()?;
    crate::outln!(
        "{}",
        table(&["school", "source", "events", "yearly fee"], &rows)
    );
    let count = rows.len() as u64;
    crate::outln!(
        "\n{count} school{} attached × ${fee} = ${} a year",
        if count == 1 { "" } else { "s" },
        count * fee
    );
    Ok(())
}
