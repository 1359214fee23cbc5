//! `roster-clever-mock`: a local stand-in for Clever's Data API.
//!
//! It serves one district, read from a neutral JSON fixture ([`District`]), in the v2.x
//! shape (`/v2.1/students`, `/teachers`, `/school_admins`, `/district_admins`,
//! `/contacts`, …) and the v3.x shape (`/v3.0/users` with role objects); `v2.0` and
//! `v3.1` are served as aliases. Lists use Clever's envelope
//! (`{"data":[{"data":{…},"uri":…}],"links":[…]}`), `limit` + `starting_after` paging and
//! a bearer-token check. Faults ([`Fault`]) are injected per request with [`FaultRule`]s.
//!
//! The Events API (`/{version}/events`, `/{version}/events/{id}`) reports how the district
//! changed: [`MockServer::change_district`] serves a new district and adds one
//! `<type>.created/updated/deleted` event per object that differs (v2 types like
//! `students.updated`, v3 types like `users.updated`); [`MockServer::expire_events`]
//! forgets the oldest, as Clever does after 30 days.
//!
//! ```no_run
//! use roster_clever_mock::{District, Fault, FaultRule, MockServer};
//! let server = MockServer::start(District::demo(), "secret-token").unwrap();
//! server.inject(FaultRule::new(Fault::Status { status: 503 }).on_path("/users").times(2));
//! let base_url = server.base_url(); // "http://127.0.0.1:PORT"
//! # let _ = base_url;
//! let mut district = District::demo();
//! district.sections.pop();
//! server.change_district(district); // `/v3.0/events` now has one `sections.deleted`
//! ```

mod conn;
mod district;
mod events;
mod faults;
mod render;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

pub use district::{
    demo_fixture_path, Contact, District, FixtureError, Name, Section, Staff, Student,
    StudentRelationship, Teacher,
};
pub use faults::{Fault, FaultRule, RateLimitHeader};
pub use server::{router, RequestRecord, ServerState};

/// Serve `state` on `listener` until the future is dropped (what the binary runs). The
/// connections are the mock's own, so that [`Fault::Reset`] can reset them.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ServerState>,
) -> std::io::Result<()> {
    axum::serve(
        conn::FaultyListener(listener),
        router(state).into_make_service_with_connect_info::<conn::Conn>(),
    )
    .await
}

/// A mock server running on its own thread and tokio runtime, so synchronous tests can
/// use it. Stops when dropped.
pub struct MockServer {
    addr: SocketAddr,
    base_url: String,
    state: Arc<ServerState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Serve `district` on `127.0.0.1` at a free port, accepting only `token`.
    pub fn start(district: District, token: impl Into<String>) -> std::io::Result<MockServer> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = ServerState::new(district, token);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name(format!("clever-mock-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    // Dropping the server future on shutdown (rather than a graceful
                    // shutdown) keeps Drop prompt even while clients hold idle keep-alive
                    // connections; the runtime's drop then ends the connection tasks.
                    tokio::select! {
                        _ = serve(listener, served) => {}
                        _ = rx => {}
                    }
                });
            })?;
        Ok(MockServer {
            addr,
            base_url: format!("http://{addr}"),
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`: what a Clever source's `base_url` should be.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Add a fault rule; rules are tried in the order they were added.
    pub fn inject(&self, rule: FaultRule) {
        self.state.faults.add(rule);
    }

    pub fn clear_faults(&self) {
        self.state.faults.clear();
    }

    /// Serve `district` from now on, with an event in the feed for every object it
    /// creates, updates or deletes; see [`ServerState::change_district`].
    pub fn change_district(&self, district: District) {
        self.state.change_district(district);
    }

    /// Forget the `count` oldest events of every version's feed.
    pub fn expire_events(&self, count: usize) {
        self.state.expire_events(count);
    }

    /// Every API request answered so far, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.log.lock().unwrap().clone()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
