//! Encrypted cookie session store benchmarks (a hot path of every request): the cost of serving an access
//! token from a session that arrives in cookies.
//!
//! The session is the realistic one in `tests/data/session.json` (about 4.4 KB of JSON, an
//! encrypted cookie of about 6 KB in two chunks), with the per-audience scope map it was made
//! with. Each measured request parses the `Cookie` header, reads the session through
//! [`CookieStateStore`] and makes the access-token cache-hit decision of the protocol core
//! (`select_token_set` + `is_expired`):
//!
//! * `cold_request`: a cookie value this store has not seen (cache disabled) — reassemble,
//!   decrypt (HMAC-SHA-512 + AES-256-CBC), parse the JSON, check expiry, decide;
//! * `warm_request`: the same cookie again, served by the store's cache;
//! * `encode`: writing the session (serialise, encrypt, chunk into `Set-Cookie` headers);
//! * `floor_decrypt` / `floor_encrypt`: the format's own work on the same bytes, nothing else —
//!   base64url, HMAC-SHA-512 and AES-256-CBC of the JWE (`CookieCodec::decrypt` of the
//!   reassembled value; `CookieCodec::encrypt` of the session's JSON). A request cannot cost
//!   less than this plus parsing (or writing) the JSON;
//! * `client_cold_request` / `client_warm_request`: the same request through the public API,
//!   `blocking::ServerClient::get_access_token` with the cookie stores — the store, the
//!   core's `GetAccessToken` state machine and the generic driver (no network: a cache hit).
//!
//! Run with `cargo bench -p auth0-server --bench cookie`.

use auth0_server::blocking::ServerClient;
use auth0_server::clock::Clock;
use auth0_server::protocol::access_token::{is_expired, requested_scope, select_token_set};
use auth0_server::protocol::config::Config;
use auth0_server::protocol::session::StateData;
use auth0_server::protocol::time::UnixTime;
use auth0_server::store::cookie::codec::CookieCodec;
use auth0_server::store::cookie::{CookieStateStore, CookieTransactionStore};
use auth0_server::store::{CookieOptions, StateStore};
use divan::{Bencher, black_box};
use http::HeaderMap;

#[path = "support/browser.rs"]
mod browser;
use browser::cookies_sent_back;
#[path = "support/bench_session.rs"]
mod bench_session;
use bench_session::{SECRET, config_session_clock};

fn main() {
    divan::main();
}

struct Fixture {
    config: Config,
    session: StateData,
    clock: Clock,
    /// The request headers a browser sends back after the session was written.
    headers: HeaderMap,
    /// The session cookie's value, its chunks joined.
    token: String,
}

fn fixture() -> Fixture {
    let (config, session, clock) = config_session_clock();
    let writer = store(&config, 1);
    let mut response = CookieOptions::new();
    writer
        .set(&session, &mut response, clock.now())
        .expect("session fits");
    let (pairs, headers) = cookies_sent_back(&response);
    assert_eq!(pairs.len(), 2, "the realistic session spans two cookies");
    let token: String = pairs
        .iter()
        .map(|p| p.split_once('=').expect("name=value").1)
        .collect();
    Fixture {
        config,
        session,
        clock,
        headers,
        token,
    }
}

fn store(config: &Config, cache: usize) -> CookieStateStore {
    CookieStateStore::builder(config)
        .cache_capacity(cache)
        .build()
        .expect("store")
}

/// One request: read the session from the cookies, then the cache-hit decision.
fn serve(fx: &Fixture, store: &CookieStateStore) -> usize {
    let mut options = CookieOptions::from_request_headers(&fx.headers);
    let now = fx.clock.now();
    let state = store
        .get(&mut options, now)
        .expect("no store error")
        .expect("a session");
    let audience = fx.config.audience_key(None);
    let scope = requested_scope(&fx.config, audience, None);
    let set = select_token_set(&state.token_sets, audience, scope.as_deref()).expect("a set");
    assert!(!is_expired(
        UnixTime::from_secs(set.expires_at),
        now,
        fx.config.leeway()
    ));
    set.access_token.expose().len()
}

#[divan::bench(sample_count = 500, sample_size = 20)]
fn cold_request(bencher: Bencher) {
    let fx = fixture();
    let cold = store(&fx.config, 0);
    bencher.bench_local(|| serve(black_box(&fx), &cold));
}

#[divan::bench(sample_count = 500, sample_size = 20)]
fn warm_request(bencher: Bencher) {
    let fx = fixture();
    let warm = store(&fx.config, 1024);
    serve(&fx, &warm);
    bencher.bench_local(|| serve(black_box(&fx), &warm));
}

#[divan::bench(sample_count = 500, sample_size = 20)]
fn encode(bencher: Bencher) {
    let fx = fixture();
    let writer = store(&fx.config, 0);
    bencher.bench_local(|| {
        let mut response = CookieOptions::new();
        writer
            .set(black_box(&fx.session), &mut response, fx.clock.now())
            .expect("session fits");
        response.set_cookie_headers().len()
    });
}

fn client(fx: &Fixture, cache: usize) -> ServerClient<CookieStateStore, CookieTransactionStore> {
    let transactions = CookieTransactionStore::builder(&fx.config)
        .build()
        .expect("store");
    ServerClient::builder(fx.config.clone(), store(&fx.config, cache), transactions)
        .clock(fx.clock.clone())
        .build()
}

/// One request through the public API.
fn serve_client(
    fx: &Fixture,
    client: &ServerClient<CookieStateStore, CookieTransactionStore>,
) -> usize {
    let mut options = CookieOptions::from_request_headers(&fx.headers);
    let token = client.get_access_token(&mut options).expect("a cache hit");
    token.access_token.expose().len()
}

#[divan::bench(sample_count = 500, sample_size = 20)]
fn client_cold_request(bencher: Bencher) {
    let fx = fixture();
    let client = client(&fx, 0);
    bencher.bench_local(|| serve_client(black_box(&fx), &client));
}

#[divan::bench(sample_count = 500, sample_size = 20)]
fn client_warm_request(bencher: Bencher) {
    let fx = fixture();
    let client = client(&fx, 1024);
    serve_client(&fx, &client);
    bencher.bench_local(|| serve_client(black_box(&fx), &client));
}

#[divan::bench(sample_count = 500, sample_size = 20)]
fn floor_decrypt(bencher: Bencher) {
    let fx = fixture();
    let codec = CookieCodec::new([SECRET], "_a0_session");
    assert!(codec.decrypt(&fx.token).is_some(), "the store's own format");
    bencher.bench_local(|| codec.decrypt(black_box(&fx.token)).map(|p| p.len()));
}

#[divan::bench(sample_count = 500, sample_size = 20)]
fn floor_encrypt(bencher: Bencher) {
    let fx = fixture();
    let codec = CookieCodec::new([SECRET], "_a0_session");
    let json = fx.session.to_json();
    bencher.bench_local(|| codec.encrypt(black_box(&json)).map(|t| t.len()));
}
