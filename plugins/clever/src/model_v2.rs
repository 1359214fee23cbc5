//! v2.0 / v2.1 people: one resource per kind (`/students`, `/teachers`, `/school_admins`,
//! `/district_admins`, `/contacts`), each object keyed by its v2 id.

use serde::Deserialize;

use crate::model::{ids, Field, Name, StaffFields, StudentFields, TeacherFields, Text};

/// A role's fields are the v2 object itself (see `StudentFields`).
pub type Student = StudentFields;
pub type Teacher = TeacherFields;
pub type SchoolAdmin = StaffFields;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DistrictAdmin {
    pub id: Field,
    pub name: Option<Name>,
    pub email: Field,
    pub title: Field,
}

/// A v2 contact: one `relationship`/`type` for all of its `students` (the reason Clever
/// retired the endpoint, NOTES §7).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Contact {
    pub id: Field,
    pub name: Option<ContactName>,
    pub email: Field,
    pub phone: Field,
    pub phone_type: Field,
    pub sis_id: Field,
    #[serde(deserialize_with = "ids")]
    pub students: Vec<String>,
    pub relationship: Field,
    #[serde(rename = "type")]
    pub kind: Field,
}

/// The spec makes a v2 contact's name one string; accept the structured form too.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ContactName {
    Whole(Text),
    Parts(Name),
}
