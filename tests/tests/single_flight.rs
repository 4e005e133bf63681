//! End-to-end: single-flight refresh through both clients against the
//! emulator with refresh-token rotation and reuse detection on.
//!
//! Every caller presents its own copy of the *pre-rotation* session (the session travels in
//! the store options, like a cookie), as concurrent requests of one browser do.

mod adapter_support;

use adapter_support::{
    RecordingStore, ReqwestClient, TestOptions, assert_two_refreshes_on_one_lane, config,
    expired_session, lane_audience,
};
use auth0_emulator::{ANALYTICS_AUDIENCE, DEFAULT_AUDIENCE, Emulator, Failure};
use auth0_server::AccessTokenRequest;
use auth0_server::clock::Clock;
use auth0_server::protocol::session::StateData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

const CALLERS: usize = 50;
const DISCOVERY: &str = "/.well-known/openid-configuration";

type Blocking = auth0_server::blocking::ServerClient<RecordingStore, RecordingStore>;
type Async = auth0_server::nonblocking::ServerClient<RecordingStore, RecordingStore, ReqwestClient>;

fn blocking(emu: &Emulator, clock: Clock) -> Blocking {
    let store = RecordingStore::default();
    Blocking::builder(config(emu), store.clone(), store)
        .clock(clock)
        .build()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

fn nonblocking(emu: &Emulator, rt: &tokio::runtime::Runtime, clock: Clock) -> Async {
    let http = rt.block_on(async { adapter_support::reqwest_client(Duration::from_secs(10)) });
    let store = RecordingStore::default();
    Async::builder(config(emu), store.clone(), store, http)
        .clock(clock)
        .build()
}

/// A clock that tests move forward.
fn movable_clock() -> (Clock, Arc<AtomicU64>) {
    let offset = Arc::new(AtomicU64::new(0));
    let o = offset.clone();
    (
        Clock::from_fn(move || adapter_support::now() + o.load(Ordering::SeqCst)),
        offset,
    )
}

fn assert_one_refresh_no_reuse(emu: &Emulator, tokens: &[String]) {
    assert_eq!(emu.token_requests().len(), 1, "exactly one refresh request");
    assert_eq!(emu.reuse_detections(), 0);
    assert_eq!(emu.revoked_families(), 0);
    assert_eq!(tokens.len(), CALLERS);
    assert!(
        tokens.iter().all(|t| t == &tokens[0]),
        "all got the same token"
    );
    assert_ne!(tokens[0], "expired-access-token");
}

fn blocking_concurrent(client: &Blocking, session: &StateData) -> Vec<String> {
    let barrier = Barrier::new(CALLERS);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..CALLERS)
            .map(|i| {
                let (client, barrier) = (client.clone(), &barrier);
                let mut o = TestOptions::with(&format!("t{i}"), session.clone());
                s.spawn(move || {
                    barrier.wait();
                    client
                        .get_access_token(&mut o)
                        .map(|t| t.access_token.expose().to_owned())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    })
}

fn async_concurrent(
    rt: &tokio::runtime::Runtime,
    client: &Async,
    session: &StateData,
) -> Vec<String> {
    rt.block_on(async {
        let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS));
        let tasks: Vec<_> = (0..CALLERS)
            .map(|i| {
                let (client, barrier) = (client.clone(), barrier.clone());
                let mut o = TestOptions::with(&format!("t{i}"), session.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    client
                        .get_access_token(&mut o)
                        .await
                        .map(|t| t.access_token.expose().to_owned())
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap().unwrap());
        }
        out
    })
}

#[test]
fn fifty_threads_share_one_refresh() {
    let emu = Emulator::start(Default::default());
    let client = blocking(&emu, Clock::system());
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    let tokens = blocking_concurrent(&client, &session);
    assert_one_refresh_no_reuse(&emu, &tokens);
}

#[test]
fn fifty_tasks_share_one_refresh() {
    let emu = Emulator::start(Default::default());
    let rt = runtime();
    let client = nonblocking(&emu, &rt, Clock::system());
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    let tokens = async_concurrent(&rt, &client, &session);
    assert_one_refresh_no_reuse(&emu, &tokens);
}

#[test]
fn fifty_cold_threads_share_one_discovery() {
    let emu = Emulator::start(Default::default());
    // Latency keeps the discovery request in flight while the callers arrive.
    emu.fail_next(DISCOVERY, Failure::Slow(Duration::from_millis(300)), 1);
    let client = blocking(&emu, Clock::system());
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    blocking_concurrent(&client, &session);
    assert_eq!(emu.requests_to(DISCOVERY).len(), 1);
}

#[test]
fn fifty_cold_tasks_share_one_discovery() {
    let emu = Emulator::start(Default::default());
    emu.fail_next(DISCOVERY, Failure::Slow(Duration::from_millis(300)), 1);
    let rt = runtime();
    let client = nonblocking(&emu, &rt, Clock::system());
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    async_concurrent(&rt, &client, &session);
    assert_eq!(emu.requests_to(DISCOVERY).len(), 1);
}

#[test]
fn sequential_calls_with_the_old_session_within_the_grace_window_refresh_once() {
    let emu = Emulator::start(Default::default());
    let (clock, offset) = movable_clock();
    let client = blocking(&emu, clock);
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    let first = client
        .get_access_token(&mut TestOptions::with("a", session.clone()))
        .unwrap();
    offset.store(59, Ordering::SeqCst);
    let mut late = TestOptions::with("b", session.clone());
    let second = client.get_access_token(&mut late).unwrap();
    assert_eq!(first.access_token, second.access_token);
    assert_eq!(
        first.expires_at, second.expires_at,
        "expiry from the receive time"
    );
    assert_eq!(emu.token_requests().len(), 1);
    assert_eq!(emu.reuse_detections(), 0);
    // The late request's session now holds the rotated refresh token, which is live.
    let rotated = late.session.unwrap().refresh_token.unwrap();
    assert!(emu.refresh_token_is_live(rotated.expose()));
}

#[test]
fn async_sequential_calls_within_the_grace_window_refresh_once() {
    let emu = Emulator::start(Default::default());
    let rt = runtime();
    let client = nonblocking(&emu, &rt, Clock::system());
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    let (first, second) = rt.block_on(async {
        let a = client
            .get_access_token(&mut TestOptions::with("a", session.clone()))
            .await;
        let b = client
            .get_access_token(&mut TestOptions::with("b", session.clone()))
            .await;
        (a.unwrap(), b.unwrap())
    });
    assert_eq!(first.access_token, second.access_token);
    assert_eq!(emu.token_requests().len(), 1);
    assert_eq!(emu.reuse_detections(), 0);
}

#[test]
fn after_the_grace_window_the_stale_session_spends_the_rotated_refresh_token() {
    // Past the grace window the answer is no longer handed out, but the rotation is followed
    // for the session's lifetime: the stale session spends the rotated refresh token (one more
    // refresh, no reuse). Past that lifetime the rotation is forgotten and the stale session
    // replays its old token, which the tenant rejects.
    let emu = Emulator::start(Default::default());
    let (clock, offset) = movable_clock();
    let client = blocking(&emu, clock);
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    let mut first = TestOptions::with("a", session.clone());
    client.get_access_token(&mut first).unwrap();
    let rotated = first.session.unwrap().refresh_token.unwrap();
    offset.store(61, Ordering::SeqCst);
    client
        .get_access_token(&mut TestOptions::with("b", session.clone()))
        .unwrap();
    let requests = emu.token_requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].param("refresh_token"), Some(rotated.expose()));
    assert_eq!(emu.reuse_detections(), 0);

    let lifetime = auth0_server::protocol::flight::ROTATION_LIFETIME.as_secs();
    offset.store(61 + lifetime, Ordering::SeqCst);
    let err = client
        .get_access_token(&mut TestOptions::with("c", session))
        .unwrap_err();
    assert_eq!(
        err.oauth_error().map(|e| e.error.as_str()),
        Some("invalid_grant")
    );
    assert_eq!(emu.token_requests().len(), 3);
}

#[test]
fn a_failed_refresh_is_not_remembered() {
    let emu = Emulator::start(Default::default());
    let client = blocking(&emu, Clock::system());
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    emu.fail_next("/oauth/token", Failure::Status(503), 1);
    let err = client
        .get_access_token(&mut TestOptions::with("a", session.clone()))
        .unwrap_err();
    assert_eq!(err.code(), "failed_to_refresh_token");
    client
        .get_access_token(&mut TestOptions::with("b", session))
        .unwrap();
    assert_eq!(emu.token_requests().len(), 2);
}

#[test]
fn a_cancelled_leader_leaves_its_request_to_the_waiter() {
    let emu = Emulator::start(Default::default());
    let rt = runtime();
    let client = nonblocking(&emu, &rt, Clock::system());
    // Warm the discovery cache with an unrelated call, so both calls go straight to refresh.
    let warm = expired_session(&emu, DEFAULT_AUDIENCE);
    rt.block_on(client.get_access_token(&mut TestOptions::with("w", warm)))
        .unwrap();
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    emu.fail_next("/oauth/token", Failure::Slow(Duration::from_secs(2)), 1);
    let result = rt.block_on(async {
        let mut oa = TestOptions::with("leader", session.clone());
        let mut ob = TestOptions::with("waiter", session.clone());
        let leader =
            tokio::time::timeout(Duration::from_millis(300), client.get_access_token(&mut oa));
        let waiter =
            tokio::time::timeout(Duration::from_secs(10), client.get_access_token(&mut ob));
        let (l, w) = tokio::join!(leader, waiter);
        assert!(l.is_err(), "the leader was cancelled");
        w.expect("the waiter did not hang")
    });
    let token = result.expect("the waiter continued the leader's refresh");
    assert_ne!(token.access_token.expose(), "expired-access-token");
    // The warm-up refresh and the cancelled leader's, which the waiter continued: the refresh
    // token was sent once, not again by the waiter.
    assert_eq!(emu.token_requests().len(), 2);
}

#[test]
fn concurrent_refreshes_for_two_audiences_never_spend_one_refresh_token_twice() {
    let emu = Emulator::start(Default::default());
    let client = blocking(&emu, Clock::system());
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    let original = session.refresh_token.clone().unwrap();
    let barrier = Barrier::new(CALLERS);
    let tokens: Vec<(usize, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CALLERS)
            .map(|i| {
                let (client, barrier) = (client.clone(), &barrier);
                let mut o = TestOptions::with(&format!("t{i}"), session.clone());
                s.spawn(move || {
                    barrier.wait();
                    let t = client
                        .get_access_token_with(lane_audience(i), &mut o)
                        .unwrap();
                    (i, t.access_token.expose().to_owned())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_two_refreshes_on_one_lane(&emu, original.expose(), &tokens, CALLERS);
}

#[test]
fn concurrent_async_refreshes_for_two_audiences_never_spend_one_refresh_token_twice() {
    let emu = Emulator::start(Default::default());
    let rt = runtime();
    let client = nonblocking(&emu, &rt, Clock::system());
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    let original = session.refresh_token.clone().unwrap();
    let tokens = rt.block_on(async {
        let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS));
        let tasks: Vec<_> = (0..CALLERS)
            .map(|i| {
                let (client, barrier) = (client.clone(), barrier.clone());
                let mut o = TestOptions::with(&format!("t{i}"), session.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let t = client
                        .get_access_token_with(lane_audience(i), &mut o)
                        .await
                        .unwrap();
                    (i, t.access_token.expose().to_owned())
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_two_refreshes_on_one_lane(&emu, original.expose(), &tokens, CALLERS);
}

#[test]
fn a_late_request_for_another_audience_spends_the_rotated_refresh_token() {
    let emu = Emulator::start(Default::default());
    let client = blocking(&emu, Clock::system());
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    let original = session.refresh_token.clone().unwrap();
    client
        .get_access_token(&mut TestOptions::with("a", session.clone()))
        .unwrap();
    // The same (pre-rotation) session asks for another API.
    let mut late = TestOptions::with("b", session);
    client
        .get_access_token_with(AccessTokenRequest::audience(ANALYTICS_AUDIENCE), &mut late)
        .unwrap();
    let requests = emu.token_requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].param("refresh_token"), Some(original.expose()));
    assert_ne!(requests[1].param("refresh_token"), Some(original.expose()));
    assert_eq!(emu.reuse_detections(), 0);
    let kept = late.session.unwrap().refresh_token.unwrap();
    assert!(
        emu.refresh_token_is_live(kept.expose()),
        "the late session holds a live token"
    );
}
