//! The HTTP side: Clever's list envelopes and `limit`/`starting_after` paging, bearer-token
//! checks, the fault rules, the Events API (`/{version}/events`), and the `/__mock/*`
//! control endpoints.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::conn::Conn;
use crate::district::District;
use crate::events::Timeline;
use crate::faults::{Fault, FaultBook, FaultRule, RateLimitHeader};
use crate::render::{self, Family};

/// Clever's default and maximum page sizes.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;

/// One request the mock answered, for tests to assert on (the token is never recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub method: String,
    /// Path and query, e.g. `/v3.0/users?limit=2&starting_after=…`.
    pub uri: String,
    pub status: u16,
}

/// Everything the server shares between requests.
pub struct ServerState {
    /// The district served now and the events feed, changed together.
    pub(crate) timeline: RwLock<Timeline>,
    pub(crate) token: String,
    pub(crate) faults: FaultBook,
    pub(crate) log: Mutex<Vec<RequestRecord>>,
}

impl ServerState {
    pub fn new(district: District, token: impl Into<String>) -> Arc<ServerState> {
        Arc::new(ServerState {
            timeline: RwLock::new(Timeline::new(district)),
            token: token.into(),
            faults: FaultBook::default(),
            log: Mutex::new(Vec::new()),
        })
    }

    /// Serve `new` from now on; the events feed of every version gets one event per object
    /// created, updated or deleted (compared as that version renders it).
    pub fn change_district(&self, new: District) {
        self.timeline.write().unwrap().change(new);
    }

    /// Forget the `count` oldest events of every version's feed, as Clever forgets events
    /// after 30 days.
    pub fn expire_events(&self, count: usize) {
        self.timeline.write().unwrap().expire(count);
    }

    fn district(&self) -> Arc<District> {
        self.timeline.read().unwrap().district().clone()
    }
}

pub fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/__mock/requests", get(requests))
        .route("/__mock/faults", post(add_fault).delete(clear_faults))
        .fallback(api)
        .with_state(state)
}

async fn requests(State(state): State<Arc<ServerState>>) -> Json<Vec<RequestRecord>> {
    Json(state.log.lock().unwrap().clone())
}

async fn add_fault(
    State(state): State<Arc<ServerState>>,
    Json(rule): Json<FaultRule>,
) -> StatusCode {
    state.faults.add(rule);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(state): State<Arc<ServerState>>) -> StatusCode {
    state.faults.clear();
    StatusCode::NO_CONTENT
}

/// Marks a response that is never sent: its connection is reset instead.
#[derive(Clone, Copy)]
struct ResetInstead;

async fn api(State(state): State<Arc<ServerState>>, request: Request) -> Response {
    let (method, uri, headers) = (request.method(), request.uri(), request.headers());
    let shown = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string());
    let response = answer(&state, method, uri, headers).await;
    let reset = response.extensions().get::<ResetInstead>().is_some();
    if reset {
        if let Some(ConnectInfo(conn)) = request.extensions().get::<ConnectInfo<Conn>>() {
            conn.reset();
        }
    }
    state.log.lock().unwrap().push(RequestRecord {
        method: method.to_string(),
        uri: shown,
        // No status reached the client.
        status: if reset { 0 } else { response.status().as_u16() },
    });
    response
}

async fn answer(state: &ServerState, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
    if method != Method::GET {
        return message(StatusCode::METHOD_NOT_ALLOWED, "only GET is supported");
    }
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let Some(family) = segments.first().and_then(|v| Family::of(v)) else {
        return message(StatusCode::NOT_FOUND, "version not supported");
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if presented != state.token {
        return message(StatusCode::UNAUTHORIZED, "invalid bearer token");
    }
    let query = Query::parse(uri.query().unwrap_or_default());
    let paginating = query.starting_after.is_some() || query.ending_before.is_some();
    let fault = state.faults.take(uri.path(), paginating);
    match &fault {
        Some(Fault::RateLimit {
            reset_in_secs,
            header,
        }) => return rate_limited(*reset_in_secs, *header),
        Some(Fault::Status { status }) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return message(status, &format!("injected failure: {status}"));
        }
        Some(Fault::Html { status }) => return html(*status),
        Some(Fault::Unauthorized) => {
            // Echo the refused token, as careless servers do: clients must scrub it.
            return message(
                StatusCode::UNAUTHORIZED,
                &format!("token {presented} has been revoked"),
            );
        }
        Some(Fault::Slow { delay_ms }) => {
            tokio::time::sleep(Duration::from_millis(*delay_ms)).await
        }
        Some(Fault::Reset) => {
            // Without the mock's listener (a bare `router`), the body breaks off at once.
            let mut response = truncated(Vec::new());
            response.extensions_mut().insert(ResetInstead);
            return response;
        }
        Some(Fault::Raw {
            status,
            content_type,
            body,
        }) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::OK);
            let content_type = HeaderValue::from_str(content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            return (status, [(header::CONTENT_TYPE, content_type)], body.clone()).into_response();
        }
        _ => {}
    }
    let self_uri = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let body = match segments.as_slice() {
        [version, "events"] => events(state, family, version, &query, self_uri, fault.as_ref()),
        [version, "events", id] => event(state, family, version, id),
        [version, resource] => list(
            state,
            family,
            version,
            resource,
            &query,
            self_uri,
            fault.as_ref(),
        ),
        [_, resource, id] => one(state, family, resource, id, self_uri),
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, "Not Found")),
    };
    let body = match body {
        Ok(body) => body,
        Err(error) => return message(error.status, &error.message),
    };
    let bytes = serde_json::to_vec(&body).expect("JSON values serialize");
    if matches!(fault, Some(Fault::Truncated)) {
        return truncated(bytes);
    }
    if matches!(fault, Some(Fault::OverstatedLength)) {
        return overstated_length(bytes);
    }
    if let Some(Fault::SlowBody { delay_ms }) = fault {
        return slow_body(bytes, Duration::from_millis(delay_ms));
    }
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        bytes,
    )
        .into_response()
}

#[derive(Default)]
struct Query {
    limit: Option<String>,
    starting_after: Option<String>,
    ending_before: Option<String>,
    role: Option<String>,
    count: Option<String>,
    /// `record_type`, which may repeat (events only).
    record_types: Vec<String>,
}

impl Query {
    fn parse(text: &str) -> Query {
        let mut q = Query::default();
        for pair in text.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = Some(value.to_string());
            match key {
                "limit" => q.limit = value,
                "starting_after" => q.starting_after = value,
                "ending_before" => q.ending_before = value,
                "role" => q.role = value,
                "count" => q.count = value,
                "record_type" => q.record_types.extend(value.filter(|v| !v.is_empty())),
                _ => {}
            }
        }
        q
    }
}

fn list(
    state: &ServerState,
    family: Family,
    version: &str,
    resource: &str,
    query: &Query,
    self_uri: &str,
    fault: Option<&Fault>,
) -> Result<Value, ApiError> {
    let Some(mut items) = render::collection(&state.district(), family, resource) else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "Not Found"));
    };
    if let Some(role) = query.role.as_deref().filter(|r| !r.is_empty()) {
        if resource != "users" {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "role is only valid on /users",
            ));
        }
        items.retain(|(_, user)| render::has_role(user, role));
    }
    if query.count.as_deref() == Some("true") {
        let self_link = json!({"rel": "self", "uri": self_uri});
        return Ok(json!({"count": items.len(), "links": [self_link]}));
    }
    let limit = limit(query)?;
    let page: Vec<&(String, Value)> = if let Some(before) = &query.ending_before {
        let earlier: Vec<_> = items.iter().filter(|(id, _)| id < before).collect();
        earlier[earlier.len().saturating_sub(limit)..].to_vec()
    } else {
        let after = query.starting_after.as_deref().unwrap_or_default();
        items
            .iter()
            .filter(|(id, _)| id.as_str() > after)
            .take(limit)
            .collect()
    };
    let role_param = query
        .role
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(|r| format!("&role={r}"))
        .unwrap_or_default();
    let base = format!("/{version}/{resource}?limit={limit}{role_param}");
    let data: Vec<Value> = page
        .iter()
        .map(|(id, obj)| json!({"data": obj, "uri": format!("/{version}/{resource}/{id}")}))
        .collect();
    let page = Page {
        data,
        first: page.first().map(|(id, _)| id.as_str()),
        last: page.last().map(|(id, _)| id.as_str()),
        full: page.len() == limit,
    };
    Ok(envelope(page, &base, self_uri, query, fault))
}

/// `GET /{version}/events`: a page of that version's feed, oldest first, in the lists'
/// envelope.
fn events(
    state: &ServerState,
    family: Family,
    version: &str,
    query: &Query,
    self_uri: &str,
    fault: Option<&Fault>,
) -> Result<Value, ApiError> {
    let limit = limit(query)?;
    let timeline = state.timeline.read().unwrap();
    let page = timeline
        .page(
            family,
            query.starting_after.as_deref(),
            query.ending_before.as_deref(),
            limit,
            &query.record_types,
        )
        // Clever does not document what an id that dropped out of its 30-day window gets;
        // the mock answers as for any unknown object, a 404, which a client must take as
        // "sync in full again".
        .map_err(|id| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                &format!("event {id} is not in the feed"),
            )
        })?;
    let filters: String = query
        .record_types
        .iter()
        .map(|t| format!("&record_type={t}"))
        .collect();
    let base = format!("/{version}/events?limit={limit}{filters}");
    let data: Vec<Value> = page
        .iter()
        .map(|e| json!({"data": e.body, "uri": format!("/{version}/events/{}", e.id)}))
        .collect();
    let page = Page {
        data,
        first: page.first().map(|e| e.id.as_str()),
        last: page.last().map(|e| e.id.as_str()),
        full: page.len() == limit,
    };
    Ok(envelope(page, &base, self_uri, query, fault))
}

/// `GET /{version}/events/{id}`.
fn event(state: &ServerState, family: Family, version: &str, id: &str) -> Result<Value, ApiError> {
    let timeline = state.timeline.read().unwrap();
    let event = timeline
        .event(family, id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, &format!("event {id} not found")))?;
    Ok(json!({"data": event.body, "uri": format!("/{version}/events/{id}")}))
}

/// The page size a query asks for: Clever's default, its maximum, or a refusal.
fn limit(query: &Query) -> Result<usize, ApiError> {
    match query.limit.as_deref() {
        None | Some("") => Ok(DEFAULT_LIMIT),
        Some(text) => match text.parse::<usize>() {
            Ok(0) | Err(_) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "limit must be a positive integer",
            )),
            Ok(n) if n > MAX_LIMIT => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "limit must be at most 10000",
            )),
            Ok(n) => Ok(n),
        },
    }
}

/// One page of a list or of the events feed: its entries (`{"data": …, "uri": …}`) and
/// the ids its links page on from.
struct Page<'a> {
    data: Vec<Value>,
    first: Option<&'a str>,
    last: Option<&'a str>,
    /// As many entries as the limit allows.
    full: bool,
}

/// Clever's list envelope around `page`, with its `self`, `next` and `prev` links (or the
/// ones a link fault asks for). `base` is the list's uri with its limit and filters.
fn envelope(page: Page, base: &str, self_uri: &str, query: &Query, fault: Option<&Fault>) -> Value {
    let mut links = vec![json!({"rel": "self", "uri": self_uri})];
    if matches!(fault, Some(Fault::EmptyPageWithNext)) {
        let after = page.last.unwrap_or("ffffffffffffffffffffffff");
        links.push(json!({"rel": "next", "uri": format!("{base}&starting_after={after}")}));
        return json!({"data": [], "links": links});
    }
    if matches!(fault, Some(Fault::LoopingNext)) {
        links.push(json!({"rel": "next", "uri": self_uri}));
    } else if let Some(Fault::NextLink { uri }) = fault {
        links.push(json!({"rel": "next", "uri": uri}));
    } else if let (true, Some(last)) = (page.full, page.last) {
        // Like Clever, a full page always offers `next`; past the end it returns `data: []`.
        links.push(json!({"rel": "next", "uri": format!("{base}&starting_after={last}")}));
    }
    if let (Some(first), Some(_)) = (page.first, &query.starting_after) {
        links.push(json!({"rel": "prev", "uri": format!("{base}&ending_before={first}")}));
    }
    json!({"data": page.data, "links": links})
}

fn one(
    state: &ServerState,
    family: Family,
    resource: &str,
    id: &str,
    self_uri: &str,
) -> Result<Value, ApiError> {
    let items = render::collection(&state.district(), family, resource)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "Not Found"))?;
    let (_, obj) = items
        .into_iter()
        .find(|(item_id, _)| item_id == id)
        .ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, &format!("{resource} {id} not found"))
        })?;
    Ok(json!({"data": obj, "links": [{"rel": "self", "uri": self_uri}]}))
}

/// A refusal from the list/object handlers, turned into a JSON error response.
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: &str) -> ApiError {
        ApiError {
            status,
            message: message.to_string(),
        }
    }
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({"message": text}))).into_response()
}

fn html(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let reason = status.canonical_reason().unwrap_or("Error");
    let page = format!(
        "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
        code = status.as_u16()
    );
    (status, [(header::CONTENT_TYPE, "text/html")], page).into_response()
}

fn rate_limited(reset_in_secs: u64, which: RateLimitHeader) -> Response {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut response = message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-bucket", HeaderValue::from_static("bearer"));
    headers.insert("x-ratelimit-limit", HeaderValue::from_static("1200"));
    headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
    if matches!(which, RateLimitHeader::Reset | RateLimitHeader::Both) {
        headers.insert("x-ratelimit-reset", HeaderValue::from(now + reset_in_secs));
    }
    if matches!(which, RateLimitHeader::RetryAfter | RateLimitHeader::Both) {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(reset_in_secs));
    }
    response
}

/// A 200 whose first half arrives at once and whose second half `delay` later: a body
/// that stalls mid-way, for timeouts that must cover the body too.
fn slow_body(bytes: Vec<u8>, delay: Duration) -> Response {
    use futures_util::StreamExt;
    let mid = bytes.len() / 2;
    let head = Bytes::from(bytes[..mid].to_vec());
    let tail = Bytes::from(bytes[mid..].to_vec());
    let head = futures_util::stream::iter([Ok::<Bytes, std::io::Error>(head)]);
    let tail = futures_util::stream::once(async move {
        tokio::time::sleep(delay).await;
        Ok(tail)
    });
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        Body::from_stream(head.chain(tail)),
    )
        .into_response()
}

/// A 200 announcing 2^63 bytes of body (`Fault::OverstatedLength`) that sends the page's
/// bytes and then fails, so the server drops the connection short of the length.
fn overstated_length(bytes: Vec<u8>) -> Response {
    use futures_util::StreamExt;
    let page = futures_util::stream::iter([Ok::<Bytes, std::io::Error>(Bytes::from(bytes))]);
    let cut = futures_util::stream::once(async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        Err(std::io::Error::other("injected short body"))
    });
    (
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (header::CONTENT_LENGTH, "9223372036854775808"),
        ],
        Body::from_stream(page.chain(cut)),
    )
        .into_response()
}

/// A 200 whose body breaks off half-way: the status line, headers and half the JSON go
/// out, then the stream fails and the server drops the connection mid-body.
fn truncated(bytes: Vec<u8>) -> Response {
    use futures_util::StreamExt;
    let half = Bytes::from(bytes[..bytes.len() / 2].to_vec());
    let head = futures_util::stream::iter([Ok::<Bytes, std::io::Error>(half)]);
    // The pause lets the first half reach the client before the connection is cut.
    let cut = futures_util::stream::once(async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        Err(std::io::Error::other("injected truncation"))
    });
    let body = Body::from_stream(head.chain(cut));
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}
