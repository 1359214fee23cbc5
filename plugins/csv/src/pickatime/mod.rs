//! The pickAtime manual-file format: Student, Teacher, Class and Enrollment files
//! (required) and Parent and ParentStudent files (optional), tab-delimited with a header.
//!
//! The files are read one after the other, each row by row, and records come out in
//! dependency order: the school (and term), students, teachers, parents, classes, class
//! teachers, enrollments, relationships, and last a [`Snapshot`]. What stays in memory
//! is one index per file (ids and line numbers) to check the references of later files.
//!
//! Beyond the documented format:
//! - **Co-taught classes.** pickAtime wants a ClassID per teacher; a ClassID that appears
//!   on several rows with different TeacherIDs is read as one class with several teachers:
//!   one `Class` record, and one `ClassTeacher` link per teacher, the first row's primary.
//! - **Duplicate parents.** A repeated ParentID updates the contact (the last row wins);
//!   a ParentID whose Email (compared trimmed and case-insensitively) another ParentID
//!   already has is merged into that first ParentID's contact, and relationships naming
//!   it are redirected there. Each merge is logged at info level.
//! - **Passwords** in the Teacher file are never read into a record.

mod classes;
mod enrollments;
mod files;
mod parents;
mod people;
mod relationships;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use roster_core::record::{ClassTeacher, Entity, Record, School, Snapshot, Term};
use roster_core::sdk::{encode_record, Host, RecordSource};
use roster_core::PluginError;

use crate::config::{Config, Delimiter};
use crate::hash::{FastMap, IdTable};
use crate::table::{Row, Table};
pub use files::FileSet;
use parents::ParentIndex;

/// Records per `next_batch` call.
pub const BATCH_SIZE: usize = 5_000;

/// The school record's `source_id`: the files name no school, so there is exactly one.
pub const SCHOOL_ID: &str = "school";

/// A pickAtime file set, read as a stream of records. Usable without the plugin ABI:
/// it is an iterator of records as well as a [`RecordSource`].
pub struct PickatimeSource {
    host: Host,
    files: FileSet,
    delimiter: Delimiter,
    roster: Roster,
    pending: VecDeque<Record>,
    steps: VecDeque<Step>,
    current: Option<Box<dyn Reader>>,
    failed: bool,
}

/// What the files read so far established, for checking the references of later files.
struct Roster {
    host: Host,
    school_id: String,
    term_id: Option<String>,
    student_file: String,
    teacher_file: String,
    parent_file: String,
    /// StudentIDs, numbered densely: the index into `student_seen`.
    students: IdTable,
    /// By student number.
    student_seen: Vec<StudentSeen>,
    teachers: FastMap<Box<str>, u64>,
    parents: Option<Arc<ParentIndex>>,
    classes: FastMap<Box<str>, classes::ClassSeen>,
    links: VecDeque<ClassTeacher>,
}

struct StudentSeen {
    line: u64,
    removed: bool,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Students,
    Teachers,
    Parents,
    Classes,
    ClassTeachers,
    Enrollments,
    Relationships,
    Snapshot,
}

/// One step of the stream.
trait Reader: Send {
    fn next(&mut self, roster: &mut Roster) -> Result<Option<Record>, PluginError>;
    /// The same record encoded into `out` (see `encode_record`); `false` at the end.
    fn next_encoded(
        &mut self,
        roster: &mut Roster,
        out: &mut Vec<u8>,
    ) -> Result<bool, PluginError> {
        Ok(match self.next(roster)? {
            Some(record) => {
                encode_record(&record, out);
                true
            }
            None => false,
        })
    }
    /// The file being read and the rows read from it, for progress reports.
    fn progress(&self) -> Option<(&str, u64)> {
        None
    }
}

impl PickatimeSource {
    /// Finds the files (a missing required file is an error now, before any record) and
    /// prepares the stream; the files themselves are read as the records are pulled.
    pub fn open(config: &Config, base_dir: &Path, host: Host) -> Result<Self, PluginError> {
        let files = files::resolve(config, base_dir)?;
        let school = School {
            source_id: SCHOOL_ID.to_string(),
            name: config
                .school
                .clone()
                .unwrap_or_else(|| "School".to_string()),
            ..Default::default()
        };
        let term = config.term.as_ref().map(|name| Term {
            source_id: name.clone(),
            name: name.clone(),
            school_id: Some(SCHOOL_ID.to_string()),
            ..Default::default()
        });
        let roster = Roster {
            host: host.clone(),
            school_id: SCHOOL_ID.to_string(),
            term_id: term.as_ref().map(|t| t.source_id.clone()),
            student_file: files.students.name.clone(),
            teacher_file: files.teachers.name.clone(),
            parent_file: files
                .parents
                .as_ref()
                .map_or_else(String::new, |f| f.name.clone()),
            students: IdTable::default(),
            student_seen: Vec::new(),
            teachers: FastMap::default(),
            parents: None,
            classes: FastMap::default(),
            links: VecDeque::new(),
        };
        let mut pending = VecDeque::from([Record::from(school)]);
        pending.extend(term.map(Record::from));
        let mut steps = VecDeque::from([Step::Students, Step::Teachers]);
        if files.parents.is_some() {
            steps.push_back(Step::Parents);
        }
        steps.extend([Step::Classes, Step::ClassTeachers, Step::Enrollments]);
        if files.parent_students.is_some() {
            steps.push_back(Step::Relationships);
        }
        steps.push_back(Step::Snapshot);
        Ok(PickatimeSource {
            host,
            files,
            delimiter: config.delimiter,
            roster,
            pending,
            steps,
            current: None,
            failed: false,
        })
    }

    /// The files this source reads.
    pub fn files(&self) -> &FileSet {
        &self.files
    }

    /// The next record in dependency order, `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<Record>, PluginError> {
        if self.failed {
            return Ok(None);
        }
        let result = self.advance();
        self.failed = result.is_err();
        result
    }

    fn advance(&mut self) -> Result<Option<Record>, PluginError> {
        if let Some(record) = self.pending.pop_front() {
            return Ok(Some(record));
        }
        loop {
            if let Some(reader) = &mut self.current {
                if let Some(record) = reader.next(&mut self.roster)? {
                    return Ok(Some(record));
                }
                if let Some((stage, done)) = reader.progress() {
                    self.host.progress(stage, done, Some(done));
                }
                self.current = None;
            }
            let Some(step) = self.steps.pop_front() else {
                return Ok(None);
            };
            self.current = Some(self.start(step)?);
        }
    }

    /// `next_record`, encoded into `out`; `false` at the end.
    fn next_record_encoded(&mut self, out: &mut Vec<u8>) -> Result<bool, PluginError> {
        if self.failed {
            return Ok(false);
        }
        let result = self.advance_encoded(out);
        self.failed = result.is_err();
        result
    }

    /// `advance`, with each reader's record encoded as it is made.
    fn advance_encoded(&mut self, out: &mut Vec<u8>) -> Result<bool, PluginError> {
        if let Some(record) = self.pending.pop_front() {
            encode_record(&record, out);
            return Ok(true);
        }
        loop {
            if let Some(reader) = &mut self.current {
                if reader.next_encoded(&mut self.roster, out)? {
                    return Ok(true);
                }
                if let Some((stage, done)) = reader.progress() {
                    self.host.progress(stage, done, Some(done));
                }
                self.current = None;
            }
            let Some(step) = self.steps.pop_front() else {
                return Ok(false);
            };
            self.current = Some(self.start(step)?);
        }
    }

    fn start(&mut self, step: Step) -> Result<Box<dyn Reader>, PluginError> {
        self.release_before(step);
        let (host, delimiter) = (&self.host, self.delimiter);
        Ok(match step {
            Step::Students => Box::new(people::Students::open(
                &self.files.students,
                delimiter,
                host,
            )?),
            Step::Teachers => Box::new(people::Teachers::open(
                &self.files.teachers,
                delimiter,
                host,
            )?),
            Step::Parents => {
                let file = self
                    .files
                    .parents
                    .as_ref()
                    .expect("only planned with a Parent file");
                let (index, reader) =
                    parents::Parents::open(file, delimiter, host, &self.roster.school_id)?;
                self.roster.parents = Some(index);
                Box::new(reader)
            }
            Step::Classes => Box::new(classes::Classes::open(
                &self.files.classes,
                delimiter,
                host,
            )?),
            Step::ClassTeachers => Box::new(ClassTeachers),
            Step::Enrollments => Box::new(enrollments::Enrollments::open(
                &self.files.enrollments,
                delimiter,
                host,
            )?),
            Step::Relationships => {
                let file = self
                    .files
                    .parent_students
                    .as_ref()
                    .expect("only planned with a ParentStudent file");
                Box::new(relationships::Relationships::open(file, delimiter, host)?)
            }
            Step::Snapshot => Box::new(SnapshotStep(Some(self.snapshot()))),
        })
    }

    /// Frees the indexes no step from `step` on reads: the host is still writing what
    /// the plugin sent while it reads the last files, and a district's indexes take
    /// hundreds of MiB.
    fn release_before(&mut self, step: Step) {
        let roster = &mut self.roster;
        match step {
            Step::Students | Step::Teachers | Step::Parents | Step::Classes => {}
            Step::ClassTeachers => roster.teachers = FastMap::default(),
            Step::Enrollments => roster.links = VecDeque::new(),
            Step::Relationships => roster.classes = FastMap::default(),
            // Teachers and class links went before the enrollments, always planned; the
            // classes too unless there was a ParentStudent file.
            Step::Snapshot => {
                roster.classes = FastMap::default();
                roster.students = IdTable::default();
                roster.student_seen = Vec::new();
                roster.parents = None;
            }
        }
    }

    /// The required files are full snapshots; the parent files only vouch for their
    /// entities when they were supplied.
    fn snapshot(&self) -> Snapshot {
        let mut complete = vec![
            Entity::Schools,
            Entity::Terms,
            Entity::Students,
            Entity::Teachers,
            Entity::Classes,
            Entity::ClassTeachers,
            Entity::Enrollments,
        ];
        if self.files.parents.is_some() {
            complete.push(Entity::Parents);
        }
        if self.files.parent_students.is_some() {
            complete.push(Entity::Relationships);
        }
        Snapshot::of(&complete)
    }

    fn report_progress(&self) {
        if let Some((stage, done)) = self.current.as_ref().and_then(|r| r.progress()) {
            self.host.progress(stage, done, None);
        }
    }
}

impl RecordSource for PickatimeSource {
    fn next_batch(&mut self) -> Result<Option<Vec<Record>>, PluginError> {
        self.host.check_cancelled()?;
        let mut batch = Vec::with_capacity(BATCH_SIZE);
        while batch.len() < BATCH_SIZE {
            match self.next_record()? {
                Some(record) => batch.push(record),
                None => break,
            }
        }
        self.report_progress();
        Ok((!batch.is_empty()).then_some(batch))
    }

    /// The same batches as `next_batch`, each record encoded as soon as it is made: no
    /// batch of records is ever held, and each record's strings are freed right away.
    fn next_batch_encoded(&mut self, out: &mut Vec<u8>) -> Result<bool, PluginError> {
        self.host.check_cancelled()?;
        let mut count = 0;
        while count < BATCH_SIZE && self.next_record_encoded(out)? {
            count += 1;
        }
        self.report_progress();
        Ok(count > 0)
    }
}

impl Iterator for PickatimeSource {
    type Item = Result<Record, PluginError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

/// Hooks for the fuzz targets in `fuzz/` and the fuzz smoke tests: the text decoder
/// every data file goes through (byte-order marks, UTF-16, line endings, the delimiter),
/// on its own. Not part of the plugin's API.
#[doc(hidden)]
pub mod fuzzing {
    use std::io::{Cursor, Read};

    use crate::config::Delimiter;
    use crate::text::{self, Encoding};

    /// `bytes` decoded as a data file is: its text (UTF-8 for UTF-16 input; other input
    /// passes through byte for byte, to be decoded per cell), `\n` line endings only,
    /// the delimiter chosen, and whether the input was UTF-16.
    pub fn decode(bytes: Vec<u8>, delimiter: Delimiter) -> std::io::Result<(Vec<u8>, u8, bool)> {
        let mut file = text::open_reader(Cursor::new(bytes), delimiter)?;
        let mut out = Vec::new();
        file.reader.read_to_end(&mut out)?;
        let utf16 = matches!(file.encoding, Encoding::Utf16Le | Encoding::Utf16Be);
        Ok((out, file.delimiter, utf16))
    }

    /// A cell's bytes as text, and whether it had to be read as Windows-1252.
    pub fn decode_field(bytes: &[u8]) -> (String, bool) {
        let (text, latin1) = text::decode_field(bytes);
        (text.into_owned(), latin1)
    }
}

/// Reads a whole pickAtime folder into memory: for tests and small tools.
pub fn read_all(config: &Config, base_dir: &Path, host: Host) -> Result<Vec<Record>, PluginError> {
    PickatimeSource::open(config, base_dir, host)?.collect()
}

struct ClassTeachers;

impl Reader for ClassTeachers {
    fn next(&mut self, roster: &mut Roster) -> Result<Option<Record>, PluginError> {
        Ok(roster.links.pop_front().map(Record::from))
    }
}

struct SnapshotStep(Option<Snapshot>);

impl Reader for SnapshotStep {
    fn next(&mut self, _roster: &mut Roster) -> Result<Option<Record>, PluginError> {
        Ok(self.0.take().map(Record::from))
    }
}

impl Roster {
    /// Checks the student a later file refers to in column `index`: in the Student
    /// file, and not deleted there.
    fn check_student(&self, table: &Table, row: &Row, index: usize) -> Result<(), PluginError> {
        let id = row.get(index);
        match self.students.get(id).map(|n| &self.student_seen[n]) {
            None => Err(table.error(
                row,
                index,
                format!("unknown StudentID `{id}` (not in {})", self.student_file),
            )),
            Some(seen) if seen.removed => Err(table
                .error(
                    row,
                    index,
                    format!(
                        "StudentID `{id}` is deleted by Action=delete in {} (line {})",
                        self.student_file, seen.line
                    ),
                )
                .with_hint("remove the student's rows from the other files too")),
            Some(_) => Ok(()),
        }
    }
}
