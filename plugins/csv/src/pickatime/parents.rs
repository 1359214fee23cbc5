//! The Parent file, read twice: once to work out which rows describe the same contact
//! (same ParentID, or same Email), once to emit each contact from its last row. Two
//! passes keep memory to an index of ids instead of every parent record.

use std::collections::HashMap;

use roster_core::record::{Person, Record, Role};
use roster_core::sdk::Host;
use roster_core::PluginError;

use super::people::{attributes, identifier, non_empty, required};
use super::{Reader, Roster};
use crate::config::Delimiter;
use crate::table::{DataFile, Table};

const COLUMNS: [&str; 4] = ["ParentID", "First", "Last", "Email"];

/// Every ParentID of the file and the contact it belongs to.
pub struct ParentIndex {
    ids: HashMap<String, usize>,
    names: Vec<String>,
    /// Union-find over ParentIDs; a group's root is its earliest ParentID.
    parent: Vec<usize>,
}

impl ParentIndex {
    /// The contact a ParentID belongs to: its dense number and its source id.
    pub fn resolve(&self, id: &str) -> Option<(usize, &str)> {
        let root = self.root(*self.ids.get(id)?);
        Some((root, &self.names[root]))
    }

    fn root(&self, mut node: usize) -> usize {
        while self.parent[node] != node {
            node = self.parent[node];
        }
        node
    }
}

pub struct Parents {
    table: Table,
    columns: [usize; 4],
    other: Vec<(usize, String)>,
    /// The line each contact is emitted from (its group's last row), with its root.
    emit_at: HashMap<u64, usize>,
    /// The other ParentIDs of each merged contact, by root.
    aliases: HashMap<usize, Vec<String>>,
    names: Vec<String>,
    school_id: String,
}

impl Parents {
    pub fn open(
        file: &DataFile,
        delimiter: Delimiter,
        host: &Host,
        school_id: &str,
    ) -> Result<(ParentIndex, Parents), PluginError> {
        let mut first_pass = Table::open(file, delimiter, host, &[])?;
        let columns: [usize; 4] = first_pass
            .require(&COLUMNS)?
            .try_into()
            .expect("one index per name");
        let (index, last_line) = build_index(&mut first_pass, columns, host)?;

        let mut emit_at = HashMap::new();
        let mut group_last: HashMap<usize, u64> = HashMap::new();
        let mut aliases: HashMap<usize, Vec<String>> = HashMap::new();
        for (node, &line) in last_line.iter().enumerate() {
            let root = index.root(node);
            let last = group_last.entry(root).or_insert(line);
            *last = (*last).max(line);
            if root != node {
                aliases
                    .entry(root)
                    .or_default()
                    .push(index.names[node].clone());
            }
        }
        for (root, line) in group_last {
            emit_at.insert(line, root);
        }
        let table = Table::open(file, delimiter, host, &[])?.quiet();
        let reader = Parents {
            other: table.other_columns(&COLUMNS),
            table,
            columns,
            emit_at,
            aliases,
            names: index.names.clone(),
            school_id: school_id.to_string(),
        };
        Ok((index, reader))
    }
}

/// The first pass: ids, merges by email, and each ParentID's last line.
fn build_index(
    table: &mut Table,
    columns: [usize; 4],
    host: &Host,
) -> Result<(ParentIndex, Vec<u64>), PluginError> {
    let [id_column, _, _, email_column] = columns;
    let mut index = ParentIndex {
        ids: HashMap::new(),
        names: Vec::new(),
        parent: Vec::new(),
    };
    let mut first_line: Vec<u64> = Vec::new();
    let mut last_line: Vec<u64> = Vec::new();
    let mut emails: HashMap<String, usize> = HashMap::new();
    while let Some(row) = table.next_row()? {
        let id = required(table, &row, id_column, "ParentID")?;
        let node = match index.ids.get(id) {
            Some(&node) => {
                host.info(&format!(
                    "{}:{}: ParentID `{id}` repeats line {}; the later row updates the contact",
                    table.file.shown, row.line, first_line[node]
                ));
                node
            }
            None => {
                let node = index.names.len();
                index.ids.insert(id.to_string(), node);
                index.names.push(id.to_string());
                index.parent.push(node);
                first_line.push(row.line);
                last_line.push(row.line);
                node
            }
        };
        last_line[node] = row.line;
        let email = row.get(email_column).to_lowercase();
        if email.is_empty() {
            continue;
        }
        match emails.get(&email) {
            None => {
                emails.insert(email, node);
            }
            Some(&owner) => {
                let (a, b) = (index.root(owner), index.root(node));
                if a != b {
                    let (root, merged) = (a.min(b), a.max(b));
                    index.parent[merged] = root;
                    host.info(&format!(
                        "{}:{}: ParentID `{}` has the same Email as ParentID `{}` (line {}); merged into one contact `{}`",
                        table.file.shown,
                        row.line,
                        index.names[node],
                        index.names[owner],
                        first_line[owner],
                        index.names[root]
                    ));
                }
            }
        }
    }
    Ok((index, last_line))
}

impl Reader for Parents {
    fn next(&mut self, _roster: &mut Roster) -> Result<Option<Record>, PluginError> {
        let [_, first, last, email] = self.columns;
        while let Some(row) = self.table.next_row()? {
            let Some(&root) = self.emit_at.get(&row.line) else {
                continue;
            };
            let id = &self.names[root];
            let mut identifiers = vec![identifier("ParentID", id)];
            for alias in self.aliases.get(&root).into_iter().flatten() {
                identifiers.push(identifier("ParentID", alias));
            }
            let person = Person {
                source_id: id.clone(),
                role: Role::Parent as i32,
                first_name: row.get(first).to_string(),
                last_name: row.get(last).to_string(),
                email: non_empty(row.get(email)),
                school_ids: vec![self.school_id.clone()],
                identifiers,
                attributes: attributes(&row, &self.other),
                ..Default::default()
            };
            return Ok(Some(person.into()));
        }
        Ok(None)
    }

    fn progress(&self) -> Option<(&str, u64)> {
        Some((&self.table.file.name, self.table.rows))
    }
}
