//! v3.0 / v3.1 people: every person is a `/users` object with role objects. Non-student
//! users got new ids in v3; the v2 id is the role's `legacy_id` (NOTES §6).

use serde::Deserialize;

use crate::model::{list, Field, Name, StaffFields, StudentFields, TeacherFields};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct User {
    pub id: Field,
    pub name: Option<Name>,
    pub email: Field,
    pub roles: Roles,
}

/// Boxed: a user has one role or two of the five, and a page of 10,000 users is read into
/// one `Vec` — with the roles inline, 1.5 KB a user, grown and copied as it filled.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Roles {
    pub student: Option<Box<StudentRole>>,
    pub teacher: Option<Box<TeacherRole>>,
    pub staff: Option<Box<StaffRole>>,
    pub district_admin: Option<Box<DistrictAdminRole>>,
    pub contact: Option<Box<ContactRole>>,
}

/// A role object is read as the v2 person of that role, with its `legacy_id` (see
/// `StudentFields`).
pub type StudentRole = StudentFields;
pub type TeacherRole = TeacherFields;
pub type StaffRole = StaffFields;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DistrictAdminRole {
    pub legacy_id: Field,
    pub title: Field,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ContactRole {
    pub legacy_id: Field,
    pub phone: Field,
    pub phone_type: Field,
    pub sis_id: Field,
    #[serde(deserialize_with = "list")]
    pub student_relationships: Vec<StudentRelationship>,
}

/// One (contact, student) pair with its own relationship and type.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StudentRelationship {
    pub student: Field,
    pub relationship: Field,
    #[serde(rename = "type")]
    pub kind: Field,
}
