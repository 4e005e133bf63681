//! The in-memory session store's read latency while saves into the full store run beside it
//! (issue 17: "no reader p99 above 50 µs while saves at capacity run beside it").
//!
//! A store is filled to capacity (10⁶ sessions by default). One thread then saves new
//! sessions into it without pause (each save evicts one session), while the main thread
//! reads sessions through their id cookies and times every read on its own. The reads are
//! timed twice: alone, then beside the saves. Percentiles need every read's time, which a
//! benchmark harness's samples do not give, so this is a plain program like `side_by_side`.
//!
//! It prints, for each run, the reads' p50, p99, p99.9 and slowest time, how many of them
//! found their session, and how many saves ran meanwhile.
//!
//! The sessions read are spread over the younger half of the store (not only the hottest few),
//! and the saves stop before they could evict one of them.
//!
//! Run with `cargo bench -p auth0-server --bench memory_beside_saves`
//! (`-- --sessions 100000 --reads 200000` to change the sizes).

#[path = "support/memory_sessions.rs"]
mod memory_sessions;

use auth0_server::protocol::time::UnixTime;
use auth0_server::store::memory::MemoryStateStore;
use auth0_server::store::{CookieOptions, StateStore};
use http::HeaderMap;
use memory_sessions::{request_for, session};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A fixed instant: no session expires or is stamped again while the program runs.
const NOW: u64 = 1_700_000_000;
/// Sessions read: spread over the younger half of the store, which the saves (oldest first)
/// do not reach in one run.
const SAMPLE: usize = 1_000;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `q` quantile of sorted durations.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Reads `reads` sessions from the sample, timing each; returns the sorted times and how
/// many reads found their session.
fn timed_reads(
    store: &MemoryStateStore,
    sample: &[HeaderMap],
    reads: usize,
) -> (Vec<Duration>, usize) {
    let now = UnixTime::from_secs(NOW);
    let mut times = Vec::with_capacity(reads);
    let mut found = 0;
    for i in 0..reads {
        let headers = &sample[i % sample.len()];
        let start = Instant::now();
        let mut options = CookieOptions::from_request_headers(headers);
        let session = store.get(&mut options, now).expect("no store error");
        let elapsed = start.elapsed();
        found += usize::from(session.is_some());
        black_box(session);
        times.push(elapsed);
    }
    times.sort_unstable();
    (times, found)
}

fn report(label: &str, times: &[Duration], found: usize, saves: usize) {
    println!(
        "RESULT {label}: p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs, slowest {:.1} µs; {found} of {} reads found their session; {saves} saves meanwhile",
        quantile(times, 0.5).as_secs_f64() * 1e6,
        quantile(times, 0.99).as_secs_f64() * 1e6,
        quantile(times, 0.999).as_secs_f64() * 1e6,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e6,
        times.len(),
    );
}

fn main() {
    let sessions = arg("--sessions", 1_000_000).max(SAMPLE * 10);
    let reads = arg("--reads", 200_000);
    let store = MemoryStateStore::new().capacity(sessions);
    let now = UnixTime::from_secs(NOW);
    let mut sample = Vec::with_capacity(SAMPLE);
    for i in 0..sessions {
        let id = store
            .insert(session(&format!("user{i}"), &format!("sid{i}")), now)
            .expect("inserted");
        if i >= sessions / 2 && (i - sessions / 2) % (sessions / 2 / SAMPLE) == 0 {
            sample.push(request_for(&store, &id));
        }
    }
    println!(
        "INFO {sessions} sessions (store full), {reads} timed reads of {} sessions spread over its younger half",
        sample.len()
    );

    // Warm up, then the reads alone.
    timed_reads(&store, &sample, reads / 10);
    let (alone, found) = timed_reads(&store, &sample, reads);
    report("reads alone", &alone, found, 0);

    // The same reads beside a thread saving new sessions into the full store. The saves stop
    // before they could reach the sample (the oldest sessions are evicted first).
    let stop = AtomicBool::new(false);
    let saves = AtomicUsize::new(0);
    let budget = sessions / 2 - 1;
    let (beside, found) = std::thread::scope(|scope| {
        scope.spawn(|| {
            let newcomer = session("newcomer", "newcomer-sid");
            while !stop.load(Ordering::Relaxed) && saves.load(Ordering::Relaxed) < budget {
                let mut options = CookieOptions::new();
                store.set(&newcomer, &mut options, now).expect("saved");
                saves.fetch_add(1, Ordering::Relaxed);
            }
        });
        // Let the saver start before timing.
        while saves.load(Ordering::Relaxed) == 0 {
            std::hint::spin_loop();
        }
        let result = timed_reads(&store, &sample, reads);
        stop.store(true, Ordering::Relaxed);
        result
    });
    report(
        "reads beside saves at capacity",
        &beside,
        found,
        saves.load(Ordering::Relaxed),
    );
    assert_eq!(found, reads, "the saves evicted a session of the sample");
}
