//! No configuration value panics (invariant I9 of the session-integrity contract): every
//! `Duration` the builders take is set to `Duration::MAX` (and to zero where zero is allowed),
//! and a whole login → token → refresh → logout still runs, or the builder refuses the value
//! with a typed error.

mod adapter_support;
mod login_support;

use adapter_support::SECRET;
use auth0_emulator::Emulator;
use auth0_server::blocking::ServerClient;
use auth0_server::store::CookieOptions;
use auth0_server::store::cookie::{CookieStateStore, CookieTransactionStore};
use auth0_server::store::memory::{MemoryStateStore, MemoryTransactionStore};
use auth0_server::{Config, LogoutOptions, StartLoginOptions};
use login_support::{Browser, LoginApi};
use std::time::Duration;

fn config(emu: &Emulator, d: Duration) -> Config {
    adapter_support::config_builder(emu)
        .redirect_uri(login_support::CALLBACK)
        .audience(auth0_emulator::DEFAULT_AUDIENCE)
        .leeway(d)
        .discovery_ttl(d)
        .clock_tolerance(d)
        .build()
        .expect("any duration is a valid leeway, TTL and tolerance")
}

fn run(api: &dyn LoginApi) {
    let mut browser = Browser::new(api);
    browser.login(StartLoginOptions::default());
    // With a leeway of Duration::MAX every token counts as expired: each call refreshes.
    browser
        .request(|api, c| api.token(c))
        .expect("an access token");
    browser
        .request(|api, c| api.logout(LogoutOptions::default(), c))
        .expect("logout");
}

#[test]
fn durations_of_max_never_panic() {
    for d in [Duration::MAX, Duration::from_secs(u64::MAX), Duration::ZERO] {
        let emu = Emulator::start(Default::default());
        let config = config(&emu, d);
        // A zero session lifetime ends every session at once and a zero timeout fails every
        // request (both typed outcomes): lifetimes and timeouts take the extremes that work.
        let lifetime = if d.is_zero() {
            Duration::from_secs(3600)
        } else {
            d
        };
        let sessions = MemoryStateStore::new()
            .absolute_duration(lifetime)
            .inactivity_duration(lifetime);
        let client = ServerClient::builder(config.clone(), sessions, MemoryTransactionStore::new())
            .connect_timeout(lifetime)
            .read_timeout(lifetime)
            .rotation_grace(d)
            .build();
        run(&client);

        let cookies = CookieStateStore::builder(&config)
            .for_app_base_url(login_support::CALLBACK)
            .absolute_duration(lifetime)
            .inactivity_duration(lifetime)
            .build()
            .expect("cookie store");
        let logins = CookieTransactionStore::builder(&config)
            .for_app_base_url(login_support::CALLBACK)
            .max_age(lifetime)
            .build()
            .expect("cookie transaction store");
        let client = ServerClient::builder(config, cookies, logins)
            .rotation_grace(d)
            .build();
        run(&client);
    }
}

#[test]
fn a_cookie_store_with_max_lifetimes_writes_a_bounded_max_age() {
    let emu = Emulator::start(Default::default());
    let config = config(&emu, Duration::from_secs(30));
    let store = CookieStateStore::builder(&config)
        .absolute_duration(Duration::MAX)
        .inactivity_duration(Duration::MAX)
        .build()
        .expect("cookie store");
    let mut options = CookieOptions::new();
    let session = adapter_support::expired_session(&emu, auth0_emulator::DEFAULT_AUDIENCE);
    auth0_server::store::StateStore::set(
        &store,
        &session,
        &mut options,
        auth0_server::clock::Clock::system().now(),
    )
    .expect("set");
    for header in options.set_cookie_headers() {
        let header = header.to_str().unwrap();
        let max_age: u64 = header
            .split("Max-Age=")
            .nth(1)
            .and_then(|v| v.split(';').next())
            .and_then(|v| v.parse().ok())
            .expect("a Max-Age");
        // RFC 6265 §5.2.2: user agents cap Max-Age; the SDK writes a sane number.
        assert!(max_age <= 400 * 86_400, "{header}");
    }
    let _ = SECRET;
}
