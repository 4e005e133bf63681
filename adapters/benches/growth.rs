//! Cost of a cache hit against the size of the session: 1, 3, 10 and 30 token sets (one per
//! audience, as Multi-Resource Refresh Tokens leave them), through the public API
//! (`blocking::ServerClient::get_access_token` with the cookie stores), with the store's
//! decoded-session cache off (decrypt and parse every call) and on.
//!
//! The session is the realistic one of `tests/data/session.json` (user, ID token, refresh
//! token) with its token sets replaced by `n` sets whose access tokens have 800 characters
//! like the file's; the one asked for (the default audience) is last, so selecting it looks at
//! every set. Before the benchmarks run, each session's JSON and cookie size is printed
//! (`growth: …` lines on stderr), from which the cost per KB follows.
//!
//! Run with `cargo bench -p auth0-server --bench growth`.

use auth0_server::blocking::ServerClient;
use auth0_server::protocol::session::{StateData, TokenSet};
use auth0_server::store::cookie::{CookieStateStore, CookieTransactionStore};
use auth0_server::store::{CookieOptions, StateStore};
use divan::{Bencher, black_box};
use http::HeaderMap;

#[path = "support/browser.rs"]
mod browser;
use browser::cookies_sent_back;
#[path = "support/bench_session.rs"]
mod bench_session;
use bench_session::config_session_clock;

/// The session sizes measured.
const SIZES: [usize; 4] = [1, 3, 10, 30];

fn main() {
    // The sizes first, so the lines do not land inside divan's table.
    for n in SIZES {
        let Fixture { size, .. } = fixture(n, 0);
        eprintln!(
            "growth: {n} token sets: session JSON {} B, cookies {} B in {} chunks, {} sets kept",
            size.json_bytes, size.cookie_bytes, size.chunks, size.sets_kept
        );
    }
    divan::main();
}

/// What the browser holds for a session of `n` token sets.
struct Size {
    json_bytes: usize,
    cookie_bytes: usize,
    chunks: usize,
    sets_kept: usize,
}

/// A blocking client over the cookie stores, the `Cookie` header of a browser holding the
/// session, and its size.
struct Fixture {
    client: ServerClient<CookieStateStore, CookieTransactionStore>,
    headers: HeaderMap,
    size: Size,
}

/// The session with `n` token sets, the default audience's last.
fn session_with(base: &StateData, default_audience: &str, n: usize) -> StateData {
    let template = base
        .token_sets
        .iter()
        .find(|s| s.audience == default_audience)
        .expect("the default audience's set")
        .clone();
    let mut token_sets: Vec<TokenSet> = (1..n)
        .map(|i| TokenSet {
            audience: format!("https://api-{i:02}.example.com/"),
            access_token: format!("{i:02}{}", "x".repeat(798)).into(),
            scope: Some(format!(
                "openid profile email offline_access read:api-{i:02}"
            )),
            ..template.clone()
        })
        .collect();
    token_sets.push(template);
    StateData {
        token_sets,
        ..base.clone()
    }
}

/// The [`Fixture`] for a session with `n` token sets and a cache of `cache` sessions.
fn fixture(n: usize, cache: usize) -> Fixture {
    let (config, base, clock) = config_session_clock();
    let default_audience = config.audience_key(None).to_owned();
    let session = session_with(&base, &default_audience, n);
    let store = |cache| {
        CookieStateStore::builder(&config)
            .cache_capacity(cache)
            .build()
            .expect("store")
    };
    let mut written = CookieOptions::new();
    store(0)
        .set(&session, &mut written, clock.now())
        .expect("the session is saved");
    let (pairs, headers) = cookies_sent_back(&written);
    let cookie_bytes: usize = pairs.iter().map(String::len).sum();
    let kept = store(0)
        .get(
            &mut CookieOptions::from_request_headers(&headers),
            clock.now(),
        )
        .expect("no store error")
        .expect("a session");
    let size = Size {
        json_bytes: kept.to_json().len(),
        cookie_bytes,
        chunks: pairs.len(),
        sets_kept: kept.token_sets.len(),
    };
    let transactions = CookieTransactionStore::builder(&config)
        .build()
        .expect("store");
    let client = ServerClient::builder(config.clone(), store(cache), transactions)
        .clock(clock)
        .build();
    Fixture {
        client,
        headers,
        size,
    }
}

/// One request through the public API: a cache hit for the default audience.
fn serve(
    client: &ServerClient<CookieStateStore, CookieTransactionStore>,
    headers: &HeaderMap,
) -> usize {
    let mut options = CookieOptions::from_request_headers(headers);
    let token = client.get_access_token(&mut options).expect("a cache hit");
    token.access_token.expose().len()
}

/// Decoded-session cache off: every call decrypts and parses the whole session.
#[divan::bench(args = SIZES, sample_count = 300, sample_size = 10)]
fn cache_hit_cold(bencher: Bencher, n: usize) {
    let Fixture {
        client, headers, ..
    } = fixture(n, 0);
    bencher.bench_local(|| serve(&client, black_box(&headers)));
}

/// Decoded-session cache on: the same cookie again is not decrypted or parsed again.
#[divan::bench(args = SIZES, sample_count = 300, sample_size = 10)]
fn cache_hit_warm(bencher: Bencher, n: usize) {
    let Fixture {
        client, headers, ..
    } = fixture(n, 1024);
    serve(&client, &headers);
    bencher.bench_local(|| serve(&client, black_box(&headers)));
}
