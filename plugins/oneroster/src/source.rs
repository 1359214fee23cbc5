//! Reading a package into roster records, file by file, in dependency order: orgs →
//! schools, academicSessions → terms, users (+ roles, demographics) → people, courses +
//! classes → classes, enrollments → enrollments and class teachers, agentSourcedIds →
//! relationships, and last one `Snapshot`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::Path;

use roster_core::record::{
    Class, ClassTeacher, Enrollment, Entity, Identifier, Person, Record, Relationship, Role,
    School, Snapshot, Term,
};
use roster_core::sdk::{Host, RecordSource};
use roster_core::PluginError;

use crate::config::Config;
use crate::manifest::{Manifest, Mode};
use crate::package::Package;
use crate::table::{Row, Table};

/// Records per `next_batch` call.
pub const BATCH_SIZE: usize = 2_000;

/// The data files read, by stem (`users` is `users.csv`).
const FILES: [&str; 8] = [
    "orgs",
    "academicSessions",
    "users",
    "roles",
    "demographics",
    "courses",
    "classes",
    "enrollments",
];

/// What a skipped user leaves incomplete: the people, and their relationships.
const PEOPLE: [Entity; 5] = [
    Entity::Students,
    Entity::Teachers,
    Entity::Parents,
    Entity::Staff,
    Entity::Relationships,
];

#[derive(Debug, Clone, Copy)]
enum Stage {
    Schools,
    Terms,
    People,
    Classes,
    Enrollments,
    Relationships,
    Snapshot,
}

/// A OneRoster package read as a stream of records. Usable without the plugin ABI: it is
/// an iterator of records as well as a [`RecordSource`].
pub struct OneRosterSource {
    host: Host,
    package: Package,
    manifest: Manifest,
    /// Stem → the file's name in the package, for the files the manifest supplies.
    present: BTreeMap<String, String>,
    stages: VecDeque<Stage>,
    pending: VecDeque<Record>,
    seen: Seen,
    failed: bool,
}

/// What earlier files established, for the references of later ones.
#[derive(Default)]
struct Seen {
    schools: HashSet<String>,
    /// Orgs of other types (district, state, department …): not schools, not errors.
    other_orgs: HashSet<String>,
    deleted_orgs: HashSet<String>,
    terms: HashSet<String>,
    deleted_terms: HashSet<String>,
    people: HashMap<String, PersonSeen>,
    /// Users that were not sent (no role, or a reference outside the package).
    skipped_people: HashSet<String>,
    classes: HashSet<String>,
    deleted_classes: HashSet<String>,
    /// Classes that were not sent (a reference outside the package).
    skipped_classes: HashSet<String>,
    /// (user, agent, where) from users' agentSourcedIds.
    agents: Vec<(String, String, String)>,
    /// Entities a bulk file delivers but this run could not deliver completely.
    incomplete: HashSet<Entity>,
    has_agents: bool,
    roles_complete: bool,
}

struct PersonSeen {
    role: Role,
    /// The role as the package words it (`guardian`, `aide`, …).
    raw_role: String,
    removed: bool,
}

/// Rows left out for one reason, reported once per file.
#[derive(Default)]
struct Skipped {
    reasons: BTreeMap<String, (u64, String)>,
}

impl Skipped {
    fn add(&mut self, reason: impl Into<String>, at: String) {
        let entry = self.reasons.entry(reason.into()).or_insert((0, at));
        entry.0 += 1;
    }

    fn report(self, host: &Host, file: &str) {
        for (reason, (count, first)) in self.reasons {
            let rows = if count == 1 { "row" } else { "rows" };
            host.warn(&format!(
                "{file}: {count} {rows} skipped: {reason} (first at {first})"
            ));
        }
    }
}

/// Whether a row is current or deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Active,
    Deleted,
}

/// The parts of a loaded file every stage needs.
struct File {
    table: Table,
    mode: Mode,
    status: Option<usize>,
    metadata: Vec<(usize, String)>,
    ids: HashMap<String, u64>,
    blank_status_warned: bool,
    bulk_status_warned: bool,
}

impl File {
    fn status(&mut self, row: &Row, host: &Host) -> Result<Status, PluginError> {
        let text = row.get(self.status).to_ascii_lowercase();
        let status = match text.as_str() {
            "" => {
                if self.mode == Mode::Delta && !self.blank_status_warned {
                    self.blank_status_warned = true;
                    host.warn(&format!(
                        "{}: empty status in a delta file; read as `active`",
                        self.table.at(row, self.status.unwrap_or(0))
                    ));
                }
                Status::Active
            }
            "active" => Status::Active,
            "tobedeleted" => Status::Deleted,
            other => {
                return Err(self.table.error(
                    row,
                    self.status.unwrap_or(0),
                    format!("unknown status `{other}`: expected `active` or `tobedeleted`"),
                ))
            }
        };
        if self.mode == Mode::Bulk && !text.is_empty() && !self.bulk_status_warned {
            self.bulk_status_warned = true;
            host.warn(&format!(
                "{}: a bulk file should leave status blank; `tobedeleted` rows are treated as deleted",
                self.table.at(row, self.status.unwrap_or(0))
            ));
        }
        Ok(status)
    }

    /// The row's `sourcedId` (in `column`), which must be present and unique.
    fn id(&mut self, row: &Row, column: usize, what: &str) -> Result<String, PluginError> {
        let id = row.get(Some(column));
        if id.is_empty() {
            return Err(self.table.error(row, column, format!("empty {what}")));
        }
        if let Some(line) = self.ids.insert(id.to_string(), row.line) {
            return Err(self.table.error(
                row,
                column,
                format!("duplicate {what} `{id}` (also on line {line})"),
            ));
        }
        Ok(id.to_string())
    }

    fn attributes(&self, row: &Row, extra: &[(&str, Option<usize>)]) -> BTreeMap<String, String> {
        let mut attributes = BTreeMap::new();
        for (name, column) in extra {
            if let Some(value) = row.opt(*column) {
                attributes.insert(name.to_string(), value);
            }
        }
        for (column, name) in &self.metadata {
            if let Some(value) = row.opt(Some(*column)) {
                attributes.insert(name.clone(), value);
            }
        }
        attributes
    }
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `{type:value}` entries, comma-separated; an entry without a type is a `userId`.
pub fn user_ids(text: &str) -> Vec<(String, String)> {
    let parts: Vec<&str> = if text.contains('{') {
        text.split('}')
            .map(|p| {
                p.trim()
                    .trim_start_matches(',')
                    .trim()
                    .trim_start_matches('{')
            })
            .collect()
    } else {
        text.split(',').collect()
    };
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once(':') {
            Some((kind, value)) if !kind.trim().is_empty() => {
                (kind.trim().to_string(), value.trim().to_string())
            }
            _ => ("userId".to_string(), p.to_string()),
        })
        .filter(|(_, value)| !value.is_empty())
        .collect()
}

/// `YYYY-MM-DD` (or the date of an ISO date-time) as ISO; anything else as written.
pub fn date(text: &str) -> String {
    let day = text.split('T').next().unwrap_or(text);
    let parts: Vec<&str> = day.split('-').collect();
    let valid = matches!(parts[..], [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()))
        && (1..=12).contains(&m.parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&d.parse::<u32>().unwrap_or(0)));
    if valid {
        day.to_string()
    } else {
        text.to_string()
    }
}

/// A OneRoster role as a roster role: `student`; `teacher`; `parent`, `guardian` and
/// `relative` as parents; every other role (administrator, aide, proctor, 1.2's
/// siteAdministrator, principal, counselor, …) as staff.
pub fn role_of(raw: &str) -> Role {
    match raw.to_ascii_lowercase().as_str() {
        "student" => Role::Student,
        "teacher" => Role::Teacher,
        "parent" | "guardian" | "relative" => Role::Parent,
        _ => Role::Staff,
    }
}

impl OneRosterSource {
    /// Opens the package and its manifest; the data files are read as records are pulled.
    pub fn open(config: &Config, base_dir: &Path, host: Host) -> Result<Self, PluginError> {
        let package = Package::open(&config.path, base_dir)?;
        Self::from_package(package, host)
    }

    fn from_package(mut package: Package, host: Host) -> Result<Self, PluginError> {
        let Some(name) = package.find("manifest.csv") else {
            return Err(PluginError::input("the package has no manifest.csv")
                .at(package.shown("manifest.csv"))
                .with_hint("a OneRoster package needs manifest.csv (propertyName,value) with a `file.<name>` line of bulk, delta or absent per file"));
        };
        let text = package.read(&name)?;
        let manifest = Manifest::parse(&Table::parse(&package.shown(&name), &text.text)?)?;
        match manifest.version.as_deref() {
            Some("1.0" | "1.1" | "1.2") | None => {}
            Some(other) => host.warn(&format!(
                "{}: oneroster.version `{other}` is not 1.0, 1.1 or 1.2; reading it as 1.2",
                manifest.shown
            )),
        }
        let mut present = BTreeMap::new();
        for stem in FILES {
            let file = format!("{stem}.csv");
            let found = package.find(&file);
            match (manifest.mode(stem), found) {
                (Mode::Absent, None) => {}
                (Mode::Absent, Some(found)) => host.warn(&format!(
                    "{}: the manifest does not supply it (file.{stem} is absent or missing); ignored",
                    package.shown(&found)
                )),
                (mode, None) => {
                    return Err(PluginError::input(format!(
                        "file.{stem} is {} but the package has no {file}",
                        mode.as_str()
                    ))
                    .at(manifest.at(stem)))
                }
                (_, Some(found)) => {
                    present.insert(stem.to_string(), found);
                }
            }
        }
        let modes: Vec<String> = FILES
            .iter()
            .map(|s| format!("{s} {}", manifest.mode(s).as_str()))
            .collect();
        host.info(&format!(
            "OneRoster {} package {}: {}",
            manifest.version.as_deref().unwrap_or("(no version)"),
            package.shown("").trim_end_matches('/'),
            modes.join(", ")
        ));
        Ok(OneRosterSource {
            host,
            package,
            manifest,
            present,
            stages: VecDeque::from([
                Stage::Schools,
                Stage::Terms,
                Stage::People,
                Stage::Classes,
                Stage::Enrollments,
                Stage::Relationships,
                Stage::Snapshot,
            ]),
            pending: VecDeque::new(),
            seen: Seen::default(),
            failed: false,
        })
    }

    fn mode(&self, stem: &str) -> Mode {
        if self.present.contains_key(stem) {
            self.manifest.mode(stem)
        } else {
            Mode::Absent
        }
    }

    /// Reads the data file `stem` if the package supplies it.
    fn load(&mut self, stem: &str) -> Result<Option<File>, PluginError> {
        let Some(name) = self.present.get(stem).cloned() else {
            return Ok(None);
        };
        let shown = self.package.shown(&name);
        let text = self.package.read(&name)?;
        if text.latin1 {
            self.host.warn(&format!(
                "{shown}: not valid UTF-8; read as Windows-1252 (Latin-1)"
            ));
        }
        let table = Table::parse(&shown, &text.text)?;
        let mode = self.manifest.mode(stem);
        if mode == Mode::Bulk && table.rows.is_empty() {
            return Err(PluginError::input(format!(
                "{name} is bulk but has no rows: importing it would deactivate every record it delivers"
            ))
            .at(shown)
            .with_hint(format!("if the file is not supplied, set file.{stem} to absent in manifest.csv")));
        }
        let status = table.column("status");
        if mode == Mode::Delta && status.is_none() {
            table.require(&["status"])?;
        }
        self.host.progress(
            &name,
            table.rows.len() as u64,
            Some(table.rows.len() as u64),
        );
        Ok(Some(File {
            metadata: table.metadata_columns(),
            table,
            mode,
            status,
            ids: HashMap::new(),
            blank_status_warned: false,
            bulk_status_warned: false,
        }))
    }

    /// The next record in dependency order, `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<Record>, PluginError> {
        loop {
            if self.failed {
                return Ok(None);
            }
            if let Some(record) = self.pending.pop_front() {
                return Ok(Some(record));
            }
            let Some(stage) = self.stages.pop_front() else {
                return Ok(None);
            };
            let result = self.run(stage);
            if result.is_err() {
                self.failed = true;
            }
            result?;
        }
    }

    fn run(&mut self, stage: Stage) -> Result<(), PluginError> {
        match stage {
            Stage::Schools => self.schools(),
            Stage::Terms => self.terms(),
            Stage::People => self.people(),
            Stage::Classes => self.classes(),
            Stage::Enrollments => self.enrollments(),
            Stage::Relationships => {
                self.relationships();
                Ok(())
            }
            Stage::Snapshot => {
                let snapshot = self.snapshot();
                self.pending.push_back(snapshot.into());
                Ok(())
            }
        }
    }

    fn schools(&mut self) -> Result<(), PluginError> {
        let Some(mut file) = self.load("orgs")? else {
            return Ok(());
        };
        let [id, name, kind] = file.table.require(&["sourcedId", "name", "type"])?[..] else {
            unreachable!()
        };
        let identifier = file.table.column("identifier");
        let parent = file.table.column("parentSourcedId");
        let rows = std::mem::take(&mut file.table.rows);
        for row in &rows {
            let org = file.id(row, id, "sourcedId")?;
            if file.status(row, &self.host)? == Status::Deleted {
                self.seen.deleted_orgs.insert(org);
                continue;
            }
            if !row.get(Some(kind)).eq_ignore_ascii_case("school") {
                self.seen.other_orgs.insert(org);
                continue;
            }
            let Some(school_name) = row.opt(Some(name)) else {
                return Err(file.table.error(row, name, "empty name"));
            };
            self.seen.schools.insert(org.clone());
            self.pending.push_back(
                School {
                    source_id: org.clone(),
                    name: school_name,
                    sis_id: Some(org),
                    school_number: row.opt(identifier),
                    attributes: file.attributes(row, &[("parentSourcedId", parent)]),
                    ..Default::default()
                }
                .into(),
            );
        }
        Ok(())
    }

    fn terms(&mut self) -> Result<(), PluginError> {
        let Some(mut file) = self.load("academicSessions")? else {
            return Ok(());
        };
        let [id, title, kind, start, end] =
            file.table
                .require(&["sourcedId", "title", "type", "startDate", "endDate"])?[..]
        else {
            unreachable!()
        };
        let year = file.table.column("schoolYear");
        let parent = file.table.column("parentSourcedId");
        let org = file.table.column("orgSourcedId");
        let rows = std::mem::take(&mut file.table.rows);
        for row in &rows {
            let term = file.id(row, id, "sourcedId")?;
            if file.status(row, &self.host)? == Status::Deleted {
                self.seen.deleted_terms.insert(term);
                continue;
            }
            let Some(name) = row.opt(Some(title)) else {
                return Err(file.table.error(row, title, "empty title"));
            };
            let school_id = row.opt(org).filter(|o| self.seen.schools.contains(o));
            self.seen.terms.insert(term.clone());
            self.pending.push_back(
                Term {
                    source_id: term,
                    name,
                    start_date: row.opt(Some(start)).map(|d| date(&d)),
                    end_date: row.opt(Some(end)).map(|d| date(&d)),
                    school_id,
                    attributes: file.attributes(
                        row,
                        &[
                            ("type", Some(kind)),
                            ("schoolYear", year),
                            ("parentSourcedId", parent),
                        ],
                    ),
                }
                .into(),
            );
        }
        Ok(())
    }

    /// Birth dates by user, from demographics.csv.
    fn birth_dates(&mut self) -> Result<HashMap<String, String>, PluginError> {
        let mut dates = HashMap::new();
        let Some(mut file) = self.load("demographics")? else {
            return Ok(dates);
        };
        let [id] = file.table.require(&["sourcedId"])?[..] else {
            unreachable!()
        };
        let birth = file.table.column("birthDate");
        let rows = std::mem::take(&mut file.table.rows);
        for row in &rows {
            let user = file.id(row, id, "sourcedId")?;
            if file.status(row, &self.host)? == Status::Active {
                if let Some(value) = row.opt(birth) {
                    dates.insert(user, date(&value));
                }
            }
        }
        Ok(dates)
    }

    /// 1.2 roles.csv: each user's roles, primary first, then deleted ones last.
    fn roles(&mut self) -> Result<Option<HashMap<String, Vec<RoleRow>>>, PluginError> {
        let Some(mut file) = self.load("roles")? else {
            return Ok(None);
        };
        let [user, role] = file.table.require(&["userSourcedId", "role"])?[..] else {
            unreachable!()
        };
        let id = file.table.column("sourcedId");
        let role_type = file.table.column("roleType");
        let org = file.table.column("orgSourcedId");
        let mut roles: HashMap<String, Vec<RoleRow>> = HashMap::new();
        let rows = std::mem::take(&mut file.table.rows);
        for row in &rows {
            if let Some(id) = id {
                file.id(row, id, "sourcedId")?;
            }
            let deleted = file.status(row, &self.host)? == Status::Deleted;
            let Some(user_id) = row.opt(Some(user)) else {
                return Err(file.table.error(row, user, "empty userSourcedId"));
            };
            let Some(raw) = row.opt(Some(role)) else {
                return Err(file.table.error(row, role, "empty role"));
            };
            roles.entry(user_id).or_default().push(RoleRow {
                role: raw,
                primary: row.get(role_type).eq_ignore_ascii_case("primary"),
                deleted,
                org: row.opt(org),
                at: file.table.at(row, org.unwrap_or(role)),
            });
        }
        for list in roles.values_mut() {
            list.sort_by_key(|r| (r.deleted, !r.primary));
        }
        self.seen.roles_complete = file.mode == Mode::Bulk;
        Ok(Some(roles))
    }

    fn people(&mut self) -> Result<(), PluginError> {
        let birth_dates = self.birth_dates()?;
        let roles = self.roles()?;
        let Some(mut file) = self.load("users")? else {
            return Ok(());
        };
        let [id, given, family] = file
            .table
            .require(&["sourcedId", "givenName", "familyName"])?[..]
        else {
            unreachable!()
        };
        let t = &file.table;
        let role_column = t.column("role");
        if role_column.is_none() && roles.is_none() {
            t.require(&["role"]).map_err(|e| {
                e.with_hint(
                    "OneRoster 1.1 users.csv has a role column; a 1.2 package needs roles.csv",
                )
            })?;
        }
        if role_column.is_some() {
            self.seen.roles_complete = true;
        }
        let orgs = t.column("orgSourcedIds");
        let primary_org = t.column("primaryOrgSourcedId");
        let identifier = t.column("identifier");
        let master = t.column("userMasterIdentifier");
        let user_ids_column = t.column("userIds");
        let middle = t.column("middleName");
        let email = t.column("email");
        let phone = t.column("phone");
        let sms = t.column("sms");
        let grades = t.column("grades");
        let agents = t.column("agentSourcedIds");
        let attribute_columns = [
            ("username", t.column("username")),
            ("enabledUser", t.column("enabledUser")),
            ("sms", sms),
            ("preferredGivenName", t.column("preferredGivenName")),
            ("preferredMiddleName", t.column("preferredMiddleName")),
            ("preferredFamilyName", t.column("preferredFamilyName")),
            ("pronouns", t.column("pronouns")),
        ];
        self.seen.has_agents = agents.is_some();
        let users_bulk = file.mode == Mode::Bulk;
        let orgs_bulk = self.mode("orgs") == Mode::Bulk;
        let mut skipped = Skipped::default();
        let rows = std::mem::take(&mut file.table.rows);
        for row in &rows {
            let user = file.id(row, id, "sourcedId")?;
            let status = file.status(row, &self.host)?;
            let user_roles = roles.as_ref().and_then(|r| r.get(&user));
            // The users.csv role (1.1), else the first role row: primary and current first.
            let raw_role = match row.opt(role_column) {
                Some(raw) => Some(raw),
                None => user_roles
                    .and_then(|list| list.first())
                    .filter(|r| !r.deleted || status == Status::Deleted)
                    .map(|r| r.role.clone()),
            };
            let Some(raw_role) = raw_role else {
                if let (Some(column), Status::Active) = (role_column, status) {
                    if roles.is_none() {
                        return Err(file.table.error(row, column, "empty role"));
                    }
                }
                skipped.add(
                    "no role (not in users.csv, nor a current row in roles.csv)",
                    file.table.at(row, id),
                );
                self.seen.skipped_people.insert(user);
                self.seen.incomplete.extend(PEOPLE);
                continue;
            };
            let role = role_of(&raw_role);
            let mut first_name = row.get(Some(given)).to_string();
            let mut last_name = row.get(Some(family)).to_string();
            if first_name.is_empty() && last_name.is_empty() {
                if status == Status::Active {
                    return Err(file.table.error(
                        row,
                        given,
                        "empty givenName and familyName: a user needs a name",
                    ));
                }
                // A deletion only has to say whom it deletes; the host still wants a name.
                last_name = user.clone();
            }
            if status == Status::Deleted {
                self.seen.people.insert(
                    user.clone(),
                    PersonSeen {
                        role,
                        raw_role: raw_role.clone(),
                        removed: true,
                    },
                );
                self.pending.push_back(
                    Person {
                        source_id: user.clone(),
                        role: role as i32,
                        first_name: std::mem::take(&mut first_name),
                        last_name,
                        identifiers: vec![identifier_of("sourcedId", &user)],
                        removed: true,
                        ..Default::default()
                    }
                    .into(),
                );
                continue;
            }
            // Schools: orgSourcedIds (1.1), primaryOrgSourcedId and current roles' orgs (1.2).
            let mut org_refs: Vec<(String, String)> = Vec::new();
            for org in list(row.get(orgs)) {
                org_refs.push((org, file.table.at(row, orgs.unwrap_or(id))));
            }
            if let Some(org) = row.opt(primary_org) {
                org_refs.push((org, file.table.at(row, primary_org.unwrap_or(id))));
            }
            for role_row in user_roles.into_iter().flatten().filter(|r| !r.deleted) {
                if let Some(org) = &role_row.org {
                    org_refs.push((org.clone(), role_row.at.clone()));
                }
            }
            let mut school_ids: Vec<String> = Vec::new();
            let mut outside = None;
            for (org, at) in org_refs {
                if self.seen.schools.contains(&org) {
                    if !school_ids.contains(&org) {
                        school_ids.push(org);
                    }
                } else if self.seen.other_orgs.contains(&org)
                    || self.seen.deleted_orgs.contains(&org)
                {
                } else if orgs_bulk {
                    return Err(PluginError::input(format!(
                        "unknown org `{org}` (not in orgs.csv)"
                    ))
                    .at(at));
                } else {
                    outside = Some(at);
                }
            }
            if let Some(at) = outside {
                skipped.add(
                    "refers to an org this package does not deliver (orgs.csv is not bulk)",
                    at,
                );
                self.seen.skipped_people.insert(user);
                if users_bulk {
                    self.seen.incomplete.extend(PEOPLE);
                }
                continue;
            }
            let mut identifiers = vec![identifier_of("sourcedId", &user)];
            if let Some(value) = row.opt(identifier) {
                identifiers.push(identifier_of("identifier", &value));
            }
            if let Some(value) = row.opt(master) {
                identifiers.push(identifier_of("userMasterIdentifier", &value));
            }
            for (kind, value) in user_ids(row.get(user_ids_column)) {
                identifiers.push(identifier_of(&kind, &value));
            }
            let mut attributes = file.attributes(row, &attribute_columns);
            attributes.insert("role".to_string(), raw_role.clone());
            // Only a disabled account is worth noting.
            if attributes
                .get("enabledUser")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            {
                attributes.remove("enabledUser");
            }
            if let Some(agents) = agents {
                for agent in list(row.get(Some(agents))) {
                    self.seen
                        .agents
                        .push((user.clone(), agent, file.table.at(row, agents)));
                }
            }
            self.seen.people.insert(
                user.clone(),
                PersonSeen {
                    role,
                    raw_role,
                    removed: false,
                },
            );
            self.pending.push_back(
                Person {
                    birth_date: birth_dates.get(&user).cloned(),
                    source_id: user,
                    role: role as i32,
                    first_name,
                    last_name,
                    middle_name: row.opt(middle),
                    email: row.opt(email),
                    phone: row.opt(phone).or_else(|| row.opt(sms)),
                    grade: row.opt(grades),
                    school_ids,
                    identifiers,
                    attributes,
                    ..Default::default()
                }
                .into(),
            );
        }
        skipped.report(&self.host, &file.table.shown);
        Ok(())
    }

    /// Course titles, codes and subjects, by course.
    fn courses(&mut self) -> Result<HashMap<String, Course>, PluginError> {
        let mut courses = HashMap::new();
        let Some(mut file) = self.load("courses")? else {
            return Ok(courses);
        };
        let [id, title] = file.table.require(&["sourcedId", "title"])?[..] else {
            unreachable!()
        };
        let code = file.table.column("courseCode");
        let subjects = file.table.column("subjects");
        let rows = std::mem::take(&mut file.table.rows);
        for row in &rows {
            let course = file.id(row, id, "sourcedId")?;
            if file.status(row, &self.host)? == Status::Active {
                courses.insert(
                    course,
                    Course {
                        title: row.opt(Some(title)),
                        code: row.opt(code),
                        subjects: row.opt(subjects),
                    },
                );
            }
        }
        Ok(courses)
    }

    fn classes(&mut self) -> Result<(), PluginError> {
        let courses = self.courses()?;
        let Some(mut file) = self.load("classes")? else {
            return Ok(());
        };
        let [id, title, school, terms] =
            file.table
                .require(&["sourcedId", "title", "schoolSourcedId", "termSourcedIds"])?[..]
        else {
            unreachable!()
        };
        let t = &file.table;
        let course = t.column("courseSourcedId");
        let subjects = t.column("subjects");
        let periods = t.column("periods");
        let extra = [
            ("classCode", t.column("classCode")),
            ("classType", t.column("classType")),
            ("location", t.column("location")),
            ("grades", t.column("grades")),
            ("courseSourcedId", course),
        ];
        let classes_bulk = file.mode == Mode::Bulk;
        let orgs_bulk = self.mode("orgs") == Mode::Bulk;
        let terms_bulk = self.mode("academicSessions") == Mode::Bulk;
        let mut skipped = Skipped::default();
        let rows = std::mem::take(&mut file.table.rows);
        'rows: for row in &rows {
            let class = file.id(row, id, "sourcedId")?;
            if file.status(row, &self.host)? == Status::Deleted {
                self.seen.deleted_classes.insert(class);
                continue;
            }
            let Some(name) = row.opt(Some(title)) else {
                return Err(file.table.error(row, title, "empty title"));
            };
            let org = row.get(Some(school));
            let school_id = if self.seen.schools.contains(org) {
                Some(org.to_string())
            } else if self.seen.other_orgs.contains(org) || org.is_empty() {
                None
            } else if self.seen.deleted_orgs.contains(org) {
                skipped.add(
                    "its school is deleted in this package",
                    file.table.at(row, school),
                );
                continue;
            } else if orgs_bulk {
                return Err(file.table.error(
                    row,
                    school,
                    format!("unknown schoolSourcedId `{org}` (not in orgs.csv)"),
                ));
            } else {
                skipped.add(
                    "refers to a school this package does not deliver (orgs.csv is not bulk)",
                    file.table.at(row, school),
                );
                self.seen.skipped_classes.insert(class);
                if classes_bulk {
                    self.seen.incomplete.insert(Entity::Classes);
                }
                continue;
            };
            // A class in several sessions (a year-long class listing two semesters) gets
            // the first one the package delivers; all are kept in the attributes.
            let listed = list(row.get(Some(terms)));
            let mut term_id = None;
            for term in &listed {
                if self.seen.terms.contains(term) {
                    term_id = term_id.or_else(|| Some(term.clone()));
                } else if self.seen.deleted_terms.contains(term) {
                } else if terms_bulk {
                    return Err(file.table.error(
                        row,
                        terms,
                        format!(
                            "unknown termSourcedIds entry `{term}` (not in academicSessions.csv)"
                        ),
                    ));
                } else {
                    skipped.add(
                        "refers to a term this package does not deliver (academicSessions.csv is not bulk)",
                        file.table.at(row, terms),
                    );
                    self.seen.skipped_classes.insert(class);
                    if classes_bulk {
                        self.seen.incomplete.insert(Entity::Classes);
                    }
                    continue 'rows;
                }
            }
            let course = row.opt(course).and_then(|c| courses.get(&c));
            let mut attributes = file.attributes(row, &extra);
            if listed.len() > 1 {
                attributes.insert("termSourcedIds".to_string(), listed.join(","));
            }
            if let Some(code) = course.and_then(|c| c.code.clone()) {
                attributes.insert("courseCode".to_string(), code);
            }
            self.seen.classes.insert(class.clone());
            self.pending.push_back(
                Class {
                    source_id: class.clone(),
                    name,
                    school_id,
                    term_id,
                    subject: row
                        .opt(subjects)
                        .or_else(|| course.and_then(|c| c.subjects.clone())),
                    course: course.and_then(|c| c.title.clone()),
                    period: row.opt(periods),
                    sis_id: Some(class),
                    attributes,
                    ..Default::default()
                }
                .into(),
            );
        }
        skipped.report(&self.host, &file.table.shown);
        Ok(())
    }

    fn enrollments(&mut self) -> Result<(), PluginError> {
        let Some(mut file) = self.load("enrollments")? else {
            return Ok(());
        };
        let [class, user, role] =
            file.table
                .require(&["classSourcedId", "userSourcedId", "role"])?[..]
        else {
            unreachable!()
        };
        let id = file.table.column("sourcedId");
        let primary = file.table.column("primary");
        let enrollments_bulk = file.mode == Mode::Bulk;
        let classes_bulk = self.mode("classes") == Mode::Bulk;
        let users_bulk = self.mode("users") == Mode::Bulk;
        let mut skipped = Skipped::default();
        let mut students: HashSet<(String, String)> = HashSet::new();
        let mut teachers: HashSet<(String, String)> = HashSet::new();
        let rows = std::mem::take(&mut file.table.rows);
        for row in &rows {
            if let Some(id) = id {
                if !row.get(Some(id)).is_empty() {
                    file.id(row, id, "sourcedId")?;
                }
            }
            // A deleted enrollment has no record to send: it is simply not delivered, and
            // only a bulk enrollments file deactivates what it no longer lists.
            if file.status(row, &self.host)? == Status::Deleted {
                continue;
            }
            let class_id = row.get(Some(class)).to_string();
            let user_id = row.get(Some(user)).to_string();
            for (value, column, what) in [
                (&class_id, class, "classSourcedId"),
                (&user_id, user, "userSourcedId"),
            ] {
                if value.is_empty() {
                    return Err(file.table.error(row, column, format!("empty {what}")));
                }
            }
            if !self.seen.classes.contains(&class_id) {
                if self.seen.deleted_classes.contains(&class_id) {
                    continue;
                }
                if classes_bulk && !self.seen.skipped_classes.contains(&class_id) {
                    return Err(file.table.error(
                        row,
                        class,
                        format!("unknown classSourcedId `{class_id}` (not in classes.csv)"),
                    ));
                }
                skipped.add(
                    "refers to a class this package does not deliver (classes.csv is not bulk)",
                    file.table.at(row, class),
                );
                if enrollments_bulk {
                    self.seen
                        .incomplete
                        .extend([Entity::Enrollments, Entity::ClassTeachers]);
                }
                continue;
            }
            let person = match self.seen.people.get(&user_id) {
                Some(person) if person.removed => continue,
                Some(person) => person,
                None => {
                    if users_bulk && !self.seen.skipped_people.contains(&user_id) {
                        return Err(file.table.error(
                            row,
                            user,
                            format!("unknown userSourcedId `{user_id}` (not in users.csv)"),
                        ));
                    }
                    skipped.add(
                        "refers to a user this package does not deliver",
                        file.table.at(row, user),
                    );
                    if enrollments_bulk {
                        self.seen
                            .incomplete
                            .extend([Entity::Enrollments, Entity::ClassTeachers]);
                    }
                    continue;
                }
            };
            let enrolled_as = row.get(Some(role)).to_ascii_lowercase();
            match enrolled_as.as_str() {
                "student" if person.role == Role::Student => {
                    if students.insert((class_id.clone(), user_id.clone())) {
                        self.pending.push_back(
                            Enrollment {
                                student_id_kind: None,
                                class_id,
                                student_id: user_id,
                            }
                            .into(),
                        );
                    }
                }
                "teacher" if matches!(person.role, Role::Teacher | Role::Staff) => {
                    if teachers.insert((class_id.clone(), user_id.clone())) {
                        self.pending.push_back(
                            ClassTeacher {
                                teacher_id_kind: None,
                                class_id,
                                teacher_id: user_id,
                                primary: row.get(primary).eq_ignore_ascii_case("true"),
                            }
                            .into(),
                        );
                    }
                }
                "student" | "teacher" => skipped.add(
                    format!(
                        "enrolled as {enrolled_as} but the user's role is {}",
                        person.raw_role
                    ),
                    file.table.at(row, role),
                ),
                "" => return Err(file.table.error(row, role, "empty role")),
                _ => skipped.add(
                    format!("role `{enrolled_as}`: only students and teachers are imported"),
                    file.table.at(row, role),
                ),
            }
        }
        skipped.report(&self.host, &file.table.shown);
        Ok(())
    }

    /// Parent–student links from agentSourcedIds, read from both sides and deduplicated.
    fn relationships(&mut self) {
        let mut skipped = Skipped::default();
        let mut done: HashSet<(String, String)> = HashSet::new();
        let agents = std::mem::take(&mut self.seen.agents);
        for (user, agent, at) in agents {
            let Some(other) = self.seen.people.get(&agent) else {
                skipped.add(
                    "an agentSourcedIds entry names a user this package does not deliver",
                    at,
                );
                self.seen.incomplete.insert(Entity::Relationships);
                continue;
            };
            let me = &self.seen.people[&user];
            let (parent, student, parent_seen) = match (me.role, other.role) {
                (Role::Student, Role::Parent) => (agent.clone(), user.clone(), other),
                (Role::Parent, Role::Student) => (user.clone(), agent.clone(), me),
                // Agents between other roles (a teacher's aide, a student's sibling) are
                // not parent–student relationships.
                _ => continue,
            };
            if me.removed || other.removed {
                continue;
            }
            let contact_type = Some(parent_seen.raw_role.to_ascii_lowercase());
            if done.insert((parent.clone(), student.clone())) {
                self.pending.push_back(
                    Relationship {
                        student_id_kind: None,
                        parent_id: parent,
                        student_id: student,
                        relationship: None,
                        contact_type,
                    }
                    .into(),
                );
            }
        }
        if let Some(users) = self.present.get("users") {
            skipped.report(&self.host, &self.package.shown(users));
        }
    }

    /// Only entities whose files are bulk — and were delivered whole — are complete.
    fn snapshot(&self) -> Snapshot {
        let mut complete = Vec::new();
        let bulk = |stem: &str| self.mode(stem) == Mode::Bulk;
        if bulk("orgs") {
            complete.push(Entity::Schools);
        }
        if bulk("academicSessions") {
            complete.push(Entity::Terms);
        }
        if bulk("classes") {
            complete.push(Entity::Classes);
        }
        if bulk("users") && self.seen.roles_complete {
            complete.extend([
                Entity::Students,
                Entity::Teachers,
                Entity::Parents,
                Entity::Staff,
            ]);
            if self.seen.has_agents {
                complete.push(Entity::Relationships);
            }
        }
        if bulk("enrollments") {
            complete.extend([Entity::Enrollments, Entity::ClassTeachers]);
        }
        let dropped: Vec<&Entity> = complete
            .iter()
            .filter(|e| self.seen.incomplete.contains(e))
            .collect();
        if !dropped.is_empty() {
            self.host.warn(&format!(
                "rows of bulk files were skipped, so nothing of {dropped:?} is deactivated in this run"
            ));
        }
        complete.retain(|e| !self.seen.incomplete.contains(e));
        Snapshot::of(&complete)
    }
}

struct RoleRow {
    role: String,
    primary: bool,
    deleted: bool,
    org: Option<String>,
    /// Where the row names its org, for errors.
    at: String,
}

struct Course {
    title: Option<String>,
    code: Option<String>,
    subjects: Option<String>,
}

fn identifier_of(kind: &str, value: &str) -> Identifier {
    Identifier {
        kind: kind.to_string(),
        value: value.to_string(),
    }
}

impl RecordSource for OneRosterSource {
    fn next_batch(&mut self) -> Result<Option<Vec<Record>>, PluginError> {
        self.host.check_cancelled()?;
        let mut batch = Vec::with_capacity(BATCH_SIZE);
        while batch.len() < BATCH_SIZE {
            if self.pending.is_empty() && !self.stages.is_empty() {
                // Between files is a good place to stop when asked.
                self.host.check_cancelled()?;
            }
            match self.next_record()? {
                Some(record) => batch.push(record),
                None => break,
            }
        }
        Ok((!batch.is_empty()).then_some(batch))
    }
}

impl Iterator for OneRosterSource {
    type Item = Result<Record, PluginError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

/// Reads a whole package into memory: for tests and small tools.
pub fn read_all(config: &Config, base_dir: &Path, host: Host) -> Result<Vec<Record>, PluginError> {
    OneRosterSource::open(config, base_dir, host)?.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_forms() {
        assert_eq!(
            user_ids("{Fed:1234},{LDAP:ab:c}"),
            [
                ("Fed".to_string(), "1234".to_string()),
                ("LDAP".to_string(), "ab:c".to_string())
            ]
        );
        assert_eq!(
            user_ids("Fed:1, 42"),
            [
                ("Fed".to_string(), "1".to_string()),
                ("userId".to_string(), "42".to_string())
            ]
        );
        assert!(user_ids("").is_empty());
        assert!(user_ids("{}").is_empty());
    }

    #[test]
    fn dates() {
        assert_eq!(date("2026-08-20"), "2026-08-20");
        assert_eq!(date("2026-08-20T00:00:00Z"), "2026-08-20");
        assert_eq!(date("08/20/2026"), "08/20/2026");
        assert_eq!(date("2026-13-01"), "2026-13-01");
    }

    #[test]
    fn roles() {
        assert_eq!(role_of("student"), Role::Student);
        assert_eq!(role_of("Teacher"), Role::Teacher);
        for parent in ["parent", "guardian", "relative"] {
            assert_eq!(role_of(parent), Role::Parent);
        }
        for staff in ["administrator", "aide", "proctor", "siteAdministrator"] {
            assert_eq!(role_of(staff), Role::Staff);
        }
    }
}
