//! The mock speaks Clever's protocol: envelopes, paging, auth, versions, faults.

use roster_clever_mock::{District, Fault, FaultRule, MockServer};
use serde_json::Value;

const TOKEN: &str = "mock-test-token";

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

fn start() -> (MockServer, Client) {
    let server = MockServer::start(District::demo(), TOKEN).unwrap();
    let client = Client {
        base: server.base_url().to_string(),
        http: reqwest::Client::new(),
    };
    (server, client)
}

fn next(body: &Value) -> Option<String> {
    body["links"]
        .as_array()?
        .iter()
        .find(|l| l["rel"] == "next")
        .map(|l| l["uri"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn pages_follow_starting_after_and_end_with_an_empty_page() {
    let (_server, client) = start();
    let mut uri = "/v2.1/teachers?limit=5".to_string();
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let (status, body) = client.get(&uri).await;
        assert_eq!(status, 200);
        pages += 1;
        let data = body["data"].as_array().unwrap();
        for item in data {
            let id = item["data"]["id"].as_str().unwrap();
            assert_eq!(item["uri"], format!("/v2.1/teachers/{id}"));
            ids.push(id.to_string());
        }
        match next(&body) {
            Some(n) if !data.is_empty() => uri = n,
            _ => break,
        }
    }
    // 10 teachers in pages of 5: two full pages, then an empty one.
    assert_eq!((ids.len(), pages), (10, 3));
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "sorted by id, like Clever");
}

#[tokio::test]
async fn versions_have_their_own_shapes() {
    let (_server, client) = start();
    let (status, body) = client.get("/v3.0/users?role=teacher").await;
    assert_eq!(status, 200);
    let teachers = body["data"].as_array().unwrap();
    assert_eq!(teachers.len(), 10);
    let first = &teachers[0]["data"];
    assert_ne!(first["id"], first["roles"]["teacher"]["legacy_id"]);
    let (_, body) = client.get("/v3.0/users?role=contact&limit=1").await;
    let contact = &body["data"][0]["data"];
    assert!(contact["name"]["first"].is_null() && contact["name"]["last"].is_string());
    let (_, body) = client.get("/v2.1/contacts?limit=1").await;
    let contact = &body["data"][0]["data"];
    assert!(contact["name"].is_string() && contact["relationship"].is_string());
    assert_eq!(client.get("/v3.0/students").await.0, 404);
    assert_eq!(client.get("/v2.1/users").await.0, 404);
    assert_eq!(client.get("/v1.2/students").await.0, 404);
    let (status, body) = client.get("/v2.0/students?count=true").await;
    assert_eq!((status, body["count"].as_u64()), (200, Some(40)));
    assert_eq!(client.get("/v3.1/users?limit=10001").await.0, 413);
    let (status, body) = client.get("/v3.0/schools/5a25ff950a5f621109000004").await;
    assert_eq!(
        (status, body["data"]["name"].as_str()),
        (200, Some("Maple Grove Elementary"))
    );
}

#[tokio::test]
async fn the_token_is_checked() {
    let (server, client) = start();
    let response = client
        .http
        .get(format!("{}/v3.0/users", server.base_url()))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].is_string());
    assert_eq!(server.requests()[0].status, 401);
}

#[tokio::test]
async fn faults_fire_as_configured_also_through_the_control_endpoint() {
    let (server, client) = start();
    server.inject(
        FaultRule::new(Fault::Status { status: 503 })
            .on_path("/terms")
            .skip(1)
            .times(1),
    );
    assert_eq!(client.get("/v3.0/terms").await.0, 200);
    assert_eq!(client.get("/v3.0/terms").await.0, 503);
    assert_eq!(client.get("/v3.0/terms").await.0, 200);

    let rule = serde_json::json!({
        "fault": {"kind": "rate_limit", "reset_in_secs": 3, "header": "both"},
        "times": 1
    });
    let response = client
        .http
        .post(format!("{}/__mock/faults", server.base_url()))
        .json(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let response = client
        .http
        .get(format!("{}/v2.1/schools", server.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    assert!(response.headers().contains_key("x-ratelimit-reset"));

    server.inject(FaultRule::new(Fault::LoopingNext).on_path("/sections"));
    let (_, body) = client.get("/v3.0/sections?limit=2").await;
    assert_eq!(next(&body).as_deref(), Some("/v3.0/sections?limit=2"));
    server.clear_faults();
    let (_, body) = client.get("/v3.0/sections?limit=2").await;
    assert!(next(&body).unwrap().contains("starting_after="));
}
