//! End-to-end: the IPSIE session ceiling (`internal.session_expires_at`, from the login ID
//! token's `session_expiry`) ends a session in every store, 30 s early, whatever its other
//! limits say; through the client with the memory and cookie stores.

mod adapter_support;
mod integrity_support;

use adapter_support::{config, expired_session};
use auth0_emulator::{DEFAULT_AUDIENCE, Emulator};
use auth0_server::blocking::ServerClient;
use auth0_server::store::cookie::{CookieStateStore, CookieTransactionStore};
use auth0_server::store::memory::{MemoryStateStore, MemoryTransactionStore};
use auth0_server::store::{CookieOptions, StateStore, TransactionStore};
use std::sync::atomic::Ordering;

fn ceiling_ends_the_session<S, T>(
    client: &ServerClient<S, T>,
    time: &std::sync::atomic::AtomicU64,
    session: auth0_server::protocol::session::StateData,
) where
    S: StateStore<Options = CookieOptions>,
    T: TransactionStore<Options = CookieOptions>,
{
    let start = time.load(Ordering::SeqCst);
    let mut opts = CookieOptions::new();
    client
        .state_store()
        .set(
            &session,
            &mut opts,
            auth0_server::protocol::time::UnixTime::from_secs(start),
        )
        .unwrap();
    let request = |o: &CookieOptions| {
        // A browser sends back what the last response set.
        let pairs: Vec<String> = o
            .cookie_names()
            .into_iter()
            .filter_map(|n| o.cookie(n).map(|v| format!("{n}={v}")))
            .collect();
        let mut h = http::HeaderMap::new();
        h.insert(http::header::COOKIE, pairs.join("; ").parse().unwrap());
        CookieOptions::from_request_headers(&h)
    };
    time.store(start + 69, Ordering::SeqCst);
    let mut o = request(&opts);
    assert!(client.get_session(&mut o).unwrap().is_some(), "ended early");
    time.store(start + 70, Ordering::SeqCst);
    let mut o = request(&opts);
    assert!(
        client.get_session(&mut o).unwrap().is_none(),
        "a session past its IPSIE ceiling is still served"
    );
}

fn session(emu: &Emulator, start: u64) -> auth0_server::protocol::session::StateData {
    let mut s = expired_session(emu, DEFAULT_AUDIENCE);
    s.internal.created_at = start;
    s.internal.session_expires_at = Some(start + 100);
    s
}

#[test]
fn memory_a_session_past_its_session_expiry_is_gone() {
    let emu = Emulator::start(Default::default());
    let (clock, time) = integrity_support::movable_clock();
    let store = MemoryStateStore::new().secure(false);
    let client = ServerClient::builder(config(&emu), store, MemoryTransactionStore::new())
        .clock(clock)
        .build();
    let start = time.load(Ordering::SeqCst);
    ceiling_ends_the_session(&client, &time, session(&emu, start));
}

#[test]
fn cookie_a_session_past_its_session_expiry_is_gone() {
    let emu = Emulator::start(Default::default());
    let cfg = config(&emu);
    let (clock, time) = integrity_support::movable_clock();
    let store = CookieStateStore::builder(&cfg)
        .secure(false)
        .build()
        .unwrap();
    let client = ServerClient::builder(
        cfg.clone(),
        store,
        CookieTransactionStore::new(&cfg).unwrap(),
    )
    .clock(clock)
    .build();
    let start = time.load(Ordering::SeqCst);
    ceiling_ends_the_session(&client, &time, session(&emu, start));
}
