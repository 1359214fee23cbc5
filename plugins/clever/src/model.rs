//! Serde shapes shared by v2.x and v3.x: the list envelope, schools, terms, courses,
//! sections, and the lenient scalar type every field is read as.
//!
//! Clever validates few fields and passes the rest through from the SIS (NOTES §5, §10),
//! so nothing here is an enum and nothing is required: a value of an unexpected type or an
//! unlisted enum value must never fail a district. Unknown fields are ignored.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

/// A scalar read leniently: strings as they are, numbers and booleans as their text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(TextVisitor)
    }
}

/// An optional scalar: absent, `null` and `""` all read as "not given" through [`get`].
pub type Field = Option<Text>;

/// The trimmed value of a field, `None` when absent or blank.
pub fn get(field: &Field) -> Option<String> {
    field
        .as_ref()
        .map(|t| t.0.trim())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// [`get`] for a field given up: its text moves out, copied only when it needs trimming.
/// (A section's student ids are 5.2 million at nyc; each was read into one string and
/// copied into another.)
pub fn take(field: Field) -> Option<String> {
    let Text(text) = field?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        None
    } else if trimmed.len() == text.len() {
        Some(text)
    } else {
        Some(trimmed.to_string())
    }
}

/// A list of ids that may be absent, `null`, or hold `null`s and blanks.
pub fn ids<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct Ids;
    impl<'de> Visitor<'de> for Ids {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of ids")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<String>, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Vec<String>, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<Option<Text>>()? {
                if let Some(id) = take(item) {
                    out.push(id);
                }
            }
            Ok(out)
        }
    }
    deserializer.deserialize_any(Ids)
}

/// A list of objects that may be absent or `null`.
pub fn list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// `{"data": [{"data": {…}, "uri": "…"}], "links": [{"rel": "next", "uri": "…"}]}`
#[derive(Debug, Deserialize)]
#[serde(bound = "T: Deserialize<'de>")]
pub struct Envelope<T> {
    #[serde(default, deserialize_with = "list")]
    pub data: Vec<Item<T>>,
    #[serde(default, deserialize_with = "list")]
    pub links: Vec<Link>,
}

#[derive(Debug, Deserialize)]
#[serde(bound = "T: Deserialize<'de>")]
pub struct Item<T> {
    pub data: T,
}

#[derive(Debug, Deserialize)]
pub struct Link {
    #[serde(default)]
    pub rel: Field,
    #[serde(default)]
    pub uri: Field,
}

impl<T> Envelope<T> {
    pub fn next_link(&self) -> Option<String> {
        self.links
            .iter()
            .find(|l| get(&l.rel).as_deref() == Some("next"))
            .and_then(|l| get(&l.uri))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct District {
    pub id: Field,
    pub name: Field,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Name {
    pub first: Field,
    pub middle: Field,
    pub last: Field,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Credentials {
    pub district_username: Field,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct School {
    pub id: Field,
    pub name: Field,
    pub sis_id: Field,
    pub school_number: Field,
    pub state_id: Field,
    pub nces_id: Field,
    pub mdr_number: Field,
    pub low_grade: Field,
    pub high_grade: Field,
    pub phone: Field,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Term {
    pub id: Field,
    pub name: Field,
    pub start_date: Field,
    pub end_date: Field,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Course {
    pub id: Field,
    pub name: Field,
    pub number: Field,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Section {
    pub id: Field,
    pub school: Field,
    pub sis_id: Field,
    pub name: Field,
    pub section_number: Field,
    pub period: Field,
    pub grade: Field,
    pub subject: Field,
    pub course: Field,
    pub term_id: Field,
    /// The primary teacher.
    pub teacher: Field,
    /// Every teacher, primary first.
    #[serde(deserialize_with = "ids")]
    pub teachers: Vec<String>,
    #[serde(deserialize_with = "ids")]
    pub students: Vec<String>,
}

// A role's fields are one struct, read as v2 sends the person and as v3's role object:
// each version leaves the other's few fields out. Sharing them through
// `#[serde(flatten)]` instead buffered every field of every person as serde's generic
// `Content` before reading it again (with the roles boxed, model_v3.rs, the fetching
// thread went from 20.5 to 17.2 s of CPU at nyc).

/// A student as v2 sends it (`/students`), and v3's `roles.student`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StudentFields {
    /// v2 only: v3 has them on the user.
    pub id: Field,
    pub name: Option<Name>,
    pub email: Field,
    /// v3 only: the student's v2 id.
    pub legacy_id: Field,
    pub sis_id: Field,
    pub student_number: Field,
    pub state_id: Field,
    pub school: Field,
    #[serde(deserialize_with = "ids")]
    pub schools: Vec<String>,
    pub dob: Field,
    pub gender: Field,
    pub grade: Field,
    pub graduation_year: Field,
    pub race: Field,
    pub hispanic_ethnicity: Field,
    pub ell_status: Field,
    pub credentials: Option<Credentials>,
}

/// A teacher as v2 sends it (`/teachers`), and v3's `roles.teacher`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TeacherFields {
    /// v2 only: v3 has them on the user.
    pub id: Field,
    pub name: Option<Name>,
    pub email: Field,
    /// v3 only: the teacher's v2 id.
    pub legacy_id: Field,
    pub sis_id: Field,
    pub teacher_number: Field,
    pub state_id: Field,
    pub school: Field,
    #[serde(deserialize_with = "ids")]
    pub schools: Vec<String>,
    pub title: Field,
    pub credentials: Option<Credentials>,
}

/// School staff as v2 sends them (`/school_admins`), and v3's `roles.staff`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StaffFields {
    /// v2 only: v3 has them on the user.
    pub id: Field,
    pub name: Option<Name>,
    pub email: Field,
    /// v3 only: the staff member's v2 id.
    pub legacy_id: Field,
    pub staff_id: Field,
    pub title: Field,
    pub department: Field,
    #[serde(deserialize_with = "ids")]
    pub schools: Vec<String>,
    pub credentials: Option<Credentials>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_and_lists_are_lenient() {
        let section: Section = serde_json::from_value(serde_json::json!({
            "id": "s1", "period": 3, "grade": "", "term_id": null,
            "teachers": ["t1", null, ""], "students": null, "unknown_field": {"x": 1}
        }))
        .unwrap();
        assert_eq!(get(&section.period).as_deref(), Some("3"));
        assert_eq!(get(&section.grade), None);
        assert_eq!(get(&section.term_id), None);
        assert_eq!(section.teachers, vec!["t1"]);
        assert!(section.students.is_empty());
    }

    #[test]
    fn a_field_taken_moves_its_text_or_trims_it() {
        let text = String::from("5a0000000000000000000001");
        let pointer = text.as_ptr();
        let taken = take(Some(Text(text))).unwrap();
        assert_eq!(taken.as_ptr(), pointer, "moved, not copied");
        assert_eq!(take(Some(Text(" s1\t".into()))).as_deref(), Some("s1"));
        assert_eq!(take(Some(Text("  ".into()))), None);
        assert_eq!(take(None), None);
    }

    #[test]
    fn envelope_finds_next() {
        let env: Envelope<Term> = serde_json::from_str(
            r#"{"data":[{"data":{"id":"a"},"uri":"/v3.0/terms/a"}],
                "links":[{"rel":"self","uri":"/x"},{"rel":"next","uri":"/v3.0/terms?starting_after=a"}]}"#,
        )
        .unwrap();
        assert_eq!(env.data.len(), 1);
        assert_eq!(
            env.next_link().as_deref(),
            Some("/v3.0/terms?starting_after=a")
        );
    }
}
