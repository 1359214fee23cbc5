//! A minimal roster plugin: one school and its students, read from `people.txt`
//! (one student per line: `id,first,last`).

use std::path::PathBuf;

use roster_core::record::{Entity, Identifier, Person, Record, Role, School, Snapshot};
use roster_core::sdk::{Host, OpenContext, Plugin, RecordSource};
use roster_core::PluginError;
use serde::Deserialize;

/// The source's table in importer.toml, minus `name` and `plugin`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The folder holding people.txt, relative to importer.toml.
    path: PathBuf,
    #[serde(default = "default_school")]
    school: String,
}

fn default_school() -> String {
    "Example School".to_string()
}

/// Records per batch: small here so that cancellation between batches is easy to see.
const BATCH: usize = 100;
const SCHOOL_ID: &str = "school";

pub struct ExamplePlugin;

impl Plugin for ExamplePlugin {
    const NAME: &'static str = "example-guide";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Students from a people.txt file (the guide's example)";

    fn open(config: &str, ctx: OpenContext) -> Result<Box<dyn RecordSource>, PluginError> {
        // serde names the key in its message: "unknown field `pth`, expected `path` or `school`".
        let config: Config = toml::from_str(config)
            .map_err(|e| PluginError::config(e.message().trim().to_string()))?;
        let shown = config.path.join("people.txt").display().to_string();
        let text = std::fs::read_to_string(ctx.base_dir.join(&config.path).join("people.txt"))
            .map_err(|e| {
                PluginError::input(format!("cannot read the file: {e}"))
                    .at(shown.clone())
                    .with_hint("`path` must name the folder that holds people.txt")
            })?;

        // Dependency order: the school first, then the people who refer to it.
        let mut records: Vec<Record> = vec![School {
            source_id: SCHOOL_ID.to_string(),
            name: config.school,
            ..Default::default()
        }
        .into()];
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let at = format!("{shown}:{}:1", index + 1);
            let [id, first, last] = fields[..] else {
                return Err(PluginError::input(format!(
                    "expected `id,first,last`, found {} fields",
                    fields.len()
                ))
                .at(at)
                .with_hint("one student per line"));
            };
            if id.is_empty() {
                return Err(PluginError::input("empty id").at(at));
            }
            records.push(
                Person {
                    source_id: id.to_string(),
                    role: Role::Student as i32,
                    first_name: first.to_string(),
                    last_name: last.to_string(),
                    school_ids: vec![SCHOOL_ID.to_string()],
                    identifiers: vec![Identifier {
                        kind: "StudentID".to_string(),
                        value: id.to_string(),
                    }],
                    ..Default::default()
                }
                .into(),
            );
        }
        // The file is complete: students missing from it are deactivated.
        records.push(Snapshot::of(&[Entity::Schools, Entity::Students]).into());
        let total = records.len() as u64;
        Ok(Box::new(Source {
            host: ctx.host,
            records: records.into_iter(),
            sent: 0,
            total,
        }))
    }
}

struct Source {
    host: Host,
    records: std::vec::IntoIter<Record>,
    sent: u64,
    total: u64,
}

impl RecordSource for Source {
    fn next_batch(&mut self) -> Result<Option<Vec<Record>>, PluginError> {
        self.host.check_cancelled()?;
        let batch: Vec<Record> = self.records.by_ref().take(BATCH).collect();
        self.sent += batch.len() as u64;
        self.host
            .progress("people.txt", self.sent, Some(self.total));
        Ok((!batch.is_empty()).then_some(batch))
    }
}

roster_core::export_plugin!(ExamplePlugin);
