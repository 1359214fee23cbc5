//! Hooks for the fuzz targets in `fuzz/` and the fuzz smoke tests: response bodies through
//! the parser the client uses for every page, then through the mapping, without a server.
//! Not part of the plugin's API.

use roster_core::record::Record;
use roster_core::PluginError;
use serde::de::DeserializeOwned;

use crate::client::{parse_page, resolve_next};
use crate::fetch::{Fetched, People};
use crate::mapping;
use crate::model::{self, District};
use crate::model_v2 as v2;
use crate::model_v3 as v3;

/// Where the pages are pretended to come from.
pub const BASE_URL: &str = "https://api.clever.com";

/// The list resources of one import, in the order [`district`] takes their bodies.
pub const V3_RESOURCES: [&str; 6] = [
    "districts",
    "schools",
    "terms",
    "courses",
    "sections",
    "users",
];
pub const V2_RESOURCES: [&str; 10] = [
    "districts",
    "schools",
    "terms",
    "courses",
    "sections",
    "students",
    "teachers",
    "school_admins",
    "district_admins",
    "contacts",
];

/// The URL a body of `resource` is pretended to have come from.
pub fn url(v3: bool, resource: &str) -> String {
    let version = if v3 { "v3.0" } else { "v2.1" };
    format!("{BASE_URL}/{version}/{resource}?limit=100")
}

/// Parses `bodies` as one page each of the version's resources (in the order of
/// [`V3_RESOURCES`] / [`V2_RESOURCES`]; absent ones are empty pages), follows nothing but
/// resolves every page's `next` link as the client would, and maps the district. A body
/// that is not a page is the error the client gives for it (retries aside); `schools`
/// limits the import as the source key does.
pub fn district(
    v3: bool,
    bodies: &[&[u8]],
    schools: &[String],
) -> Result<Vec<Record>, PluginError> {
    let mut bodies = bodies.iter().copied();
    let mut next = move || bodies.next().unwrap_or(b"{\"data\":[]}");
    let districts: Vec<District> = page(v3, "districts", next())?;
    let schools_page = page::<model::School>(v3, "schools", next())?;
    let terms = page(v3, "terms", next())?;
    let courses = page(v3, "courses", next())?;
    let sections = page(v3, "sections", next())?;
    let people = if v3 {
        People::V3 {
            users: page::<v3::User>(v3, "users", next())?,
            include_contacts: true,
        }
    } else {
        People::V2 {
            students: page::<v2::Student>(v3, "students", next())?,
            teachers: page(v3, "teachers", next())?,
            school_admins: page(v3, "school_admins", next())?,
            district_admins: page(v3, "district_admins", next())?,
            contacts: Some(page(v3, "contacts", next())?),
        }
    };
    let fetched = Fetched {
        district: districts.into_iter().next(),
        schools: schools_page,
        terms,
        courses,
        sections,
        people,
    };
    let _ = fetched.summary();
    let mut roster = mapping::map(fetched);
    roster.limit_to_schools(schools)?;
    Ok(roster.into_batches().into_iter().flatten().collect())
}

fn page<T: DeserializeOwned>(v3: bool, resource: &str, body: &[u8]) -> Result<Vec<T>, PluginError> {
    let url = url(v3, resource);
    let envelope = parse_page::<T>(&url, body)
        .map_err(|(error, _)| error.into_plugin_error("CLEVER_TOKEN"))?;
    if let Some(next) = envelope.next_link() {
        if let Ok(resolved) = resolve_next(BASE_URL, &next) {
            // Only ever on Clever's own origin: the token goes wherever `next` points.
            if let Ok(link) = reqwest::Url::parse(&resolved) {
                let base = reqwest::Url::parse(BASE_URL).expect("a URL");
                assert_eq!(
                    link.origin(),
                    base.origin(),
                    "next link {next:?} resolved off the base: {resolved:?}"
                );
            }
        }
    }
    Ok(envelope.data.into_iter().map(|item| item.data).collect())
}
