//! Fault injection: rules that make matching requests fail the ways Clever (or the network
//! in front of it) fails. Rules are set through [`crate::MockServer::inject`] or, for the
//! binary, `POST /__mock/faults` with the rule as JSON.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// How a faulty response misbehaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// 429 with `X-RateLimit-Reset` (epoch seconds, now + `reset_in_secs`) and/or
    /// `Retry-After` (`reset_in_secs`).
    RateLimit {
        reset_in_secs: u64,
        #[serde(default)]
        header: RateLimitHeader,
    },
    /// The status with a JSON body `{"message": …}`.
    Status { status: u16 },
    /// The status with an HTML error page, as proxies and load balancers send.
    Html { status: u16 },
    /// A 200 whose body stops half-way and the connection closes.
    Truncated,
    /// A 200 whose `Content-Length` announces 2^63 bytes, more than any allocation can
    /// hold; the page's bytes follow and the connection closes, as a broken proxy might. A
    /// client must not take the announced length as memory to set aside.
    OverstatedLength,
    /// 401 with a JSON body that (like some servers) echoes the token it refused.
    Unauthorized,
    /// A normal page whose `next` link is the request's own uri.
    LoopingNext,
    /// An empty `data` array that still carries a `next` link.
    EmptyPageWithNext,
    /// The normal response, `delay_ms` late.
    Slow { delay_ms: u64 },
    /// The status line, headers and half the body at once; the rest `delay_ms` later.
    SlowBody { delay_ms: u64 },
    /// No answer: the connection is reset (TCP RST) once the request is in. Needs the
    /// mock's own listener ([`crate::serve`], [`crate::MockServer`]); served through a
    /// bare [`crate::router`] it degrades to a connection closed before any body.
    Reset,
    /// Any response: this status, `Content-Type` and body, sent whole (a `200` HTML
    /// login page from a proxy, JSON cut off by a buggy server, an envelope of the wrong
    /// shape, an empty body…).
    Raw {
        status: u16,
        content_type: String,
        body: String,
    },
    /// A normal page whose `next` link is `uri` (an earlier page, another host…).
    NextLink { uri: String },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitHeader {
    #[default]
    Reset,
    RetryAfter,
    Both,
}

/// Which requests a fault hits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    pub fault: Fault,
    /// Only paths containing this text (e.g. `"/v3.0/users"`); every API path when absent.
    #[serde(default)]
    pub path: Option<String>,
    /// Only requests past the first page (those with `starting_after`).
    #[serde(default)]
    pub mid_pagination: bool,
    /// Let this many matching requests through before the fault starts.
    #[serde(default)]
    pub skip: u32,
    /// Fire this many times, then stop; forever when absent.
    #[serde(default)]
    pub times: Option<u32>,
}

impl FaultRule {
    pub fn new(fault: Fault) -> Self {
        FaultRule {
            fault,
            path: None,
            mid_pagination: false,
            skip: 0,
            times: None,
        }
    }
    pub fn on_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }
    pub fn mid_pagination(mut self) -> Self {
        self.mid_pagination = true;
        self
    }
    pub fn skip(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    fn matches(&self, path: &str, paginating: bool) -> bool {
        self.path.as_deref().is_none_or(|p| path.contains(p))
            && (!self.mid_pagination || paginating)
    }
}

struct Armed {
    rule: FaultRule,
    seen: u32,
    fired: u32,
}

/// The rules in force, with how often each has matched and fired.
#[derive(Default)]
pub struct FaultBook {
    rules: Mutex<Vec<Armed>>,
}

impl FaultBook {
    pub fn add(&self, rule: FaultRule) {
        self.rules.lock().unwrap().push(Armed {
            rule,
            seen: 0,
            fired: 0,
        });
    }

    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
    }

    /// The fault this request gets, if any: the first rule that matches and is due.
    pub fn take(&self, path: &str, paginating: bool) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap();
        for armed in rules.iter_mut() {
            if !armed.rule.matches(path, paginating) {
                continue;
            }
            armed.seen += 1;
            if armed.seen <= armed.rule.skip {
                continue;
            }
            if armed.rule.times.is_some_and(|t| armed.fired >= t) {
                continue;
            }
            armed.fired += 1;
            return Some(armed.rule.fault.clone());
        }
        None
    }
}
