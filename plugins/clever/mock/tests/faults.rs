//! The fault kinds a client sees at the socket: resets, raw bodies, stalled bodies and
//! rewritten `next` links.

use std::time::{Duration, Instant};

use roster_clever_mock::{District, Fault, FaultRule, MockServer};
use serde_json::Value;

const TOKEN: &str = "mock-fault-token";

fn start() -> (MockServer, reqwest::Client) {
    let server = MockServer::start(District::demo(), TOKEN).unwrap();
    (server, reqwest::Client::new())
}

async fn get(
    server: &MockServer,
    http: &reqwest::Client,
    path: &str,
) -> reqwest::Result<reqwest::Response> {
    http.get(format!("{}{path}", server.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
}

#[tokio::test]
async fn a_reset_drops_the_connection_without_an_answer() {
    let (server, http) = start();
    server.inject(FaultRule::new(Fault::Reset).on_path("/terms").times(1));
    let error = get(&server, &http, "/v3.0/terms").await.unwrap_err();
    assert!(error.is_request() || error.is_connect(), "{error:?}");
    let text = format!("{error:?}").to_lowercase();
    assert!(
        text.contains("reset") || text.contains("closed") || text.contains("incomplete"),
        "{text}"
    );
    // The next request (a fresh connection) is answered; the log shows status 0 for the reset.
    let response = get(&server, &http, "/v3.0/terms").await.unwrap();
    assert_eq!(response.status(), 200);
    let log = server.requests();
    assert_eq!(
        log.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![0, 200]
    );
}

#[tokio::test]
async fn a_raw_fault_sends_exactly_what_it_says() {
    let (server, http) = start();
    server.inject(
        FaultRule::new(Fault::Raw {
            status: 200,
            content_type: "text/html".into(),
            body: "<html><body>Please log in</body></html>".into(),
        })
        .times(1),
    );
    let response = get(&server, &http, "/v3.0/users").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/html");
    assert_eq!(
        response.text().await.unwrap(),
        "<html><body>Please log in</body></html>"
    );
}

#[tokio::test]
async fn a_next_link_can_be_rewritten() {
    let (server, http) = start();
    server.inject(
        FaultRule::new(Fault::NextLink {
            uri: "https://elsewhere.example/v3.0/users".into(),
        })
        .times(1),
    );
    let body: Value = get(&server, &http, "/v3.0/users?limit=5")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let next: Vec<&Value> = body["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["rel"] == "next")
        .collect();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0]["uri"], "https://elsewhere.example/v3.0/users");
}

#[tokio::test]
async fn a_slow_body_arrives_late_but_whole() {
    let (server, http) = start();
    server.inject(FaultRule::new(Fault::SlowBody { delay_ms: 300 }).times(1));
    let started = Instant::now();
    let response = get(&server, &http, "/v3.0/terms").await.unwrap();
    assert_eq!(response.status(), 200);
    let headers_after = started.elapsed();
    let body: Value = response.json().await.unwrap();
    assert!(
        headers_after < Duration::from_millis(250),
        "{headers_after:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(body["data"].as_array().is_some_and(|d| !d.is_empty()));
}
