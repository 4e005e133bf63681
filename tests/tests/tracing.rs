//! End-to-end: what the SDK logs through `tracing` (feature `tracing`, on by default).
//!
//! A capturing subscriber records every span, field and event of a whole run — login through
//! the emulator, a cache hit, a refresh after the access token expired, logout — and the test
//! asserts both what an operator sees (operation spans with their outcome, HTTP spans with
//! endpoint and status, store spans) and that no secret of the run appears anywhere: the
//! client secret, the session secret, the authorization code, `state`, the tokens, the session
//! cookie's value; with `private_key_jwt`, the private key and every client assertion; with
//! DPoP, the DPoP key and every proof.

mod adapter_support;
mod login_support;

use adapter_support::SECRET;
use auth0_emulator::Emulator;
use auth0_server::clock::Clock;
use auth0_server::store::memory::{MemoryStateStore, MemoryTransactionStore};
use auth0_server::{LogoutOptions, StartLoginOptions, blocking};
use login_support::{Browser, LoginApi, query};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use tracing_core::span::Current;

/// Records every span (name and fields), field update and event as a line of text.
#[derive(Default)]
struct Capture {
    lines: Mutex<Vec<String>>,
    spans: Mutex<HashMap<u64, &'static Metadata<'static>>>,
    next: AtomicU64,
}

thread_local! {
    static STACK: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!(" {}={}", field.name(), value));
    }
}

/// The subscriber: a handle to the capture the test reads afterwards.
struct Capturing(Arc<Capture>);

impl Subscriber for Capturing {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.0.next.fetch_add(1, Ordering::SeqCst) + 1;
        let mut line = Line(format!("span {} #{id}", attrs.metadata().name()));
        attrs.record(&mut line);
        self.0.lines.lock().unwrap().push(line.0);
        self.0.spans.lock().unwrap().insert(id, attrs.metadata());
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut line = Line(format!("record #{}", span.into_u64()));
        values.record(&mut line);
        self.0.lines.lock().unwrap().push(line.0);
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line(format!("event {}", event.metadata().level()));
        event.record(&mut line);
        self.0.lines.lock().unwrap().push(line.0);
    }
    fn enter(&self, span: &Id) {
        STACK.with(|s| s.borrow_mut().push(span.into_u64()));
    }
    fn exit(&self, _: &Id) {
        STACK.with(|s| s.borrow_mut().pop());
    }
    fn current_span(&self) -> Current {
        match STACK.with(|s| s.borrow().last().copied()) {
            Some(id) => match self.0.spans.lock().unwrap().get(&id) {
                Some(meta) => Current::new(Id::from_u64(id), meta),
                None => Current::none(),
            },
            None => Current::none(),
        }
    }
}

#[test]
fn a_whole_run_is_traced_and_no_secret_is_logged() {
    let emu = Emulator::start(Default::default());
    // Past the access token's hour, within the refreshed ID token's lifetime (a token whose
    // `exp` is behind the application's clock is refused).
    traced_run(&emu, login_support::config(&emu), Vec::new(), 2 * 3_600);
}

/// With `private_key_jwt`, neither the private key nor any client assertion sent appears in
/// the trace.
#[test]
fn no_private_key_or_client_assertion_is_logged() {
    use auth0_server::protocol::client_assertion::{AssertionAlg, AssertionKey};
    const PEM: &str = include_str!("../data/client_keys/rsa.pem");
    let public = AssertionKey::parse(PEM, AssertionAlg::Rs256, None)
        .unwrap()
        .public_jwk();
    // Access tokens of 34 s: within the 30 s leeway 5 s later. The application's clock is
    // moved only that far: like Auth0, the emulator refuses an assertion more than 10 s
    // ahead of its own clock.
    let emu = Emulator::start(auth0_emulator::EmulatorConfig {
        client_public_key: Some(public),
        access_token_lifetime: 34,
        ..Default::default()
    });
    let config = auth0_server::Config::builder(emu.issuer_url(), emu.client_id())
        .private_key_jwt(PEM, AssertionAlg::Rs256)
        .secret(SECRET)
        .redirect_uri(login_support::CALLBACK)
        .audience(auth0_emulator::DEFAULT_AUDIENCE)
        .build()
        .unwrap();
    // Every line of the PEM's base64 body.
    let key_lines = PEM
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::to_owned)
        .collect();
    let text = traced_run(&emu, config, key_lines, 5);
    let assertions: Vec<String> = emu
        .requests()
        .iter()
        .filter_map(|r| r.param("client_assertion").map(str::to_owned))
        .collect();
    assert!(assertions.len() >= 2, "a code exchange and a refresh");
    for assertion in &assertions {
        for part in assertion.split('.') {
            assert!(
                !text.contains(part),
                "a client assertion appeared in the trace:\n{text}"
            );
        }
    }
}

/// With DPoP, neither the DPoP private key nor any proof sent appears in the trace.
#[test]
fn no_dpop_key_or_proof_is_logged() {
    const PEM: &str = include_str!("../data/client_keys/ec.pem");
    // As above: the clock moves 5 s, within the emulator's 60 s window on a proof's `iat`.
    let emu = Emulator::start(auth0_emulator::EmulatorConfig {
        access_token_lifetime: 34,
        ..Default::default()
    });
    let config = auth0_server::Config::builder(emu.issuer_url(), emu.client_id())
        .client_secret(emu.client_secret())
        .dpop(PEM)
        .secret(SECRET)
        .redirect_uri(login_support::CALLBACK)
        .audience(auth0_emulator::DEFAULT_AUDIENCE)
        .build()
        .unwrap();
    let key_lines = PEM
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::to_owned)
        .collect();
    let text = traced_run(&emu, config, key_lines, 5);
    let proofs: Vec<String> = emu
        .requests()
        .iter()
        .filter_map(|r| r.header("dpop").map(str::to_owned))
        .collect();
    assert!(proofs.len() >= 2, "a code exchange and a refresh");
    for proof in &proofs {
        // The claims and the signature (the header is the public key).
        for part in proof.split('.').skip(1) {
            assert!(
                !text.contains(part),
                "a DPoP proof appeared in the trace:\n{text}"
            );
        }
    }
}

/// Logs in, reads a cached token, moves the application's clock `advance` seconds and
/// refreshes, logs out, capturing the trace; checks what an operator sees and that none of
/// `secrets` (plus the run's own) appears. Returns the trace.
fn traced_run(
    emu: &Emulator,
    config: auth0_server::Config,
    mut secrets: Vec<String>,
    advance: u64,
) -> String {
    let offset = Arc::new(AtomicU64::new(0));
    let o = offset.clone();
    let client = blocking::ServerClient::builder(
        config,
        MemoryStateStore::new(),
        MemoryTransactionStore::new(),
    )
    .clock(Clock::from_fn(move || {
        adapter_support::now() + o.load(Ordering::SeqCst)
    }))
    .build();
    let capture = Arc::new(Capture::default());
    secrets.extend([emu.client_secret().to_owned(), SECRET.to_owned()]);
    tracing::subscriber::with_default(Capturing(capture.clone()), || {
        let mut browser = Browser::new(&client as &dyn LoginApi);
        let (url, callback, _) = browser.login(StartLoginOptions::default());
        secrets.extend(query(&callback, "code"));
        secrets.extend(query(url.as_str(), "state"));
        secrets.extend(query(url.as_str(), "nonce"));
        secrets.extend(query(url.as_str(), "code_challenge"));
        let first = browser.session().expect("a session after login");
        secrets.extend(first.refresh_token.as_ref().map(|t| t.expose().to_owned()));
        secrets.extend(first.id_token.as_ref().map(|t| t.expose().to_owned()));
        secrets.extend(
            first
                .token_sets
                .iter()
                .map(|t| t.access_token.expose().to_owned()),
        );
        secrets.extend(browser.jar.0.values().cloned());
        // A cache hit, then a refresh once the access token has expired.
        browser.request(|api, c| api.token(c)).expect("cache hit");
        offset.store(advance, Ordering::SeqCst);
        let refreshed = browser.request(|api, c| api.token(c)).expect("refresh");
        secrets.push(refreshed.access_token.expose().to_owned());
        let second = browser.session().expect("the session after the refresh");
        secrets.extend(second.refresh_token.as_ref().map(|t| t.expose().to_owned()));
        browser
            .request(|api, c| api.logout(LogoutOptions::default(), c))
            .expect("logout");
    });
    let lines = capture.lines.lock().unwrap().clone();
    let text = lines.join("\n");

    // What an operator sees.
    let operations: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("span auth0.operation"))
        .collect();
    for op in [
        "start_interactive_login",
        "complete_interactive_login",
        "get_access_token",
        "logout",
    ] {
        assert!(
            operations
                .iter()
                .any(|l| l.contains(&format!("operation={op}"))),
            "an operation span for {op}:\n{text}"
        );
    }
    for outcome in ["outcome=cache_hit", "outcome=refreshed", "outcome=ok"] {
        assert!(text.contains(outcome), "{outcome}:\n{text}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("span auth0.http") && l.contains("endpoint=/oauth/token")),
        "an HTTP span for the token endpoint:\n{text}"
    );
    assert!(
        text.contains("status=200"),
        "HTTP statuses are recorded:\n{text}"
    );
    for store in [
        "operation=load_session",
        "operation=save_session",
        "operation=save_transaction",
    ] {
        assert!(text.contains(store), "a store span {store}:\n{text}");
    }

    // What nobody sees.
    secrets.retain(|s| s.len() >= 8);
    assert!(
        secrets.len() >= 10,
        "the run produced the secrets to look for"
    );
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret appeared in the trace:\n{text}"
        );
    }
    assert!(!text.contains('?'), "no URL with a query string:\n{text}");
    text
}
