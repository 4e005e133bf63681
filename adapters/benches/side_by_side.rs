//! Our side of the side-by-side comparison with Auth0's Python and JS server SDKs
//! (`tests/side_by_side/run.sh` runs all three in one go and prints the ratios).
//!
//! The workload is the one the Python and JS programs next to the script run: serve the
//! access token of the default audience from the realistic session in
//! `tests/data/session.json` (about 4.4 KB of JSON, 3 token sets), which the browser sends
//! back as an encrypted cookie in two chunks. Each call parses the `Cookie` header and asks
//! for the access token (a cache hit: no network). Measured here:
//!
//! * `client_cold`: `blocking::ServerClient::get_access_token` with the cookie stores, the
//!   decoded-session cache disabled: every call reassembles, decrypts and parses the cookie
//!   (what the Python and JS SDKs do on every call);
//! * `client_new_cookie`: the same with the cache on, but every call brings a cookie value
//!   the store has not decoded lately (64 encryptions of the session, cache of 16): a miss,
//!   then an insert;
//! * `client_warm`: the same cookie every call, cache on (the decoded-session cache hit);
//! * `store_cold`: the store read and the token-set decision alone (`adapters/benches/cookie.rs`
//!   `cold_request`), without the client's state machine.
//!
//! Timing (the same in the Python and JS programs): `--warmup W` calls, then `--iterations N`
//! calls in samples of `--sample-size K` calls (default 20), each sample timed as a whole;
//! prints one `RESULT <name> <median µs per call> <mean µs per call> <calls>` line per
//! workload. The median over short samples leaves out the samples in which a loaded machine
//! descheduled the process (as divan's median does); the mean keeps them.
//!
//! Run alone with `cargo bench -p auth0-server --bench side_by_side -- --iterations 20000`.

use auth0_server::blocking::ServerClient;
use auth0_server::clock::Clock;
use auth0_server::protocol::access_token::{is_expired, requested_scope, select_token_set};
use auth0_server::protocol::config::Config;
use auth0_server::protocol::session::StateData;
use auth0_server::protocol::time::UnixTime;
use auth0_server::store::cookie::{CookieStateStore, CookieTransactionStore};
use auth0_server::store::{CookieOptions, StateStore};
use http::HeaderMap;
use std::hint::black_box;
use std::time::Instant;

#[path = "support/bench_session.rs"]
mod bench_session;
use bench_session::config_session_clock;

struct Settings {
    iterations: usize,
    warmup: usize,
    sample_size: usize,
}

fn settings() -> Settings {
    let mut s = Settings {
        iterations: 20_000,
        warmup: 2_000,
        sample_size: 20,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1).and_then(|v| v.parse::<usize>().ok());
        match (args[i].as_str(), value) {
            ("--iterations", Some(v)) => s.iterations = v.max(1),
            ("--warmup", Some(v)) => s.warmup = v,
            ("--sample-size", Some(v)) => s.sample_size = v.max(1),
            // `cargo bench` passes `--bench`; anything else is ignored too.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    s.sample_size = s.sample_size.min(s.iterations);
    s
}

struct Fixture {
    config: Config,
    session: StateData,
    clock: Clock,
}

fn fixture() -> Fixture {
    let (config, session, clock) = config_session_clock();
    Fixture {
        config,
        session,
        clock,
    }
}

fn store(fx: &Fixture, cache: usize) -> CookieStateStore {
    CookieStateStore::builder(&fx.config)
        .cache_capacity(cache)
        .build()
        .expect("store")
}

/// The `Cookie` header a browser sends back after the session was written (a fresh IV, so
/// a new value each time).
fn cookie_header(fx: &Fixture) -> String {
    let mut response = CookieOptions::new();
    store(fx, 0)
        .set(&fx.session, &mut response, fx.clock.now())
        .expect("session fits");
    let pairs: Vec<&str> = response
        .set_cookie_headers()
        .iter()
        .map(|h| {
            h.to_str()
                .expect("ASCII")
                .split(';')
                .next()
                .expect("name=value")
        })
        .collect();
    assert_eq!(pairs.len(), 2, "the realistic session spans two cookies");
    pairs.join("; ")
}

fn headers(cookie: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::COOKIE, cookie.parse().expect("header value"));
    headers
}

type Client = ServerClient<CookieStateStore, CookieTransactionStore>;

fn client(fx: &Fixture, cache: usize) -> Client {
    let transactions = CookieTransactionStore::builder(&fx.config)
        .build()
        .expect("store");
    ServerClient::builder(fx.config.clone(), store(fx, cache), transactions)
        .clock(fx.clock.clone())
        .build()
}

/// One request through the public API: the cookies in, the access token out.
fn serve_client(client: &Client, headers: &HeaderMap) -> usize {
    let mut options = CookieOptions::from_request_headers(headers);
    let token = client.get_access_token(&mut options).expect("a cache hit");
    token.access_token.expose().len()
}

/// One request through the store alone, then the cache-hit decision of the core.
fn serve_store(fx: &Fixture, store: &CookieStateStore, headers: &HeaderMap) -> usize {
    let mut options = CookieOptions::from_request_headers(headers);
    let state = store
        .get(&mut options, fx.clock.now())
        .expect("no store error")
        .expect("a session");
    let audience = fx.config.audience_key(None);
    let scope = requested_scope(&fx.config, audience, None);
    let set = select_token_set(&state.token_sets, audience, scope.as_deref()).expect("a set");
    assert!(!is_expired(
        UnixTime::from_secs(set.expires_at),
        fx.clock.now(),
        fx.config.leeway()
    ));
    set.access_token.expose().len()
}

/// Runs `call(i)` as [`Settings`] say and prints its `RESULT` line.
fn measure(name: &str, s: &Settings, mut call: impl FnMut(usize) -> usize) {
    for i in 0..s.warmup {
        black_box(call(i));
    }
    let samples = (s.iterations / s.sample_size).max(1);
    let mut times = Vec::with_capacity(samples);
    let mut i = 0;
    for _ in 0..samples {
        let started = Instant::now();
        for _ in 0..s.sample_size {
            black_box(call(black_box(i)));
            i += 1;
        }
        times.push(started.elapsed().as_secs_f64() * 1e6 / s.sample_size as f64);
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    times.sort_by(f64::total_cmp);
    println!("RESULT {name} {:.2} {mean:.2} {i}", times[times.len() / 2]);
}

fn main() {
    let s = settings();
    let fx = fixture();
    let cookie = cookie_header(&fx);
    let same = headers(&cookie);
    println!(
        "INFO rust session_json_bytes={} cookie_header_bytes={}",
        fx.session.to_json().len(),
        cookie.len()
    );

    let cold = client(&fx, 0);
    measure("client_cold", &s, |_| serve_client(&cold, &same));

    // More distinct cookies than the cache holds, used round robin: every call misses.
    let fresh: Vec<HeaderMap> = (0..64).map(|_| headers(&cookie_header(&fx))).collect();
    let missing = client(&fx, 16);
    measure("client_new_cookie", &s, |i| {
        serve_client(&missing, &fresh[i % fresh.len()])
    });

    let warm = client(&fx, 1024);
    measure("client_warm", &s, |_| serve_client(&warm, &same));

    let store_cold = store(&fx, 0);
    measure("store_cold", &s, |_| serve_store(&fx, &store_cold, &same));
}
