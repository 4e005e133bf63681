//! The quickstart flow in an async app that writes no HTTP adapter code: the async client
//! with the shipped `ReqwestClient`, against the Auth0 emulator on loopback — log in,
//! complete the callback, get an access token, have it refreshed, log out.
//!
//! CI also runs it built as an async-only app would be:
//! `cargo test -p auth0-server --no-default-features --features reqwest --test async_quickstart`
//! (no `ureq` in that build).

use auth0_emulator::{DEFAULT_AUDIENCE, Emulator, EmulatorConfig};
use auth0_server::clock::Clock;
use auth0_server::http::ReqwestClient;
use auth0_server::nonblocking::ServerClient;
use auth0_server::store::CookieOptions;
use auth0_server::store::memory::{MemoryStateStore, MemoryTransactionStore};
use auth0_server::{Config, LogoutOptions, StartLoginOptions};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const APP: &str = "http://127.0.0.1:3000";

/// The browser's cookies: `Set-Cookie` in, `Cookie` out.
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn request(&self) -> CookieOptions {
        let mut headers = http::HeaderMap::new();
        let cookie = self
            .0
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        if !cookie.is_empty() {
            headers.insert(http::header::COOKIE, cookie.parse().expect("cookie header"));
        }
        CookieOptions::from_request_headers(&headers)
    }

    fn store(&mut self, options: &CookieOptions) {
        let mut headers = http::HeaderMap::new();
        options.apply_to(&mut headers);
        for value in headers.get_all(http::header::SET_COOKIE) {
            let value = value.to_str().expect("ASCII Set-Cookie");
            let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
            let (name, cookie) = pair.split_once('=').expect("name=value");
            if attributes.to_ascii_lowercase().contains("max-age=0") {
                self.0.remove(name.trim());
            } else {
                self.0.insert(name.trim().into(), cookie.trim().into());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_app_logs_in_gets_refreshes_and_logs_out_with_the_shipped_reqwest_client() {
    let emulator = Emulator::start(EmulatorConfig {
        access_token_lifetime: 60,
        ..EmulatorConfig::default()
    });
    let now = Arc::new(AtomicU64::new(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs(),
    ));
    let clock = {
        let now = now.clone();
        Clock::from_fn(move || now.load(Ordering::SeqCst))
    };
    let config = Config::builder(emulator.base_url(), emulator.client_id())
        .client_secret(emulator.client_secret())
        .secret("an-async-app-secret-of-32-bytes!!")
        .redirect_uri(format!("{APP}/auth/callback"))
        .audience(DEFAULT_AUDIENCE)
        .build()
        .expect("valid config");
    let http = ReqwestClient::new().expect("reqwest client");
    let browser = http.client().clone(); // follows no redirects either
    let client = ServerClient::builder(
        config,
        MemoryStateStore::new(),
        MemoryTransactionStore::new(),
        http,
    )
    .clock(clock)
    .build();
    let mut jar = Jar::default();

    // /auth/login: the transaction is saved, the browser goes to /authorize.
    let mut request = jar.request();
    let authorize = client
        .start_interactive_login(StartLoginOptions::new(), &mut request)
        .await
        .expect("login starts");
    jar.store(&request);
    assert!(authorize.as_str().starts_with(&emulator.base_url()));

    // The emulator logs the test user in and redirects back with a code.
    let answer = browser
        .get(authorize.as_str())
        .send()
        .await
        .expect("authorize answers");
    assert!(answer.status().is_redirection(), "{}", answer.status());
    let callback = answer.headers()[http::header::LOCATION]
        .to_str()
        .expect("ASCII location")
        .to_owned();
    assert!(
        callback.starts_with(&format!("{APP}/auth/callback?")),
        "{callback}"
    );

    // /auth/callback: the code is exchanged, the session is saved.
    let mut request = jar.request();
    client
        .complete_interactive_login(&callback, &mut request)
        .await
        .expect("login completes");
    jar.store(&request);
    let user = client
        .get_user(&mut jar.request())
        .await
        .expect("user")
        .expect("logged in");
    assert_eq!(user.get("sub"), emulator.user_claims().get("sub"));

    // The access token from the login is served without a request.
    let token_requests = emulator.token_requests().len();
    let first = client
        .get_access_token(&mut jar.request())
        .await
        .expect("token");
    assert_eq!(emulator.token_requests().len(), token_requests);

    // Once it expired, it is refreshed.
    now.fetch_add(120, Ordering::SeqCst);
    let mut request = jar.request();
    let second = client
        .get_access_token(&mut request)
        .await
        .expect("refreshed token");
    jar.store(&request);
    assert_eq!(emulator.token_requests().len(), token_requests + 1);
    assert_ne!(first.access_token.expose(), second.access_token.expose());

    // /auth/logout: the session is gone, the browser goes to Auth0's logout.
    let mut request = jar.request();
    let logout = client
        .logout(LogoutOptions::default(), &mut request)
        .await
        .expect("logout");
    jar.store(&request);
    assert!(logout.as_str().starts_with(&emulator.base_url()));
    assert!(
        client
            .get_user(&mut jar.request())
            .await
            .expect("no error")
            .is_none()
    );
}
