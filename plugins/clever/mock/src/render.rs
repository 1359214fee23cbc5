//! Renders the neutral district as Clever v2.x resources or v3.x users, following the
//! shapes in `shared/clever-api/v2.1.yml` and `v3.0.yml`.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::district::{Contact, District, Name, Staff, Student, Teacher};

/// The two data models Clever serves; v2.0 and v3.1 are served as aliases of v2.1/v3.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V2,
    V3,
}

impl Family {
    pub fn of(version: &str) -> Option<Family> {
        match version {
            "v2.0" | "v2.1" => Some(Family::V2),
            "v3.0" | "v3.1" => Some(Family::V3),
            _ => None,
        }
    }
}

const CREATED: &str = "2025-07-01T12:00:00.000Z";
const MODIFIED: &str = "2026-01-05T06:00:00.000Z";

/// One rendered collection: `(id, object)` sorted by id, as Clever pages them.
pub type Collection = Vec<(String, Value)>;

/// The objects of `resource` in `family`'s shape, or `None` when that version has no such
/// resource (e.g. `/v3.0/students`).
pub fn collection(district: &District, family: Family, resource: &str) -> Option<Collection> {
    let did = district.id().to_string();
    let pass = |items: &[Map<String, Value>]| -> Collection {
        items
            .iter()
            .map(|item| {
                let mut item = item.clone();
                item.insert("district".into(), json!(did));
                let id = item.get("id").and_then(Value::as_str).unwrap_or_default();
                (id.to_string(), Value::Object(item))
            })
            .collect()
    };
    let mut out: Collection = match (family, resource) {
        (_, "districts") => vec![(did.clone(), Value::Object(district.district.clone()))],
        (_, "schools") => pass(&district.schools)
            .into_iter()
            .map(|(id, mut v)| {
                stamp(&mut v);
                (id, v)
            })
            .collect(),
        (_, "terms") => pass(&district.terms),
        (_, "courses") => pass(&district.courses),
        (_, "sections") => sections(district, family),
        (Family::V2, "students") => district
            .students
            .iter()
            .map(|s| (s.id.clone(), student_v2(&did, s)))
            .collect(),
        (Family::V2, "teachers") => district
            .teachers
            .iter()
            .map(|t| (t.id.clone(), teacher_v2(&did, t)))
            .collect(),
        (Family::V2, "school_admins") => district
            .staff
            .iter()
            .filter(|s| !s.district_admin)
            .map(|s| (s.id.clone(), school_admin_v2(&did, s)))
            .collect(),
        (Family::V2, "district_admins") => district
            .staff
            .iter()
            .filter(|s| s.district_admin)
            .map(|s| (s.id.clone(), district_admin_v2(&did, s)))
            .collect(),
        (Family::V2, "contacts") => district
            .contacts
            .iter()
            .map(|c| (c.id.clone(), contact_v2(&did, c)))
            .collect(),
        (Family::V3, "users") => users_v3(district),
        _ => return None,
    };
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Some(out)
}

/// Whether a v3 user object has `role` (for `/users?role=`).
pub fn has_role(user: &Value, role: &str) -> bool {
    user.get("roles").and_then(|r| r.get(role)).is_some()
}

fn stamp(value: &mut Value) {
    if let Some(map) = value.as_object_mut() {
        map.insert("created".into(), json!(CREATED));
        map.insert("last_modified".into(), json!(MODIFIED));
    }
}

fn name(n: &Name) -> Value {
    json!({"first": n.first, "middle": n.middle, "last": n.last})
}

fn admin_name(n: &Name) -> Value {
    json!({"first": n.first, "last": n.last})
}

fn credentials(username: &str) -> Value {
    json!({"district_username": username})
}

fn sections(district: &District, family: Family) -> Collection {
    let v3_ids: HashMap<&str, &str> = district
        .teachers
        .iter()
        .map(|t| (t.id.as_str(), t.v3_id.as_str()))
        .collect();
    let teacher_id = |id: &String| -> String {
        match family {
            Family::V2 => id.clone(),
            // v3 sections name teachers by their new v3 user ids.
            Family::V3 => v3_ids
                .get(id.as_str())
                .map_or(id.clone(), |v| v.to_string()),
        }
    };
    let null_if_empty = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
    district
        .sections
        .iter()
        .map(|s| {
            let teachers: Vec<String> = s.teachers.iter().map(teacher_id).collect();
            let mut v = json!({
                "id": s.id, "district": district.id(), "school": s.school, "sis_id": s.sis_id,
                "name": s.name, "section_number": s.section_number, "period": s.period,
                "grade": s.grade, "subject": s.subject,
                "course": null_if_empty(&s.course), "term_id": null_if_empty(&s.term_id),
                "teacher": teachers.first().map_or(Value::Null, |t| json!(t)),
                "teachers": teachers, "students": s.students, "ext": {},
            });
            stamp(&mut v);
            (s.id.clone(), v)
        })
        .collect()
}

fn student_fields(s: &Student) -> Map<String, Value> {
    let v = json!({
        "sis_id": s.sis_id, "student_number": s.student_number, "state_id": s.state_id,
        "school": s.school, "schools": s.schools,
        "enrollments": s.schools.iter().map(|school| json!({
            "school": school, "start_date": "2025-08-25T00:00:00.000Z", "end_date": ""})).collect::<Vec<_>>(),
        "dob": s.dob, "gender": s.gender, "grade": s.grade, "graduation_year": s.graduation_year,
        "race": s.race, "hispanic_ethnicity": s.hispanic_ethnicity, "ell_status": s.ell_status,
        "location": {"address": "", "city": "", "state": "", "zip": ""},
        "credentials": credentials(&s.username), "ext": {},
    });
    into_map(v)
}

fn student_v2(district: &str, s: &Student) -> Value {
    let mut map = student_fields(s);
    map.insert("id".into(), json!(s.id));
    map.insert("district".into(), json!(district));
    map.insert("name".into(), name(&s.name));
    map.insert("email".into(), json!(s.email));
    let mut v = Value::Object(map);
    stamp(&mut v);
    v
}

fn teacher_fields(t: &Teacher) -> Map<String, Value> {
    into_map(json!({
        "sis_id": t.sis_id, "teacher_number": t.teacher_number, "state_id": t.state_id,
        "school": t.school, "schools": t.schools, "title": t.title,
        "credentials": credentials(&t.username), "ext": {},
    }))
}

fn teacher_v2(district: &str, t: &Teacher) -> Value {
    let mut map = teacher_fields(t);
    map.insert("id".into(), json!(t.id));
    map.insert("district".into(), json!(district));
    map.insert("name".into(), name(&t.name));
    map.insert("email".into(), json!(t.email));
    let mut v = Value::Object(map);
    stamp(&mut v);
    v
}

fn school_admin_v2(district: &str, s: &Staff) -> Value {
    json!({
        "id": s.id, "district": district, "name": admin_name(&s.name), "email": s.email,
        "staff_id": s.staff_id, "title": s.title, "department": s.department,
        "schools": s.schools, "credentials": credentials(&s.username), "ext": {},
    })
}

fn district_admin_v2(district: &str, s: &Staff) -> Value {
    json!({"id": s.id, "district": district, "name": admin_name(&s.name), "email": s.email, "title": s.title})
}

fn contact_v2(district: &str, c: &Contact) -> Value {
    // v2 has room for one relationship per contact: the first one speaks for all students.
    let first = c.students.first();
    json!({
        "id": c.id, "district": district, "name": c.name, "email": c.email,
        "phone": c.phone, "phone_type": c.phone_type, "sis_id": c.sis_id,
        "students": c.students.iter().map(|r| r.student.clone()).collect::<Vec<_>>(),
        "relationship": first.map_or("", |r| r.relationship.as_str()),
        "type": first.map_or("", |r| r.kind.as_str()),
    })
}

fn user(district: &str, id: &str, name: Value, email: &str, role: &str, fields: Value) -> Value {
    let mut v = json!({
        "id": id, "district": district, "name": name, "email": email,
        "roles": {role: fields},
    });
    stamp(&mut v);
    v
}

fn users_v3(district: &District) -> Collection {
    let did = district.id();
    let mut out = Collection::new();
    for s in &district.students {
        let mut fields = student_fields(s);
        // Recorded v3 payloads repeat the student's email inside the role (NOTES §12).
        fields.insert("email".into(), json!(s.email));
        let v = user(
            did,
            &s.id,
            name(&s.name),
            &s.email,
            "student",
            Value::Object(fields),
        );
        out.push((s.id.clone(), v));
    }
    for t in &district.teachers {
        let mut fields = teacher_fields(t);
        fields.insert("legacy_id".into(), json!(t.id));
        let v = user(
            did,
            &t.v3_id,
            name(&t.name),
            &t.email,
            "teacher",
            Value::Object(fields),
        );
        out.push((t.v3_id.clone(), v));
    }
    for s in &district.staff {
        let (role, fields) = if s.district_admin {
            (
                "district_admin",
                json!({"title": s.title, "legacy_id": s.id}),
            )
        } else {
            (
                "staff",
                json!({
                    "staff_id": s.staff_id, "title": s.title, "department": s.department,
                    "schools": s.schools, "roles": ["PortalOnly"],
                    "credentials": credentials(&s.username), "ext": {}, "legacy_id": s.id,
                }),
            )
        };
        let v = user(did, &s.v3_id, name(&s.name), &s.email, role, fields);
        out.push((s.v3_id.clone(), v));
    }
    for c in &district.contacts {
        let fields = json!({
            "phone": c.phone, "phone_type": c.phone_type, "sis_id": c.sis_id, "legacy_id": c.id,
            "student_relationships": c.students.iter().map(|r| json!({
                "student": r.student, "relationship": r.relationship, "type": r.kind})).collect::<Vec<_>>(),
        });
        // v3 keeps a contact's whole name in `name.last`.
        let v = user(
            did,
            &c.v3_id,
            json!({"last": c.name}),
            &c.email,
            "contact",
            fields,
        );
        out.push((c.v3_id.clone(), v));
    }
    out
}

fn into_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
