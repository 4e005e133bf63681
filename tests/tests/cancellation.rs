//! End-to-end: a cancelled request never loses a rotated refresh token.
//!
//! The leader of a refresh has its future dropped (a) before the request is sent, (b) after it
//! is sent and before the answer, (c) after the answer and before the session is saved. In
//! each case the refresh token is sent once, the emulator (rotation and reuse detection on)
//! detects no reuse, the next call is served from the rotated result, and an hour later (past
//! the grace window) a call with the pre-rotation session spends the rotated refresh token,
//! never the replaced one. Each case runs on
//! two executors: tokio (multi-threaded) and `futures-executor` (single-threaded), with an
//! HTTP client that depends on no runtime (a thread per request, the answer through a
//! runtime-agnostic channel).

mod adapter_support;

use adapter_support::{RecordingStore, TestOptions, config, expired_session};
use auth0_emulator::{DEFAULT_AUDIENCE, Emulator, Failure};
use auth0_server::clock::Clock;
use auth0_server::nonblocking::{HttpClient, ServerClient};
use auth0_server::protocol::Secret;
use auth0_server::protocol::effect::LogoutTokenClaims;
use auth0_server::protocol::session::StateData;
use auth0_server::store::{AsyncStateStore, StoreError};
use auth0_server::{TransportError, TransportErrorKind};
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// An HTTP client that needs no runtime: each request runs on its own thread (ureq), and the
/// answer comes back through a oneshot channel, which wakes whichever task waits.
struct ThreadHttp(ureq::Agent);

impl ThreadHttp {
    fn new() -> Self {
        ThreadHttp(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_global(Some(Duration::from_secs(10)))
                .build()
                .new_agent(),
        )
    }
}

impl HttpClient for ThreadHttp {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> impl Future<Output = Result<http::Response<Vec<u8>>, TransportError>> + Send {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let agent = self.0.clone();
        let (method, uri) = (request.method().clone(), request.uri().clone());
        std::thread::spawn(move || {
            use ureq::RequestExt;
            let result = request
                .with_agent(&agent)
                .run()
                .and_then(|r| {
                    let (parts, mut body) = r.into_parts();
                    Ok(http::Response::from_parts(parts, body.read_to_vec()?))
                })
                .map_err(|_| {
                    TransportError::for_target(
                        &method,
                        &uri,
                        TransportErrorKind::Io,
                        "request failed",
                    )
                });
            let _ = tx.send(result);
        });
        async move {
            rx.await.unwrap_or_else(|_| {
                Err(TransportError::new(
                    TransportErrorKind::Io,
                    "request thread gone",
                ))
            })
        }
    }
}

/// A state store over [`RecordingStore`] with gates: `get` can yield once (so a caller can be
/// dropped before any request), and `set` can hang after signalling that it was reached (so a
/// caller can be dropped after the answer, before the save).
#[derive(Clone, Default)]
struct GatedStore {
    inner: RecordingStore,
    yield_on_get: Arc<AtomicBool>,
    hang_on_set: Arc<AtomicBool>,
    set_reached: Arc<Mutex<Option<tokio::sync::oneshot::Sender<()>>>>,
}

/// A future pending once (it wakes itself), then ready.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

impl AsyncStateStore for GatedStore {
    type Options = TestOptions;

    async fn get(
        &self,
        options: &mut TestOptions,
        now: auth0_server::protocol::time::UnixTime,
    ) -> Result<Option<Arc<StateData>>, StoreError> {
        if self.yield_on_get.swap(false, Ordering::SeqCst) {
            YieldOnce(false).await;
        }
        auth0_server::store::StateStore::get(&self.inner, options, now)
    }

    async fn set(
        &self,
        state: &StateData,
        options: &mut TestOptions,
        now: auth0_server::protocol::time::UnixTime,
    ) -> Result<(), StoreError> {
        if self.hang_on_set.swap(false, Ordering::SeqCst) {
            if let Some(tx) = self.set_reached.lock().unwrap().take() {
                let _ = tx.send(());
            }
            std::future::pending::<()>().await;
        }
        auth0_server::store::StateStore::set(&self.inner, state, options, now)
    }

    async fn delete(
        &self,
        options: &mut TestOptions,
        now: auth0_server::protocol::time::UnixTime,
    ) -> Result<(), StoreError> {
        auth0_server::store::StateStore::delete(&self.inner, options, now)
    }

    async fn delete_by_logout_token(
        &self,
        claims: &LogoutTokenClaims,
        options: &mut TestOptions,
        now: auth0_server::protocol::time::UnixTime,
    ) -> Result<(), StoreError> {
        auth0_server::store::StateStore::delete_by_logout_token(&self.inner, claims, options, now)
    }
}

type Client = ServerClient<GatedStore, RecordingStore, ThreadHttp>;

/// Spawned flights, so a test can wait for them without sleeping.
type Spawned = Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>;

/// How the test runs futures.
#[derive(Clone, Copy, Debug)]
enum Executor {
    /// tokio, multi-threaded, with the client's spawn hook set to `tokio::spawn`.
    Tokio,
    /// `futures-executor`'s single-threaded `block_on`; no spawn hook.
    SingleThreaded,
}

struct Setup {
    emu: Emulator,
    client: Client,
    store: GatedStore,
    session: StateData,
    rt: Option<tokio::runtime::Runtime>,
    spawned: Spawned,
    /// Seconds added to the system clock the client reads.
    skew: Arc<AtomicU64>,
}

impl Setup {
    fn new(executor: Executor) -> Setup {
        let emu = Emulator::start(Default::default());
        let store = GatedStore::default();
        let spawned = Spawned::default();
        let skew = Arc::new(AtomicU64::new(0));
        let clock_skew = skew.clone();
        let mut builder = Client::builder(
            config(&emu),
            store.clone(),
            RecordingStore::default(),
            ThreadHttp::new(),
        )
        .clock(Clock::from_fn(move || {
            Clock::system().now().as_secs() + clock_skew.load(Ordering::SeqCst)
        }));
        let rt = match executor {
            Executor::Tokio => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                let (handle, spawned) = (rt.handle().clone(), spawned.clone());
                builder = builder.spawn_with(move |f| {
                    spawned.lock().unwrap().push(handle.spawn(f));
                });
                Some(rt)
            }
            Executor::SingleThreaded => None,
        };
        let session = expired_session(&emu, DEFAULT_AUDIENCE);
        let setup = Setup {
            client: builder.build(),
            emu,
            store,
            session,
            rt,
            spawned,
            skew,
        };
        // Warm the discovery cache, so the calls under test go straight to the refresh.
        let warm = expired_session(&setup.emu, DEFAULT_AUDIENCE);
        setup
            .run(
                setup
                    .client
                    .get_access_token(&mut TestOptions::with("warm", warm)),
            )
            .unwrap();
        setup.join_spawned();
        setup.emu.clear_requests();
        setup
    }

    fn run<F: Future>(&self, f: F) -> F::Output {
        match &self.rt {
            Some(rt) => rt.block_on(f),
            None => futures_executor::block_on(f),
        }
    }

    fn options(&self, tag: &str) -> TestOptions {
        TestOptions::with(tag, self.session.clone())
    }

    /// Waits for the flights handed to the runtime.
    fn join_spawned(&self) {
        let handles: Vec<_> = std::mem::take(&mut *self.spawned.lock().unwrap());
        for h in handles {
            self.run(h).unwrap();
        }
    }

    /// The refresh token was sent once, no reuse was detected, and a call with the
    /// pre-rotation session (the old cookie) is served from the rotated result: nothing more is
    /// sent.
    fn assert_sent_once_and_served_from_the_rotated_result(&self) {
        let mut late = self.options("late");
        let token = self.run(self.client.get_access_token(&mut late)).unwrap();
        assert_ne!(token.access_token.expose(), "expired-access-token");
        let refreshed = late.session.unwrap().refresh_token.unwrap();
        assert_ne!(
            refreshed.expose(),
            self.session.refresh_token.as_ref().unwrap().expose(),
            "the session holds the rotated refresh token"
        );
        assert!(self.emu.refresh_token_is_live(refreshed.expose()));
        assert_eq!(self.emu.token_requests().len(), 1, "one refresh request");
        assert_eq!(self.emu.reuse_detections(), 0);
        assert_eq!(self.emu.revoked_families(), 0);
        self.assert_an_hour_later_the_old_session_spends_the_rotated_token(&refreshed);
    }

    /// An hour later (past the 60 s grace window, the remembered answer long gone), a request
    /// that still carries the pre-rotation session — the leader's own copy, never saved —
    /// spends the rotated refresh token, never the replaced one: no reuse is detected.
    fn assert_an_hour_later_the_old_session_spends_the_rotated_token(&self, rotated: &Secret) {
        self.skew.store(3600, Ordering::SeqCst);
        let mut old = self.options("an hour later");
        self.run(self.client.get_access_token(&mut old)).unwrap();
        let requests = self.emu.token_requests();
        assert_eq!(requests.len(), 2, "one more refresh");
        assert_eq!(
            requests[1].param("refresh_token"),
            Some(rotated.expose()),
            "the rotated refresh token is spent"
        );
        assert_eq!(self.emu.reuse_detections(), 0);
        assert_eq!(self.emu.revoked_families(), 0);
    }
}

/// Polls `f` once, with a waker that does nothing, and drops it: a caller that went away.
fn poll_once_and_drop<F: Future>(f: F) -> bool {
    let mut f = pin!(f);
    f.as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_pending()
}

fn dropped_before_the_request_is_sent(executor: Executor) {
    let s = Setup::new(executor);
    s.store.yield_on_get.store(true, Ordering::SeqCst);
    let mut leader = s.options("leader");
    assert!(poll_once_and_drop(s.client.get_access_token(&mut leader)));
    assert!(s.emu.token_requests().is_empty(), "nothing was sent");
    s.assert_sent_once_and_served_from_the_rotated_result();
}

fn dropped_after_sending_before_the_answer(executor: Executor) {
    let s = Setup::new(executor);
    s.emu
        .fail_next("/oauth/token", Failure::Slow(Duration::from_millis(300)), 1);
    let mut leader = s.options("leader");
    // One poll sends the request (its thread is on its way) and the answer is not there yet.
    assert!(poll_once_and_drop(s.client.get_access_token(&mut leader)));
    // With a spawn hook the runtime finishes the flight; without one the next caller
    // continues it. Either way the refresh token is not sent again.
    s.join_spawned();
    s.assert_sent_once_and_served_from_the_rotated_result();
}

fn dropped_after_the_answer_before_the_save(executor: Executor) {
    let s = Setup::new(executor);
    let (tx, rx) = tokio::sync::oneshot::channel();
    *s.store.set_reached.lock().unwrap() = Some(tx);
    s.store.hang_on_set.store(true, Ordering::SeqCst);
    let mut leader = s.options("leader");
    s.run(async {
        let leader = s.client.get_access_token(&mut leader);
        // Run the leader until it is saving (the answer is in), then drop it.
        let mut leader = pin!(leader);
        let mut rx = pin!(rx);
        std::future::poll_fn(|cx| {
            if leader.as_mut().poll(cx).is_ready() {
                panic!("the save hangs: the leader cannot finish");
            }
            rx.as_mut().poll(cx).map(|r| r.unwrap())
        })
        .await;
    });
    assert_eq!(s.emu.token_requests().len(), 1);
    s.assert_sent_once_and_served_from_the_rotated_result();
}

#[test]
fn tokio_leader_dropped_before_the_request_is_sent() {
    dropped_before_the_request_is_sent(Executor::Tokio);
}

#[test]
fn single_threaded_leader_dropped_before_the_request_is_sent() {
    dropped_before_the_request_is_sent(Executor::SingleThreaded);
}

#[test]
fn tokio_leader_dropped_after_sending_before_the_answer() {
    dropped_after_sending_before_the_answer(Executor::Tokio);
}

#[test]
fn single_threaded_leader_dropped_after_sending_before_the_answer() {
    dropped_after_sending_before_the_answer(Executor::SingleThreaded);
}

#[test]
fn tokio_leader_dropped_after_the_answer_before_the_save() {
    dropped_after_the_answer_before_the_save(Executor::Tokio);
}

#[test]
fn single_threaded_leader_dropped_after_the_answer_before_the_save() {
    dropped_after_the_answer_before_the_save(Executor::SingleThreaded);
}

/// With a spawn hook and nobody left waiting, the runtime completes the flight: the answer is
/// remembered before anyone asks again.
#[test]
fn tokio_spawned_flight_completes_with_nobody_waiting() {
    let s = Setup::new(Executor::Tokio);
    s.emu
        .fail_next("/oauth/token", Failure::Slow(Duration::from_millis(200)), 1);
    let mut leader = s.options("leader");
    assert!(poll_once_and_drop(s.client.get_access_token(&mut leader)));
    assert_eq!(
        s.spawned.lock().unwrap().len(),
        1,
        "the flight was handed to the runtime"
    );
    s.join_spawned();
    assert_eq!(
        s.emu.token_requests().len(),
        1,
        "the spawned flight got its answer"
    );
    s.assert_sent_once_and_served_from_the_rotated_result();
}
