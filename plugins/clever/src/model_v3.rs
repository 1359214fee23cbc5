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

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Roles {
    pub student: Option<StudentRole>,
    pub teacher: Option<TeacherRole>,
    pub staff: Option<StaffRole>,
    pub district_admin: Option<DistrictAdminRole>,
    pub contact: Option<ContactRole>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StudentRole {
    pub legacy_id: Field,
    #[serde(flatten)]
    pub fields: StudentFields,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TeacherRole {
    pub legacy_id: Field,
    #[serde(flatten)]
    pub fields: TeacherFields,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StaffRole {
    pub legacy_id: Field,
    #[serde(flatten)]
    pub fields: StaffFields,
}

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
