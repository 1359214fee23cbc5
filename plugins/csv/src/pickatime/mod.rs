//! The pickAtime manual-file format: Student, Teacher, Class and Enrollment files
//! (required) and Parent and ParentStudent files (optional), tab-delimited with a header.
//!
//! The files are read one after the other, each row by row, and records come out in
//! dependency order: the school (and term), students, teachers, classes, class teachers,
//! enrollments, parents, relationships, and last a [`Snapshot`]. What stays in memory
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
//!
//! **Continuing runs.** Every run sends a checkpoint: the text of each file it read, or,
//! in a continuing run, how each differs from the text it was compared with (see
//! `checkpoint` and `delta`). Handed that checkpoint, the next run compares each file
//! with the text the last one read (see `changes`), still checks every row (reading only
//! those that what changed can make fail: `Table::read_row_where`, `parents::Around`),
//! and sends only the records whose rows changed, with a `Removal` for what went and a
//! `LinksReplaced` for the class teachers of a changed class and the relationships of a
//! changed contact. A run whose optional files are not the ones the last run had reads
//! everything.

mod changes;
mod checkpoint;
mod classes;
mod delta;
mod enrollments;
mod files;
mod parents;
mod people;
mod relationships;

use std::collections::{HashSet, VecDeque};
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use roster_core::record::{
    Checkpoint, ClassTeacher, Entity, LinksReplaced, Record, Removal, School, Snapshot, Term,
};
use roster_core::sdk::{encode_record, CheckpointBytes, Host, RecordSource};
use roster_core::PluginError;

use crate::config::{Config, Delimiter};
use crate::hash::{FastBuild, FastMap, IdTable};
use crate::mapped::{self, Watch};
use crate::table::{DataFile, Row, Table};
use crate::text::{self, Shared, Text, TextFile};
use changes::{key_set, Diff, KeySet};
use checkpoint::{Kept, Recorder, Slot};
pub use files::FileSet;
use parents::ParentIndex;

/// Records per `next_batch` call.
pub const BATCH_SIZE: usize = 5_000;
/// A continuing run's: its records are few and far between in the rows it reads, and a
/// smaller batch reaches the host sooner (the first one, half a file sooner).
pub const CONTINUING_BATCH_SIZE: usize = 1_000;

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
    current: Option<(Step, Box<dyn Reader>)>,
    failed: bool,
    /// The last run's checkpoint, in a continuing run (shared with the thread comparing
    /// the next file).
    kept: Option<Arc<Kept>>,
    /// This run's.
    recorder: Recorder,
    /// Where a continuing run decompresses each last text, kept from file to file: a
    /// buffer of a hundred MiB costs as much to map afresh as to fill.
    scratch: Vec<u8>,
    /// What `scratch` is made for when it is first needed, so that it never grows: the
    /// largest file it serves, and an eighth (only what a text fills is ever mapped).
    scratch_size: usize,
    /// The next file's comparison with its last text, under way.
    ahead: Option<Ahead>,
    /// The files whose texts were mapped (`mapped.rs`), as shown, to check at the end.
    watched: Vec<(String, Watch)>,
    /// Every row of the Parent file indexed in a continuing run too, to compare with.
    #[cfg(test)]
    index_every_parent: bool,
}

/// A continuing run compares the next file with its last text on a thread of its own
/// while the current step reads its rows: a step that starts by comparing (reading the
/// file, decompressing the last text, walking the two) would send its first record a
/// comparison later, the host meanwhile with nothing to write. At nyc the Parent file's
/// takes 0.3 s, the Enrollment file's 0.15. One file ahead, not more: started while the
/// Student file's rows are read, the Enrollment file's comparison took the core that
/// step and the host share, and the run was slower.
struct Ahead {
    slot: Slot,
    comparing: std::thread::JoinHandle<Result<Compared, CompareError>>,
}

impl Drop for PickatimeSource {
    /// A run that ends early (an error, a cancel) waits for the comparison under way:
    /// nothing of the plugin's runs after its source is gone.
    fn drop(&mut self) {
        if let Some(ahead) = self.ahead.take() {
            let _ = ahead.comparing.join();
        }
    }
}

/// A file and the text the last run read of it, compared.
struct Compared {
    bytes: Text,
    /// The file, when `bytes` is mapped: checked at the end of the run.
    watch: Option<Watch>,
    old: Vec<u8>,
    diff: Diff,
    encoding: text::Encoding,
    delimiter: u8,
    seconds: f64,
}

enum CompareError {
    /// The file.
    Read(io::Error),
    /// The checkpoint's text.
    Kept(io::Error),
}

/// Reads `path` whole (`shown` to the user), mapped where it can be (`mapped.rs`), and
/// compares it with `kept`'s text of `slot`, decompressed into `old` (a buffer to reuse)
/// on another thread meanwhile.
fn compare(
    path: &Path,
    shown: &str,
    delimiter: Delimiter,
    kept: &Kept,
    slot: Slot,
    old: Vec<u8>,
    largest: usize,
) -> Result<Compared, CompareError> {
    let started = std::time::Instant::now();
    let TextFile {
        reader,
        encoding,
        delimiter: new_delimiter,
        ..
    } = text::open(path, delimiter).map_err(CompareError::Read)?;
    let size = std::fs::metadata(path).map_or(0, |m| m.len() as usize);
    let mapped = match encoding {
        text::Encoding::Utf8 => mapped::map(path, shown).map_err(CompareError::Read)?,
        text::Encoding::Utf16Le | text::Encoding::Utf16Be => None,
    };
    // Sized up front: growing a buffer of a hundred MiB by doubling costs more than
    // the comparison.
    let mut bytes = Vec::with_capacity(if mapped.is_some() { 0 } else { size + 1 });
    let is_mapped = mapped.is_some();
    let read = |bytes: &mut Vec<u8>| {
        if is_mapped {
            Ok(0)
        } else {
            { reader }.read_to_end(bytes)
        }
    };
    let decode = |mut old: Vec<u8>| {
        old.clear();
        // The last run's text is about this one's size. A buffer too small for it is let
        // go, not grown: growing would copy what it held, another file's text, into
        // fresh memory.
        let wanted = size + size / 8;
        if old.capacity() < wanted {
            old = Vec::with_capacity(wanted.max(largest));
        }
        kept.text(slot, &mut old).map(|()| old)
    };
    let (read, decoded) = std::thread::scope(|scope| {
        match std::thread::Builder::new().spawn_scoped(scope, move || decode(old)) {
            Ok(decoding) => {
                let read = read(&mut bytes);
                let decoded = decoding
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (read, decoded)
            }
            // No thread to be had: one after the other.
            Err(_) => (read(&mut bytes), decode(Vec::new())),
        }
    });
    read.map_err(CompareError::Read)?;
    let (bytes, watch) = match mapped {
        Some((mapped, watch)) => (Text::Mapped(mapped), Some(watch)),
        None => (Text::Read(bytes), None),
    };
    let old = decoded.map_err(CompareError::Kept)?;
    let old_delimiter = changes::delimiter_of(&old, delimiter.byte());
    let diff = changes::diff(&old, old_delimiter, &bytes, new_delimiter);
    Ok(Compared {
        bytes,
        watch,
        old,
        diff,
        encoding,
        delimiter: new_delimiter,
        seconds: started.elapsed().as_secs_f64(),
    })
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
    /// What changed since the last run, in a continuing run.
    changes: Option<Changes>,
}

/// The dirty keys of a continuing run: whose records it sends. Each set is filled as
/// the file it comes from is compared with its last text.
#[derive(Default)]
struct Changes {
    students: KeySet,
    teachers: KeySet,
    /// Contacts, by the ParentID that names them.
    contacts: KeySet,
    classes: KeySet,
    /// Students whose rows in the Enrollment file changed.
    enrolled: KeySet,
    /// Whether the Enrollment file, or the ParentStudent file, has an added row without
    /// its StudentID, or its ParentID (see `Diff::added_without`).
    enrollments_keyless: bool,
    relationships_keyless: bool,
    /// (ClassID, StudentID) of the enrollment rows that went: removed at the end unless
    /// a row of the student still has them.
    enrollments_gone: HashSet<(Box<str>, Box<str>), FastBuild>,
    /// Contacts whose relationships are replaced.
    owners: KeySet,
    /// ParentIDs of the Parent file's changed rows.
    parent_ids: KeySet,
    /// ParentIDs of the ParentStudent file's changed rows.
    related: KeySet,
    /// Every ParentID of the contacts in `owners`.
    owned: KeySet,
    /// Whether a student, teacher, class or ParentID that a later file may name went
    /// (or a student is deleted now): the unchanged rows of that file are checked again.
    went: Went,
}

#[derive(Default)]
struct Went {
    students: bool,
    teachers: bool,
    classes: bool,
    parents: bool,
}

struct StudentSeen {
    line: u64,
    removed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        Self::open_from(config, base_dir, host, None)
    }

    /// `open`, continuing from the checkpoint of the last run when there is one that
    /// fits these files.
    pub fn open_from(
        config: &Config,
        base_dir: &Path,
        host: Host,
        checkpoint: Option<CheckpointBytes>,
    ) -> Result<Self, PluginError> {
        let files = files::resolve(config, base_dir)?;
        let kept = checkpoint.and_then(|bytes| match Kept::decode(bytes) {
            Some(kept)
                if kept.has(Slot::Parents) == files.parents.is_some()
                    && kept.has(Slot::ParentStudents) == files.parent_students.is_some() =>
            {
                Some(kept)
            }
            Some(_) => {
                host.info(
                    "the parent files are not the ones the last run read: reading everything",
                );
                None
            }
            None => {
                host.warn(
                    "the last run's checkpoint is not one this plugin reads: reading everything",
                );
                None
            }
        });
        if kept.is_some() {
            roster_core::allocator::hold_freed_memory_for_a_continuing_run();
        }
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
            changes: kept.as_ref().map(|_| Changes::default()),
        };
        let mut pending = VecDeque::new();
        if kept.is_some() {
            pending.push_back(Record::from(Snapshot::continuing()));
        }
        pending.push_back(Record::from(school));
        pending.extend(term.map(Record::from));
        // Parents after the enrollments: nothing before them needs the Parent file, whose
        // index takes the longest to build, and meanwhile the host writes the rest.
        let mut steps = VecDeque::from([
            Step::Students,
            Step::Teachers,
            Step::Classes,
            Step::ClassTeachers,
            Step::Enrollments,
        ]);
        if files.parents.is_some() {
            steps.push_back(Step::Parents);
        }
        if files.parent_students.is_some() {
            steps.push_back(Step::Relationships);
        }
        steps.push_back(Step::Snapshot);
        let recorder = match &kept {
            Some(kept) if kept.extendable() => Recorder::extending(),
            Some(kept) => {
                host.debug(&format!(
                    "the checkpoint has the changes of {} runs after it: keeping the files whole again",
                    kept.parts()
                ));
                Recorder::default()
            }
            None => Recorder::default(),
        };
        Ok(PickatimeSource {
            host,
            files,
            delimiter: config.delimiter,
            roster,
            pending,
            steps,
            current: None,
            failed: false,
            recorder,
            kept: kept.map(Arc::new),
            scratch: Vec::new(),
            scratch_size: 0,
            ahead: None,
            watched: Vec::new(),
            #[cfg(test)]
            index_every_parent: false,
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
        loop {
            if let Some(record) = self.pending.pop_front() {
                return Ok(Some(record));
            }
            if let Some((_, reader)) = &mut self.current {
                if let Some(record) = reader.next(&mut self.roster)? {
                    return Ok(Some(record));
                }
                self.end_step();
                continue;
            }
            let Some(step) = self.steps.pop_front() else {
                return Ok(None);
            };
            let reader = self.start(step)?;
            self.current = Some((step, reader));
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
        loop {
            if let Some(record) = self.pending.pop_front() {
                encode_record(&record, out);
                return Ok(true);
            }
            if let Some((_, reader)) = &mut self.current {
                if reader.next_encoded(&mut self.roster, out)? {
                    return Ok(true);
                }
                self.end_step();
                continue;
            }
            let Some(step) = self.steps.pop_front() else {
                return Ok(false);
            };
            let reader = self.start(step)?;
            self.current = Some((step, reader));
        }
    }

    /// The current step read its last row: its progress is complete, and a continuing
    /// run queues the removals of what its file no longer has.
    fn end_step(&mut self) {
        let Some((step, reader)) = self.current.take() else {
            return;
        };
        if let Some((stage, done)) = reader.progress() {
            self.host.progress(stage, done, Some(done));
        }
        let roster = &self.roster;
        let Some(changes) = &roster.changes else {
            return;
        };
        let went = match step {
            Step::Students => changes.students.iter().any(|id| {
                roster
                    .students
                    .get(id)
                    .is_none_or(|n| roster.student_seen[n].removed)
            }),
            Step::Teachers => changes
                .teachers
                .iter()
                .any(|id| !roster.teachers.contains_key(id)),
            Step::Parents => changes
                .parent_ids
                .iter()
                .any(|id| roster.resolve(id).is_none()),
            Step::Classes => changes
                .classes
                .iter()
                .any(|id| !roster.classes.contains_key(id)),
            _ => false,
        };
        let removal = |entity: Entity, id: &str, other: &str| {
            Record::from(Removal {
                entity: entity as i32,
                source_id: id.to_string(),
                other_id: other.to_string(),
                other_id_kind: None,
            })
        };
        let removals: Vec<Record> = match step {
            Step::Students => sorted(&changes.students)
                .filter(|id| roster.students.get(id).is_none())
                .map(|id| removal(Entity::Students, id, ""))
                .collect(),
            Step::Teachers => sorted(&changes.teachers)
                .filter(|id| !roster.teachers.contains_key(*id))
                .map(|id| removal(Entity::Teachers, id, ""))
                .collect(),
            Step::Parents => {
                let index = roster.parents.as_ref().expect("read by this step");
                sorted(&changes.contacts)
                    .filter(|id| index.resolve(id) != Some(*id))
                    .map(|id| removal(Entity::Parents, id, ""))
                    .collect()
            }
            Step::Classes => sorted(&changes.classes)
                .filter(|id| !roster.classes.contains_key(*id))
                .map(|id| removal(Entity::Classes, id, ""))
                .collect(),
            Step::Enrollments => {
                let mut gone: Vec<_> = changes.enrollments_gone.iter().collect();
                gone.sort();
                gone.into_iter()
                    .map(|(class, student)| removal(Entity::Enrollments, class, student))
                    .collect()
            }
            Step::ClassTeachers | Step::Relationships | Step::Snapshot => Vec::new(),
        };
        self.pending.extend(removals);
        let changes = self.roster.changes.as_mut().expect("continuing");
        match step {
            Step::Students => changes.went.students = went,
            Step::Teachers => changes.went.teachers = went,
            Step::Parents => changes.went.parents = went,
            Step::Classes => changes.went.classes = went,
            _ => {}
        }
    }

    /// The text of `slot`'s file for its reader. A complete run streams it from the
    /// file, recording it for the checkpoint on the way; a continuing run reads it whole,
    /// compares it with the text the last run read, and records it.
    fn text(&mut self, slot: Slot, file: &DataFile) -> Result<Opened, PluginError> {
        let cannot_read = |e: io::Error| {
            PluginError::input(format!("cannot read the file: {e}")).at(file.shown.clone())
        };
        let Some(kept) = &self.kept else {
            let TextFile {
                reader,
                encoding,
                delimiter,
                ..
            } = text::open(&file.path, self.delimiter).map_err(cannot_read)?;
            let reader = self.recorder.tee(slot, reader);
            return Ok(Opened {
                text: TextFile {
                    reader,
                    encoding,
                    delimiter,
                    whole: None,
                },
                diff: None,
                memory: None,
            });
        };
        let kept = Arc::clone(kept);
        let compared = match self.ahead.take() {
            Some(ahead) if ahead.slot == slot => ahead
                .comparing
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            other => {
                drop(other.map(|ahead| ahead.comparing.join()));
                let scratch = std::mem::take(&mut self.scratch);
                compare(
                    &file.path,
                    &file.shown,
                    self.delimiter,
                    &kept,
                    slot,
                    scratch,
                    self.scratch_size(),
                )
            }
        };
        let Compared {
            bytes,
            watch,
            old,
            diff,
            encoding,
            delimiter,
            seconds,
        } = compared.map_err(|error| match error {
            CompareError::Read(e) => cannot_read(e),
            CompareError::Kept(e) => {
                PluginError::input(format!("the last run's checkpoint cannot be read: {e}"))
                    .with_hint("run with `--full` to read every file in full")
            }
        })?;
        if let Some(watch) = watch {
            self.watched.push((file.shown.clone(), watch));
        }
        self.host.debug(&format!(
            "{}: {} rows added or changed, {} gone since the last run (compared in {:.2} s)",
            file.shown,
            diff.added.len(),
            diff.gone.len(),
            seconds
        ));
        // What the next run compares with: the night's delta, or the text whole.
        let whole = if self.recorder.is_extending() {
            self.recorder.delta(slot, &old, &bytes);
            false
        } else if *bytes == *old && kept.parts() == 0 {
            // The base's frame is this text only while no later run changed it.
            self.recorder.keep(slot, kept.frame(slot));
            false
        } else {
            true
        };
        // Kept for the next file, but not through the Parent file's index: that is the
        // run's peak, and the buffer is the size of the largest file.
        if slot != Slot::Parents {
            self.scratch = old;
        }
        self.compare_next(&kept);
        let bytes = Shared::from(bytes);
        if whole {
            self.recorder.compress(slot, bytes.clone());
        }
        let memory = (bytes, encoding, delimiter);
        Ok(Opened {
            text: in_memory(&memory),
            diff: Some(diff),
            memory: Some(memory),
        })
    }

    /// Starts comparing the file of the next step that reads one, on a thread of its
    /// own (see [`Ahead`]); without a thread, that step compares it itself.
    fn compare_next(&mut self, kept: &Arc<Kept>) {
        let files = &self.files;
        let next = self.steps.iter().find_map(|step| match step {
            Step::Students => Some((Slot::Students, Some(&files.students))),
            Step::Teachers => Some((Slot::Teachers, Some(&files.teachers))),
            Step::Classes => Some((Slot::Classes, Some(&files.classes))),
            Step::Enrollments => Some((Slot::Enrollments, Some(&files.enrollments))),
            Step::Parents => Some((Slot::Parents, files.parents.as_ref())),
            Step::Relationships => Some((Slot::ParentStudents, files.parent_students.as_ref())),
            Step::ClassTeachers | Step::Snapshot => None,
        });
        let Some((slot, Some(file))) = next else {
            return;
        };
        let (path, shown) = (file.path.clone(), file.shown.clone());
        let (delimiter, kept) = (self.delimiter, Arc::clone(kept));
        let scratch = std::mem::take(&mut self.scratch);
        let largest = self.scratch_size();
        let comparing = std::thread::Builder::new()
            .name("compare ahead".into())
            .spawn(move || compare(&path, &shown, delimiter, &kept, slot, scratch, largest));
        self.ahead = comparing.ok().map(|comparing| Ahead { slot, comparing });
    }

    /// See `scratch_size`: the files up to the Parent file's, the last the buffer serves.
    /// The ParentStudent file's comparison, which starts without it, gets one this size
    /// too; only what its text fills is mapped.
    fn scratch_size(&mut self) -> usize {
        if self.scratch_size == 0 {
            let files = &self.files;
            let served = [
                &files.students,
                &files.teachers,
                &files.classes,
                &files.enrollments,
            ]
            .into_iter()
            .chain(&files.parents);
            let largest = served
                .filter_map(|file| std::fs::metadata(&file.path).ok())
                .map(|m| m.len() as usize)
                .max()
                .unwrap_or(0);
            self.scratch_size = largest + largest / 8;
        }
        self.scratch_size
    }

    /// Whether a continuing run indexes only the Parent file's rows around its changes
    /// (see `parents::Around`): not when rows moved (a contact's ParentID is the first
    /// of its rows in the file, so their order matters), nor under a new header (every
    /// row changed).
    fn indexes_around(&self, diff: &Diff) -> bool {
        #[cfg(test)]
        if self.index_every_parent {
            return false;
        }
        diff.moved == 0 && diff.old_header == diff.new_header
    }

    /// Queues a `LinksReplaced` of `entity` for each of `owners`.
    fn replace_links(&mut self, entity: Entity, owners: Vec<String>) {
        self.pending.extend(owners.into_iter().map(|owner| {
            Record::from(LinksReplaced {
                entity: entity as i32,
                owner_id: owner,
            })
        }));
    }

    fn start(&mut self, step: Step) -> Result<Box<dyn Reader>, PluginError> {
        self.release_before(step);
        let host = self.host.clone();
        let files = self.files.clone();
        Ok(match step {
            Step::Students => {
                let opened = self.text(Slot::Students, &files.students)?;
                self.note(&opened, |changes, diff| {
                    changes.students = key_set(diff.cells("StudentID"));
                });
                let same_header = opened
                    .diff
                    .as_ref()
                    .is_some_and(|diff| diff.old_header == diff.new_header);
                let mut reader = people::Students::open(&files.students, opened.text, &host)?;
                if self.roster.changes.is_some() && same_header {
                    reader.skim_unchanged();
                }
                self.roster.students.reserve(reader.rows_hint());
                self.roster.student_seen.reserve(reader.rows_hint());
                Box::new(reader)
            }
            Step::Teachers => {
                let opened = self.text(Slot::Teachers, &files.teachers)?;
                self.note(&opened, |changes, diff| {
                    changes.teachers = key_set(diff.cells("TeacherID"));
                });
                let reader = people::Teachers::open(&files.teachers, opened.text, &host)?;
                self.roster.teachers.reserve(reader.rows_hint());
                Box::new(reader)
            }
            Step::Parents => {
                let file = files
                    .parents
                    .as_ref()
                    .expect("only planned with a Parent file");
                let Opened { text, diff, memory } = self.text(Slot::Parents, file)?;
                let delimiter = self.delimiter;
                let again = || match &memory {
                    Some(memory) => Ok(in_memory(memory)),
                    None => text::open(&file.path, delimiter).map_err(|e| {
                        PluginError::input(format!("cannot read the file: {e}"))
                            .at(file.shown.clone())
                    }),
                };
                let around = match (&self.roster.changes, &diff, &self.kept) {
                    (Some(_), Some(diff), Some(kept)) if self.indexes_around(diff) => {
                        Some(parents::Around {
                            ids: key_set(diff.cells("ParentID")),
                            emails: diff
                                .cells("Email")
                                .map(|email| Box::from(&*parents::email_key(email)))
                                .collect(),
                            old_aliases: kept.aliases.clone(),
                        })
                    }
                    _ => None,
                };
                let (index, mut reader) = parents::Parents::open(
                    file,
                    text,
                    again,
                    &host,
                    &self.roster.school_id,
                    around,
                )?;
                let aliases = index.aliases();
                if let (Some(changes), Some(diff), Some(kept)) =
                    (&mut self.roster.changes, &diff, &self.kept)
                {
                    (changes.contacts, changes.owners) =
                        changed_contacts(diff, &kept.aliases, &aliases, &index);
                    changes.parent_ids = key_set(diff.cells("ParentID"));
                    if let Some((text, _, delimiter)) = memory {
                        reader.only(&changes.contacts, text, delimiter);
                    }
                }
                self.recorder.set_aliases(aliases);
                self.roster.parents = Some(index);
                Box::new(reader)
            }
            Step::Classes => {
                let opened = self.text(Slot::Classes, &files.classes)?;
                self.note(&opened, |changes, diff| {
                    changes.classes = key_set(diff.cells("ClassID"));
                });
                let reader = classes::Classes::open(&files.classes, opened.text, &host)?;
                self.roster.classes.reserve(reader.rows_hint());
                Box::new(reader)
            }
            Step::ClassTeachers => {
                if let Some(changes) = &self.roster.changes {
                    let owners: Vec<String> = sorted(&changes.classes)
                        .filter(|id| self.roster.classes.contains_key(*id))
                        .map(str::to_string)
                        .collect();
                    self.replace_links(Entity::ClassTeachers, owners);
                }
                Box::new(ClassTeachers)
            }
            Step::Enrollments => {
                let opened = self.text(Slot::Enrollments, &files.enrollments)?;
                self.note(&opened, |changes, diff| {
                    changes.enrolled = key_set(diff.cells("StudentID"));
                    changes.enrollments_keyless = diff.added_without("StudentID");
                    let student = diff.old_column("StudentID");
                    let classes = diff.old_columns("ClassID");
                    for row in &diff.gone {
                        let Some(student) = student.and_then(|i| row.get(i)) else {
                            continue;
                        };
                        for class in classes.iter().filter_map(|&i| row.get(i)) {
                            if !class.is_empty() && !student.is_empty() {
                                changes
                                    .enrollments_gone
                                    .insert((class.as_str().into(), student.as_str().into()));
                            }
                        }
                    }
                });
                if self.roster.changes.as_ref().is_some_and(|c| {
                    c.enrolled.is_empty()
                        && !c.enrollments_keyless
                        && !c.went.students
                        && !c.went.classes
                }) {
                    self.host.debug(&format!(
                        "{}: unchanged, and nothing it names went: not read again",
                        files.enrollments.shown
                    ));
                    return Ok(Box::new(Skipped));
                }
                Box::new(enrollments::Enrollments::open(
                    &files.enrollments,
                    opened.text,
                    &host,
                )?)
            }
            Step::Relationships => {
                let file = files
                    .parent_students
                    .as_ref()
                    .expect("only planned with a ParentStudent file");
                let opened = self.text(Slot::ParentStudents, file)?;
                let index = self.roster.parents.clone().expect("read before");
                if let (Some(changes), Some(diff), Some(kept)) =
                    (&mut self.roster.changes, &opened.diff, &self.kept)
                {
                    let old_roots = roots_of(&kept.aliases);
                    // One pass over the Parent file for the ParentIDs asked about below,
                    // where its index holds only the rows around its changes.
                    index.look_up(
                        diff.cells("ParentID")
                            .flat_map(|id| [id, old_roots.get(id).copied().unwrap_or(id)]),
                    );
                    for id in diff.cells("ParentID") {
                        changes
                            .owners
                            .insert(old_roots.get(id).copied().unwrap_or(id).into());
                        if let Some(root) = index.resolve(id) {
                            changes.owners.insert(root.into());
                        }
                    }
                    changes.related = key_set(diff.cells("ParentID"));
                    changes.relationships_keyless =
                        diff.added_without("ParentID") || diff.added_without("StudentID");
                    changes.owned = index.ids_of(&changes.owners);
                    // Only a contact the files still have has links to replace; the others
                    // went, and their links with them.
                    let owners: Vec<String> = sorted(&changes.owners)
                        .filter(|id| index.resolve(id) == Some(*id))
                        .map(str::to_string)
                        .collect();
                    self.replace_links(Entity::Relationships, owners);
                }
                if self.roster.changes.as_ref().is_some_and(|c| {
                    c.related.is_empty()
                        && !c.relationships_keyless
                        && c.owned.is_empty()
                        && !c.went.students
                        && !c.went.parents
                }) {
                    self.host.debug(&format!(
                        "{}: unchanged, and nothing it names went: not read again",
                        file.shown
                    ));
                    return Ok(Box::new(Skipped));
                }
                Box::new(relationships::Relationships::open(
                    file,
                    opened.text,
                    &host,
                )?)
            }
            Step::Snapshot => {
                // Every file is read: the last run's texts are no longer needed, and the
                // new ones are about to be handed over.
                let continuing = self.kept.take().is_some();
                self.scratch = Vec::new();
                let mut records = VecDeque::new();
                let extends = self.recorder.is_extending();
                match self.recorder.finish() {
                    Ok(state) => records.push_back(Record::from(Checkpoint { state, extends })),
                    Err(error) => self.host.warn(&format!(
                        "no checkpoint for the next run, which will read everything: {error}"
                    )),
                }
                // Every use of the mapped texts is over, the checkpoint's included: a file
                // changed meanwhile may have been read half old, half new.
                for (shown, watch) in std::mem::take(&mut self.watched) {
                    match watch.check() {
                        Ok(true) => {}
                        Ok(false) => {
                            return Err(PluginError::input(
                                "changed while the import read it; nothing was applied",
                            )
                            .at(shown)
                            .with_hint("run the import again once the file is written in full"))
                        }
                        Err(e) => {
                            return Err(
                                PluginError::input(format!("cannot read the file: {e}")).at(shown)
                            )
                        }
                    }
                }
                if !continuing {
                    records.push_back(Record::from(self.snapshot()));
                }
                Box::new(SnapshotStep(records))
            }
        })
    }

    /// In a continuing run, what `opened`'s comparison with the last text makes dirty.
    fn note(&mut self, opened: &Opened, mark: impl FnOnce(&mut Changes, &Diff)) {
        if let (Some(changes), Some(diff)) = (&mut self.roster.changes, &opened.diff) {
            mark(changes, diff);
        }
    }

    /// Frees the indexes no step from `step` on reads: the host is still writing what
    /// the plugin sent while it reads the last files, and a district's indexes take
    /// hundreds of MiB.
    fn release_before(&mut self, step: Step) {
        let roster = &mut self.roster;
        match step {
            Step::Students | Step::Teachers | Step::Classes => {}
            Step::ClassTeachers => roster.teachers = FastMap::default(),
            Step::Enrollments => roster.links = VecDeque::new(),
            // No file after the Enrollment file names a class.
            Step::Parents | Step::Relationships => roster.classes = FastMap::default(),
            // Teachers and class links went before the enrollments, always planned; the
            // classes too when there was a parent file.
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

    fn batch_size(&self) -> usize {
        if self.roster.changes.is_some() {
            CONTINUING_BATCH_SIZE
        } else {
            BATCH_SIZE
        }
    }

    fn report_progress(&self) {
        if let Some((stage, done)) = self.current.as_ref().and_then(|(_, r)| r.progress()) {
            self.host.progress(stage, done, None);
        }
    }
}

impl RecordSource for PickatimeSource {
    fn next_batch(&mut self) -> Result<Option<Vec<Record>>, PluginError> {
        self.host.check_cancelled()?;
        let size = self.batch_size();
        let mut batch = Vec::with_capacity(size);
        while batch.len() < size {
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
        let size = self.batch_size();
        while count < size && self.next_record_encoded(out)? {
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

/// A file a continuing run has nothing to send from nor check again.
struct Skipped;

impl Reader for Skipped {
    fn next(&mut self, _roster: &mut Roster) -> Result<Option<Record>, PluginError> {
        Ok(None)
    }
}

/// The run's last records: its checkpoint, and a complete run's snapshot.
struct SnapshotStep(VecDeque<Record>);

impl Reader for SnapshotStep {
    fn next(&mut self, _roster: &mut Roster) -> Result<Option<Record>, PluginError> {
        Ok(self.0.pop_front())
    }
}

/// A file's text for its reader, and in a continuing run how it changed and the text
/// itself (for a second pass).
struct Opened {
    text: TextFile,
    diff: Option<Diff>,
    memory: Option<(Shared, text::Encoding, u8)>,
}

fn in_memory((bytes, encoding, delimiter): &(Shared, text::Encoding, u8)) -> TextFile {
    TextFile::in_memory(bytes.clone(), *encoding, *delimiter)
}

fn sorted(keys: &KeySet) -> impl Iterator<Item = &str> {
    let mut keys: Vec<&str> = keys.iter().map(|k| &**k).collect();
    keys.sort_unstable();
    keys.into_iter()
}

/// Each merged ParentID's contact, from a list of aliases.
fn roots_of(aliases: &[(String, String)]) -> FastMap<&str, &str> {
    aliases
        .iter()
        .map(|(alias, root)| (alias.as_str(), root.as_str()))
        .collect()
}

/// The contacts a continuing run sends (or removes), and those whose relationships it
/// replaces. A contact's record depends on its rows and on which ParentIDs it has; its
/// relationships only on the latter (and on the ParentStudent rows, compared on their
/// own). So: each ParentID whose row changed makes its contact dirty, and one that came,
/// went or joined another contact than last time makes that contact's ParentIDs change —
/// each for the contact it belonged to then and the one it belongs to now.
fn changed_contacts(
    diff: &Diff,
    old_aliases: &[(String, String)],
    new_aliases: &[(String, String)],
    index: &ParentIndex,
) -> (KeySet, KeySet) {
    let old_roots = roots_of(old_aliases);
    let old_root = |id: &str| -> Box<str> { old_roots.get(id).copied().unwrap_or(id).into() };
    let new_root = |id: &str| index.resolve(id).map(Box::<str>::from);
    let both = |id: &str, set: &mut KeySet| {
        set.insert(old_root(id));
        set.extend(new_root(id));
    };
    let mut moved = KeySet::default();
    // A ParentID with rows only added or only gone may be new or gone itself.
    let added = key_set(diff.added_cells("ParentID"));
    let gone = key_set(diff.gone_cells("ParentID"));
    for id in added.symmetric_difference(&gone) {
        both(id, &mut moved);
    }
    for (alias, root) in old_aliases {
        if new_root(alias).as_deref() != Some(root.as_str()) {
            both(alias, &mut moved);
        }
    }
    for (alias, root) in new_aliases {
        if *old_root(alias) != **root {
            both(alias, &mut moved);
        }
    }
    let mut dirty = moved.clone();
    for id in added.union(&gone) {
        both(id, &mut dirty);
    }
    (dirty, moved)
}

impl Roster {
    /// The contact a ParentID belongs to.
    fn resolve<'a>(&'a self, parent_id: &'a str) -> Option<&'a str> {
        self.parents.as_ref()?.resolve(parent_id)
    }

    /// Whether the record of `key` goes out: always in a complete run; in a continuing
    /// one, when `dirty` has the key.
    fn sends(&self, dirty: impl FnOnce(&Changes) -> &KeySet, key: &str) -> bool {
        self.changes
            .as_ref()
            .is_none_or(|changes| dirty(changes).contains(key))
    }

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

/// A small generator of numbers for tests that edit texts at random, the same for a seed
/// on every machine.
#[cfg(test)]
struct Dice(u64);

#[cfg(test)]
impl Dice {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roster_core::record::Kind;
    use roster_core::sdk::Silent;

    const FILES: [(&str, &str); 6] = [
        (
            "Student.txt",
            "StudentID\tFirst\tLast\tSecurityValue\nS1\tAda\tLovelace\t12/10/2015\nS2\tAlan\tTuring\t06/23/2014\n",
        ),
        (
            "Teacher.txt",
            "TeacherID\tFirst\tLast\tEmail\tRoom\nT1\tMary\tJackson\tmary@school.example.org\t12\n",
        ),
        ("Class.txt", "ClassID\tTeacherID\tClassName\nC1\tT1\tMath\nC2\tT1\tScience\n"),
        ("Enrollment.txt", "StudentID\tClassID\nS1\tC1\nS2\tC2\n"),
        ("Parent.txt", "ParentID\tFirst\tLast\tEmail\nP1\tMaria\tLopez\tm@example.com\n"),
        ("ParentStudent.txt", "ParentID\tStudentID\nP1\tS1\n"),
    ];

    fn source(dir: &tempfile::TempDir, checkpoint: Option<Vec<u8>>) -> PickatimeSource {
        let name = dir.path().file_name().unwrap().to_str().unwrap();
        let config = Config::parse(&format!("format = \"pickatime\"\npath = {name:?}\n")).unwrap();
        let host = Host::new(Arc::new(Silent));
        PickatimeSource::open_from(
            &config,
            dir.path().parent().unwrap(),
            host,
            checkpoint.map(Into::into),
        )
        .unwrap()
    }

    #[test]
    fn a_continuing_run_compares_the_next_file_while_a_step_reads_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in FILES {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let checkpoint = source(&dir, None)
            .find_map(|record| match record.unwrap().kind {
                Some(Kind::Checkpoint(c)) => Some(c.state),
                _ => None,
            })
            .unwrap();
        // A change in every file, so that every step sends something.
        for (name, text) in FILES {
            let changed = text.replace("Ada", "Ava").replace("Mary", "Marie");
            let changed = changed.replace("Math", "Maths").replace("S2\tC2", "S2\tC1");
            let changed = changed.replace("Maria", "Mara").replace("P1\tS1", "P1\tS2");
            std::fs::write(dir.path().join(name), changed).unwrap();
        }
        let mut source = source(&dir, Some(checkpoint));
        // Each step as it sends, and the file being compared ahead meanwhile.
        let mut seen = Vec::new();
        while let Some(record) = source.next_record().unwrap() {
            let now = (
                source.current.as_ref().map(|(step, _)| *step),
                source.ahead.as_ref().map(|ahead| ahead.slot),
            );
            if seen.last() != Some(&now) {
                seen.push(now);
            }
            drop(record);
        }
        assert_eq!(
            seen,
            [
                (None, None),
                (Some(Step::Students), Some(Slot::Teachers)),
                (Some(Step::Teachers), Some(Slot::Classes)),
                (Some(Step::Classes), Some(Slot::Enrollments)),
                (Some(Step::ClassTeachers), Some(Slot::Enrollments)),
                (Some(Step::Enrollments), Some(Slot::Parents)),
                // The enrollments that went, sent between the steps.
                (None, Some(Slot::Parents)),
                (Some(Step::Parents), Some(Slot::ParentStudents)),
                (Some(Step::Relationships), None),
                (Some(Step::Snapshot), None),
            ]
        );
    }

    /// A Parent file's row: ParentIDs and emails from small pools, so that rows repeat
    /// ParentIDs and share emails (in any case), and some have none.
    fn parent_row(dice: &mut Dice) -> String {
        let id = dice.below(10) + 1;
        let names = ["Maria", "John", "Ana", "Lee"];
        let email = match dice.below(8) {
            0 => String::new(),
            1 => format!("E{}@Example.com", dice.below(6)),
            n => format!("e{}@example.com", (n + dice.below(3)) % 6),
        };
        format!("P{id}\t{}\tLopez\t{email}\n", names[dice.below(4)])
    }

    /// A night's edits to a file's rows: changed, gone, added, or two swapped.
    fn edit(dice: &mut Dice, rows: &mut Vec<String>, row: impl Fn(&mut Dice) -> String) {
        for _ in 0..dice.below(3) + 1 {
            let at = dice.below(rows.len().max(1));
            match dice.below(5) {
                0 if !rows.is_empty() => rows[at] = row(dice),
                1 if rows.len() > 1 => drop(rows.remove(at)),
                2 if at + 1 < rows.len() => rows.swap(at, at + 1),
                _ => rows.insert(at, row(dice)),
            }
        }
    }

    fn write(dir: &tempfile::TempDir, parents: &[String], links: &[String]) {
        std::fs::write(
            dir.path().join("Parent.txt"),
            format!("ParentID\tFirst\tLast\tEmail\n{}", parents.concat()),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("ParentStudent.txt"),
            format!("ParentID\tStudentID\n{}", links.concat()),
        )
        .unwrap();
    }

    /// A run's records but its checkpoint, and the ParentIDs merged into other contacts
    /// that its checkpoint keeps (each with its contact); or its error.
    type Outcome = Result<(Vec<Record>, Vec<(String, String)>), String>;

    fn outcome(mut source: PickatimeSource, before: &[u8]) -> Outcome {
        let mut records = Vec::new();
        let mut aliases = Vec::new();
        while let Some(record) = source.next_record().map_err(|e| e.to_string())? {
            match record.kind {
                Some(Kind::Checkpoint(kept)) => {
                    let mut bytes = if kept.extends {
                        before.to_vec()
                    } else {
                        Vec::new()
                    };
                    bytes.extend(kept.state);
                    aliases = checkpoint::Kept::decode(bytes.into()).unwrap().aliases;
                    aliases.sort();
                }
                _ => records.push(record),
            }
        }
        Ok((records, aliases))
    }

    /// Nights of random edits to the Parent and ParentStudent files: indexing only the
    /// Parent file's rows around the changes sends what indexing all of them sends, keeps
    /// the same merged ParentIDs, and fails with the same error.
    #[test]
    fn a_parent_index_around_the_changes_answers_as_one_of_every_row() {
        let mut around = 0;
        for seed in 1..=400u64 {
            let mut dice = Dice(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let dir = tempfile::tempdir().unwrap();
            for (name, text) in &FILES[..4] {
                std::fs::write(dir.path().join(name), text).unwrap();
            }
            let mut parents: Vec<String> = (0..dice.below(12) + 4)
                .map(|_| parent_row(&mut dice))
                .collect();
            let link =
                |dice: &mut Dice| format!("P{}\tS{}\n", dice.below(11) + 1, dice.below(2) + 1);
            let present = |parents: &[String], row: &String| {
                parents
                    .iter()
                    .any(|p| p.split('\t').next() == row.split('\t').next())
            };
            let mut links: Vec<String> = (0..6).map(|_| link(&mut dice)).collect();
            links.retain(|row| present(&parents, row));
            write(&dir, &parents, &links);
            let Ok(first) = outcome(source(&dir, None), &[]) else {
                continue;
            };
            let kept = source(&dir, None)
                .find_map(|record| match record.unwrap().kind {
                    Some(Kind::Checkpoint(c)) => Some(c.state),
                    _ => None,
                })
                .unwrap();
            drop(first);
            edit(&mut dice, &mut parents, parent_row);
            if dice.below(2) == 0 {
                edit(&mut dice, &mut links, link);
            }
            write(&dir, &parents, &links);
            let mut every = source(&dir, Some(kept.clone()));
            every.index_every_parent = true;
            let expected = outcome(every, &kept);
            let partial = source(&dir, Some(kept.clone()));
            assert_eq!(outcome(partial, &kept), expected, "seed {seed}");
            around += 1;
        }
        assert!(around > 300, "{around} nights compared");
    }
}
