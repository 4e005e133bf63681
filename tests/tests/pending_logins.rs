//! End-to-end: pending logins are bounded (invariant I6 of the session-integrity contract).
//! Abandoned tabs, prefetches and bots start logins that never complete; with the encrypted
//! cookie transaction store each one is a cookie, and without a bound the browser's Cookie
//! header grows until servers answer 431. Thirty logins started in one browser leave at most
//! `MAX_PENDING_LOGINS` transaction cookies, the oldest dropped, and the newest login still
//! completes.

mod adapter_support;
mod login_support;

use auth0_emulator::Emulator;
use auth0_server::StartLoginOptions;
use auth0_server::blocking::ServerClient;
use auth0_server::clock::Clock;
use auth0_server::protocol::transaction::{MAX_PENDING_LOGINS, TRANSACTION_KEY_PREFIX};
use auth0_server::store::cookie::{CookieStateStore, CookieTransactionStore};
use login_support::{Browser, LoginApi, follow};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[test]
fn thirty_abandoned_logins_leave_a_bounded_cookie_header_and_the_newest_completes() {
    let emu = Emulator::start(Default::default());
    let config = login_support::config(&emu);
    // Each login starts a second after the previous one, so "oldest" is well defined.
    let tick = Arc::new(AtomicU64::new(0));
    let t = tick.clone();
    let clock = Clock::from_fn(move || adapter_support::now() + t.load(Ordering::SeqCst));
    let client = ServerClient::builder(
        config.clone(),
        CookieStateStore::builder(&config)
            .for_app_base_url(login_support::CALLBACK)
            .build()
            .unwrap(),
        CookieTransactionStore::builder(&config)
            .for_app_base_url(login_support::CALLBACK)
            .build()
            .unwrap(),
    )
    // The core stamps each transaction with the driver's time: the same ticking clock.
    .clock(clock)
    .build();
    let mut browser = Browser::new(&client as &dyn LoginApi);
    let mut urls = Vec::new();
    for _ in 0..30 {
        tick.fetch_add(1, Ordering::SeqCst);
        urls.push(browser.start(StartLoginOptions::default()));
        let pending = browser
            .jar
            .names()
            .into_iter()
            .filter(|n| n.starts_with(TRANSACTION_KEY_PREFIX))
            .count();
        assert!(
            pending <= MAX_PENDING_LOGINS,
            "{pending} transaction cookies"
        );
    }
    let header: usize = browser
        .jar
        .0
        .iter()
        .map(|(n, v)| n.len() + v.len() + 2)
        .sum();
    assert!(header < 8 * 1024, "Cookie header of {header} bytes");

    // The newest login completes; the oldest was dropped.
    let newest = follow(urls.last().unwrap());
    browser
        .complete(&newest)
        .expect("the newest login completes");
    let oldest = follow(&urls[0]);
    let err = browser.complete(&oldest).unwrap_err();
    assert_eq!(err.code(), "missing_transaction");
}
