//! The Clever HTTP client: bearer auth, retries (429 waits, 5xx/timeouts with backoff and
//! jitter), and pagination by `next` links.
//!
//! Retry rules follow Clever's error table (NOTES §9): 429 waits for the rate-limit window
//! (`X-RateLimit-Reset` or `Retry-After`); 500/502/503/504, connection errors, timeouts and
//! bodies cut off mid-way are retried up to `max_retries` times; everything else (400, 401,
//! 403, 404, 413, 501, …) fails at once. 429s do not use up `max_retries` — waiting out
//! the window is the documented remedy — but are bounded by [`RATE_LIMIT_RETRIES`].

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use roster_core::PluginError;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::error::FetchError;
use crate::model::Envelope;
use crate::normalize::error_excerpt;
use crate::report::Reporter;

/// How many 429s in a row one request may meet before the import gives up.
pub const RATE_LIMIT_RETRIES: u32 = 30;
/// Clever's rate-limit window, the wait when a 429 names no reset time.
const RATE_LIMIT_WINDOW: Duration = Duration::from_secs(60);
/// The first backoff step for 5xx and transport errors; doubles each retry.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// How much of an error body goes into an error message.
const EXCERPT_CHARS: usize = 200;
/// The most of a body's announced length taken before it arrives (a district's pages are
/// a few MB; a longer body grows its buffer as it comes).
const RESERVE_AT_MOST: usize = 64 << 20;

pub struct Client {
    http: reqwest::Client,
    base_url: String,
    version: &'static str,
    page_size: u32,
    timeout: Duration,
    max_retries: u32,
    max_wait: Duration,
    permits: Semaphore,
    concurrency: usize,
    /// When the token is rate-limited, no request of any fetch goes out before this.
    paused_until: Mutex<Option<Instant>>,
    report: Reporter,
    requests: AtomicU64,
    /// Buffers the bodies of pages already parsed were read into, for the next ones.
    bodies: Mutex<Vec<Vec<u8>>>,
}

/// What one attempt came to, when it did not succeed.
enum Failure {
    RateLimited { wait: Duration, error: FetchError },
    Transient(FetchError),
    Fatal(FetchError),
}

impl Client {
    pub fn new(config: &Config, report: Reporter) -> Result<Client, PluginError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            // A redirect could carry the token elsewhere; Clever's API does not redirect.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("roster-plugin-clever/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                PluginError::network(format!("cannot set up the HTTP client: {error}"))
            })?;
        Ok(Client {
            http,
            base_url: config.base_url.clone(),
            version: config.api_version.as_str(),
            page_size: config.page_size,
            timeout: config.timeout,
            max_retries: config.max_retries,
            max_wait: config.max_retry_wait,
            permits: Semaphore::new(config.concurrency),
            concurrency: config.concurrency,
            paused_until: Mutex::new(None),
            report,
            requests: AtomicU64::new(0),
            bodies: Mutex::new(Vec::new()),
        })
    }

    /// The API version requests go to, e.g. `v3.0`.
    pub fn version(&self) -> &'static str {
        self.version
    }

    /// How many HTTP requests were sent, retries included.
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The first page's URL of a list resource.
    pub fn list_url(&self, resource: &str) -> String {
        format!(
            "{}/{}/{resource}?limit={}",
            self.base_url, self.version, self.page_size
        )
    }

    /// The Events API's list with `query` (e.g. `starting_after=…`), pages of the
    /// configured size unless `query` sets `limit`.
    pub fn events_url(&self, query: &str) -> String {
        let limit = if query.contains("limit=") {
            String::new()
        } else {
            format!("&limit={}", self.page_size)
        };
        format!("{}/{}/events?{query}{limit}", self.base_url, self.version)
    }

    /// Every object of a list resource, following `next` links until a page has none or
    /// comes back empty. Progress is reported under `resource`.
    pub async fn fetch_all<T: DeserializeOwned>(
        &self,
        resource: &str,
    ) -> Result<Vec<T>, FetchError> {
        let mut pager = Pager::new(self, resource);
        let mut out = Vec::new();
        while let Some(page) = pager.next_page::<T>().await? {
            out.extend(page);
        }
        Ok(out)
    }

    /// One page, with retries.
    async fn fetch_page<P: Page>(&self, url: &str) -> Result<P, FetchError> {
        let mut retries = 0u32;
        let mut rate_limited = 0u32;
        loop {
            self.wait_out_rate_limit().await?;
            let failure = match self.attempt(url).await {
                Ok(page) => return Ok(page),
                Err(failure) => failure,
            };
            let attempts = retries + rate_limited + 1;
            let (wait, error) = match failure {
                Failure::RateLimited { wait, error } if rate_limited < RATE_LIMIT_RETRIES => {
                    rate_limited += 1;
                    let wait = wait.min(self.max_wait);
                    self.pause_until(Instant::now() + wait);
                    (wait, error)
                }
                Failure::Transient(error) if retries < self.max_retries => {
                    retries += 1;
                    (backoff(retries, self.max_wait), error)
                }
                Failure::RateLimited { error, .. }
                | Failure::Transient(error)
                | Failure::Fatal(error) => {
                    return Err(with_attempts(error, attempts));
                }
            };
            self.report.warn(&format!(
                "{error} at {url}; retrying in {:.1} s (retry {} of {}, {} rate-limit waits)",
                wait.as_secs_f64(),
                retries,
                self.max_retries,
                rate_limited
            ));
            self.sleep(wait).await?;
        }
    }

    async fn attempt<P: Page>(&self, url: &str) -> Result<P, Failure> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Failure::Fatal(FetchError::Cancelled))?;
        if self.report.is_cancelled() {
            return Err(Failure::Fatal(FetchError::Cancelled));
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = self
            .http
            .get(url)
            .bearer_auth(self.report.token().expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|error| {
                Failure::Transient(FetchError::Transport {
                    url: url.to_string(),
                    detail: describe(error, self.timeout),
                    attempts: 1,
                })
            })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = self.read_body(response).await.map_err(|error| {
            let detail = if error.is_timeout() {
                // A body that stalls is not one that was cut off: say which it was.
                format!(
                    "the response body did not arrive within {:.1} s (timeout_seconds)",
                    self.timeout.as_secs_f64()
                )
            } else {
                format!(
                    "the response body was cut off ({})",
                    describe(error, self.timeout)
                )
            };
            Failure::Transient(FetchError::Transport {
                url: url.to_string(),
                detail,
                attempts: 1,
            })
        })?;
        if status.is_success() {
            let Read { page, spare } = P::read(url, body);
            if let Some(spare) = spare {
                self.give_back(spare);
            }
            return page.map_err(|(error, retry)| {
                if retry {
                    Failure::Transient(error)
                } else {
                    Failure::Fatal(error)
                }
            });
        }
        let error = FetchError::Status {
            url: url.to_string(),
            status: status.as_u16(),
            excerpt: error_excerpt(&body, EXCERPT_CHARS),
            attempts: 1,
        };
        Err(match status {
            StatusCode::TOO_MANY_REQUESTS => Failure::RateLimited {
                wait: rate_limit_wait(&headers, SystemTime::now()).unwrap_or(RATE_LIMIT_WINDOW)
                    + jitter(250),
                error,
            },
            StatusCode::INTERNAL_SERVER_ERROR
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => Failure::Transient(error),
            _ => Failure::Fatal(error),
        })
    }

    /// A response's body, read into a buffer an earlier page's body left. A district's
    /// pages are megabytes each: read into a new allocation every time, the fetching
    /// thread spent more on the first touch of that memory than on copying into it.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
        let mut body = self.bodies.lock().unwrap().pop().unwrap_or_default();
        body.clear();
        // As long as the response says, up to a bound: a length no body will reach must not
        // take the memory first.
        if let Some(length) = response.content_length() {
            body.reserve(usize::try_from(length).map_or(0, |length| length.min(RESERVE_AT_MOST)));
        }
        while let Some(chunk) = response.chunk().await? {
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// `body` back for the next page, unless as many are kept as requests may be in flight.
    pub(crate) fn give_back(&self, body: Vec<u8>) {
        let mut bodies = self.bodies.lock().unwrap();
        if bodies.len() < self.concurrency {
            bodies.push(body);
        }
    }

    fn pause_until(&self, until: Instant) {
        let mut paused = self.paused_until.lock().unwrap();
        if paused.is_none_or(|p| p < until) {
            *paused = Some(until);
        }
    }

    async fn wait_out_rate_limit(&self) -> Result<(), FetchError> {
        let until = *self.paused_until.lock().unwrap();
        if let Some(wait) = until.and_then(|u| u.checked_duration_since(Instant::now())) {
            self.sleep(wait).await?;
        }
        Ok(())
    }

    /// Sleep in short steps so a cancellation is noticed during long waits.
    async fn sleep(&self, total: Duration) -> Result<(), FetchError> {
        let end = Instant::now() + total;
        loop {
            if self.report.is_cancelled() {
                return Err(FetchError::Cancelled);
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            tokio::time::sleep(left.min(Duration::from_millis(200))).await;
        }
    }
}

/// A list resource read page by page, following `next` links until a page has none or
/// comes back empty (Clever may offer `next` past the last record). Progress is reported
/// under the resource's name; a `next` link that leaves `base_url` or comes back to a page
/// already fetched is an error.
pub struct Pager<'a> {
    client: &'a Client,
    resource: &'a str,
    url: Option<String>,
    /// The page `next_page` fetched last.
    last_url: String,
    fetched: HashSet<String>,
    count: u64,
}

impl<'a> Pager<'a> {
    pub fn new(client: &'a Client, resource: &'a str) -> Self {
        Self::at(client, resource, client.list_url(resource))
    }

    /// From another first page than the resource's own (the Events API's, with a query).
    pub fn at(client: &'a Client, resource: &'a str, url: String) -> Self {
        Pager {
            client,
            resource,
            fetched: HashSet::from([url.clone()]),
            url: Some(url),
            last_url: String::new(),
            count: 0,
        }
    }

    /// The next page's objects, or `None` after the last page.
    pub async fn next_page<T: DeserializeOwned>(&mut self) -> Result<Option<Vec<T>>, FetchError> {
        let page = self.next::<Envelope<T>>().await?;
        Ok(page.map(|page| page.data.into_iter().map(|item| item.data).collect()))
    }

    /// The next page as its bytes, its items left for the caller to parse (only the
    /// envelope is read here, for the next link), or `None` after the last page.
    pub async fn next_raw_page(&mut self) -> Result<Option<RawPage>, FetchError> {
        self.next::<RawPage>().await
    }

    async fn next<P: Page>(&mut self) -> Result<Option<P>, FetchError> {
        let Some(url) = self.url.take() else {
            return Ok(None);
        };
        let client = self.client;
        self.last_url.clone_from(&url);
        let page: P = client.fetch_page(&url).await?;
        if page.items() == 0 {
            return Ok(self.finish());
        }
        let next = page.next_link();
        self.count += page.items() as u64;
        client.report.progress(self.resource, self.count);
        if let Some(next) = next {
            let next =
                resolve_next(&client.base_url, &next).map_err(|()| FetchError::ForeignLink {
                    url: url.clone(),
                    next: next.clone(),
                    base: client.base_url.clone(),
                })?;
            if !self.fetched.insert(next.clone()) {
                return Err(FetchError::Loop { url, next });
            }
            self.url = Some(next);
        } else {
            self.finish::<()>();
        }
        Ok(Some(page))
    }

    /// The URL of the page `next_page` fetched last.
    pub fn last_url(&self) -> &str {
        &self.last_url
    }

    fn finish<T>(&mut self) -> Option<T> {
        self.client.report.debug(&format!(
            "clever: {}: {} records",
            self.resource, self.count
        ));
        None
    }
}

/// A 200's body as a page of `T`, or why it is not one — and whether another try may
/// help: a syntax error or an early end is what a truncated transfer looks like, while
/// JSON of the wrong shape will not change.
pub(crate) fn parse_page<T: DeserializeOwned>(
    url: &str,
    body: &[u8],
) -> Result<Envelope<T>, (FetchError, bool)> {
    // Checking the body's UTF-8 once, not string by string, was a tenth of the fetching
    // thread's work.
    // A body that is not all UTF-8 takes the byte parser, which fails or succeeds on it
    // exactly as before (it only checks the strings it keeps).
    let parsed = match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str::<Envelope<T>>(text),
        Err(_) => serde_json::from_slice::<Envelope<T>>(body),
    };
    parsed.map_err(|error| {
        let detail = format!(
            "{error}; the body starts: {:?}",
            error_excerpt(&body[..body.len().min(400)], 80)
        );
        let retry = !matches!(error.classify(), serde_json::error::Category::Data);
        let error = FetchError::Body {
            url: url.to_string(),
            detail,
            attempts: 1,
        };
        (error, retry)
    })
}

/// A page read from its body ([`Page::read`]), and the body's buffer for the next page
/// unless the page keeps it.
pub(crate) struct Read<P> {
    page: Result<P, (FetchError, bool)>,
    spare: Option<Vec<u8>>,
}

/// What a page's body is read as.
pub(crate) trait Page: Sized {
    /// The page, or why the body is not one and whether another try may help (as for
    /// [`parse_page`]); and the body's buffer, unless the page keeps it.
    fn read(url: &str, body: Vec<u8>) -> Read<Self>;
    fn items(&self) -> usize;
    fn next_link(&self) -> Option<String>;
}

impl<T: DeserializeOwned> Page for Envelope<T> {
    fn read(url: &str, body: Vec<u8>) -> Read<Self> {
        Read {
            page: parse_page(url, &body),
            spare: Some(body),
        }
    }

    fn items(&self) -> usize {
        self.data.len()
    }

    fn next_link(&self) -> Option<String> {
        Envelope::next_link(self)
    }
}

/// A page kept as its bytes: its envelope read for the next link and its items counted
/// (skipped, which allocates nothing), the items left to parse elsewhere — the Events
/// API's pages, parsed on another thread while the next one is fetched, their bodies then
/// given back ([`Client::give_back`]).
pub(crate) struct RawPage {
    pub body: Vec<u8>,
    items: usize,
    next: Option<String>,
}

impl Page for RawPage {
    fn read(url: &str, body: Vec<u8>) -> Read<Self> {
        match parse_page::<serde::de::IgnoredAny>(url, &body) {
            Ok(envelope) => Read {
                page: Ok(RawPage {
                    items: envelope.data.len(),
                    next: envelope.next_link(),
                    body,
                }),
                spare: None,
            },
            Err(error) => Read {
                page: Err(error),
                spare: Some(body),
            },
        }
    }

    fn items(&self) -> usize {
        self.items
    }

    fn next_link(&self) -> Option<String> {
        self.next.clone()
    }
}

fn with_attempts(mut error: FetchError, n: u32) -> FetchError {
    match &mut error {
        FetchError::Status { attempts, .. }
        | FetchError::Transport { attempts, .. }
        | FetchError::Body { attempts, .. } => *attempts = n,
        _ => {}
    }
    error
}

/// "Full jitter" on an exponential step, so parallel fetches do not retry in lockstep.
fn backoff(retry: u32, max_wait: Duration) -> Duration {
    let step = BACKOFF_BASE
        .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
        .min(max_wait);
    let half = step / 2;
    half + Duration::from_millis(rand::rng().random_range(0..=half.as_millis() as u64))
}

fn jitter(max_ms: u64) -> Duration {
    Duration::from_millis(rand::rng().random_range(0..=max_ms))
}

/// How long a 429 asks us to wait: until the latest `X-RateLimit-Reset` (epoch seconds;
/// the header can repeat, one per bucket) or for `Retry-After` (seconds or an HTTP date),
/// whichever is later.
fn rate_limit_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let now_secs = now.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
    let reset = headers
        .get_all("x-ratelimit-reset")
        .iter()
        .filter_map(|v| v.to_str().ok()?.trim().parse::<f64>().ok())
        .map(|at| Duration::from_secs_f64((at - now_secs).max(0.0)))
        .max();
    let retry_after = headers.get(RETRY_AFTER).and_then(|v| {
        let text = v.to_str().ok()?.trim();
        match text.parse::<u64>() {
            Ok(secs) => Some(Duration::from_secs(secs)),
            Err(_) => httpdate::parse_http_date(text)
                .ok()
                .map(|at| at.duration_since(now).unwrap_or_default()),
        }
    });
    reset.into_iter().chain(retry_after).max()
}

/// The absolute URL of a `next` link. Clever gives paths (`/v3.0/users?…`), which are
/// appended to `base_url`; an absolute link is followed only on `base_url`'s own origin.
pub(crate) fn resolve_next(base_url: &str, next: &str) -> Result<String, ()> {
    if next.starts_with("http://") || next.starts_with("https://") {
        let base = reqwest::Url::parse(base_url).map_err(|_| ())?;
        let link = reqwest::Url::parse(next).map_err(|_| ())?;
        if link.origin() == base.origin() {
            Ok(next.to_string())
        } else {
            Err(())
        }
    } else if next.starts_with('/') {
        Ok(format!("{base_url}{next}"))
    } else {
        Ok(format!("{base_url}/{next}"))
    }
}

/// A transport error in words, without the URL (the caller has it) and with its causes.
fn describe(error: reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!(
            "no response within {:.1} s (timeout_seconds)",
            timeout.as_secs_f64()
        );
    }
    let error = error.without_url();
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn waits_for_the_reset_or_retry_after() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut headers = HeaderMap::new();
        assert_eq!(rate_limit_wait(&headers, now), None);
        headers.insert("x-ratelimit-reset", HeaderValue::from_static("1700000030"));
        assert_eq!(
            rate_limit_wait(&headers, now),
            Some(Duration::from_secs(30))
        );
        headers.append("x-ratelimit-reset", HeaderValue::from_static("1700000045"));
        assert_eq!(
            rate_limit_wait(&headers, now),
            Some(Duration::from_secs(45))
        );
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(rate_limit_wait(&headers, now), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Tue, 14 Nov 2023 22:14:20 GMT"),
        );
        assert_eq!(
            rate_limit_wait(&headers, now),
            Some(Duration::from_secs(60))
        );
        // A reset already past means "go ahead".
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-reset", HeaderValue::from_static("1600000000"));
        assert_eq!(rate_limit_wait(&headers, now), Some(Duration::ZERO));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let cap = Duration::from_secs(120);
        for retry in 1..=10 {
            let wait = backoff(retry, cap);
            let step = (BACKOFF_BASE * (1 << (retry - 1))).min(cap);
            assert!(wait >= step / 2 && wait <= step, "{retry}: {wait:?}");
        }
        assert!(backoff(3, Duration::from_millis(10)) <= Duration::from_millis(10));
    }

    #[test]
    fn next_links_stay_on_the_base() {
        let base = "https://api.clever.com";
        assert_eq!(
            resolve_next(base, "/v3.0/users?starting_after=a").unwrap(),
            "https://api.clever.com/v3.0/users?starting_after=a"
        );
        assert_eq!(
            resolve_next("http://127.0.0.1:9/proxy", "/v3.0/users").unwrap(),
            "http://127.0.0.1:9/proxy/v3.0/users"
        );
        assert!(resolve_next(base, "https://api.clever.com/v3.0/users?x=1").is_ok());
        assert!(resolve_next(base, "https://evil.example/v3.0/users").is_err());
    }
}
