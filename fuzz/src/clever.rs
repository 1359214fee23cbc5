//! Fuzz harness for the Clever plugin's response handling: any bytes as the pages of one
//! district (parsed by the client's own page parser, then mapped), and as error bodies.
//!
//! Input layout: one flags byte (bit 0: v2.1 instead of v3.0; bit 1: limit the import
//! to the first school named in the input), then the bodies of the version's resources
//! in order, separated by 0x1E bytes.
//!
//! Shared by the cargo-fuzz target (`fuzz/fuzz_targets/clever_pages.rs`) and the fuzz
//! smoke test (`plugins/clever/tests/fuzz_smoke.rs`, which includes this file by path).

use roster_core::ErrorKind;
use roster_plugin_clever::fuzzing::{self, BASE_URL};
use roster_plugin_clever::normalize::error_excerpt;

/// Separates the bodies in an input.
pub const SEPARATOR: u8 = 0x1E;

/// Splits an input into (v3, limit to a school, bodies).
pub fn split(data: &[u8]) -> Option<(bool, bool, Vec<&[u8]>)> {
    let (&flags, rest) = data.split_first()?;
    let bodies = rest.split(|&b| b == SEPARATOR).collect();
    Some((flags & 1 == 0, flags & 2 != 0, bodies))
}

/// Runs one input and checks the outcome: a consistent roster, or an error located at
/// the URL of the page that was wrong (or at the `schools` key, for a school filter that
/// names no school). Error excerpts of every body stay short.
pub fn check_pages(data: &[u8]) {
    let Some((v3, limit, bodies)) = split(data) else {
        return;
    };
    for body in &bodies {
        let excerpt = error_excerpt(body, 200);
        assert!(
            excerpt.chars().count() <= 201,
            "excerpt of {} chars",
            excerpt.chars().count()
        );
    }
    // A school the input names, so that the filter keeps something now and then.
    let schools: Vec<String> = if limit {
        let text = String::from_utf8_lossy(bodies.get(1).copied().unwrap_or_default()).into_owned();
        let name = text
            .split("\"name\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("Nowhere")
            .to_string();
        vec![name]
    } else {
        Vec::new()
    };
    match fuzzing::district(v3, &bodies, &schools) {
        Ok(records) => crate::records::check_consistent(&records),
        Err(error) => {
            let location = error
                .location
                .as_deref()
                .unwrap_or_else(|| panic!("no location: {error}"));
            match error.kind {
                ErrorKind::Input => {
                    let resources: &[&str] = if v3 {
                        &fuzzing::V3_RESOURCES
                    } else {
                        &fuzzing::V2_RESOURCES
                    };
                    assert!(
                        resources.iter().any(|r| location == fuzzing::url(v3, r)),
                        "location {location} is not a page's URL"
                    );
                    assert!(location.starts_with(BASE_URL));
                    assert!(error.message.contains("not a valid page"), "{error}");
                }
                ErrorKind::Config => assert_eq!(location, "schools", "{error}"),
                other => panic!("unexpected {other:?}: {error}"),
            }
        }
    }
}
