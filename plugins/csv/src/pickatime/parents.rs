//! The Parent file, read twice: once to work out which rows describe the same contact
//! (same ParentID, or same Email), once to emit each contact from its last row. Two
//! passes keep memory to an index of ids instead of every parent record.
//!
//! A continuing run indexes only the rows around its changes (see [`Around`]): a contact
//! none of whose rows changed, and that shares no ParentID or email with a row that did,
//! is the contact it was in the last run, with the ParentIDs it had then. At nyc that is
//! a few tens of thousands of rows indexed instead of 1.8 million, each of those a cache
//! miss or two in tables of tens of MiB.

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use roster_core::record::{Person, Record, Role};
use roster_core::sdk::Host;
use roster_core::PluginError;

use super::changes::KeySet;
use super::people::{attributes, identifier, non_empty, required};
use super::{Reader, Roster};
use crate::hash::{FastBuild, FastMap, IdTable};
use crate::table::{DataFile, Row, RowsAt, Scanner, Table};
use crate::text::{Shared, TextFile};

const COLUMNS: [&str; 4] = ["ParentID", "First", "Last", "Email"];

/// Every ParentID of the file and the contact it belongs to.
pub struct ParentIndex {
    /// Every ParentID indexed, numbered densely in the order of the file.
    ids: IdTable,
    /// Union-find over ParentIDs; a group's root is its earliest ParentID.
    parent: Vec<u32>,
    /// In a continuing run that indexed the rows around its changes only: the others.
    beyond: Option<Beyond>,
}

/// What a continuing run knows of the ParentIDs it did not index: their rows did not
/// change and share no ParentID or email with one that did, so each has the contact it
/// had in the last run.
struct Beyond {
    /// The ParentIDs of the rows around the changes, whether the file still has them or
    /// not: one of these the index lacks is gone.
    around: KeySet,
    /// The last run's merged ParentIDs, with their contacts.
    old_roots: FastMap<Box<str>, Box<str>>,
    /// Whether the file has a ParentID, for those asked about (see [`ParentIndex::look_up`]).
    found: Mutex<FastMap<Box<str>, bool>>,
    /// The file's rows, to look ParentIDs up in.
    rows: Scanner,
    id_column: usize,
}

impl ParentIndex {
    /// The contact a ParentID belongs to (the ParentID that names it), if the file has
    /// that ParentID.
    pub fn resolve<'a>(&'a self, id: &'a str) -> Option<&'a str> {
        if let Some(node) = self.ids.get(id) {
            return Some(self.ids.name(self.root(node)));
        }
        let beyond = self.beyond.as_ref()?;
        if beyond.around.contains(id) {
            return None;
        }
        if let Some(root) = beyond.old_roots.get(id) {
            return Some(root);
        }
        self.has(id).then_some(id)
    }

    /// Looks `ids` up in the file at once, for [`ParentIndex::resolve`] to answer without
    /// a pass over the file each: one pass for all of them.
    pub fn look_up<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let Some(beyond) = &self.beyond else {
            return;
        };
        let mut found = beyond.found.lock().unwrap_or_else(|e| e.into_inner());
        let wanted: KeySet = ids
            .into_iter()
            .filter(|id| {
                self.ids.get(id).is_none()
                    && !beyond.around.contains(*id)
                    && !beyond.old_roots.contains_key(*id)
                    && !found.contains_key(*id)
            })
            .map(Box::from)
            .collect();
        if wanted.is_empty() {
            return;
        }
        let mut present = KeySet::default();
        beyond.rows.scan([beyond.id_column], |[id]| {
            if let Some(id) = wanted.get(id) {
                present.insert(id.clone());
            }
        });
        for id in wanted {
            let has = present.contains(&id);
            found.insert(id, has);
        }
    }

    /// Whether the file has `id`, a ParentID the index did not index.
    fn has(&self, id: &str) -> bool {
        let Some(beyond) = &self.beyond else {
            return false;
        };
        let known = beyond
            .found
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied();
        known.unwrap_or_else(|| {
            self.look_up([id]);
            beyond.found.lock().unwrap_or_else(|e| e.into_inner())[id]
        })
    }

    /// Every ParentID that belongs to one of `contacts`.
    pub fn ids_of(&self, contacts: &KeySet) -> KeySet {
        let roots = self.roots_of(contacts);
        let mut ids: KeySet = if roots.is_empty() {
            KeySet::default()
        } else {
            (0..self.ids.len())
                .filter(|&node| roots.contains(&self.root(node)))
                .map(|node| Box::from(self.ids.name(node)))
                .collect()
        };
        if let Some(beyond) = &self.beyond {
            let others: Vec<&str> = contacts
                .iter()
                .map(|c| &**c)
                .filter(|&c| self.ids.get(c).is_none() && self.resolve(c) == Some(c))
                .collect();
            if !others.is_empty() {
                ids.extend(others.iter().map(|&c| Box::from(c)));
                let others: HashSet<&str, FastBuild> = others.into_iter().collect();
                ids.extend(
                    beyond
                        .old_roots
                        .iter()
                        .filter(|&(alias, root)| {
                            others.contains(&**root) && !beyond.around.contains(&**alias)
                        })
                        .map(|(alias, _)| alias.clone()),
                );
            }
        }
        ids
    }

    /// The numbers of those of `contacts` that are contacts of the file (the root of
    /// their group), not merely ParentIDs.
    fn roots_of(&self, contacts: &KeySet) -> HashSet<usize, FastBuild> {
        contacts
            .iter()
            .filter_map(|id| {
                let node = self.ids.get(id)?;
                (self.root(node) == node).then_some(node)
            })
            .collect()
    }

    /// Each ParentID merged into another's contact, with that contact's ParentID.
    pub fn aliases(&self) -> Vec<(String, String)> {
        let mut aliases: Vec<(String, String)> = (0..self.ids.len())
            .filter_map(|node| {
                let root = self.root(node);
                (root != node).then(|| {
                    (
                        self.ids.name(node).to_string(),
                        self.ids.name(root).to_string(),
                    )
                })
            })
            .collect();
        if let Some(beyond) = &self.beyond {
            let mut kept: Vec<(String, String)> = beyond
                .old_roots
                .iter()
                .filter(|(alias, _)| !beyond.around.contains(&**alias))
                .map(|(alias, root)| (alias.to_string(), root.to_string()))
                .collect();
            kept.sort_unstable();
            aliases.extend(kept);
        }
        aliases
    }

    fn root(&self, mut node: usize) -> usize {
        while self.parent[node] as usize != node {
            node = self.parent[node] as usize;
        }
        node
    }
}

pub struct Parents {
    table: Table,
    columns: [usize; 4],
    other: Vec<(usize, String)>,
    /// The line each contact is emitted from (its group's last row), where that row
    /// starts, and the contact's root, in the order of the file; `next_emit` is the next
    /// one to come.
    emit_at: Vec<(u64, u64, usize)>,
    /// A continuing run's text: the rows it emits are read from it by their place,
    /// instead of reading the whole file again.
    rows_at: Option<RowsAt<Shared>>,
    /// The file's rows.
    rows: u64,
    next_emit: usize,
    /// The other ParentIDs of each merged contact, by root.
    aliases: FastMap<usize, Vec<usize>>,
    index: Arc<ParentIndex>,
    school_id: String,
    row: Row,
}

impl Parents {
    /// `first` and `again` are the same text, for the two passes. With `around`, a
    /// continuing run's changes, only the rows around them are indexed where the text
    /// can be scanned (see [`Around`]); otherwise every row.
    pub fn open(
        file: &DataFile,
        first: TextFile,
        again: impl FnOnce() -> Result<TextFile, PluginError>,
        host: &Host,
        school_id: &str,
        around: Option<Around>,
    ) -> Result<(Arc<ParentIndex>, Parents), PluginError> {
        let mut first_pass = Table::from_text(file, first, host, &[])?;
        let columns: [usize; 4] = first_pass
            .require(&COLUMNS)?
            .try_into()
            .expect("one index per name");
        let [id_column, _, _, email_column] = columns;
        let around = around.and_then(|around| {
            let rows = first_pass.scanner()?;
            let ids = around.ids_in(&rows, id_column, email_column);
            Some((around, ids, rows))
        });
        let (index, last_at) = match around {
            None => {
                let rows = first_pass.rows_hint();
                build_index(&mut first_pass, columns, host, rows, |table, row| {
                    table.read_row(row)
                })?
            }
            Some((around, ids, rows)) => {
                let (mut index, last_at) =
                    build_index(&mut first_pass, columns, host, ids.len(), |table, row| {
                        table.read_row_where(row, id_column, |id| ids.contains(id))
                    })?;
                index.beyond = Some(Beyond {
                    around: ids,
                    old_roots: around
                        .old_aliases
                        .into_iter()
                        .map(|(alias, root)| (alias.into(), root.into()))
                        .collect(),
                    found: Mutex::default(),
                    rows,
                    id_column,
                });
                (index, last_at)
            }
        };
        let rows = first_pass.rows;

        // Each group's last line, at its root: a root is its group's first node, so it
        // comes before the others and its own line is not needed after them.
        let mut group_last = last_at;
        let mut aliases: FastMap<usize, Vec<usize>> = FastMap::default();
        for node in 0..group_last.len() {
            let root = index.root(node);
            if root != node {
                group_last[root] = group_last[root].max(group_last[node]);
                aliases.entry(root).or_default().push(node);
            }
        }
        let mut emit_at: Vec<(u64, u64, usize)> = group_last
            .into_iter()
            .enumerate()
            .filter(|&(node, _)| index.root(node) == node)
            .map(|(root, (line, offset))| (line, offset, root))
            .collect();
        emit_at.sort_unstable();
        let index = Arc::new(index);
        let table = Table::from_text(file, again()?, host, &[])?.quiet();
        let reader = Parents {
            other: table.other_columns(&COLUMNS),
            table,
            columns,
            emit_at,
            rows,
            rows_at: None,
            next_emit: 0,
            aliases,
            index: index.clone(),
            school_id: school_id.to_string(),
            row: Row::default(),
        };
        Ok((index, reader))
    }
}

/// A continuing run's changes to the Parent file, to index only the rows around them.
pub struct Around {
    /// The ParentIDs of the rows added and gone.
    pub ids: KeySet,
    /// Their emails, as [`email_key`] compares them.
    pub emails: KeySet,
    /// The last run's merged ParentIDs, with their contacts.
    pub old_aliases: Vec<(String, String)>,
}

impl Around {
    /// Every ParentID of the rows around the changes: those that share a ParentID or an
    /// email with a changed row, or with such a row, and so on — found by passes over
    /// the file's cells until one finds nothing new (most often the first).
    fn ids_in(&self, rows: &Scanner, id_column: usize, email_column: usize) -> KeySet {
        let (mut ids, mut emails) = (self.ids.clone(), self.emails.clone());
        let mut lowered = String::new();
        loop {
            let mut grew = false;
            rows.scan([id_column, email_column], |[id, email]| {
                if id.is_empty() {
                    return;
                }
                let email = if lowered_into(email, &mut lowered) {
                    lowered.as_str()
                } else {
                    email
                };
                let near = ids.contains(id) || (!email.is_empty() && emails.contains(email));
                if near {
                    grew |= ids.insert(id.into());
                    if !email.is_empty() {
                        grew |= emails.insert(email.into());
                    }
                }
            });
            if !grew {
                return ids;
            }
        }
    }
}

/// An email as the index compares them: lowercased (most are already: no copy then).
pub fn email_key(email: &str) -> Cow<'_, str> {
    let mut lowered = String::new();
    if lowered_into(email, &mut lowered) {
        Cow::Owned(lowered)
    } else {
        Cow::Borrowed(email)
    }
}

/// [`email_key`] into a buffer to reuse: whether `email` had to be lowercased into
/// `into`, or is its own key.
fn lowered_into(email: &str, into: &mut String) -> bool {
    into.clear();
    if !email.is_ascii() {
        // `str::to_lowercase`, whose final sigma a character at a time would miss.
        into.push_str(&email.to_lowercase());
    } else if has_ascii_uppercase(email.as_bytes()) {
        into.push_str(email);
        into.make_ascii_lowercase();
    } else {
        return false;
    }
    true
}

/// Whether `bytes` has an ASCII capital. Every byte is looked at, without stopping at
/// the first, so that the compiler checks them many at a time: a continuing run asks
/// this of every row of the Parent file (1.8 million at nyc), and most emails have none.
fn has_ascii_uppercase(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .fold(false, |capital, b| capital | b.is_ascii_uppercase())
}

/// The first pass over the rows `read` gives: ids, merges by email, and the line of each
/// ParentID's last row with where it starts. `rows` is how many to make room for.
fn build_index(
    table: &mut Table,
    columns: [usize; 4],
    host: &Host,
    rows: usize,
    read: impl FnMut(&mut Table, &mut Row) -> Result<bool, PluginError>,
) -> Result<(ParentIndex, Vec<(u64, u64)>), PluginError> {
    let [id_column, _, _, email_column] = columns;
    let mut index = ParentIndex {
        ids: IdTable::default(),
        parent: Vec::new(),
        beyond: None,
    };
    let mut first_line: Vec<u64> = Vec::new();
    // The line of each ParentID's last row, and where it starts.
    let mut last_at: Vec<(u64, u64)> = Vec::new();
    // Lowercased emails, and the ParentID number that had each first.
    let mut emails = IdTable::default();
    let mut email_owner: Vec<u32> = Vec::new();
    index.ids.reserve(rows);
    index.parent.reserve(rows);
    first_line.reserve(rows);
    last_at.reserve(rows);
    emails.reserve(rows);
    email_owner.reserve(rows);
    let mut ahead = ReadAhead::new(read);
    while let Some(read) = ahead.next(table, id_column, email_column, &index.ids, &emails)? {
        let row = &read.row;
        let id = row.get(id_column);
        let node = match index.ids.insert_hashed(id, read.id_hash) {
            (node, false) => {
                host.info(&format!(
                    "{}:{}: ParentID `{id}` repeats line {}; the later row updates the contact",
                    table.file.shown, row.line, first_line[node]
                ));
                node
            }
            (node, true) => {
                index
                    .parent
                    .push(u32::try_from(node).expect("fewer than 4 billion parents"));
                first_line.push(row.line);
                last_at.push((row.line, row.offset));
                node
            }
        };
        last_at[node] = (row.line, row.offset);
        if let Some(email_hash) = read.email_hash {
            match emails.insert_hashed(read.email(email_column), email_hash) {
                (_, true) => email_owner.push(node as u32),
                (number, false) => {
                    let owner = email_owner[number] as usize;
                    let (a, b) = (index.root(owner), index.root(node));
                    if a != b {
                        let (root, merged) = (a.min(b), a.max(b));
                        index.parent[merged] = root as u32;
                        host.info(&format!(
                            "{}:{}: ParentID `{}` has the same Email as ParentID `{}` (line {}); merged into one contact `{}`",
                            table.file.shown,
                            row.line,
                            index.ids.name(node),
                            index.ids.name(owner),
                            first_line[owner],
                            index.ids.name(root)
                        ));
                    }
                }
            }
        }
        ahead.done_with(read);
    }
    Ok((index, last_at))
}

/// How many rows the first pass reads before it indexes the first of them.
const READ_AHEAD: usize = 16;

/// The first pass's rows, read [`READ_AHEAD`] ahead of the one being indexed, their
/// slots in both tables asked for as they are read: a few million ids and emails in
/// tables far larger than the CPU's caches are a cache miss each, and this way the
/// misses of 16 rows overlap instead of coming one after another.
struct ReadAhead<F> {
    /// Reads the next row into the one given; `false` at the end.
    read: F,
    rows: VecDeque<AheadRow>,
    spare: Vec<AheadRow>,
    /// The error of the row after the last one read, reported once those before it
    /// are indexed; or that the file ended.
    stopped: Option<Result<(), PluginError>>,
}

#[derive(Default)]
struct AheadRow {
    row: Row,
    id_hash: u64,
    /// `None` for a row without an email.
    email_hash: Option<u64>,
    /// The email lowercased, where it was not already (most are: no copy for them).
    lowered: String,
    lowered_used: bool,
}

impl AheadRow {
    fn email(&self, email_column: usize) -> &str {
        if self.lowered_used {
            &self.lowered
        } else {
            self.row.get(email_column)
        }
    }
}

impl<F: FnMut(&mut Table, &mut Row) -> Result<bool, PluginError>> ReadAhead<F> {
    fn new(read: F) -> Self {
        ReadAhead {
            read,
            rows: VecDeque::new(),
            spare: Vec::new(),
            stopped: None,
        }
    }

    /// The next row in the order of the file, its ParentID present; `None` at the end.
    fn next(
        &mut self,
        table: &mut Table,
        id_column: usize,
        email_column: usize,
        ids: &IdTable,
        emails: &IdTable,
    ) -> Result<Option<AheadRow>, PluginError> {
        while self.stopped.is_none() && self.rows.len() < READ_AHEAD {
            let mut read = self.spare.pop().unwrap_or_default();
            match (self.read)(table, &mut read.row) {
                Ok(true) => {}
                Ok(false) => {
                    self.stopped = Some(Ok(()));
                    break;
                }
                Err(error) => {
                    self.stopped = Some(Err(error));
                    break;
                }
            }
            let id = match required(table, &read.row, id_column, "ParentID") {
                Ok(id) => id,
                Err(error) => {
                    self.stopped = Some(Err(error));
                    break;
                }
            };
            read.id_hash = ids.hash(id);
            ids.prefetch(read.id_hash);
            let email = read.row.get(email_column);
            read.lowered_used = false;
            read.email_hash = if email.is_empty() {
                None
            } else {
                // Most emails are lowercase ASCII already: no copy of a million and more.
                read.lowered_used = lowered_into(email, &mut read.lowered);
                let hash = emails.hash(read.email(email_column));
                emails.prefetch(hash);
                Some(hash)
            };
            self.rows.push_back(read);
        }
        match self.rows.pop_front() {
            Some(read) => Ok(Some(read)),
            None => self.stopped.take().unwrap_or(Ok(())).map(|()| None),
        }
    }

    /// Gives a row's buffers back for a row read later.
    fn done_with(&mut self, read: AheadRow) {
        self.spare.push(read);
    }
}

impl Reader for Parents {
    fn next(&mut self, roster: &mut Roster) -> Result<Option<Record>, PluginError> {
        let [_, first, last, email] = self.columns;
        while self.next_row()? {
            let row = &self.row;
            let root = match self.emit_at.get(self.next_emit) {
                Some(&(line, _, root)) if line == row.line => root,
                _ => continue,
            };
            self.next_emit += 1;
            let id = self.index.ids.name(root);
            if !roster.sends(|c| &c.contacts, id) {
                continue;
            }
            let mut identifiers = vec![identifier("ParentID", id)];
            for &alias in self.aliases.get(&root).into_iter().flatten() {
                identifiers.push(identifier("ParentID", self.index.ids.name(alias)));
            }
            let person = Person {
                source_id: id.to_string(),
                role: Role::Parent as i32,
                first_name: row.get(first).to_string(),
                last_name: row.get(last).to_string(),
                email: non_empty(row.get(email)),
                school_ids: vec![self.school_id.clone()],
                identifiers,
                attributes: attributes(row, &self.other),
                ..Default::default()
            };
            return Ok(Some(person.into()));
        }
        Ok(None)
    }

    /// The rows of the first pass: a continuing run's second reads only a few again.
    fn progress(&self) -> Option<(&str, u64)> {
        Some((&self.table.file.name, self.rows))
    }
}

impl Parents {
    /// In a continuing run, emits only `contacts`, each from its row read again from
    /// `text` by its place.
    pub fn only(&mut self, contacts: &KeySet, text: Shared, delimiter: u8) {
        let roots = self.index.roots_of(contacts);
        self.emit_at.retain(|(_, _, root)| roots.contains(root));
        self.rows_at = Some(RowsAt::new(text, delimiter));
    }

    /// The next row of the second pass into `self.row`; `false` at the end.
    fn next_row(&mut self) -> Result<bool, PluginError> {
        let Some(rows) = &mut self.rows_at else {
            return self.table.read_row(&mut self.row);
        };
        let Some(&(line, offset, _)) = self.emit_at.get(self.next_emit) else {
            return Ok(false);
        };
        rows.read(offset, line, &mut self.row);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_is_keyed_lowercased_and_borrowed_when_it_already_is() {
        assert!(matches!(
            email_key("ann@example.org"),
            Cow::Borrowed("ann@example.org")
        ));
        assert_eq!(email_key("Ann@Example.ORG"), "ann@example.org");
        // A capital first or last, in emails shorter and longer than the chunks the
        // check takes at once.
        assert_eq!(email_key("Z"), "z");
        let long = "a".repeat(70);
        assert_eq!(email_key(&format!("{long}Z")), format!("{long}z"));
        assert_eq!(email_key(&format!("Z{long}")), format!("z{long}"));
        assert!(matches!(email_key(&long), Cow::Borrowed(_)));
        // Outside ASCII, Unicode's lowercase: a capital sigma at a word's end is final.
        assert_eq!(email_key("ΟΔΟΣ@X.GR"), "οδος@x.gr");
        assert_eq!(email_key(""), "");
    }
}
