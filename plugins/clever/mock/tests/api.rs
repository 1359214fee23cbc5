//! The mock speaks Clever's protocol: envelopes, paging, auth, versions, faults.

use roster_clever_mock::{District, Fault, FaultRule, MockServer, Name, Teacher};
use serde_json::{json, Value};

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

/// The new teacher of [`edited`], by their v2 and v3 ids.
const HIRED: &str = "5a25ff9fa178276346000099";
const HIRED_V3: &str = "603ebb2ab452fb006c7639ff";

/// The demo district after a day of SIS edits: the first student renamed, a teacher
/// hired, the first section's last student moved out, the last section dropped.
fn edited() -> District {
    let mut district = District::demo();
    district.students[0].name.first = "Avery".into();
    district.teachers.push(Teacher {
        id: HIRED.into(),
        v3_id: HIRED_V3.into(),
        name: Name {
            first: "Ada".into(),
            middle: String::new(),
            last: "Lovelace".into(),
        },
        school: district.sections[0].school.clone(),
        schools: vec![district.sections[0].school.clone()],
        ..Teacher::default()
    });
    district.sections[0].students.pop();
    district.sections.pop();
    district
}

/// The events of one page (`data` unwrapped), checking each entry's `uri`.
async fn events(client: &Client, path: &str) -> (Value, Vec<Value>) {
    let (status, body) = client.get(path).await;
    assert_eq!(status, 200, "{path}: {body}");
    let version = path.split('/').nth(1).unwrap();
    let events: Vec<Value> = body["data"].as_array().unwrap().to_vec();
    for entry in &events {
        let id = entry["data"]["id"].as_str().unwrap();
        assert_eq!(entry["uri"], format!("/{version}/events/{id}"));
    }
    let events = events.into_iter().map(|e| e["data"].clone()).collect();
    (body, events)
}

/// Each event's type and object id, in feed order.
fn kinds(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            let kind = e["type"].as_str().unwrap().to_string();
            (
                kind,
                e["data"]["object"]["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

fn pair(kind: &str, id: &str) -> (String, String) {
    (kind.to_string(), id.to_string())
}

#[tokio::test]
async fn a_change_is_reported_in_each_versions_types_in_dependency_order() {
    let (server, client) = start();
    let demo = District::demo();
    let (student, changed, dropped) = (
        demo.students[0].id.as_str(),
        demo.sections[0].id.as_str(),
        demo.sections.last().unwrap().id.as_str(),
    );
    server.change_district(edited());

    let (_, v3) = events(&client, "/v3.0/events").await;
    assert_eq!(
        kinds(&v3),
        [
            pair("users.updated", student),
            pair("users.created", HIRED_V3),
            pair("sections.updated", changed),
            pair("sections.deleted", dropped),
        ]
    );
    assert_eq!(v3[0]["data"]["object"]["name"]["first"], "Avery");
    assert_eq!(
        v3[0]["data"]["previous_attributes"],
        json!({"name": {"first": "Ava", "middle": "J", "last": "Okafor"}})
    );
    let (_, hired) = client.get(&format!("/v3.0/users/{HIRED_V3}")).await;
    assert_eq!(
        v3[1]["data"]["object"], hired["data"],
        "what the list serves"
    );
    let old_students = &demo.sections[0].students;
    assert_eq!(
        v3[2]["data"]["previous_attributes"],
        json!({ "students": old_students }),
        "the whole old array"
    );
    assert_eq!(
        v3[2]["data"]["object"]["students"],
        json!(old_students[..old_students.len() - 1])
    );
    for event in [&v3[1], &v3[3]] {
        assert!(event["data"].get("previous_attributes").is_none());
    }
    let mut sorted = ids(&v3);
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, ids(&v3), "ids strictly increasing");
    for event in &v3 {
        let id = event["id"].as_str().unwrap();
        assert!(
            id.len() == 24
                && id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        let created = event["created"].as_str().unwrap();
        let shape = created.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'.',
            23 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
        assert!(created.len() == 24 && shape, "{created}");
    }

    let (_, v2) = events(&client, "/v2.1/events").await;
    assert_eq!(
        kinds(&v2),
        [
            pair("students.updated", student),
            pair("teachers.created", HIRED),
            pair("sections.updated", changed),
            pair("sections.deleted", dropped),
        ]
    );
    assert_eq!(v2[0]["data"]["previous_attributes"]["name"]["first"], "Ava");
    assert_eq!(
        v2[2]["data"]["previous_attributes"],
        json!({ "students": old_students })
    );

    let id = v3[3]["id"].as_str().unwrap();
    let (status, body) = client.get(&format!("/v3.1/events/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"data": v3[3], "uri": format!("/v3.1/events/{id}")})
    );
    assert_eq!(
        client.get(&format!("/v2.0/events/{id}")).await.0,
        404,
        "a v3 event"
    );
}

#[tokio::test]
async fn the_lists_serve_the_changed_district() {
    let (server, client) = start();
    let demo = District::demo();
    server.change_district(edited());
    let (_, body) = client
        .get(&format!("/v3.0/users/{}", demo.students[0].id))
        .await;
    assert_eq!(body["data"]["name"]["first"], "Avery");
    let (_, body) = client.get("/v2.1/teachers?count=true").await;
    assert_eq!(body["count"], 11);
    let dropped = &demo.sections.last().unwrap().id;
    assert_eq!(
        client.get(&format!("/v2.1/sections/{dropped}")).await.0,
        404
    );
    let (_, body) = client
        .get(&format!("/v3.0/sections/{}", demo.sections[0].id))
        .await;
    assert_eq!(
        body["data"]["students"].as_array().unwrap().len(),
        demo.sections[0].students.len() - 1
    );
}

#[tokio::test]
async fn the_feed_pages_and_filters_like_a_list() {
    let (server, client) = start();
    server.change_district(edited());
    let mut district = edited();
    district.students[1].grade = "12".into();
    server.change_district(district);
    let (_, all) = events(&client, "/v3.0/events").await;
    assert_eq!(all.len(), 5);

    let mut uri = "/v3.0/events?limit=2".to_string();
    let mut seen = Vec::new();
    loop {
        let (body, page) = events(&client, &uri).await;
        seen.extend(page.iter().cloned());
        match next(&body) {
            Some(n) if !page.is_empty() => uri = n,
            _ => break,
        }
    }
    assert_eq!(seen, all, "every event once, in order");

    let (_, newest) = events(&client, "/v3.0/events?ending_before=last&limit=1").await;
    assert_eq!(ids(&newest), ids(&all[4..]));
    let before = all[3]["id"].as_str().unwrap();
    let (_, earlier) = events(
        &client,
        &format!("/v3.1/events?ending_before={before}&limit=2"),
    )
    .await;
    assert_eq!(
        ids(&earlier),
        ids(&all[1..3]),
        "the limit just before, oldest first"
    );

    let (_, users) = events(&client, "/v3.0/events?record_type=users").await;
    assert_eq!(
        ids(&users),
        [&all[0], &all[1], &all[4]].map(|e| e["id"].as_str().unwrap())
    );
    let (_, both) = events(
        &client,
        "/v3.0/events?record_type=users&record_type=sections",
    )
    .await;
    assert_eq!(both, all);
    let (body, sections) = events(&client, "/v3.0/events?record_type=sections&limit=1").await;
    assert_eq!(kinds(&sections)[0].0, "sections.updated");
    let next_uri = next(&body).unwrap();
    assert!(next_uri.contains("record_type=sections"), "{next_uri}");
    let (_, sections) = events(&client, &next_uri).await;
    assert_eq!(kinds(&sections)[0].0, "sections.deleted");
    let (_, v2) = events(&client, "/v2.1/events?record_type=students").await;
    assert_eq!(v2.len(), 2);
}

#[tokio::test]
async fn ids_missing_from_the_feed_are_not_found() {
    let (server, client) = start();
    for path in ["/v3.0/events", "/v2.1/events?ending_before=last&limit=1"] {
        let (body, page) = events(&client, path).await;
        assert!(page.is_empty() && next(&body).is_none(), "{body}");
    }
    let (status, body) = client
        .get("/v3.0/events?starting_after=000000000000000000000000")
        .await;
    assert_eq!(status, 404);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("not in the feed"));

    server.change_district(edited());
    let (_, first) = events(&client, "/v3.0/events").await;
    server.change_district(District::demo());
    // The client read the first change, then came back after it had dropped out.
    server.expire_events(first.len());
    let last_read = first.last().unwrap()["id"].as_str().unwrap();
    let (status, body) = client
        .get(&format!("/v3.0/events?starting_after={last_read}"))
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        client.get(&format!("/v3.0/events/{last_read}")).await.0,
        404
    );
    let (_, rest) = events(&client, "/v3.0/events").await;
    assert_eq!(rest.len(), 4, "the undoing of the first change");
    assert!(
        rest[0]["id"].as_str().unwrap() > last_read,
        "ids never repeat"
    );

    server.inject(
        FaultRule::new(Fault::Status { status: 503 })
            .on_path("/events")
            .times(1),
    );
    assert_eq!(client.get("/v3.0/events").await.0, 503);
    assert_eq!(client.get("/v3.0/events").await.0, 200);
}
