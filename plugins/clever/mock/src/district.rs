//! The fixture district in its one neutral form. The server renders it as v2.x resources
//! or v3.x users on the fly, so both API shapes always describe the same people.
//!
//! People are referenced (from sections and contacts) by their `id`, which is the v2 id;
//! non-students also carry the `v3_id` Clever gave them in v3 (their `legacy_id` there is
//! the v2 id). Values are stored exactly as a district would send them: `""` enums, `Y`/`N`
//! booleans, several date-of-birth formats.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct District {
    /// The district object, passed through as-is (it must have `id`).
    pub district: Map<String, Value>,
    /// Schools, terms and courses have the same shape in every version: passed through
    /// with `district` added. Each must have an `id`.
    #[serde(default)]
    pub schools: Vec<Map<String, Value>>,
    #[serde(default)]
    pub terms: Vec<Map<String, Value>>,
    #[serde(default)]
    pub courses: Vec<Map<String, Value>>,
    #[serde(default)]
    pub students: Vec<Student>,
    #[serde(default)]
    pub teachers: Vec<Teacher>,
    #[serde(default)]
    pub staff: Vec<Staff>,
    #[serde(default)]
    pub sections: Vec<Section>,
    #[serde(default)]
    pub contacts: Vec<Contact>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Name {
    pub first: String,
    pub middle: String,
    pub last: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Student {
    pub id: String,
    pub sis_id: String,
    pub student_number: String,
    pub state_id: String,
    pub name: Name,
    pub email: String,
    pub dob: String,
    pub gender: String,
    pub grade: String,
    pub graduation_year: String,
    pub race: String,
    pub hispanic_ethnicity: String,
    pub ell_status: String,
    pub school: String,
    pub schools: Vec<String>,
    pub username: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Teacher {
    pub id: String,
    pub v3_id: String,
    pub sis_id: String,
    pub teacher_number: String,
    pub state_id: String,
    pub name: Name,
    pub email: String,
    pub title: String,
    pub school: String,
    pub schools: Vec<String>,
    pub username: String,
}

/// A school admin (v2 `/school_admins`, v3 `roles.staff`) or, with `district_admin`, a
/// district admin (v2 `/district_admins`, v3 `roles.district_admin`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Staff {
    pub id: String,
    pub v3_id: String,
    pub staff_id: String,
    pub name: Name,
    pub email: String,
    pub title: String,
    pub department: String,
    pub schools: Vec<String>,
    pub username: String,
    pub district_admin: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Section {
    pub id: String,
    pub school: String,
    pub sis_id: String,
    pub name: String,
    pub section_number: String,
    pub period: String,
    pub grade: String,
    pub subject: String,
    /// Course id, `""` for none.
    pub course: String,
    /// Term id, `""` for none.
    pub term_id: String,
    /// Teacher ids (v2 ids), primary first.
    pub teachers: Vec<String>,
    pub students: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Contact {
    pub id: String,
    pub v3_id: String,
    pub sis_id: String,
    /// The whole name, as v2 gives it (and v3 puts in `name.last`).
    pub name: String,
    pub email: String,
    pub phone: String,
    pub phone_type: String,
    pub students: Vec<StudentRelationship>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StudentRelationship {
    pub student: String,
    pub relationship: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("cannot read district fixture {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("district fixture {path} is not valid: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
}

impl District {
    pub fn load(path: &Path) -> Result<District, FixtureError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| FixtureError::Read {
            path: shown.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| FixtureError::Parse {
            path: shown,
            source,
        })
    }

    /// The demo district the project ships (`fixtures/clever/district.json`).
    pub fn demo() -> District {
        District::load(&demo_fixture_path()).expect("the shipped demo district fixture loads")
    }

    pub fn id(&self) -> &str {
        self.district
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// Where the shipped demo fixture lives in the workspace.
pub fn demo_fixture_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../fixtures/clever/district.json")
}
