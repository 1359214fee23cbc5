//! `roster browse`: the Data Browser. Terms, a term's sections and one section's members,
//! read straight from a source before anything is imported (nothing is written), or from
//! what the database already holds.

use std::collections::{BTreeMap, HashMap};

use roster_core::record::Kind;

use crate::cli::{BrowseCommand, BrowseFrom};
use crate::error::CliError;
use crate::jobs::{open_source, Env};
use crate::store::Store;
use crate::ui::table;

pub fn run(env: &Env, command: &BrowseCommand) -> Result<(), CliError> {
    let from = match command {
        BrowseCommand::Terms { from }
        | BrowseCommand::Sections { from, .. }
        | BrowseCommand::Section { from, .. } => from,
    };
    let view = match from_source(env, from)? {
        Some(source) => View::from_source(env, &source)?,
        None => View::from_db(env)?,
    };
    match command {
        BrowseCommand::Terms { .. } => view.print_terms(),
        BrowseCommand::Sections { term, .. } => view.print_sections(term.as_deref())?,
        BrowseCommand::Section { id, .. } => view.print_section(id)?,
    }
    Ok(())
}

/// `--source NAME`, or the only source in the config when neither flag is given.
fn from_source(env: &Env, from: &BrowseFrom) -> Result<Option<String>, CliError> {
    if from.db {
        return Ok(None);
    }
    if let Some(source) = &from.source {
        return Ok(Some(source.clone()));
    }
    match env.config.sources.as_slice() {
        [only] => Ok(Some(only.name.clone())),
        _ => Err(
            CliError::new("say where to browse: --source NAME or --db").with_hint(format!(
                "sources: {}",
                env.config
                    .sources
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ),
    }
}

#[derive(Default)]
struct TermView {
    id: String,
    name: String,
    start: String,
    end: String,
}

#[derive(Default)]
struct SectionView {
    id: String,
    name: String,
    term: Option<String>,
    teachers: Vec<String>,
    students: Vec<String>,
}

/// Everything the three views show, gathered from one source pass or from the database.
#[derive(Default)]
struct View {
    terms: Vec<TermView>,
    sections: BTreeMap<String, SectionView>,
    names: HashMap<String, String>,
}

impl View {
    fn from_source(env: &Env, source: &str) -> Result<View, CliError> {
        let (mut records, context) = open_source(env, source)?;
        let mut view = View::default();
        let mut count = 0u64;
        while let Some(batch) = records
            .next_batch()
            .map_err(|error| CliError::new(format!("source `{source}`: {error}")))?
        {
            for record in batch {
                count += 1;
                match record.kind {
                    Some(Kind::Term(t)) => view.terms.push(TermView {
                        id: t.source_id,
                        name: t.name,
                        start: t.start_date.unwrap_or_default(),
                        end: t.end_date.unwrap_or_default(),
                    }),
                    Some(Kind::Class(c)) => {
                        view.sections.insert(
                            c.source_id.clone(),
                            SectionView {
                                id: c.source_id,
                                name: c.name,
                                term: c.term_id,
                                ..Default::default()
                            },
                        );
                    }
                    Some(Kind::Person(p)) => {
                        let name = format!("{} {}", p.first_name, p.last_name)
                            .trim()
                            .to_string();
                        view.names.insert(p.source_id, name);
                    }
                    Some(Kind::ClassTeacher(link)) => {
                        if let Some(section) = view.sections.get_mut(&link.class_id) {
                            section.teachers.push(link.teacher_id);
                        }
                    }
                    Some(Kind::Enrollment(link)) => {
                        if let Some(section) = view.sections.get_mut(&link.class_id) {
                            section.students.push(link.student_id);
                        }
                    }
                    _ => {}
                }
            }
            crate::pipeline::Progress::records(context.as_ref(), count);
        }
        context.finish();
        Ok(view)
    }

    fn from_db(env: &Env) -> Result<View, CliError> {
        let store = Store::open_read_only(&env.config.database)?;
        let conn = &store.conn;
        let mut view = View::default();
        let mut statement = conn.prepare(
            "SELECT CAST(id AS TEXT), name, coalesce(start_date, ''), coalesce(end_date, '') FROM terms WHERE active = 1",
        )?;
        view.terms = statement
            .query_map([], |r| {
                Ok(TermView {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    start: r.get(2)?,
                    end: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut statement = conn.prepare(
            "SELECT CAST(id AS TEXT), name, CAST(term_id AS TEXT) FROM classes WHERE active = 1",
        )?;
        for row in
            statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))?
        {
            let (id, name, term) = row?;
            view.sections.insert(
                id.clone(),
                SectionView {
                    id,
                    name,
                    term,
                    ..Default::default()
                },
            );
        }
        for (sql, teachers) in [
            ("SELECT CAST(class_id AS TEXT), CAST(contact_id AS TEXT) FROM class_teachers WHERE active = 1", true),
            ("SELECT CAST(class_id AS TEXT), CAST(contact_id AS TEXT) FROM enrollments WHERE active = 1", false),
        ] {
            let mut statement = conn.prepare(sql)?;
            for row in statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
                let (class, contact) = row?;
                if let Some(section) = view.sections.get_mut(&class) {
                    if teachers { section.teachers.push(contact) } else { section.students.push(contact) }
                }
            }
        }
        let mut statement = conn.prepare(
            "SELECT CAST(id AS TEXT), trim(first_name || ' ' || last_name) FROM contacts",
        )?;
        for row in
            statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        {
            let (id, name) = row?;
            view.names.insert(id, name);
        }
        Ok(view)
    }

    fn name(&self, id: &str) -> String {
        self.names
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("({id})"))
    }

    fn print_terms(&self) {
        let rows: Vec<Vec<String>> = self
            .terms
            .iter()
            .map(|t| {
                let sections = self
                    .sections
                    .values()
                    .filter(|s| s.term.as_deref() == Some(t.id.as_str()))
                    .count();
                vec![
                    t.id.clone(),
                    t.name.clone(),
                    t.start.clone(),
                    t.end.clone(),
                    sections.to_string(),
                ]
            })
            .collect();
        crate::outln!(
            "{}",
            table(&["id", "term", "start", "end", "sections"], &rows)
        );
        let without = self.sections.values().filter(|s| s.term.is_none()).count();
        if without > 0 {
            crate::outln!("\n{without} section(s) have no term");
        }
    }

    fn print_sections(&self, term: Option<&str>) -> Result<(), CliError> {
        let term_id = match term {
            None => None,
            Some(wanted) => Some(
                self.terms
                    .iter()
                    .find(|t| t.id == wanted || t.name.eq_ignore_ascii_case(wanted))
                    .map(|t| t.id.clone())
                    .ok_or_else(|| {
                        CliError::new(format!("no term `{wanted}`")).with_hint(format!(
                            "terms: {}",
                            self.terms
                                .iter()
                                .map(|t| t.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })?,
            ),
        };
        let rows: Vec<Vec<String>> = self
            .sections
            .values()
            .filter(|s| term_id.is_none() || s.term == term_id)
            .map(|s| {
                let teachers: Vec<String> = s.teachers.iter().map(|t| self.name(t)).collect();
                vec![
                    s.id.clone(),
                    s.name.clone(),
                    teachers.join(", "),
                    s.students.len().to_string(),
                ]
            })
            .collect();
        crate::outln!(
            "{}",
            table(&["id", "section", "teachers", "students"], &rows)
        );
        Ok(())
    }

    fn print_section(&self, id: &str) -> Result<(), CliError> {
        let section = self.sections.get(id).ok_or_else(|| {
            CliError::new(format!("no section `{id}`"))
                .with_hint("`roster browse sections` lists them with their ids")
        })?;
        crate::outln!("{} ({})", section.name, section.id);
        let mut rows: Vec<Vec<String>> = section
            .teachers
            .iter()
            .map(|t| vec!["teacher".into(), t.clone(), self.name(t)])
            .collect();
        rows.extend(
            section
                .students
                .iter()
                .map(|s| vec!["student".into(), s.clone(), self.name(s)]),
        );
        crate::outln!("{}", table(&["role", "id", "name"], &rows));
        Ok(())
    }
}
