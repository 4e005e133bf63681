//! End-to-end: CIBA (Client-Initiated Backchannel Authentication, poll mode) through the
//! blocking and the async client against the emulator's `/bc-authorize` and its scripted
//! polls. The clients wait through a sleeper that records each wait and moves the test clock
//! on instead of sleeping, so the waits are asserted exactly and nothing really sleeps.

mod adapter_support;
mod emulator_support;

use adapter_support::{config, param};
use auth0_emulator::{CIBA_GRANT_TYPE, CibaStep, DEFAULT_AUDIENCE, Emulator};
use auth0_server::clock::Clock;
use auth0_server::protocol::login::{
    BackchannelHandle, BackchannelLoginRequest, BackchannelPoll, LoginResult,
};
use auth0_server::protocol::session::Session;
use auth0_server::sleep::Sleeper;
use auth0_server::store::CookieOptions;
use auth0_server::store::memory::{MemoryStateStore, MemoryTransactionStore};
use auth0_server::{Config, Error, nonblocking};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The operations under test, implemented by both clients so each scenario is written once.
trait Ciba {
    fn login(
        &self,
        request: BackchannelLoginRequest,
        o: &mut CookieOptions,
    ) -> Result<LoginResult, Error>;
    fn start(&self, request: BackchannelLoginRequest) -> Result<BackchannelHandle, Error>;
    fn poll(
        &self,
        handle: BackchannelHandle,
        o: &mut CookieOptions,
    ) -> Result<BackchannelPoll, Error>;
    fn session(&self, o: &mut CookieOptions) -> Result<Option<Session>, Error>;
    fn token(&self, o: &mut CookieOptions) -> Result<auth0_server::AccessToken, Error>;
}

type Blocking = auth0_server::blocking::ServerClient<MemoryStateStore, MemoryTransactionStore>;
type Async = nonblocking::ServerClient<
    MemoryStateStore,
    MemoryTransactionStore,
    auth0_server::http::ReqwestClient,
>;

impl Ciba for Blocking {
    fn login(
        &self,
        request: BackchannelLoginRequest,
        o: &mut CookieOptions,
    ) -> Result<LoginResult, Error> {
        self.login_backchannel(request, o)
    }
    fn start(&self, request: BackchannelLoginRequest) -> Result<BackchannelHandle, Error> {
        self.start_backchannel_login(request)
    }
    fn poll(
        &self,
        handle: BackchannelHandle,
        o: &mut CookieOptions,
    ) -> Result<BackchannelPoll, Error> {
        self.poll_backchannel_login(handle, o)
    }
    fn session(&self, o: &mut CookieOptions) -> Result<Option<Session>, Error> {
        self.get_session(o)
    }
    fn token(&self, o: &mut CookieOptions) -> Result<auth0_server::AccessToken, Error> {
        self.get_access_token(o)
    }
}

struct AsyncClient {
    client: Async,
    rt: tokio::runtime::Runtime,
}

impl Ciba for AsyncClient {
    fn login(
        &self,
        request: BackchannelLoginRequest,
        o: &mut CookieOptions,
    ) -> Result<LoginResult, Error> {
        self.rt.block_on(self.client.login_backchannel(request, o))
    }
    fn start(&self, request: BackchannelLoginRequest) -> Result<BackchannelHandle, Error> {
        self.rt
            .block_on(self.client.start_backchannel_login(request))
    }
    fn poll(
        &self,
        handle: BackchannelHandle,
        o: &mut CookieOptions,
    ) -> Result<BackchannelPoll, Error> {
        self.rt
            .block_on(self.client.poll_backchannel_login(handle, o))
    }
    fn session(&self, o: &mut CookieOptions) -> Result<Option<Session>, Error> {
        self.rt.block_on(self.client.get_session(o))
    }
    fn token(&self, o: &mut CookieOptions) -> Result<auth0_server::AccessToken, Error> {
        self.rt.block_on(self.client.get_access_token(o))
    }
}

/// The test's time: a clock the client reads, moved on by the sleeper instead of sleeping.
#[derive(Clone)]
struct TestTime {
    now: Arc<AtomicU64>,
    waits: Arc<Mutex<Vec<Duration>>>,
}

impl TestTime {
    fn new() -> Self {
        TestTime {
            now: Arc::new(AtomicU64::new(adapter_support::now())),
            waits: Arc::default(),
        }
    }
    fn clock(&self) -> Clock {
        let now = self.now.clone();
        Clock::from_fn(move || now.load(Ordering::SeqCst))
    }
    /// Records each wait and moves the clock on by it, at once.
    fn sleeper(&self) -> Sleeper {
        let (now, waits) = (self.now.clone(), self.waits.clone());
        Sleeper::blocking(move |d| {
            waits.lock().unwrap().push(d);
            now.fetch_add(d.as_secs(), Ordering::SeqCst);
        })
    }
    fn waits(&self) -> Vec<Duration> {
        self.waits.lock().unwrap().clone()
    }
}

fn blocking_client(config: Config, time: &TestTime) -> Box<dyn Ciba> {
    Box::new(
        auth0_server::blocking::ServerClient::builder(
            config,
            MemoryStateStore::new().secure(false),
            MemoryTransactionStore::new(),
        )
        .clock(time.clock())
        .sleeper(time.sleeper())
        .build(),
    )
}

fn async_client(config: Config, time: &TestTime) -> Box<dyn Ciba> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let http =
        rt.block_on(async { adapter_support::reqwest_client(std::time::Duration::from_secs(10)) });
    let client = nonblocking::ServerClient::builder(
        config,
        MemoryStateStore::new().secure(false),
        MemoryTransactionStore::new(),
        http,
    )
    .clock(time.clock())
    .sleeper(time.sleeper())
    .build();
    Box::new(AsyncClient { client, rt })
}

type MakeClient = fn(Config, &TestTime) -> Box<dyn Ciba>;

fn secs(s: &[u64]) -> Vec<Duration> {
    s.iter().map(|s| Duration::from_secs(*s)).collect()
}

/// A browser's next request: the cookies the last response set.
fn next_request(o: &CookieOptions) -> CookieOptions {
    let pairs: Vec<String> = o
        .cookie_names()
        .into_iter()
        .filter_map(|n| o.cookie(n).map(|v| format!("{n}={v}")))
        .collect();
    let mut h = http::HeaderMap::new();
    if !pairs.is_empty() {
        h.insert(http::header::COOKIE, pairs.join("; ").parse().unwrap());
    }
    CookieOptions::from_request_headers(&h)
}

fn user_id(emu: &Emulator) -> String {
    emu.user_claims()["sub"].as_str().unwrap().to_owned()
}

fn approved_after_pending_and_slow_down(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    emu.script_ciba(vec![
        CibaStep::Pending,
        CibaStep::SlowDown,
        CibaStep::Approve,
    ]);
    let time = TestTime::new();
    let client = make(config(&emu), &time);
    let details = serde_json::json!([{"type": "payment_initiation", "amount": "10.00"}]);
    let mut o = CookieOptions::new();
    let result = client
        .login(
            BackchannelLoginRequest::new(user_id(&emu), "Approve transfer #42")
                .authorization_details(details.clone()),
            &mut o,
        )
        .expect("approved");
    assert_eq!(result.authorization_details, Some(details));
    assert_eq!(
        time.waits(),
        secs(&[5, 5, 10]),
        "interval, interval, interval + 5"
    );
    // The start: the iss_sub login hint naming the discovered issuer, the binding message,
    // scope with openid, the configured audience.
    let start = emu.requests_to("/bc-authorize");
    assert_eq!(start.len(), 1);
    let hint: serde_json::Value =
        serde_json::from_str(&param(&start[0], "login_hint").unwrap()).unwrap();
    assert_eq!(
        hint,
        serde_json::json!({"format": "iss_sub", "iss": emu.issuer(), "sub": user_id(&emu)})
    );
    assert_eq!(
        param(&start[0], "binding_message").as_deref(),
        Some("Approve transfer #42")
    );
    assert_eq!(
        param(&start[0], "audience").as_deref(),
        Some(DEFAULT_AUDIENCE)
    );
    let polls = emu.requests_to("/oauth/token");
    assert_eq!(polls.len(), 3);
    assert!(
        polls
            .iter()
            .all(|p| param(p, "grant_type").as_deref() == Some(CIBA_GRANT_TYPE))
    );
    // The session: the verified user (never an empty one), for the next request.
    let mut o = next_request(&o);
    let session = client.session(&mut o).unwrap().expect("a session");
    let user = session.user.expect("the verified user");
    assert_eq!(user["sub"], emu.user_claims()["sub"]);
    assert_eq!(user["email"], emu.user_claims()["email"]);
}

fn denial_is_typed_and_saves_nothing(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    emu.script_ciba(vec![CibaStep::Pending, CibaStep::Deny]);
    let time = TestTime::new();
    let client = make(config(&emu), &time);
    let mut o = CookieOptions::new();
    let e = client
        .login(BackchannelLoginRequest::new(user_id(&emu), "Hi"), &mut o)
        .unwrap_err();
    assert_eq!(e.code(), "access_denied");
    assert_eq!(time.waits(), secs(&[5, 5]));
    let mut o = next_request(&o);
    assert!(client.session(&mut o).unwrap().is_none());
}

fn expiry_is_typed_and_saves_nothing(make: MakeClient) {
    // The server says so.
    let emu = Emulator::start(Default::default());
    emu.script_ciba(vec![CibaStep::Expire]);
    let time = TestTime::new();
    let client = make(config(&emu), &time);
    let mut o = CookieOptions::new();
    let e = client
        .login(BackchannelLoginRequest::new(user_id(&emu), "Hi"), &mut o)
        .unwrap_err();
    assert_eq!(e.code(), "backchannel_authentication_expired");
    assert!(client.session(&mut next_request(&o)).unwrap().is_none());

    // The deadline passes while the user does not answer: polls at +5 and +10 of 12 s, and
    // none after.
    emu.script_ciba(vec![]);
    emu.clear_requests();
    let time = TestTime::new();
    let client = make(config(&emu), &time);
    let mut o = CookieOptions::new();
    let e = client
        .login(
            BackchannelLoginRequest::new(user_id(&emu), "Hi")
                .requested_expiry(Duration::from_secs(12)),
            &mut o,
        )
        .unwrap_err();
    assert_eq!(e.code(), "backchannel_authentication_expired");
    assert_eq!(time.waits(), secs(&[5, 5]));
    assert_eq!(emu.requests_to("/oauth/token").len(), 2);
    assert!(client.session(&mut next_request(&o)).unwrap().is_none());
}

fn an_invalid_binding_message_is_refused_before_sending(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let time = TestTime::new();
    let client = make(config(&emu), &time);
    for message in ["", "two\nlines", "<b>bold</b>", &"x".repeat(65)] {
        let mut o = CookieOptions::new();
        let e = client
            .login(BackchannelLoginRequest::new(user_id(&emu), message), &mut o)
            .unwrap_err();
        assert_eq!(e.code(), "invalid_parameter", "{message:?}");
    }
    assert!(emu.requests_to("/bc-authorize").is_empty());
    assert!(time.waits().is_empty());
}

fn an_id_token_for_another_audience_is_refused(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    emu.script_ciba(vec![CibaStep::ApproveWithIdTokenAudience(
        "another-client".into(),
    )]);
    let time = TestTime::new();
    let client = make(config(&emu), &time);
    let mut o = CookieOptions::new();
    let e = client
        .login(BackchannelLoginRequest::new(user_id(&emu), "Hi"), &mut o)
        .unwrap_err();
    assert_eq!(e.code(), "invalid_id_token");
    assert!(client.session(&mut next_request(&o)).unwrap().is_none());
}

fn start_then_poll_on_the_apps_schedule(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    emu.script_ciba(vec![CibaStep::SlowDown, CibaStep::Approve]);
    let time = TestTime::new();
    let client = make(config(&emu), &time);
    let handle = client
        .start(BackchannelLoginRequest::new(user_id(&emu), "Hi"))
        .expect("started");
    assert_eq!(handle.interval, Duration::from_secs(5));
    let mut o = CookieOptions::new();
    let first = client.poll(handle.clone(), &mut o).expect("polled");
    assert_eq!(
        first,
        BackchannelPoll::Pending {
            retry_after: Duration::from_secs(10)
        }
    );
    let done = client.poll(handle, &mut o).expect("polled");
    assert!(matches!(done, BackchannelPoll::Done(_)), "{done:?}");
    assert!(time.waits().is_empty(), "the two-step API never waits");
    let session = client
        .session(&mut next_request(&o))
        .unwrap()
        .expect("a session");
    assert_eq!(session.user.unwrap()["sub"], emu.user_claims()["sub"]);
}

/// With DPoP configured, every poll carries a proof (the emulator's nonce challenge is
/// answered by the driver's one retry), the session's access token is bound to the key
/// (`token_type` DPoP, `cnf.jkt`), and a bearer answer to the DPoP client is refused.
fn with_dpop_the_tokens_are_bound(make: MakeClient) {
    const EC_PEM: &str = include_str!("../data/client_keys/ec.pem");
    let emu = Emulator::start(Default::default());
    emu.script_ciba(vec![CibaStep::Pending, CibaStep::Approve]);
    emu.require_dpop_nonce(true);
    let dpop_config = || {
        adapter_support::config_builder(&emu)
            .audience(DEFAULT_AUDIENCE)
            .dpop(EC_PEM)
            .build()
            .expect("valid config")
    };
    let time = TestTime::new();
    let client = make(dpop_config(), &time);
    let mut o = CookieOptions::new();
    client
        .login(BackchannelLoginRequest::new(user_id(&emu), "Hi"), &mut o)
        .expect("approved");
    assert_eq!(time.waits(), secs(&[5, 5]));
    let polls = emu.requests_to("/oauth/token");
    assert!(polls.iter().all(|p| p.header("dpop").is_some()));
    assert!(emu.dpop_nonce_challenges() >= 1);
    let token = client
        .token(&mut next_request(&o))
        .expect("from the session");
    assert_eq!(
        token.token_type,
        auth0_server::protocol::token_response::TokenType::Dpop
    );
    let claims = auth0_emulator::decode_payload(token.access_token.expose()).unwrap();
    assert!(claims["cnf"]["jkt"].is_string(), "{claims:?}");

    emu.answer_bearer_to_dpop(true);
    emu.script_ciba(vec![CibaStep::Approve]);
    let client = make(dpop_config(), &TestTime::new());
    let mut o = CookieOptions::new();
    let e = client
        .login(BackchannelLoginRequest::new(user_id(&emu), "Hi"), &mut o)
        .unwrap_err();
    assert_eq!(e.code(), "backchannel_authentication_failed", "{e}");
    assert!(client.session(&mut next_request(&o)).unwrap().is_none());
}

/// The emulator refuses what Auth0 refuses at `/bc-authorize` (so the clients' success above
/// means they sent what Auth0 accepts), and answers an unknown `auth_req_id` `invalid_grant`.
#[test]
fn the_emulator_checks_backchannel_requests_as_auth0_does() {
    use emulator_support::{agent, answer};
    let emu = Emulator::start(Default::default());
    let sub = user_id(&emu);
    let hint = |iss: &str, sub: &str| {
        serde_json::json!({"format": "iss_sub", "iss": iss, "sub": sub}).to_string()
    };
    let good = hint(&emu.issuer(), &sub);
    let post = |params: &[(&str, &str)], authenticated: bool| {
        let mut all: Vec<(&str, &str)> = params.to_vec();
        if authenticated {
            all.push(("client_id", emu.client_id()));
            all.push(("client_secret", emu.client_secret()));
        }
        answer(
            agent()
                .post(emu.url("/bc-authorize"))
                .send_form(all.iter().copied()),
        )
    };
    let ok = post(
        &[
            ("scope", "openid"),
            ("login_hint", &good),
            ("binding_message", "Hi 42"),
        ],
        true,
    );
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.json()["interval"], 5);
    let other_issuer = hint("https://evil.example/", &sub);
    let other_user = hint(&emu.issuer(), "auth0|someone-else");
    for (params, authenticated, error) in [
        (
            vec![
                ("scope", "openid"),
                ("login_hint", good.as_str()),
                ("binding_message", "Hi"),
            ],
            false,
            "invalid_client",
        ),
        (
            vec![
                ("scope", "profile"),
                ("login_hint", good.as_str()),
                ("binding_message", "Hi"),
            ],
            true,
            "invalid_request",
        ),
        (
            vec![
                ("scope", "openid"),
                ("login_hint", other_issuer.as_str()),
                ("binding_message", "Hi"),
            ],
            true,
            "invalid_request",
        ),
        (
            vec![
                ("scope", "openid"),
                ("login_hint", other_user.as_str()),
                ("binding_message", "Hi"),
            ],
            true,
            "unknown_user_id",
        ),
        (
            vec![
                ("scope", "openid"),
                ("login_hint", good.as_str()),
                ("binding_message", "a\nb"),
            ],
            true,
            "invalid_binding_message",
        ),
        (
            vec![("scope", "openid"), ("login_hint", good.as_str())],
            true,
            "invalid_request",
        ),
    ] {
        let refused = post(&params, authenticated);
        assert!(
            refused.status == 400 || refused.status == 401,
            "{params:?}: {}",
            refused.status
        );
        assert_eq!(refused.json()["error"], error, "{params:?}");
    }
    let unknown = answer(agent().post(emu.url("/oauth/token")).send_form([
        ("grant_type", CIBA_GRANT_TYPE),
        ("auth_req_id", "unknown"),
        ("client_id", emu.client_id()),
        ("client_secret", emu.client_secret()),
    ]));
    assert_eq!(
        (unknown.status, unknown.json()["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

macro_rules! both_clients {
    ($($scenario:ident),* $(,)?) => {
        mod blocking_client {
            $(#[test] fn $scenario() { super::$scenario(super::blocking_client) })*
        }
        mod async_client {
            $(#[test] fn $scenario() { super::$scenario(super::async_client) })*
        }
    };
}

both_clients!(
    approved_after_pending_and_slow_down,
    denial_is_typed_and_saves_nothing,
    expiry_is_typed_and_saves_nothing,
    an_invalid_binding_message_is_refused_before_sending,
    an_id_token_for_another_audience_is_refused,
    start_then_poll_on_the_apps_schedule,
    with_dpop_the_tokens_are_bound,
);
