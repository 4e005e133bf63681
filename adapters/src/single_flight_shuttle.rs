//! Permutation tests of the in-process single flight with `shuttle`: its scheduler picks the
//! interleaving of the threads at every lock and every wake, thousands of times per test, and
//! a failing schedule replays from its printed seed.
//!
//! ```text
//! RUSTFLAGS="--cfg shuttle" CARGO_TARGET_DIR=target/shuttle \
//!     cargo test -p auth0-server --no-default-features --lib single_flight_shuttle
//! ```
//!
//! What must hold under every interleaving: callers of one key send one request and all get
//! its answer; requests of one lane (one refresh token) spend it once, the others follow the
//! rotation; a leader whose future is dropped after it installed the request leaves it to
//! the others (still one send); nobody waits forever (shuttle reports a deadlock).

use crate::single_flight::{Acquired, Settled, SharedResponse, SingleFlight};
use auth0_server_protocol::effect::Coalesce;
use auth0_server_protocol::time::UnixTime;
use shuttle::sync::atomic::{AtomicUsize, Ordering};
use shuttle::sync::{Arc, Mutex};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Schedules explored per test.
const ITERATIONS: usize = 2_000;

fn coalesce(key: &str, lane: &str) -> Coalesce {
    Coalesce {
        key: key.into(),
        remember: true,
        lane: Some(lane.into()),
    }
}

/// A successful token response that rotates the refresh token to `to`.
fn rotating_answer(to: &str) -> Settled {
    let body = format!(r#"{{"access_token":"at","expires_in":600,"refresh_token":"{to}"}}"#);
    let mut r = http::Response::new(body.into_bytes());
    *r.status_mut() = http::StatusCode::OK;
    Settled::Answer(Ok(SharedResponse::new(r, UnixTime::from_secs(1))))
}

/// How a caller ended.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Answer,
    Rotated(String),
    Remembered,
}

/// One caller, as the driver does it: acquire, lead (install a request that yields to the
/// scheduler, counts its sends and rotates the lane's token) or wait, look again after a
/// lane's request settled.
async fn caller(sf: Arc<SingleFlight>, c: Coalesce, sends: Arc<AtomicUsize>) -> Outcome {
    loop {
        let flight = match sf.acquire(&c, UnixTime::from_secs(1)) {
            Acquired::Remembered(_) => return Outcome::Remembered,
            Acquired::Rotated(to) => return Outcome::Rotated(to.expose().to_owned()),
            Acquired::Wait(f) | Acquired::WaitLane(f) => f,
            Acquired::Lead(f) => {
                let sends = sends.clone();
                sf.start(
                    &f,
                    Box::pin(async move {
                        sends.fetch_add(1, Ordering::SeqCst);
                        shuttle::future::yield_now().await;
                        rotating_answer("rt-2")
                    }),
                );
                f
            }
        };
        if let Some(Settled::Answer(_)) = sf.wait(flight).await {
            // Same key: this is the answer. Another key of the lane: look again (the lane's
            // token was rotated; acquire says so).
            if sf_key_matches(&c) {
                return Outcome::Answer;
            }
        }
    }
}

/// In these tests the key `k*` callers want the answer itself; lane-only callers (`other*`)
/// look again after a settle.
fn sf_key_matches(c: &Coalesce) -> bool {
    c.key.starts_with('k')
}

fn sf() -> Arc<SingleFlight> {
    Arc::new(SingleFlight::new(Duration::from_secs(60)))
}

#[test]
fn callers_of_one_key_share_one_request() {
    shuttle::check_random(
        || {
            let sf = sf();
            let sends = Arc::new(AtomicUsize::new(0));
            let threads: Vec<_> = (0..3)
                .map(|_| {
                    let (sf, sends) = (sf.clone(), sends.clone());
                    shuttle::thread::spawn(move || {
                        shuttle::future::block_on(caller(sf, coalesce("k", "rt"), sends))
                    })
                })
                .collect();
            for t in threads {
                let outcome = t.join().expect("a caller panicked");
                assert!(
                    matches!(outcome, Outcome::Answer | Outcome::Remembered),
                    "{outcome:?}"
                );
            }
            assert_eq!(
                sends.load(Ordering::SeqCst),
                1,
                "the refresh token was spent twice"
            );
        },
        ITERATIONS,
    );
}

#[test]
fn a_lane_spends_its_refresh_token_once() {
    shuttle::check_random(
        || {
            let sf = sf();
            let sends = Arc::new(AtomicUsize::new(0));
            let threads: Vec<_> = ["k-api-a", "other-api-b", "other-api-c"]
                .into_iter()
                .map(|key| {
                    let (sf, sends) = (sf.clone(), sends.clone());
                    shuttle::thread::spawn(move || {
                        shuttle::future::block_on(caller(sf, coalesce(key, "rt"), sends))
                    })
                })
                .collect();
            let outcomes: Vec<Outcome> = threads
                .into_iter()
                .map(|t| t.join().expect("a caller panicked"))
                .collect();
            // Whoever spent the token got its answer; everyone else of the lane learnt the
            // rotation (or, same key, the answer).
            let spent = sends.load(Ordering::SeqCst);
            let rotated = outcomes
                .iter()
                .filter(|o| **o == Outcome::Rotated("rt-2".into()))
                .count();
            assert_eq!(
                spent, 1,
                "the lane's refresh token was spent {spent} times: {outcomes:?}"
            );
            assert!(rotated >= 1, "{outcomes:?}");
        },
        ITERATIONS,
    );
}

/// Polls a future once, with a waker that does nothing.
fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    let mut future = pin!(future);
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn a_dropped_leader_leaves_its_request_to_the_others() {
    shuttle::check_random(
        || {
            let sf = sf();
            let sends = Arc::new(AtomicUsize::new(0));
            let c = coalesce("k", "rt");
            // The leader installs the request, polls it at most once, and goes away.
            let leader = {
                let (sf, sends, c) = (sf.clone(), sends.clone(), c.clone());
                shuttle::thread::spawn(move || {
                    if let Acquired::Lead(f) = sf.acquire(&c, UnixTime::from_secs(1)) {
                        let counted = sends.clone();
                        sf.start(
                            &f,
                            Box::pin(async move {
                                counted.fetch_add(1, Ordering::SeqCst);
                                shuttle::future::yield_now().await;
                                rotating_answer("rt-2")
                            }),
                        );
                        let _ = poll_once(sf.wait(f));
                    }
                })
            };
            let results = Arc::new(Mutex::new(Vec::new()));
            let others: Vec<_> = (0..2)
                .map(|_| {
                    let (sf, sends, c, results) =
                        (sf.clone(), sends.clone(), c.clone(), results.clone());
                    shuttle::thread::spawn(move || {
                        let outcome = shuttle::future::block_on(caller(sf, c, sends));
                        results.lock().expect("not poisoned").push(outcome);
                    })
                })
                .collect();
            leader.join().expect("the leader panicked");
            for t in others {
                t.join().expect("a caller panicked");
            }
            assert_eq!(
                sends.load(Ordering::SeqCst),
                1,
                "the refresh token was spent twice"
            );
            assert_eq!(results.lock().expect("not poisoned").len(), 2);
        },
        ITERATIONS,
    );
}
