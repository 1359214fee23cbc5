//! A deterministic, seeded generator of synthetic school districts.
//!
//! Every record is a pure function of `(seed, kind, index)` (a splitmix64 hash), so any
//! record can be produced on its own, in any order, without holding the district in
//! memory: the writers below stream files, and the Clever pages are rendered one slice at a
//! time. The only state kept is the family layout (two `u32` arrays), which decides which
//! students are siblings and which parents they share.
//!
//! Shape, scaled from New York City (1.1M students, 2,000 schools, 80,000 teachers,
//! 280,000 classes, 5.2M enrollments, 1.8M parents):
//! - one school per 550 students; teachers, classes and students are spread over the
//!   schools in contiguous blocks;
//! - each class has one primary teacher of its school, 5% a co-teacher;
//! - each student takes 4 or 5 distinct classes of their school (4.73 on average);
//! - students are grouped into families of 1–3 siblings in one school, each family with 2
//!   parents (5% with a third, a guardian); every parent is related to every child.
//!
//! `revision = 1` is the same district with about 1% of every kind of record changed:
//! students' last names, teachers' rooms, parents' emails, class names, and the classes
//! of 1% of students (all their enrollments move). That is the re-sync benchmark's input.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

/// Bump when the generated data changes, so cached inputs are rebuilt.
pub const VERSION: u32 = 1;

/// Bump when the floor's rows change shape (the schema's columns), so only they are
/// rebuilt. 2: enrollments and class teachers without their source (migration 8). 3: a
/// contact's fingerprint in the contact (migration 9).
pub const FLOOR_VERSION: u32 = 3;

pub const DEFAULT_SEED: u64 = 2026;

/// The named sizes: students in the district.
pub const SIZES: [(&str, u64); 4] = [
    ("tiny", 1_000),
    ("small", 10_000),
    ("medium", 100_000),
    ("nyc", 1_100_000),
];

pub fn students_for(size: &str) -> Option<u64> {
    SIZES.iter().find(|(n, _)| *n == size).map(|(_, s)| *s)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Spec {
    pub students: u64,
    pub schools: u64,
    pub teachers: u64,
    pub classes: u64,
    pub seed: u64,
}

impl Spec {
    pub fn from_students(students: u64, seed: u64) -> Spec {
        let students = students.max(10);
        let schools = students.div_ceil(550).max(1);
        let teachers = ((students * 80 + 550) / 1100).max(schools * 2);
        let classes = ((students * 280 + 550) / 1100).max(schools * 6);
        Spec {
            students,
            schools,
            teachers,
            classes,
            seed,
        }
    }
}

/// How many rows of each kind the district has (what the importer writes).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counts {
    pub schools: u64,
    pub students: u64,
    pub teachers: u64,
    pub parents: u64,
    pub classes: u64,
    pub class_teachers: u64,
    pub enrollments: u64,
    pub relationships: u64,
}

impl Counts {
    pub fn people(&self) -> u64 {
        self.students + self.teachers + self.parents
    }
}

// ---- hashing --------------------------------------------------------------------------

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Salts: one per decision, so decisions are independent.
mod salt {
    pub const FAMILY_JOIN: u64 = 1;
    pub const THIRD_PARENT: u64 = 2;
    pub const LAST: u64 = 3;
    pub const FIRST: u64 = 4;
    pub const GRADE: u64 = 5;
    pub const DOB: u64 = 6;
    pub const TEACHER_NAME: u64 = 7;
    pub const CO_TEACHER: u64 = 8;
    pub const SUBJECT: u64 = 9;
    pub const CLASS_COUNT: u64 = 10;
    pub const CLASS_OFFSET: u64 = 11;
    pub const PARENT_FIRST: u64 = 12;
    pub const CHANGED: u64 = 100;
}

/// Whole district: only the family layout is stored.
pub struct District {
    pub spec: Spec,
    pub revision: u32,
    /// First student of each family, plus a sentinel (`students`).
    family_start: Vec<u32>,
    /// First parent of each family, plus a sentinel (the number of parents).
    parent_start: Vec<u32>,
}

/// `[start, end)` of part `part` when `total` items are cut into `parts` blocks.
pub fn block(total: u64, parts: u64, part: u64) -> (u64, u64) {
    (part * total / parts, (part + 1) * total / parts)
}

/// The block that item `i` falls in (inverse of [`block`]).
pub fn owner(total: u64, parts: u64, i: u64) -> u64 {
    ((i + 1) * parts - 1) / total
}

const KID_FIRST: &[&str] = &[
    "Liam", "Olivia", "Noah", "Emma", "Oliver", "Ava", "Elijah", "Sophia", "Lucas", "Mia", "Mason",
    "Isabella", "Ethan", "Amelia", "Logan", "Harper", "Aiden", "Evelyn", "Jackson", "Abigail",
    "Caleb", "Emily", "Wyatt", "Ella", "Henry", "Avery", "Leo", "Scarlett", "Jack", "Grace",
    "Owen", "Chloe", "Levi", "Lily", "Isaac", "Aria", "Gabriel", "Nora", "Julian", "Hannah",
    "Mateo", "Zoey", "Anthony", "Layla", "Jaxon", "Riley", "Lincoln", "Stella", "Joshua",
    "Victoria", "Dylan", "Aurora", "Carter", "Hazel", "Nathan", "Violet", "Ryan", "Penelope",
    "Adrian", "Camila", "Miles", "Luna", "Eli", "Madison", "Aaron", "Savannah", "Thomas",
    "Brooklyn", "Ezra", "Leah", "Cameron", "Addison", "Connor", "Naomi", "Jordan", "Paisley",
    "Dominic", "Ellie", "Austin", "Skylar", "Ian", "Maya", "Jonah", "Ruby", "Xavier", "Claire",
    "Kai", "Alice", "Declan", "Piper", "Rowan", "Quinn", "Theo", "Iris", "Felix", "Nadia",
];
const ADULT_FIRST: &[&str] = &[
    "Michelle",
    "Jason",
    "Heather",
    "Brian",
    "Amy",
    "Eric",
    "Melissa",
    "Kevin",
    "Stephanie",
    "Jeffrey",
    "Rebecca",
    "Ryan",
    "Kimberly",
    "Gary",
    "Laura",
    "Timothy",
    "Christina",
    "Jose",
    "Rachel",
    "Larry",
    "Andrea",
    "Scott",
    "Erin",
    "Frank",
    "Tiffany",
    "Justin",
    "Monica",
    "Brandon",
    "Carmen",
    "Raymond",
    "Tanya",
    "Gregory",
    "Dana",
    "Samuel",
    "Vanessa",
    "Patrick",
    "Wendy",
    "Alexander",
    "Julie",
    "Jack",
    "Kristen",
    "Dennis",
    "Sara",
    "Jerry",
    "Holly",
    "Tyler",
    "Yolanda",
    "Aaron",
    "Jill",
    "Henry",
    "Priya",
    "Omar",
    "Mei",
    "Ahmed",
    "Ingrid",
    "Tomasz",
    "Fatima",
    "Darnell",
    "Keiko",
    "Rafael",
    "Karen",
    "David",
    "Linda",
    "Paul",
    "Siobhan",
    "Michael",
    "Jennifer",
    "Thomas",
    "Angela",
    "Robert",
];
const LAST: &[&str] = &[
    "Anderson",
    "Bailey",
    "Bennett",
    "Brooks",
    "Bryant",
    "Campbell",
    "Carter",
    "Chen",
    "Clark",
    "Coleman",
    "Collins",
    "Cooper",
    "Cruz",
    "Davis",
    "Diaz",
    "Edwards",
    "Evans",
    "Fisher",
    "Flores",
    "Foster",
    "Garcia",
    "Gomez",
    "Gonzalez",
    "Gray",
    "Green",
    "Griffin",
    "Hall",
    "Harris",
    "Hayes",
    "Henderson",
    "Hernandez",
    "Hill",
    "Howard",
    "Hughes",
    "Jackson",
    "James",
    "Jenkins",
    "Johnson",
    "Jones",
    "Kelly",
    "Kim",
    "Lee",
    "Lewis",
    "Long",
    "Lopez",
    "Martin",
    "Martinez",
    "Miller",
    "Mitchell",
    "Moore",
    "Morgan",
    "Morris",
    "Murphy",
    "Myers",
    "Nelson",
    "Nguyen",
    "Ortiz",
    "Parker",
    "Patel",
    "Perez",
    "Perry",
    "Peterson",
    "Phillips",
    "Powell",
    "Price",
    "Ramirez",
    "Reed",
    "Richardson",
    "Rivera",
    "Roberts",
    "Robinson",
    "Rodriguez",
    "Rogers",
    "Ross",
    "Russell",
    "Sanchez",
    "Sanders",
    "Scott",
    "Simmons",
    "Smith",
    "Stewart",
    "Sullivan",
    "Taylor",
    "Thomas",
    "Thompson",
    "Torres",
    "Turner",
    "Walker",
    "Ward",
    "Washington",
    "Watson",
    "White",
    "Williams",
    "Wilson",
    "Wood",
    "Wright",
    "Young",
    "Okonkwo",
    "Novak",
    "Schmidt",
    "Kowalczyk",
    "Haddad",
    "Yamamoto",
    "Ivanova",
    "Lindgren",
    "Mahmoud",
    "OBrien",
    "Dubois",
    "Esposito",
    "Tanaka",
    "Achebe",
];
const SUBJECTS: &[&str] = &[
    "Math",
    "English",
    "Science",
    "Social Studies",
    "Art",
    "Music",
    "Physical Education",
    "Spanish",
    "Computer Science",
    "Homeroom",
];
const BOROUGHS: &[&str] = &["Bronx", "Brooklyn", "Manhattan", "Queens", "Staten Island"];

pub struct Student {
    pub index: u64,
    pub school: u64,
    pub first: &'static str,
    pub last: String,
    /// 0 = kindergarten.
    pub grade: u64,
    pub dob: (u64, u64, u64),
}

impl Student {
    pub fn grade_label(&self) -> String {
        if self.grade == 0 {
            "K".into()
        } else {
            self.grade.to_string()
        }
    }
    /// pickAtime's StudentID (and Clever's sis_id).
    pub fn file_id(&self) -> String {
        (1_000_000 + self.index).to_string()
    }
    pub fn security_value(&self) -> String {
        let (y, m, d) = self.dob;
        format!("{m:02}/{d:02}/{y}")
    }
    pub fn iso_dob(&self) -> String {
        let (y, m, d) = self.dob;
        format!("{y}-{m:02}-{d:02}")
    }
}

pub struct Teacher {
    pub index: u64,
    pub school: u64,
    pub first: &'static str,
    pub last: &'static str,
    pub email: String,
    pub room: String,
}

impl Teacher {
    pub fn file_id(&self) -> String {
        format!("T{:06}", self.index)
    }
}

pub struct Class {
    pub index: u64,
    pub school: u64,
    pub name: String,
    pub subject: &'static str,
    pub period: u64,
    pub group: String,
    /// Primary first.
    pub teachers: Vec<u64>,
}

impl Class {
    pub fn file_id(&self) -> String {
        format!("C{:07}", self.index)
    }
}

pub struct Parent {
    pub index: u64,
    pub family: u64,
    /// 0, 1, 2: mother, father, guardian.
    pub rank: u64,
    pub first: &'static str,
    pub last: String,
    pub email: String,
}

impl Parent {
    pub fn file_id(&self) -> String {
        format!("P{:07}", self.index)
    }
    pub fn relationship(&self) -> &'static str {
        match self.rank {
            0 => "Mother",
            1 => "Father",
            _ => "Guardian",
        }
    }
}

impl District {
    pub fn new(spec: Spec, revision: u32) -> District {
        let mut family_start = Vec::new();
        let mut parent_start = Vec::new();
        let mut size = 0;
        let mut parents = 0u64;
        for i in 0..spec.students {
            let school = owner(spec.students, spec.schools, i);
            let joins = i > 0
                && size < 3
                && owner(spec.students, spec.schools, i - 1) == school
                && hash(spec.seed, salt::FAMILY_JOIN, i) % 100 < 20;
            if joins {
                size += 1;
            } else {
                let family = family_start.len() as u64;
                family_start.push(i as u32);
                parent_start.push(parents as u32);
                parents += 2 + u64::from(hash(spec.seed, salt::THIRD_PARENT, family) % 100 < 5);
                size = 1;
            }
        }
        family_start.push(spec.students as u32);
        parent_start.push(parents as u32);
        District {
            spec,
            revision,
            family_start,
            parent_start,
        }
    }

    fn h(&self, salt: u64, i: u64) -> u64 {
        hash(self.spec.seed, salt, i)
    }

    /// About 1% of records of each kind change in revision 1.
    fn changed(&self, kind: u64, i: u64) -> bool {
        self.revision > 0 && self.h(salt::CHANGED + kind, i) % 100 == 0
    }

    pub fn families(&self) -> u64 {
        self.family_start.len() as u64 - 1
    }

    pub fn parents(&self) -> u64 {
        *self.parent_start.last().unwrap() as u64
    }

    pub fn family_students(&self, family: u64) -> (u64, u64) {
        let f = family as usize;
        (self.family_start[f] as u64, self.family_start[f + 1] as u64)
    }

    pub fn family_parents(&self, family: u64) -> (u64, u64) {
        let f = family as usize;
        (self.parent_start[f] as u64, self.parent_start[f + 1] as u64)
    }

    pub fn family_of_student(&self, i: u64) -> u64 {
        (self.family_start.partition_point(|&s| s as u64 <= i) - 1) as u64
    }

    fn family_of_parent(&self, p: u64) -> u64 {
        (self.parent_start.partition_point(|&s| s as u64 <= p) - 1) as u64
    }

    fn family_last(&self, family: u64) -> &'static str {
        LAST[(self.h(salt::LAST, family) % LAST.len() as u64) as usize]
    }

    pub fn school_name(&self, school: u64) -> String {
        let borough = BOROUGHS[(school % BOROUGHS.len() as u64) as usize];
        format!("P.S. {} {borough}", school + 1)
    }

    pub fn student(&self, i: u64) -> Student {
        let family = self.family_of_student(i);
        let mut last = self.family_last(family).to_string();
        if self.changed(1, i) {
            last.push_str("-Quinn");
        }
        let grade = self.h(salt::GRADE, i) % 13;
        let d = self.h(salt::DOB, i);
        let year = 2020 - grade - u64::from(d % 3 == 0);
        Student {
            index: i,
            school: owner(self.spec.students, self.spec.schools, i),
            first: KID_FIRST[(self.h(salt::FIRST, i) % KID_FIRST.len() as u64) as usize],
            last,
            grade,
            dob: (year, 1 + (d >> 8) % 12, 1 + (d >> 16) % 28),
        }
    }

    pub fn teacher(&self, j: u64) -> Teacher {
        let h = self.h(salt::TEACHER_NAME, j);
        let first = ADULT_FIRST[(h % ADULT_FIRST.len() as u64) as usize];
        let last = LAST[((h >> 16) % LAST.len() as u64) as usize];
        let mut room = (100 + j % 400).to_string();
        if self.changed(2, j) {
            room.push('A');
        }
        Teacher {
            index: j,
            school: owner(self.spec.teachers, self.spec.schools, j),
            first,
            last,
            email: format!(
                "{}.{}{}@schools.example.org",
                first.to_lowercase(),
                last.to_lowercase(),
                j
            ),
            room,
        }
    }

    pub fn class(&self, k: u64) -> Class {
        let spec = &self.spec;
        let school = owner(spec.classes, spec.schools, k);
        let (cs, _) = block(spec.classes, spec.schools, school);
        let (ts, te) = block(spec.teachers, spec.schools, school);
        let tn = te - ts;
        let local = k - cs;
        let mut teachers = vec![ts + local % tn];
        if tn > 1 && self.h(salt::CO_TEACHER, k) % 100 < 5 {
            teachers.push(ts + (local + 1) % tn);
        }
        let subject = SUBJECTS[(self.h(salt::SUBJECT, k) % SUBJECTS.len() as u64) as usize];
        let period = 1 + local % 8;
        let mut name = format!("{subject} {} - P{period}", 100 + local);
        if self.changed(3, k) {
            name.push_str(" (moved)");
        }
        Class {
            index: k,
            school,
            name,
            subject,
            period,
            group: format!("Team {}", 1 + local % 6),
            teachers,
        }
    }

    /// The classes student `i` takes: 4 or 5 distinct classes of their school.
    pub fn enrollments(&self, i: u64) -> Vec<u64> {
        let spec = &self.spec;
        let school = owner(spec.students, spec.schools, i);
        let (cs, ce) = block(spec.classes, spec.schools, school);
        let n = ce - cs;
        let count = if self.h(salt::CLASS_COUNT, i) % 100 < 73 {
            5
        } else {
            4
        }
        .min(n);
        let step = n / count;
        let mut offset = self.h(salt::CLASS_OFFSET, i) % n;
        if self.changed(4, i) {
            offset = (offset + 1) % n;
        }
        (0..count).map(|m| cs + (offset + m * step) % n).collect()
    }

    pub fn parent(&self, p: u64) -> Parent {
        let family = self.family_of_parent(p);
        let rank = p - self.parent_start[family as usize] as u64;
        let last = self.family_last(family).to_string();
        let first =
            ADULT_FIRST[(self.h(salt::PARENT_FIRST, p) % ADULT_FIRST.len() as u64) as usize];
        let mut email = format!("{}.{}.{p}@example.com", first, last).to_lowercase();
        if self.changed(5, p) {
            email = format!("{}.{p}@mail.example.net", first.to_lowercase());
        }
        Parent {
            index: p,
            family,
            rank,
            first,
            last,
            email,
        }
    }

    /// Exact row counts, by walking the district once.
    pub fn counts(&self) -> Counts {
        let spec = &self.spec;
        let mut counts = Counts {
            schools: spec.schools,
            students: spec.students,
            teachers: spec.teachers,
            parents: self.parents(),
            classes: spec.classes,
            ..Default::default()
        };
        for k in 0..spec.classes {
            counts.class_teachers += self.class(k).teachers.len() as u64;
        }
        for i in 0..spec.students {
            counts.enrollments += self.enrollments(i).len() as u64;
        }
        for f in 0..self.families() {
            let (s0, s1) = self.family_students(f);
            let (p0, p1) = self.family_parents(f);
            counts.relationships += (s1 - s0) * (p1 - p0);
        }
        counts
    }
}

fn hash(seed: u64, salt: u64, i: u64) -> u64 {
    splitmix(splitmix(seed ^ salt.wrapping_mul(0x2545_f491_4f6c_dd1d)) ^ i)
}

// ---- pickAtime files ------------------------------------------------------------------

fn create(path: &Path) -> Result<BufWriter<File>> {
    let file = File::create(path).with_context(|| format!("create {}", path.display()))?;
    Ok(BufWriter::with_capacity(1 << 20, file))
}

/// One folder of pickAtime files for the whole district: the files name no school, so the
/// district is imported as one school (the source's `school` key names it).
pub fn write_pickatime(district: &District, dir: &Path) -> Result<()> {
    write_pickatime_part(district, dir, district.spec.students)
}

/// The first families of the district up to about `students` students (whole families,
/// so every parent's children are there), with the schools they attend: their teachers
/// and classes, and their enrollments and parents. The people are exactly those of the
/// whole district's files with the same ids.
pub fn write_pickatime_part(district: &District, dir: &Path, students: u64) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let whole = &district.spec;
    let families = if students >= whole.students {
        district.families()
    } else {
        (district.family_of_student(students.max(1) - 1) + 1).min(district.families())
    };
    let students = district.family_students(families - 1).1;
    let last_school = owner(whole.students, whole.schools, students - 1);
    let teachers = block(whole.teachers, whole.schools, last_school).1;
    let classes = block(whole.classes, whole.schools, last_school).1;
    let parents = district.family_parents(families - 1).1;
    let spec = &Spec {
        students,
        teachers,
        classes,
        ..*whole
    };

    let mut out = create(&dir.join("Student.txt"))?;
    writeln!(out, "StudentID\tFirst\tLast\tSecurityValue\tGrade")?;
    for i in 0..spec.students {
        let s = district.student(i);
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            s.file_id(),
            s.first,
            s.last,
            s.security_value(),
            s.grade_label()
        )?;
    }
    out.flush()?;

    let mut out = create(&dir.join("Teacher.txt"))?;
    writeln!(out, "TeacherID\tFirst\tLast\tEmail\tRoom")?;
    for j in 0..spec.teachers {
        let t = district.teacher(j);
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            t.file_id(),
            t.first,
            t.last,
            t.email,
            t.room
        )?;
    }
    out.flush()?;

    let mut out = create(&dir.join("Class.txt"))?;
    writeln!(out, "ClassID\tTeacherID\tClassName\tGroupName\tPTAN")?;
    for k in 0..spec.classes {
        let c = district.class(k);
        for teacher in &c.teachers {
            writeln!(
                out,
                "{}\tT{:06}\t{}\t{}\t2",
                c.file_id(),
                teacher,
                c.name,
                c.group
            )?;
        }
    }
    out.flush()?;

    let mut out = create(&dir.join("Enrollment.txt"))?;
    writeln!(
        out,
        "StudentID\tClassID\tClassID\tClassID\tClassID\tClassID"
    )?;
    for i in 0..spec.students {
        let classes = district.enrollments(i);
        write!(out, "{}", 1_000_000 + i)?;
        for m in 0..5 {
            match classes.get(m) {
                Some(k) => write!(out, "\tC{k:07}")?,
                None => write!(out, "\t")?,
            }
        }
        writeln!(out)?;
    }
    out.flush()?;

    let mut out = create(&dir.join("Parent.txt"))?;
    writeln!(out, "ParentID\tFirst\tLast\tEmail")?;
    for p in 0..parents {
        let parent = district.parent(p);
        writeln!(
            out,
            "{}\t{}\t{}\t{}",
            parent.file_id(),
            parent.first,
            parent.last,
            parent.email
        )?;
    }
    out.flush()?;

    let mut out = create(&dir.join("ParentStudent.txt"))?;
    writeln!(out, "ParentID\tStudentID")?;
    for f in 0..families {
        let (s0, s1) = district.family_students(f);
        let (p0, p1) = district.family_parents(f);
        for p in p0..p1 {
            for s in s0..s1 {
                writeln!(out, "P{p:07}\t{}", 1_000_000 + s)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

// ---- the floor: the rows the importer writes, as CSV for sqlite3's .import --------------

/// The tables the floor loads, in load order, with the CSV file for each.
pub const FLOOR_TABLES: [&str; 12] = [
    "events",
    "schools",
    "terms",
    "contacts",
    "contact_sources",
    "contact_ids",
    "contact_schools",
    "classes",
    "class_teachers",
    "enrollments",
    "relationships",
    "event_classes",
];

fn csv_field(out: &mut impl Write, value: &str) -> std::io::Result<()> {
    if value.contains([',', '"', '\n', '\r']) {
        write!(out, "\"{}\"", value.replace('"', "\"\""))
    } else {
        out.write_all(value.as_bytes())
    }
}

fn csv_row(out: &mut impl Write, fields: &[&str]) -> std::io::Result<()> {
    for (n, field) in fields.iter().enumerate() {
        if n > 0 {
            out.write_all(b",")?;
        }
        csv_field(out, field)?;
    }
    out.write_all(b"\n")
}

/// The same rows the file import writes for `district` (source `source`, one school, one
/// term, one event), one CSV per table, ids as the importer assigns them: contacts are
/// students, then teachers, then parents, in file order.
pub fn write_floor_csv(
    district: &District,
    dir: &Path,
    source: &str,
    school: &str,
    term: &str,
    event: &str,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let spec = &district.spec;
    let fp = |kind: u64, i: u64| (hash(spec.seed, 900 + kind, i) as i64).to_string();
    let student_id = |i: u64| i + 1;
    let teacher_id = |j: u64| spec.students + j + 1;
    let parent_id = |p: u64| spec.students + spec.teachers + p + 1;

    let mut out = create(&dir.join("events.csv"))?;
    csv_row(
        &mut out,
        &["1", event, source, school, "", "1", "2026-01-01T01:00:00Z"],
    )?;
    out.flush()?;

    let mut out = create(&dir.join("schools.csv"))?;
    csv_row(
        &mut out,
        &[
            "1",
            source,
            "school",
            school,
            "",
            "",
            "",
            "",
            "1",
            &fp(0, 0),
        ],
    )?;
    out.flush()?;

    let mut out = create(&dir.join("terms.csv"))?;
    csv_row(
        &mut out,
        &["1", source, term, "1", term, "", "", "", "1", &fp(1, 0)],
    )?;
    out.flush()?;

    let mut contacts = create(&dir.join("contacts.csv"))?;
    let mut sources = create(&dir.join("contact_sources.csv"))?;
    let mut ids = create(&dir.join("contact_ids.csv"))?;
    let mut schools = create(&dir.join("contact_schools.csv"))?;
    let mut person = |id: u64, kind: &str, file_id: &str, row: &[&str]| -> std::io::Result<()> {
        // One source supplies every contact: the contact carries its fingerprint and its
        // `contact_sources` row says so with 0 (migration 9).
        let fingerprint = fp(2, id);
        let id = id.to_string();
        let mut fields = vec![id.as_str()];
        fields.extend_from_slice(row);
        fields.push(&fingerprint);
        csv_row(&mut contacts, &fields)?;
        csv_row(&mut sources, &[&id, source, file_id, "1", "0"])?;
        csv_row(&mut ids, &[&id, source, kind, file_id])?;
        csv_row(&mut schools, &[&id, "1"])
    };
    for i in 0..spec.students {
        let s = district.student(i);
        let (file_id, dob, sv, grade) = (
            s.file_id(),
            s.iso_dob(),
            s.security_value(),
            s.grade_label(),
        );
        person(
            student_id(i),
            "StudentID",
            &file_id,
            &[
                "student", s.first, &s.last, "", "", "", &dob, &grade, &sv, "", "customer", "", "1",
            ],
        )?;
    }
    for j in 0..spec.teachers {
        let t = district.teacher(j);
        person(
            teacher_id(j),
            "TeacherID",
            &t.file_id(),
            &[
                "teacher",
                t.first,
                t.last,
                "",
                &t.email,
                "",
                "",
                "",
                "",
                &t.room,
                "appointment_viewer",
                "",
                "1",
            ],
        )?;
    }
    for p in 0..district.parents() {
        let parent = district.parent(p);
        person(
            parent_id(p),
            "ParentID",
            &parent.file_id(),
            &[
                "parent",
                parent.first,
                &parent.last,
                "",
                &parent.email,
                "",
                "",
                "",
                "",
                "",
                "customer",
                "",
                "1",
            ],
        )?;
    }
    for mut out in [contacts, sources, ids, schools] {
        out.flush()?;
    }

    let mut classes = create(&dir.join("classes.csv"))?;
    let mut links = create(&dir.join("class_teachers.csv"))?;
    let mut attached = create(&dir.join("event_classes.csv"))?;
    for k in 0..spec.classes {
        let c = district.class(k);
        let id = (k + 1).to_string();
        csv_row(
            &mut classes,
            &[
                &id,
                source,
                &c.file_id(),
                "1",
                "1",
                &c.name,
                &c.group,
                "2",
                "",
                "",
                "",
                "",
                "",
                "1",
                &fp(3, k),
            ],
        )?;
        for (n, teacher) in c.teachers.iter().enumerate() {
            let primary = if n == 0 { "1" } else { "0" };
            csv_row(
                &mut links,
                &[&id, &teacher_id(*teacher).to_string(), primary, "1"],
            )?;
        }
        csv_row(&mut attached, &["1", &id, "0"])?;
    }
    for mut out in [classes, links, attached] {
        out.flush()?;
    }

    let mut out = create(&dir.join("enrollments.csv"))?;
    for i in 0..spec.students {
        let contact = student_id(i).to_string();
        for k in district.enrollments(i) {
            csv_row(&mut out, &[&(k + 1).to_string(), &contact, "1"])?;
        }
    }
    out.flush()?;

    let mut out = create(&dir.join("relationships.csv"))?;
    for f in 0..district.families() {
        let (s0, s1) = district.family_students(f);
        let (p0, p1) = district.family_parents(f);
        for p in p0..p1 {
            for s in s0..s1 {
                csv_row(
                    &mut out,
                    &[
                        &parent_id(p).to_string(),
                        &student_id(s).to_string(),
                        "",
                        "parent",
                        source,
                        "1",
                    ],
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_owners_agree() {
        for (total, parts) in [(10, 3), (1000, 2), (1_100_000, 2000), (7, 7)] {
            for part in 0..parts {
                let (start, end) = block(total, parts, part);
                for i in [start, end.saturating_sub(1)] {
                    if i < end {
                        assert_eq!(owner(total, parts, i), part, "{total} {parts} {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_district_is_deterministic_and_shaped_like_nyc() {
        let spec = Spec::from_students(20_000, DEFAULT_SEED);
        let a = District::new(spec, 0);
        let b = District::new(spec, 0);
        assert_eq!(a.student(123).last, b.student(123).last);
        let counts = a.counts();
        let per_student = |n: u64| n as f64 / counts.students as f64;
        assert!(
            (4.6..4.85).contains(&per_student(counts.enrollments)),
            "{counts:?}"
        );
        assert!(
            (1.55..1.75).contains(&per_student(counts.parents)),
            "{counts:?}"
        );
        for i in 0..2000 {
            let classes = a.enrollments(i);
            let mut unique = classes.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), classes.len());
        }
        let changed = District::new(spec, 1);
        let moved = (0..spec.students)
            .filter(|&i| changed.enrollments(i) != a.enrollments(i))
            .count();
        assert!((100..300).contains(&moved), "{moved}");
    }
}
