//! What one import fetches, per data model, all of it before mapping: the path taken only
//! with a `schools` filter (the streaming import is `stream.rs`). Every collection is
//! fetched concurrently (the client bounds the requests in flight); the first failure
//! cancels the rest, because a half-fetched district must never look like one whose
//! records were deleted.

use crate::client::Client;
use crate::config::Config;
use crate::error::FetchError;
use crate::model::{self, District};
use crate::model_v2 as v2;
use crate::model_v3 as v3;

/// Everything fetched for one import, not yet mapped.
pub struct Fetched {
    pub district: Option<District>,
    pub schools: Vec<model::School>,
    pub terms: Vec<model::Term>,
    pub courses: Vec<model::Course>,
    pub sections: Vec<model::Section>,
    pub people: People,
}

pub enum People {
    V2 {
        students: Vec<v2::Student>,
        teachers: Vec<v2::Teacher>,
        school_admins: Vec<v2::SchoolAdmin>,
        district_admins: Vec<v2::DistrictAdmin>,
        /// `None` when contacts were not asked for.
        contacts: Option<Vec<v2::Contact>>,
    },
    V3 {
        /// Every role from one `/users` pull: role-filtered pulls would return merged
        /// employee users once per role (NOTES §4).
        users: Vec<v3::User>,
        include_contacts: bool,
    },
}

impl Fetched {
    /// "2 schools, 3 terms, 15 sections, 73 users": for the log.
    pub fn summary(&self) -> String {
        let people = match &self.people {
            People::V2 {
                students,
                teachers,
                school_admins,
                district_admins,
                contacts,
            } => {
                let mut text = format!(
                    "{} students, {} teachers, {} school admins, {} district admins",
                    students.len(),
                    teachers.len(),
                    school_admins.len(),
                    district_admins.len()
                );
                if let Some(contacts) = contacts {
                    text.push_str(&format!(", {} contacts", contacts.len()));
                }
                text
            }
            People::V3 { users, .. } => format!("{} users", users.len()),
        };
        format!(
            "{} schools, {} terms, {} courses, {} sections, {people}",
            self.schools.len(),
            self.terms.len(),
            self.courses.len(),
            self.sections.len()
        )
    }
}

pub async fn fetch(client: &Client, config: &Config) -> Result<Fetched, FetchError> {
    let common = async {
        tokio::try_join!(
            client.fetch_all::<District>("districts"),
            client.fetch_all::<model::School>("schools"),
            client.fetch_all::<model::Term>("terms"),
            client.fetch_all::<model::Course>("courses"),
            client.fetch_all::<model::Section>("sections"),
        )
    };
    let (common, people) = if config.api_version.is_v3() {
        let users = async {
            let users = client.fetch_all::<v3::User>("users").await?;
            Ok(People::V3 {
                users,
                include_contacts: config.include_contacts,
            })
        };
        tokio::try_join!(common, users)?
    } else {
        let people = async {
            let (students, teachers, school_admins, district_admins, contacts) = tokio::try_join!(
                client.fetch_all::<v2::Student>("students"),
                client.fetch_all::<v2::Teacher>("teachers"),
                client.fetch_all::<v2::SchoolAdmin>("school_admins"),
                client.fetch_all::<v2::DistrictAdmin>("district_admins"),
                v2_contacts(client, config.include_contacts),
            )?;
            Ok(People::V2 {
                students,
                teachers,
                school_admins,
                district_admins,
                contacts,
            })
        };
        tokio::try_join!(common, people)?
    };
    let (districts, schools, terms, courses, sections) = common;
    Ok(Fetched {
        district: districts.into_iter().next(),
        schools,
        terms,
        courses,
        sections,
        people,
    })
}

/// v2 contacts, when asked for. Clever retired `/v2.x/contacts` on 2025-07-31: a 404 or
/// 410 there becomes an error that says so and points to v3.
async fn v2_contacts(
    client: &Client,
    include: bool,
) -> Result<Option<Vec<v2::Contact>>, FetchError> {
    if !include {
        return Ok(None);
    }
    match client.fetch_all::<v2::Contact>("contacts").await {
        Ok(contacts) => Ok(Some(contacts)),
        Err(FetchError::Status {
            url,
            status: status @ (404 | 410),
            ..
        }) => Err(FetchError::ContactsGone { url, status }),
        Err(error) => Err(error),
    }
}
