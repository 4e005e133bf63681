//! In-memory session store benchmarks (issue 17): the cost of each operation as the number of
//! stored sessions grows (10³, 10⁵, 10⁶), with one and two threads working on the same store.
//!
//! * `cache_hit`: reading a stored session through its id cookie (threads read different
//!   sessions);
//! * `save_at_capacity`: saving a new session into a full store (one session is evicted);
//! * `logout_by_sid` / `logout_by_sub`: a back-channel logout ending one session, found by its
//!   `sid` or by its user among all the others.
//!
//! Run with `cargo bench -p auth0-server --bench memory` (add a name to run one group, e.g.
//! `-- cache_hit`; each group builds its own stores, up to a million sessions each).

#[path = "support/memory_sessions.rs"]
mod memory_sessions;

use auth0_server::protocol::effect::LogoutTokenClaims;
use auth0_server::store::memory::MemoryStateStore;
use auth0_server::store::{CookieOptions, StateStore};
use divan::{Bencher, black_box};
use http::HeaderMap;
use memory_sessions::{ISSUER, request_for, session};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];
/// A fixed instant: no session is stamped again while the benchmark reads it.
const NOW: u64 = 1_700_000_000;

fn main() {
    divan::main();
}

/// A store holding `n` sessions, their ids and cookie headers for a sample of them.
struct Fixture {
    store: MemoryStateStore,
    requests: Vec<HeaderMap>,
}

fn fixture(n: usize, capacity: usize) -> Fixture {
    let store = MemoryStateStore::new().capacity(capacity);
    let mut requests = Vec::new();
    for i in 0..n {
        let id = store
            .insert(
                session(&format!("user{i}"), &format!("sid{i}")),
                auth0_server::protocol::time::UnixTime::from_secs(NOW),
            )
            .expect("inserted");
        if i % (n / 1_000).max(1) == 0 {
            requests.push(request_for(&store, &id));
        }
    }
    Fixture { store, requests }
}

/// One fixture per size, built on first use: full (capacity `n`) or with room for as many
/// again.
fn shared(cell: &'static [OnceLock<Fixture>; 3], n: usize, full: bool) -> &'static Fixture {
    let slot = SIZES.iter().position(|&s| s == n).expect("a known size");
    cell[slot].get_or_init(|| fixture(n, if full { n } else { n * 2 }))
}

static FULL: [OnceLock<Fixture>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
static SAVED: [OnceLock<Fixture>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
static ROOMY: [OnceLock<Fixture>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
static UNIQUE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's position in a fixture's sample of requests.
    static NEXT: std::cell::Cell<usize> = std::cell::Cell::new(
        THREAD_START.fetch_add(499, Ordering::Relaxed),
    );
}

/// Where the next thread starts in the sample (threads start 499 requests apart).
static THREAD_START: AtomicUsize = AtomicUsize::new(0);

/// This thread's next index into a sample.
fn next_index() -> usize {
    NEXT.with(|n| {
        let i = n.get();
        n.set(i.wrapping_add(1));
        i
    })
}

#[divan::bench(args = SIZES, threads = [1, 2])]
fn cache_hit(bencher: Bencher, n: usize) {
    let f = shared(&FULL, n, true);
    bencher.bench(|| {
        // Each thread walks the sample from its own place with its own counter: a shared
        // counter would make the threads contend on one cache line the store does not have.
        let i = next_index() % f.requests.len();
        let mut options = CookieOptions::from_request_headers(&f.requests[i]);
        black_box(
            f.store
                .get(
                    &mut options,
                    auth0_server::protocol::time::UnixTime::from_secs(NOW),
                )
                .expect("no error"),
        )
    });
}

#[divan::bench(args = SIZES, threads = [1, 2])]
fn save_at_capacity(bencher: Bencher, n: usize) {
    // Its own store: the evictions would otherwise empty the cache-hit sample.
    let f = shared(&SAVED, n, true);
    let state = session("newcomer", "newcomer-sid");
    bencher.bench(|| {
        let mut options = CookieOptions::new();
        f.store
            .set(
                &state,
                &mut options,
                auth0_server::protocol::time::UnixTime::from_secs(NOW),
            )
            .expect("saved");
        black_box(options)
    });
}

fn logout(bencher: Bencher, n: usize, by_sid: bool) {
    let f = shared(&ROOMY, n, false);
    bencher
        .with_inputs(|| {
            let k = UNIQUE.fetch_add(1, Ordering::Relaxed);
            let (sub, sid) = (format!("leaving{k}"), format!("leaving-sid{k}"));
            f.store
                .insert(
                    session(&sub, &sid),
                    auth0_server::protocol::time::UnixTime::from_secs(NOW),
                )
                .expect("inserted");
            LogoutTokenClaims {
                iss: ISSUER.to_owned(),
                sub: (!by_sid).then_some(sub),
                sid: by_sid.then_some(sid),
            }
        })
        .bench_local_values(|claims| {
            f.store
                .delete_by_logout_token(
                    &claims,
                    &mut CookieOptions::new(),
                    auth0_server::protocol::time::UnixTime::from_secs(NOW),
                )
                .expect("no error")
        });
}

#[divan::bench(args = SIZES, threads = [1, 2])]
fn logout_by_sid(bencher: Bencher, n: usize) {
    logout(bencher, n, true);
}

#[divan::bench(args = SIZES, threads = [1, 2])]
fn logout_by_sub(bencher: Bencher, n: usize) {
    logout(bencher, n, false);
}
