//! Faults injected into the mock: what is retried, what fails the import, and that the
//! failure says where (URL and status) without ever saying the token.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::{normalise, run_with, Setup, TestHost};
use roster_clever_mock::{Fault, FaultRule, RateLimitHeader};
use roster_core::ErrorKind;

fn statuses(setup: &Setup, path: &str, status: u16) -> usize {
    setup
        .requests_to(path)
        .iter()
        .filter(|r| r.status == status)
        .count()
}

#[test]
fn a_429_storm_is_waited_out() {
    let setup = Setup::new();
    let baseline = normalise(setup.run("v3.0", "page_size = 10").records());
    setup.server.inject(
        FaultRule::new(Fault::RateLimit {
            reset_in_secs: 1,
            header: RateLimitHeader::Reset,
        })
        .times(8),
    );
    setup.server.inject(
        FaultRule::new(Fault::RateLimit {
            reset_in_secs: 2,
            header: RateLimitHeader::RetryAfter,
        })
        .on_path("/users")
        .mid_pagination()
        .times(8),
    );
    // More 429s in a row than max_retries: rate-limit waits have their own budget.
    let outcome = setup.run("v3.0", "page_size = 10\nmax_retries = 2");
    assert_eq!(normalise(outcome.records()), baseline);
    assert_eq!(statuses(&setup, "/v3.0/", 429), 16);
    assert!(outcome.host.lines().iter().any(|l| l.contains("HTTP 429")));
    setup.assert_no_token(&outcome);
}

#[test]
fn transient_failures_are_retried() {
    let setup = Setup::new();
    let baseline = normalise(setup.run("v2.1", "page_size = 7").records());
    let server = &setup.server;
    server.inject(
        FaultRule::new(Fault::Status { status: 503 })
            .on_path("/teachers")
            .times(2),
    );
    server.inject(
        FaultRule::new(Fault::Html { status: 502 })
            .on_path("/sections")
            .times(2),
    );
    server.inject(
        FaultRule::new(Fault::Status { status: 500 })
            .on_path("/students")
            .mid_pagination()
            .times(1),
    );
    server.inject(
        FaultRule::new(Fault::Status { status: 504 })
            .on_path("/contacts")
            .times(1),
    );
    server.inject(
        FaultRule::new(Fault::Truncated)
            .on_path("/schools")
            .times(2),
    );
    let outcome = setup.run("v2.1", "page_size = 7");
    assert_eq!(normalise(outcome.records()), baseline);
    let schools = setup.requests_to("/v2.1/schools");
    assert_eq!(
        schools.len(),
        1 + 3,
        "the baseline's page, two cut-off bodies, a good page"
    );
    setup.assert_no_token(&outcome);
}

#[test]
fn a_permanent_500_mid_pagination_fails_with_url_and_status() {
    let setup = Setup::new();
    setup.server.inject(
        FaultRule::new(Fault::Status { status: 500 })
            .on_path("/v3.0/users")
            .mid_pagination(),
    );
    let outcome = setup.run("v3.0", "page_size = 5\nmax_retries = 3");
    let error = outcome.error();
    assert_eq!(error.kind, ErrorKind::Network);
    let location = error.location.as_deref().unwrap();
    assert!(
        location.contains("/v3.0/users?limit=5&starting_after=")
            && location.ends_with("(HTTP 500)"),
        "{location}"
    );
    assert!(error.message.contains("after 4 attempts"), "{error}");
    assert_eq!(statuses(&setup, "/v3.0/users", 500), 4);
    setup.assert_no_token(&outcome);
}

#[test]
fn a_401_mid_pagination_is_not_retried_and_the_echoed_token_is_scrubbed() {
    let setup = Setup::new();
    setup.server.inject(
        FaultRule::new(Fault::Unauthorized)
            .on_path("/v3.0/users")
            .mid_pagination(),
    );
    let outcome = setup.run("v3.0", "page_size = 10");
    let error = outcome.error();
    assert_eq!(error.kind, ErrorKind::Auth);
    assert!(error.location.as_deref().unwrap().ends_with("(HTTP 401)"));
    // The mock echoed the token in its body; the plugin must have scrubbed it.
    assert!(
        error.message.contains("token *** has been revoked"),
        "{error}"
    );
    assert!(error.hint.as_deref().unwrap().contains(&setup.token_env));
    assert_eq!(statuses(&setup, "/v3.0/users", 401), 1);
    setup.assert_no_token(&outcome);
}

#[test]
fn a_wrong_token_is_an_auth_error_naming_the_variable() {
    let setup = Setup::new();
    let other = Setup::new();
    // `other`'s token variable, against `setup`'s server: refused at once.
    let config = format!(
        "api_version = \"v2.1\"\nbase_url = \"{}\"\ntoken_env = \"{}\"\n",
        setup.server.base_url(),
        other.token_env
    );
    let outcome = common::run(&config);
    let error = outcome.error();
    assert_eq!(error.kind, ErrorKind::Auth);
    assert!(error.hint.as_deref().unwrap().contains(&other.token_env));
    other.assert_no_token(&outcome);
}

#[test]
fn client_errors_are_not_retried() {
    for status in [400u16, 403, 404, 501] {
        let setup = Setup::new();
        setup
            .server
            .inject(FaultRule::new(Fault::Status { status }).on_path("/sections"));
        let outcome = setup.run("v3.0", "");
        let error = outcome.error();
        assert!(
            error
                .location
                .as_deref()
                .unwrap()
                .ends_with(&format!("(HTTP {status})")),
            "{error}"
        );
        assert_eq!(
            statuses(&setup, "/sections", status),
            1,
            "HTTP {status} retried"
        );
    }
}

#[test]
fn a_looping_next_link_is_an_error() {
    let setup = Setup::new();
    setup.server.inject(
        FaultRule::new(Fault::LoopingNext)
            .on_path("/v3.0/users")
            .mid_pagination(),
    );
    let outcome = setup.run("v3.0", "page_size = 10");
    let error = outcome.error();
    assert!(error.message.contains("loops"), "{error}");
    assert!(error.location.as_deref().unwrap().contains("/v3.0/users"));
    assert!(setup.requests_to("/v3.0/users").len() <= 3);
}

#[test]
fn an_empty_page_ends_the_list_even_with_a_next_link() {
    let setup = Setup::new();
    let baseline = normalise(setup.run("v3.0", "").records());
    // 73 users fill one page of 73 exactly; the page after it is empty but offers `next`.
    setup.server.inject(
        FaultRule::new(Fault::EmptyPageWithNext)
            .on_path("/v3.0/users")
            .mid_pagination(),
    );
    let outcome = setup.run("v3.0", "page_size = 73");
    assert_eq!(normalise(outcome.records()), baseline);
    assert_eq!(setup.requests_to("/v3.0/users?limit=73").len(), 2);
}

#[test]
fn v2_contacts_gone_points_to_v3() {
    let setup = Setup::new();
    setup
        .server
        .inject(FaultRule::new(Fault::Status { status: 404 }).on_path("/v2.1/contacts"));
    let outcome = setup.run("v2.1", "");
    let error = outcome.error();
    assert!(
        error.message.contains("v2 contacts endpoint is gone")
            && error.message.contains("api_version = \"v3.0\"")
            && error.message.contains("include_contacts = false"),
        "{error}"
    );
    let location = error.location.as_deref().unwrap();
    assert!(
        location.contains("/v2.1/contacts") && location.ends_with("(HTTP 404)"),
        "{location}"
    );
    // Without contacts the same district imports fine.
    let outcome = setup.run("v2.1", "include_contacts = false");
    assert!(outcome.result.is_ok());
    // 410 Gone reads the same.
    setup.server.clear_faults();
    setup
        .server
        .inject(FaultRule::new(Fault::Status { status: 410 }).on_path("/contacts"));
    let outcome = setup.run("v2.0", "");
    assert!(outcome
        .error()
        .message
        .contains("v2 contacts endpoint is gone"));
}

#[test]
fn slow_responses_time_out_and_are_retried() {
    let setup = Setup::new();
    let baseline = normalise(setup.run("v3.0", "").records());
    setup.server.inject(
        FaultRule::new(Fault::Slow { delay_ms: 1_500 })
            .on_path("/terms")
            .times(2),
    );
    let outcome = setup.run("v3.0", "timeout_seconds = 0.3");
    assert_eq!(normalise(outcome.records()), baseline);
    assert!(outcome
        .host
        .lines()
        .iter()
        .any(|l| l.contains("no response within 0.3 s")));

    setup
        .server
        .inject(FaultRule::new(Fault::Slow { delay_ms: 1_500 }).on_path("/courses"));
    let outcome = setup.run("v3.0", "timeout_seconds = 0.3\nmax_retries = 1");
    let error = outcome.error();
    assert_eq!(error.kind, ErrorKind::Network);
    assert!(
        error.message.contains("no response within 0.3 s"),
        "{error}"
    );
    assert!(error.location.as_deref().unwrap().contains("/v3.0/courses"));
}

#[test]
fn an_unreachable_server_is_a_network_error() {
    let setup = Setup::new();
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "api_version = \"v3.0\"\nbase_url = \"http://127.0.0.1:{port}\"\ntoken_env = \"{}\"\nmax_retries = 1\nmax_retry_wait_ms = 10\n",
        setup.token_env
    );
    let outcome = common::run(&config);
    let error = outcome.error();
    assert_eq!(error.kind, ErrorKind::Network);
    assert!(error.message.contains("after 2 attempts"), "{error}");
    setup.assert_no_token(&outcome);
}

#[test]
fn cancellation_stops_the_import() {
    let setup = Setup::new();
    let host = Arc::new(TestHost::default());
    host.cancelled.store(true, Ordering::Relaxed);
    let outcome = run_with(&setup.config("v3.0", ""), host);
    assert_eq!(outcome.error().kind, ErrorKind::Cancelled);
}
