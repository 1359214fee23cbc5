//! The Clever fault matrix: every way the API (or the network in front of it) fails, each
//! against the mock on loopback with the real HTTP client. A case either completes with
//! exactly the records of a clean run, or fails with an error that names the URL (and the
//! HTTP status when there was one) — never a panic, a hang, or a partial roster. The
//! cases already covered by `faults.rs` are listed in docs/reliability.md next to these.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{normalise, Normal, Setup};
use roster_clever_mock::{Fault, FaultRule, RateLimitHeader};
use roster_core::record::{Kind, Role};
use roster_core::ErrorKind;
use roster_plugin_clever::RATE_LIMIT_RETRIES;

/// What a case must come to.
enum Expect {
    /// The same records as a clean run, after at least this many retries (or waits).
    Completes { retries: usize },
    /// A failure of this kind whose location contains `at` and ends with `status` (empty:
    /// no status), and whose message contains each of `says`.
    Fails {
        kind: ErrorKind,
        at: &'static str,
        status: &'static str,
        says: &'static [&'static str],
    },
    /// Completes, with the list stopped at an empty page: Clever's documented stop rule
    /// ("terminate on a missing `next` or an empty `data`"). An empty *first* page of
    /// sections leaves no classes; an empty page mid-way through students leaves the
    /// students before it. Nothing else changes. The host's mass-deletion guard is what
    /// stands between such a feed and the database (docs/reliability.md).
    StopsAtEmptyPage { classes: usize, students: usize },
}

struct Case {
    name: &'static str,
    version: &'static str,
    /// Source keys on top of the harness's (20 ms retry waits, 5 s timeout).
    extra: &'static str,
    rules: Vec<FaultRule>,
    expect: Expect,
}

const PAGED: &str = "page_size = 10";
const FEW_RETRIES: &str = "page_size = 10\nmax_retries = 2";

fn status(status: u16) -> Fault {
    Fault::Status { status }
}

fn raw(content_type: &str, body: &str) -> Fault {
    Fault::Raw {
        status: 200,
        content_type: content_type.into(),
        body: body.into(),
    }
}

fn rule(fault: Fault, path: &str) -> FaultRule {
    FaultRule::new(fault).on_path(path)
}

const LOGIN_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form action=\"/login\">Please sign in to continue</form></body></html>";
const CUT_JSON: &str = r#"{"data":[{"data":{"id":"5f0c6b2a1e","name":"Maple Gr"#;

fn cases() -> Vec<Case> {
    use Expect::*;
    let limit = |reset_in_secs, header| Fault::RateLimit {
        reset_in_secs,
        header,
    };
    vec![
        // --- 429 bursts: waited out, not counted against max_retries ---
        Case {
            name: "429_burst_x_ratelimit_reset",
            version: "v3.0",
            extra: FEW_RETRIES,
            rules: vec![rule(limit(1, RateLimitHeader::Reset), "/v3.0/sections").times(6)],
            expect: Completes { retries: 6 },
        },
        Case {
            name: "429_burst_retry_after_mid_pagination",
            version: "v3.0",
            extra: FEW_RETRIES,
            rules: vec![rule(limit(2, RateLimitHeader::RetryAfter), "/v3.0/users")
                .mid_pagination()
                .times(6)],
            expect: Completes { retries: 6 },
        },
        Case {
            name: "429_burst_both_headers_v2",
            version: "v2.1",
            extra: FEW_RETRIES,
            rules: vec![rule(limit(1, RateLimitHeader::Both), "/v2.1/").times(10)],
            expect: Completes { retries: 10 },
        },
        Case {
            name: "429_without_reset_headers",
            version: "v3.0",
            extra: PAGED,
            rules: vec![rule(status(429), "/v3.0/terms").times(3)],
            expect: Completes { retries: 3 },
        },
        Case {
            name: "429_that_never_ends",
            version: "v3.0",
            extra: PAGED,
            rules: vec![rule(limit(1, RateLimitHeader::Reset), "/v3.0/terms")],
            expect: Fails {
                kind: ErrorKind::Network,
                at: "/v3.0/terms?limit=10",
                status: "(HTTP 429)",
                // RATE_LIMIT_RETRIES waits, then the attempt that gives up.
                says: &["Clever answered HTTP 429", "after 31 attempts"],
            },
        },
        // --- 5xx: retried with backoff, then a located error ---
        Case {
            name: "500_burst",
            version: "v3.0",
            extra: FEW_RETRIES,
            rules: vec![rule(status(500), "/v3.0/courses").times(2)],
            expect: Completes { retries: 2 },
        },
        Case {
            name: "502_burst_html",
            version: "v2.1",
            extra: FEW_RETRIES,
            rules: vec![rule(Fault::Html { status: 502 }, "/v2.1/students")
                .mid_pagination()
                .times(2)],
            expect: Completes { retries: 2 },
        },
        Case {
            name: "503_burst",
            version: "v3.0",
            extra: FEW_RETRIES,
            rules: vec![rule(status(503), "/v3.0/users").mid_pagination().times(2)],
            expect: Completes { retries: 2 },
        },
        Case {
            name: "500_persistent",
            version: "v3.0",
            extra: FEW_RETRIES,
            rules: vec![rule(status(500), "/v3.0/courses")],
            expect: Fails {
                kind: ErrorKind::Network,
                at: "/v3.0/courses?limit=10",
                status: "(HTTP 500)",
                says: &["Clever answered HTTP 500", "after 3 attempts"],
            },
        },
        Case {
            name: "502_persistent_html_page",
            version: "v3.0",
            extra: FEW_RETRIES,
            rules: vec![rule(Fault::Html { status: 502 }, "/v3.0/schools")],
            expect: Fails {
                kind: ErrorKind::Network,
                at: "/v3.0/schools?limit=10",
                status: "(HTTP 502)",
                // The page's text, tags stripped.
                says: &["HTTP 502", "502 Bad Gateway", "nginx"],
            },
        },
        Case {
            name: "503_persistent_mid_pagination",
            version: "v2.1",
            extra: FEW_RETRIES,
            rules: vec![rule(status(503), "/v2.1/teachers").mid_pagination()],
            expect: Fails {
                kind: ErrorKind::Network,
                at: "/v2.1/teachers?limit=10&starting_after=",
                status: "(HTTP 503)",
                says: &["Clever answered HTTP 503", "after 3 attempts"],
            },
        },
        // --- timeouts: slow headers, and a body that stalls half-way ---
        Case {
            name: "slow_response_burst",
            version: "v3.0",
            extra: "page_size = 10\nmax_retries = 2\ntimeout_seconds = 0.3",
            rules: vec![rule(Fault::Slow { delay_ms: 1_200 }, "/v3.0/sections").times(1)],
            expect: Completes { retries: 1 },
        },
        Case {
            name: "slow_response_persistent",
            version: "v3.0",
            extra: "page_size = 10\nmax_retries = 1\ntimeout_seconds = 0.3",
            rules: vec![rule(Fault::Slow { delay_ms: 1_200 }, "/v3.0/sections")],
            expect: Fails {
                kind: ErrorKind::Network,
                at: "/v3.0/sections?limit=10",
                status: "",
                says: &["no response within 0.3 s", "after 2 attempts"],
            },
        },
        Case {
            name: "stalled_body_burst",
            version: "v3.0",
            extra: "page_size = 10\nmax_retries = 2\ntimeout_seconds = 0.3",
            rules: vec![rule(Fault::SlowBody { delay_ms: 1_200 }, "/v3.0/users")
                .mid_pagination()
                .times(1)],
            expect: Completes { retries: 1 },
        },
        Case {
            name: "stalled_body_persistent",
            version: "v3.0",
            extra: "page_size = 10\nmax_retries = 1\ntimeout_seconds = 0.3",
            rules: vec![rule(Fault::SlowBody { delay_ms: 1_200 }, "/v3.0/terms")],
            expect: Fails {
                kind: ErrorKind::Network,
                at: "/v3.0/terms?limit=10",
                status: "",
                says: &[
                    "the response body did not arrive within 0.3 s",
                    "after 2 attempts",
                ],
            },
        },
        // --- connection resets (TCP RST instead of an answer) ---
        Case {
            name: "connection_reset_burst",
            version: "v3.0",
            extra: FEW_RETRIES,
            rules: vec![rule(Fault::Reset, "/v3.0/users").mid_pagination().times(2)],
            expect: Completes { retries: 2 },
        },
        Case {
            name: "connection_reset_burst_v2",
            version: "v2.1",
            extra: FEW_RETRIES,
            rules: vec![rule(Fault::Reset, "/v2.1/sections").times(2)],
            expect: Completes { retries: 2 },
        },
        Case {
            name: "connection_reset_persistent",
            version: "v3.0",
            extra: FEW_RETRIES,
            rules: vec![rule(Fault::Reset, "/v3.0/terms")],
            expect: Fails {
                kind: ErrorKind::Network,
                at: "/v3.0/terms?limit=10",
                status: "",
                says: &["could not fetch from Clever", "after 3 attempts", "reset"],
            },
        },
        // --- bodies: cut off in transit, cut off by the server, HTML, wrong shape ---
        Case {
            name: "truncated_transfer_persistent",
            version: "v3.0",
            extra: FEW_RETRIES,
            rules: vec![rule(Fault::Truncated, "/v3.0/users").mid_pagination()],
            expect: Fails {
                kind: ErrorKind::Network,
                at: "/v3.0/users?limit=10&starting_after=",
                status: "",
                says: &["the response body was cut off", "after 3 attempts"],
            },
        },
        Case {
            name: "overstated_length_persistent",
            version: "v3.0",
            extra: FEW_RETRIES,
            rules: vec![rule(Fault::OverstatedLength, "/v3.0/users").mid_pagination()],
            expect: Fails {
                kind: ErrorKind::Network,
                at: "/v3.0/users?limit=10&starting_after=",
                status: "",
                says: &["the response body was cut off", "after 3 attempts"],
            },
        },
        Case {
            name: "truncated_json_burst",
            version: "v3.0",
            extra: FEW_RETRIES,
            rules: vec![rule(raw("application/json", CUT_JSON), "/v3.0/schools").times(2)],
            expect: Completes { retries: 2 },
        },
        Case {
            name: "truncated_json_persistent",
            version: "v3.0",
            extra: FEW_RETRIES,
            rules: vec![rule(raw("application/json", CUT_JSON), "/v3.0/schools")],
            expect: Fails {
                kind: ErrorKind::Input,
                at: "/v3.0/schools?limit=10",
                status: "",
                says: &["not a valid page", "EOF", "after 3 attempts", "Maple Gr"],
            },
        },
        Case {
            name: "empty_200_body_burst",
            version: "v2.1",
            extra: FEW_RETRIES,
            rules: vec![rule(raw("application/json", ""), "/v2.1/terms").times(1)],
            expect: Completes { retries: 1 },
        },
        Case {
            name: "html_200_login_page_persistent",
            version: "v3.0",
            extra: FEW_RETRIES,
            rules: vec![rule(raw("text/html", LOGIN_PAGE), "/v3.0/sections")],
            expect: Fails {
                kind: ErrorKind::Input,
                at: "/v3.0/sections?limit=10",
                status: "",
                says: &["not a valid page", "Please sign in"],
            },
        },
        Case {
            name: "html_200_login_page_burst",
            version: "v3.0",
            extra: FEW_RETRIES,
            rules: vec![rule(raw("text/html", LOGIN_PAGE), "/v3.0/sections").times(1)],
            expect: Completes { retries: 1 },
        },
        Case {
            name: "wrong_shape_json_is_not_retried",
            version: "v3.0",
            extra: FEW_RETRIES,
            rules: vec![rule(
                raw("application/json", r#"{"data":"maintenance"}"#),
                "/v3.0/users",
            )],
            expect: Fails {
                kind: ErrorKind::Input,
                at: "/v3.0/users?limit=10",
                status: "",
                says: &["not a valid page", "maintenance"],
            },
        },
        // --- auth ---
        Case {
            name: "401_mid_pagination_v2",
            version: "v2.1",
            extra: PAGED,
            rules: vec![rule(Fault::Unauthorized, "/v2.1/students").mid_pagination()],
            expect: Fails {
                kind: ErrorKind::Auth,
                at: "/v2.1/students?limit=10&starting_after=",
                status: "(HTTP 401)",
                says: &["Clever answered HTTP 401", "token *** has been revoked"],
            },
        },
        Case {
            name: "413_page_too_large",
            version: "v3.0",
            extra: PAGED,
            rules: vec![rule(status(413), "/v3.0/users")],
            expect: Fails {
                kind: ErrorKind::Network,
                at: "/v3.0/users?limit=10",
                status: "(HTTP 413)",
                says: &["Clever answered HTTP 413"],
            },
        },
        // --- pagination ---
        Case {
            name: "next_link_back_to_the_first_page",
            version: "v3.0",
            extra: PAGED,
            rules: vec![rule(
                Fault::NextLink {
                    uri: "/v3.0/users?limit=10".into(),
                },
                "/v3.0/users",
            )
            .skip(2)
            .times(1)],
            expect: Fails {
                kind: ErrorKind::Input,
                at: "/v3.0/users?limit=10&starting_after=",
                status: "",
                says: &[
                    "pagination loops",
                    "/v3.0/users?limit=10 was already fetched",
                ],
            },
        },
        Case {
            name: "next_link_to_another_host",
            version: "v3.0",
            extra: PAGED,
            rules: vec![rule(
                Fault::NextLink {
                    uri: "https://collector.example/v3.0/users?limit=10&starting_after=x".into(),
                },
                "/v3.0/users",
            )
            .times(1)],
            expect: Fails {
                kind: ErrorKind::Input,
                at: "/v3.0/users?limit=10",
                status: "",
                says: &["collector.example", "refusing to send the token"],
            },
        },
        Case {
            name: "empty_page_with_next_mid_pagination_v2",
            version: "v2.1",
            extra: PAGED,
            rules: vec![rule(Fault::EmptyPageWithNext, "/v2.1/students")
                .mid_pagination()
                .skip(1)
                .times(1)],
            // Two pages of 10 students, then the empty one: the list ends there.
            expect: StopsAtEmptyPage {
                classes: 15,
                students: 20,
            },
        },
        Case {
            name: "empty_first_page_with_next",
            version: "v3.0",
            extra: PAGED,
            rules: vec![rule(Fault::EmptyPageWithNext, "/v3.0/sections").times(1)],
            expect: StopsAtEmptyPage {
                classes: 0,
                students: 40,
            },
        },
    ]
}

struct Failure {
    case: &'static str,
    problem: String,
}

#[test]
fn clever_fault_matrix() {
    let mut baselines: HashMap<&str, Normal> = HashMap::new();
    let mut failures: Vec<Failure> = Vec::new();
    let cases = cases();
    let total = cases.len();
    for case in cases {
        let baseline = baselines.entry(case.version).or_insert_with(|| {
            let clean = Setup::new();
            normalise(clean.run(case.version, PAGED).records())
        });
        let setup = Setup::new();
        for rule in &case.rules {
            setup.server.inject(rule.clone());
        }
        let started = Instant::now();
        let outcome = setup.run(case.version, case.extra);
        let took = started.elapsed();
        let mut problems: Vec<String> = Vec::new();
        if took > Duration::from_secs(20) {
            problems.push(format!("took {took:?}"));
        }
        let retries = outcome
            .host
            .lines()
            .iter()
            .filter(|l| l.contains("; retrying in "))
            .count();
        match (&case.expect, &outcome.result) {
            (Expect::Completes { retries: wanted }, Ok(records)) => {
                if normalise(records) != *baseline {
                    problems.push("records differ from a clean run".into());
                }
                if retries < *wanted {
                    problems.push(format!("{retries} retries logged, expected {wanted}+"));
                }
            }
            (Expect::StopsAtEmptyPage { classes, students }, Ok(records)) => {
                let got = normalise(records);
                let count = |n: &Normal, role: Role| {
                    n.people.values().filter(|p| p.role == role as i32).count()
                };
                let shape = |n: &Normal| {
                    (
                        n.classes.len(),
                        count(n, Role::Student),
                        count(n, Role::Teacher),
                        n.schools.len(),
                        n.terms.len(),
                    )
                };
                let (_, _, teachers, schools, terms) = shape(baseline);
                let wanted = (*classes, *students, teachers, schools, terms);
                if shape(&got) != wanted {
                    problems.push(format!(
                        "(classes, students, teachers, schools, terms) = {:?}, expected {wanted:?}",
                        shape(&got)
                    ));
                }
                let snapshot = records
                    .iter()
                    .any(|r| matches!(r.kind, Some(Kind::Snapshot(_))));
                if !snapshot {
                    problems.push("no snapshot".into());
                }
            }
            (
                Expect::Fails {
                    kind,
                    at,
                    status,
                    says,
                },
                Err(error),
            ) => {
                let location = error.location.clone().unwrap_or_default();
                if error.kind != *kind {
                    problems.push(format!("kind {:?}, expected {kind:?}", error.kind));
                }
                let url = format!("{}{at}", setup.server.base_url());
                if !location.starts_with(&url) {
                    problems.push(format!("location `{location}` does not start with `{url}`"));
                }
                if status.is_empty() && location.contains("(HTTP ") {
                    problems.push(format!("location `{location}` names a status"));
                }
                if !location.ends_with(status) {
                    problems.push(format!(
                        "location `{location}` does not end with `{status}`"
                    ));
                }
                for text in *says {
                    if !error.message.contains(text) {
                        problems.push(format!("message lacks `{text}`: {}", error.message));
                    }
                }
                if error.message.contains("<html") || error.message.contains("<body") {
                    problems.push(format!("raw HTML in the message: {}", error.message));
                }
            }
            (_, Ok(_)) => problems.push("completed, expected a failure".into()),
            (_, Err(error)) => problems.push(format!(
                "failed, expected completion: {error} (hint: {:?})",
                error.hint
            )),
        }
        let mut texts = outcome.host.lines();
        if let Err(error) = &outcome.result {
            texts.push(format!("{error} {error:?}"));
        }
        if texts.iter().any(|t| t.contains(&setup.token)) {
            problems.push("the token leaked into a log line or the error".into());
        }
        eprintln!(
            "{:<45} {:>6} ms  {}",
            case.name,
            took.as_millis(),
            match &outcome.result {
                Ok(records) => format!("ok: {} records, {retries} retries", records.len()),
                Err(error) => format!("error: {error}"),
            }
        );
        failures.extend(problems.into_iter().map(|problem| Failure {
            case: case.name,
            problem,
        }));
    }
    let report: Vec<String> = failures
        .iter()
        .map(|f| format!("{}: {}", f.case, f.problem))
        .collect();
    assert!(
        report.is_empty(),
        "{} of {total} cases went wrong:\n{}",
        report.len(),
        report.join("\n")
    );
    assert_eq!(RATE_LIMIT_RETRIES, 30, "the 429 case counts 31 attempts");
}
