//! End-to-end: interactive login, logout and back-channel logout through both clients
//! (blocking and async) against the Auth0 emulator, the test acting as the browser: it calls
//! `start_interactive_login`, follows the authorization URL to the emulator with redirects
//! disabled, and hands the `Location` (the callback) to `complete_interactive_login`.
//!
//! The negative cases follow the OpenID RP certification tests: each ends in a typed error,
//! writes no session, and forgets the transaction. A crafted ID token is injected by making
//! the emulator answer the code exchange with a chosen body.

mod adapter_support;
mod login_support;

use auth0_emulator::{
    DEFAULT_AUDIENCE, Emulator, EmulatorConfig, Failure, KeyChoice, SignAlg, SignOptions,
};
use auth0_server::protocol::login::LoginError;
use auth0_server::protocol::session::StateData;
use auth0_server::store::cookie::{CookieStateStore, CookieTransactionStore};
use auth0_server::{Error, LogoutEndpoint, LogoutOptions, StartLoginOptions};
use login_support::{Browser, CALLBACK, Clients, Fixture, Jar, follow, query, query_names};
use serde_json::{Map, Value, json};
use sha2::Digest;

const SESSION_COOKIE: &str = auth0_server::store::memory::DEFAULT_SESSION_ID_COOKIE;

fn now() -> u64 {
    adapter_support::now()
}

fn claims(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("claims must be an object"),
    }
}

fn login_error(e: &Error) -> &LoginError {
    match e {
        Error::Login(l) => l,
        other => panic!("expected a login error, got {other:?}"),
    }
}

/// Makes the emulator answer the next code exchange with this ID token.
fn inject_id_token(emu: &Emulator, id_token: &str) {
    emu.fail_next(
        "/oauth/token",
        Failure::OAuth {
            status: 200,
            body: json!({
                "access_token": "injected-access-token",
                "id_token": id_token,
                "token_type": "Bearer",
                "expires_in": 3600,
            }),
        },
        1,
    );
}

fn session_user<'a>(s: &'a StateData, claim: &str) -> Option<&'a str> {
    s.user.as_ref()?.get(claim)?.as_str()
}

// ---------------------------------------------------------------------------------------------
// Successful logins
// ---------------------------------------------------------------------------------------------

fn full_login_saves_the_session_and_forgets_the_transaction<C: Clients>() {
    let fx = Fixture::new::<C>();
    let mut b = fx.browser();
    let (url, callback) = b.authorize(StartLoginOptions::new());
    // The authorization URL.
    assert_eq!(url.path(), "/authorize");
    assert_eq!(
        url.origin().ascii_serialization(),
        fx.emu.base_url(),
        "{url}"
    );
    let q = |n: &str| query(url.as_str(), n);
    assert_eq!(q("response_type").as_deref(), Some("code"));
    assert_eq!(q("client_id").as_deref(), Some(fx.emu.client_id()));
    assert_eq!(q("redirect_uri").as_deref(), Some(CALLBACK));
    assert_eq!(q("audience").as_deref(), Some(DEFAULT_AUDIENCE));
    assert_eq!(q("code_challenge_method").as_deref(), Some("S256"));
    let scope = q("scope").unwrap();
    assert!(scope.split(' ').any(|s| s == "openid"), "{scope}");
    let (state, nonce) = (q("state").unwrap(), q("nonce").unwrap());
    // 128 random bits each (22 base64url characters).
    assert!(state.len() >= 22 && nonce.len() >= 22 && state != nonce);
    assert!(callback.starts_with(CALLBACK), "{callback}");
    assert_eq!(query(&callback, "state").as_deref(), Some(state.as_str()));
    assert!(fx.sessions.is_empty(), "no session before the callback");

    let result = b.complete(&callback).expect("login");
    assert_eq!(result.app_state, None);
    assert_eq!(result.authorization_details, None);

    // The code exchange: PKCE verifier matching the challenge, the callback's code.
    let exchanges = fx.emu.token_requests();
    assert_eq!(exchanges.len(), 1);
    let ex = &exchanges[0];
    assert_eq!(ex.param("grant_type"), Some("authorization_code"));
    assert_eq!(ex.param("code"), query(&callback, "code").as_deref());
    assert_eq!(ex.param("redirect_uri"), Some(CALLBACK));
    let verifier = ex.param("code_verifier").unwrap();
    assert_eq!(verifier.len(), 43, "32 random bytes");
    let challenge = base64_url(&sha2::Sha256::digest(verifier.as_bytes()));
    assert_eq!(q("code_challenge").as_deref(), Some(challenge.as_str()));

    // The session.
    assert_eq!(fx.sessions.len(), 1);
    assert!(b.jar.names().contains(&SESSION_COOKIE.to_owned()));
    let s = b.session().expect("session saved");
    assert_eq!(session_user(&s, "sub"), Some("auth0|emulator-user"));
    assert_eq!(session_user(&s, "email"), Some("emulator-user@example.com"));
    assert_eq!(session_user(&s, "iss"), Some(fx.emu.issuer().as_str()));
    assert_eq!(session_user(&s, "nonce"), Some(nonce.as_str()));
    assert!(s.id_token.is_some(), "id_token kept");
    assert!(
        s.refresh_token.is_some(),
        "offline_access gives a refresh token"
    );
    assert_eq!(s.token_sets.len(), 1);
    assert_eq!(s.token_sets[0].audience, DEFAULT_AUDIENCE);
    assert!(s.token_sets[0].expires_at > now() + 3000);
    let sid = session_user(&s, "sid").expect("sid claim");
    assert_eq!(s.internal.sid, sid);
    assert!(s.internal.created_at.abs_diff(now()) <= 5);

    // The access token is served from the session.
    let token = b.request(|api, c| api.token(c)).expect("token");
    assert_eq!(
        token.access_token.expose(),
        s.token_sets[0].access_token.expose()
    );
    assert_eq!(fx.emu.token_requests().len(), 1, "no refresh needed");

    // Replaying the callback: the transaction is gone.
    let err = b.complete(&callback).unwrap_err();
    assert_eq!(err.code(), "missing_transaction", "{err}");
    assert_eq!(
        fx.emu.token_requests().len(),
        1,
        "the code is not sent again"
    );
    assert_eq!(fx.sessions.len(), 1);
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn app_state_round_trips_per_tab<C: Clients>() {
    let fx = Fixture::new::<C>();
    let mut b = fx.browser();
    // Two tabs start logins before either completes.
    let (_, first) = b.authorize(StartLoginOptions::new().app_state(json!({"returnTo": "/a"})));
    let (_, second) =
        b.authorize(StartLoginOptions::new().app_state(json!({"returnTo": "/b", "n": [1, 2]})));
    let r2 = b.complete(&second).expect("second tab");
    assert_eq!(r2.app_state, Some(json!({"returnTo": "/b", "n": [1, 2]})));
    let r1 = b.complete(&first).expect("first tab");
    assert_eq!(r1.app_state, Some(json!({"returnTo": "/a"})));
}

fn pushed_authorization_request<C: Clients>() {
    let fx = Fixture::new::<C>();
    let mut b = fx.browser();
    let options = StartLoginOptions::new()
        .pushed(true)
        .param("ui_locales", "fr")
        .app_state(json!("par"));
    let (url, callback) = b.authorize(options);
    assert_eq!(url.path(), "/authorize");
    assert_eq!(query_names(&url), ["client_id", "request_uri"], "{url}");
    assert_eq!(
        query(url.as_str(), "client_id").as_deref(),
        Some(fx.emu.client_id())
    );
    let pushed = fx.emu.requests_to("/oauth/par");
    assert_eq!(pushed.len(), 1);
    let p = &pushed[0];
    assert_eq!(p.method, "POST");
    assert_eq!(p.param("response_type"), Some("code"));
    assert_eq!(p.param("redirect_uri"), Some(CALLBACK));
    assert_eq!(p.param("ui_locales"), Some("fr"));
    assert_eq!(p.param("code_challenge_method"), Some("S256"));
    assert_eq!(p.param("audience"), Some(DEFAULT_AUDIENCE));
    let state = p.param("state").expect("state pushed");
    assert!(p.param("nonce").is_some() && p.param("code_challenge").is_some());
    assert_eq!(query(&callback, "state").as_deref(), Some(state));

    let result = b.complete(&callback).expect("login");
    assert_eq!(result.app_state, Some(json!("par")));
    let s = b.session().expect("session");
    assert_eq!(session_user(&s, "nonce"), p.param("nonce"));
}

fn rich_authorization_request<C: Clients>() {
    let fx = Fixture::new::<C>();
    let mut b = fx.browser();
    let details = json!([{"type": "payment_initiation", "amount": "10.00", "currency": "EUR"}]);
    let (url, _, result) = b.login(StartLoginOptions::new().authorization_details(details.clone()));
    let sent: Value =
        serde_json::from_str(&query(url.as_str(), "authorization_details").unwrap()).unwrap();
    assert_eq!(sent, details);
    assert_eq!(result.authorization_details, Some(details));
}

fn organization_login<C: Clients>() {
    let fx = Fixture::new::<C>();
    let mut b = fx.browser();
    let (url, _, _) = b.login(StartLoginOptions::new().organization("org_abc123"));
    assert_eq!(
        query(url.as_str(), "organization").as_deref(),
        Some("org_abc123")
    );
    let s = b.session().expect("session");
    assert_eq!(session_user(&s, "org_id"), Some("org_abc123"));
}

fn key_rotation_refetches_the_jwks_once<C: Clients>() {
    let fx = Fixture::new::<C>();
    let mut b = fx.browser();
    b.login(StartLoginOptions::new());
    assert_eq!(fx.emu.requests_to("/.well-known/jwks.json").len(), 1);
    fx.emu.rotate_signing_key();
    fx.emu.clear_requests();
    let mut other = fx.browser();
    other.login(StartLoginOptions::new());
    assert_eq!(
        fx.emu.requests_to("/.well-known/jwks.json").len(),
        1,
        "one refetch for the new kid"
    );
    // The refetched set is cached.
    fx.browser().login(StartLoginOptions::new());
    assert_eq!(fx.emu.requests_to("/.well-known/jwks.json").len(), 1);
    assert_eq!(fx.sessions.len(), 3);
}

/// Login through the encrypted cookie stores: the transaction and the session travel as
/// cookies; a refresh writes the new tokens back as cookies.
fn cookie_stores_round_trip<C: Clients>() {
    // Access tokens shorter than the SDK's leeway (30 s) are due for refresh at once.
    let emu = Emulator::start(EmulatorConfig {
        access_token_lifetime: 20,
        ..Default::default()
    });
    let config = login_support::config(&emu);
    let state = CookieStateStore::builder(&config)
        .for_app_base_url("http://127.0.0.1:3000")
        .build()
        .unwrap();
    let tx = CookieTransactionStore::builder(&config)
        .for_app_base_url("http://127.0.0.1:3000")
        .build()
        .unwrap();
    let api = C::build(config.clone(), state, tx);
    let mut b = Browser::new(&*api);

    let url = b.start(StartLoginOptions::new().app_state(json!({"to": "/cart"})));
    let tx_cookies = b.jar.names();
    assert!(!tx_cookies.is_empty(), "the transaction is a cookie");
    let callback = follow(&url);
    let result = b.complete(&callback).expect("login");
    assert_eq!(result.app_state, Some(json!({"to": "/cart"})));
    for name in &tx_cookies {
        assert!(
            !b.jar.names().contains(name),
            "transaction cookie {name} cleared"
        );
    }
    assert!(!b.jar.names().is_empty(), "session cookies set");

    // A fresh store (same secret, cold cache) reads the session from the cookies alone.
    let reader = CookieStateStore::builder(&config)
        .for_app_base_url("http://127.0.0.1:3000")
        .build()
        .unwrap();
    use auth0_server::store::StateStore;
    let saved = reader
        .get(
            &mut b.jar.request(),
            auth0_server::clock::Clock::system().now(),
        )
        .unwrap()
        .expect("session");
    assert_eq!(session_user(&saved, "sub"), Some("auth0|emulator-user"));
    let first_rt = saved.refresh_token.as_ref().unwrap().expose().to_owned();
    let first_at = saved.token_sets[0].access_token.expose().to_owned();
    assert_eq!(emu.token_requests().len(), 1);

    let before: Jar = b.jar.clone();
    let token = b.request(|api, c| api.token(c)).expect("refreshed");
    assert_eq!(emu.token_requests().len(), 2, "one refresh");
    assert_eq!(
        emu.token_requests()[1].param("grant_type"),
        Some("refresh_token")
    );
    assert_ne!(token.access_token.expose(), first_at);
    assert_ne!(b.jar.0, before.0, "the refresh rewrote the cookies");
    let after = reader
        .get(
            &mut b.jar.request(),
            auth0_server::clock::Clock::system().now(),
        )
        .unwrap()
        .expect("session");
    assert_eq!(
        after.token_sets[0].access_token.expose(),
        token.access_token.expose()
    );
    let rotated = after.refresh_token.as_ref().unwrap().expose();
    assert_ne!(rotated, first_rt, "rotated refresh token written back");
    assert!(emu.refresh_token_is_live(rotated));
    assert_eq!(after.internal.sid, saved.internal.sid);
}

// ---------------------------------------------------------------------------------------------
// Logout
// ---------------------------------------------------------------------------------------------

fn logout_returns_the_v2_url_and_deletes_the_session<C: Clients>() {
    let fx = Fixture::new::<C>();
    let mut b = fx.browser();
    b.login(StartLoginOptions::new());
    assert_eq!(fx.sessions.len(), 1);
    let url = b
        .request(|api, c| {
            api.logout(
                LogoutOptions::return_to("http://127.0.0.1:3000/bye")
                    .endpoint(LogoutEndpoint::Auth0V2),
                c,
            )
        })
        .expect("logout");
    assert_eq!(url.origin().ascii_serialization(), fx.emu.base_url());
    assert_eq!(url.path(), "/v2/logout");
    assert_eq!(query_names(&url), ["client_id", "returnTo"]);
    assert_eq!(
        query(url.as_str(), "client_id").as_deref(),
        Some(fx.emu.client_id())
    );
    assert_eq!(
        query(url.as_str(), "returnTo").as_deref(),
        Some("http://127.0.0.1:3000/bye")
    );
    assert_eq!(fx.sessions.len(), 0);
    assert!(!b.jar.names().contains(&SESSION_COOKIE.to_owned()));
    assert!(b.session().is_none());
    assert_eq!(follow(&url), "http://127.0.0.1:3000/bye");
}

fn oidc_logout_uses_the_end_session_endpoint<C: Clients>() {
    let fx = Fixture::new::<C>();
    let mut b = fx.browser();
    b.login(StartLoginOptions::new());
    let id_token = b
        .session()
        .unwrap()
        .id_token
        .clone()
        .unwrap()
        .expose()
        .to_owned();
    let url = b
        .request(|api, c| {
            api.logout(
                LogoutOptions::return_to("http://127.0.0.1:3000/bye").oidc_logout(true),
                c,
            )
        })
        .expect("logout");
    assert_eq!(
        url.as_str().split('?').next(),
        Some(&*fx.emu.url("/oidc/logout"))
    );
    assert_eq!(
        query(url.as_str(), "client_id").as_deref(),
        Some(fx.emu.client_id())
    );
    assert_eq!(
        query(url.as_str(), "post_logout_redirect_uri").as_deref(),
        Some("http://127.0.0.1:3000/bye")
    );
    assert_eq!(
        query(url.as_str(), "id_token_hint").as_deref(),
        Some(id_token.as_str())
    );
    assert_eq!(fx.sessions.len(), 0);
    assert!(b.session().is_none());
}

fn backchannel_logout_removes_exactly_the_matching_sessions<C: Clients>() {
    let fx = Fixture::new::<C>();
    // Three sessions of the configured user (three browsers), one of another user.
    let mut alice: Vec<Browser<'_>> = (0..3).map(|_| fx.browser()).collect();
    for b in &mut alice {
        b.login(StartLoginOptions::new());
    }
    let mut bob_claims = EmulatorConfig::default_user();
    bob_claims.insert("sub".into(), "auth0|bob".into());
    fx.emu.set_user_claims(bob_claims);
    let mut bob = fx.browser();
    bob.login(StartLoginOptions::new());
    assert_eq!(fx.sessions.len(), 4);
    let sid0 = alice[0].session().unwrap().internal.sid.clone();

    // By sid: only that session.
    let token = fx.emu.mint_logout_token(None, Some(&sid0), Map::new());
    let done = fx
        .api
        .backchannel(&token, &mut Default::default())
        .expect("logout by sid");
    assert_eq!(done.sid.as_deref(), Some(sid0.as_str()));
    assert_eq!(fx.sessions.len(), 3);
    assert!(alice[0].session().is_none());
    assert!(alice[1].session().is_some() && alice[2].session().is_some());
    assert!(bob.session().is_some());

    // By sub: every session of that user, and only those.
    let token = fx
        .emu
        .mint_logout_token(Some("auth0|emulator-user"), None, Map::new());
    let done = fx
        .api
        .backchannel(&token, &mut Default::default())
        .expect("logout by sub");
    assert_eq!(done.sub.as_deref(), Some("auth0|emulator-user"));
    assert_eq!(fx.sessions.len(), 1);
    assert!(alice.iter_mut().all(|b| b.session().is_none()));
    let remaining = bob.session().expect("bob's session kept");
    assert_eq!(session_user(&remaining, "sub"), Some("auth0|bob"));
}

/// The application's back-channel logout endpoint on loopback: a second client of kind `C`
/// over the fixture's stores answers each POSTed `logout_token` with 200 (handled) or 400.
struct BackchannelEndpoint {
    uri: String,
    server: std::sync::Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackchannelEndpoint {
    fn start<C: Clients + 'static>(fx: &Fixture) -> Self {
        let server =
            std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind loopback"));
        let port = server.server_addr().to_ip().unwrap().port();
        let config = login_support::config(&fx.emu);
        let (sessions, transactions) = (fx.sessions.clone(), fx.transactions.clone());
        let thread = {
            let server = server.clone();
            std::thread::spawn(move || {
                let app = C::build(config, sessions, transactions);
                for mut request in server.incoming_requests() {
                    let mut body = Vec::new();
                    let _ = request.as_reader().read_to_end(&mut body);
                    let token = url::form_urlencoded::parse(&body)
                        .find(|(k, _)| k == "logout_token")
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default();
                    let status = match app.backchannel(&token, &mut Default::default()) {
                        Ok(_) => 200,
                        Err(_) => 400,
                    };
                    let _ = request.respond(tiny_http::Response::empty(status));
                }
            })
        };
        BackchannelEndpoint {
            uri: format!("http://127.0.0.1:{port}/backchannel-logout"),
            server,
            thread: Some(thread),
        }
    }
}

impl Drop for BackchannelEndpoint {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The emulator delivers the logout token itself (no token minted by the test): ending the
/// Auth0 session of one browser, by an admin call or at the end-session endpoint with that
/// browser's ID token, removes exactly that browser's session from the application.
fn emulator_delivered_backchannel_logout_removes_the_session<C: Clients + 'static>() {
    use auth0_emulator::{DeliveryOutcome, LogoutTrigger};
    let fx = Fixture::new::<C>();
    let endpoint = BackchannelEndpoint::start::<C>(&fx);
    fx.emu.set_backchannel_logout_uri(Some(&endpoint.uri));
    let mut browsers: Vec<Browser<'_>> = (0..3).map(|_| fx.browser()).collect();
    for b in &mut browsers {
        b.login(StartLoginOptions::new());
    }
    assert_eq!(fx.sessions.len(), 3);

    // An admin ends browser 0's Auth0 session.
    let sid0 = browsers[0].session().unwrap().internal.sid.clone();
    let delivery = fx.emu.end_session(&sid0).expect("delivered");
    assert_eq!(delivery.outcome, DeliveryOutcome::Status(200));
    assert_eq!(delivery.sub.as_deref(), Some("auth0|emulator-user"));
    assert!(browsers[0].session().is_none());
    assert_eq!(fx.sessions.len(), 2);

    // Browser 1's ID token at the end-session endpoint (e.g. from another application).
    let id_token = browsers[1].session().unwrap().id_token.clone().unwrap();
    let mut url = url::Url::parse(&fx.emu.url("/oidc/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", id_token.expose())
        .append_pair("post_logout_redirect_uri", "http://127.0.0.1:3000/bye");
    assert_eq!(follow(&url), "http://127.0.0.1:3000/bye");
    let delivery = fx.emu.backchannel_deliveries().pop().unwrap();
    assert_eq!(delivery.trigger, LogoutTrigger::OidcLogout);
    assert_eq!(delivery.outcome, DeliveryOutcome::Status(200));
    assert!(browsers[1].session().is_none());
    assert!(browsers[2].session().is_some(), "the other session is kept");
    assert_eq!(fx.sessions.len(), 1);
}

fn invalid_logout_tokens_delete_nothing<C: Clients>() {
    let fx = Fixture::new::<C>();
    let mut b = fx.browser();
    b.login(StartLoginOptions::new());
    let sid = b.session().unwrap().internal.sid.clone();
    let sub = "auth0|emulator-user";
    let cases = [
        (
            "events missing",
            fx.emu
                .mint_logout_token(Some(sub), Some(&sid), claims(json!({"events": null}))),
        ),
        (
            "wrong event",
            fx.emu.mint_logout_token(
                Some(sub),
                Some(&sid),
                claims(json!({"events": {"http://example.com/other": {}}})),
            ),
        ),
        (
            "nonce present",
            fx.emu
                .mint_logout_token(Some(sub), Some(&sid), claims(json!({"nonce": "n"}))),
        ),
        (
            "neither sub nor sid",
            fx.emu.mint_logout_token(None, None, Map::new()),
        ),
    ];
    for (case, token) in cases {
        let err = fx
            .api
            .backchannel(&token, &mut Default::default())
            .unwrap_err();
        assert_eq!(err.code(), "invalid_logout_token", "{case}: {err}");
        let Error::BackchannelLogout(e) = &err else {
            panic!("{case}: {err:?}")
        };
        assert_eq!(
            e.token_error().map(|t| t.code().as_str()),
            Some("invalid_logout_token"),
            "{case}"
        );
        assert_eq!(fx.sessions.len(), 1, "{case}: nothing deleted");
    }
    // Forged signatures are refused too.
    let mut payload = claims(json!({
        "iss": fx.emu.issuer(), "aud": fx.emu.client_id(), "iat": now(), "exp": now() + 60,
        "jti": "j", "sid": sid, "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    }));
    for (case, alg) in [
        ("none", SignAlg::None),
        ("bad signature", SignAlg::BadSignature),
    ] {
        payload.insert("jti".into(), case.into());
        let token = fx.emu.sign_claims(
            &payload,
            &SignOptions {
                alg,
                ..Default::default()
            },
        );
        let err = fx
            .api
            .backchannel(&token, &mut Default::default())
            .unwrap_err();
        assert_eq!(err.code(), "invalid_logout_token", "{case}: {err}");
        assert_eq!(fx.sessions.len(), 1, "{case}: nothing deleted");
    }
}

// ---------------------------------------------------------------------------------------------
// Rejected callbacks and ID tokens (OpenID RP certification cases)
// ---------------------------------------------------------------------------------------------

/// Asserts that `err` is the login error `code` and that no session was written.
fn assert_rejected(fx: &Fixture, b: &Browser<'_>, err: &Error, code: &str) {
    assert_eq!(err.code(), code, "{err}");
    login_error(err);
    assert_eq!(fx.sessions.len(), 0, "no session written");
    assert!(!b.jar.names().contains(&SESSION_COOKIE.to_owned()));
}

/// A login whose code exchange returns the ID token `mint(fixture, nonce)`: rejected as
/// `invalid_id_token` with `reason`, no session, and the transaction forgotten.
fn rejects_id_token<C: Clients>(
    options: StartLoginOptions,
    mint: impl FnOnce(&Emulator, &str) -> String,
    reason: &str,
) {
    let fx = Fixture::new::<C>();
    let mut b = fx.browser();
    let (url, callback) = b.authorize(options);
    let nonce = query(url.as_str(), "nonce").expect("nonce in the authorization URL");
    inject_id_token(&fx.emu, &mint(&fx.emu, &nonce));
    let err = b.complete(&callback).unwrap_err();
    assert_rejected(&fx, &b, &err, "invalid_id_token");
    assert_eq!(
        login_error(&err)
            .id_token_error()
            .map(|e| e.code().as_str()),
        Some(reason),
        "{err}"
    );
    assert_eq!(fx.emu.token_requests().len(), 1);
    // A failed callback cannot be retried.
    let replay = b.complete(&callback).unwrap_err();
    assert_eq!(replay.code(), "missing_transaction");
    assert_eq!(fx.emu.token_requests().len(), 1);
    assert_eq!(fx.sessions.len(), 0);
}

fn id_token(emu: &Emulator, nonce: &str, overrides: Value, opts: SignOptions) -> String {
    let mut c = claims(overrides);
    c.entry("nonce").or_insert_with(|| nonce.into());
    emu.mint_id_token(c, opts)
}

fn valid_injected_id_token_is_accepted<C: Clients>() {
    // The control for the cases below: the same injection with a valid token logs in.
    let fx = Fixture::new::<C>();
    let mut b = fx.browser();
    let (url, callback) = b.authorize(StartLoginOptions::new());
    let nonce = query(url.as_str(), "nonce").unwrap();
    inject_id_token(
        &fx.emu,
        &id_token(&fx.emu, &nonce, json!({}), SignOptions::default()),
    );
    b.complete(&callback).expect("valid injected token");
    let s = b.session().unwrap();
    assert_eq!(
        s.token_sets[0].access_token.expose(),
        "injected-access-token"
    );
}

/// Accepted edge cases: expired by less than the 60 s clock tolerance, and several audiences
/// with `azp` equal to the client.
fn accepts_clock_tolerance_and_azp_equal_to_the_client<C: Clients>() {
    for overrides in [
        json!({"iat": now() - 600, "exp": now() - 30}),
        json!({"aud": ["another-client", "emulator-client"], "azp": "emulator-client"}),
    ] {
        let fx = Fixture::new::<C>();
        let mut b = fx.browser();
        let (url, callback) = b.authorize(StartLoginOptions::new());
        let nonce = query(url.as_str(), "nonce").unwrap();
        let token = id_token(&fx.emu, &nonce, overrides.clone(), SignOptions::default());
        inject_id_token(&fx.emu, &token);
        b.complete(&callback)
            .unwrap_or_else(|e| panic!("{overrides}: {e}"));
        assert_eq!(fx.sessions.len(), 1, "{overrides}");
    }
}

fn rejects_bad_signature<C: Clients>() {
    rejects_id_token::<C>(
        StartLoginOptions::new(),
        |emu, nonce| {
            let opts = SignOptions {
                alg: SignAlg::BadSignature,
                ..Default::default()
            };
            id_token(emu, nonce, json!({}), opts)
        },
        "invalid_signature",
    );
}

fn rejects_alg_none<C: Clients>() {
    rejects_id_token::<C>(
        StartLoginOptions::new(),
        |emu, nonce| {
            let opts = SignOptions {
                alg: SignAlg::None,
                ..Default::default()
            };
            id_token(emu, nonce, json!({}), opts)
        },
        "unsupported_algorithm",
    );
}

fn rejects_hs256_with_the_client_secret<C: Clients>() {
    rejects_id_token::<C>(
        StartLoginOptions::new(),
        |emu, nonce| {
            let opts = SignOptions {
                alg: SignAlg::Hs256,
                ..Default::default()
            };
            id_token(emu, nonce, json!({}), opts)
        },
        "unsupported_algorithm",
    );
}

fn rejects_unknown_kid_after_one_refetch<C: Clients>() {
    let fx = Fixture::new::<C>();
    // Warm the JWKS cache with a first login.
    fx.browser().login(StartLoginOptions::new());
    let before = fx.sessions.len();
    fx.emu.clear_requests();
    let mut b = fx.browser();
    let (url, callback) = b.authorize(StartLoginOptions::new());
    let nonce = query(url.as_str(), "nonce").unwrap();
    let opts = SignOptions {
        key: KeyChoice::Unpublished,
        ..Default::default()
    };
    inject_id_token(&fx.emu, &id_token(&fx.emu, &nonce, json!({}), opts));
    let err = b.complete(&callback).unwrap_err();
    assert_eq!(err.code(), "invalid_id_token", "{err}");
    assert_eq!(
        login_error(&err)
            .id_token_error()
            .map(|e| e.code().as_str()),
        Some("unknown_kid")
    );
    assert_eq!(
        fx.emu.requests_to("/.well-known/jwks.json").len(),
        1,
        "exactly one refetch"
    );
    assert_eq!(fx.sessions.len(), before, "no session written");
    assert!(!b.jar.names().contains(&SESSION_COOKIE.to_owned()));
}

fn rejects_wrong_issuer<C: Clients>() {
    rejects_id_token::<C>(
        StartLoginOptions::new(),
        |emu, nonce| {
            let o = json!({"iss": "https://evil.example.com/"});
            id_token(emu, nonce, o, SignOptions::default())
        },
        "invalid_issuer",
    );
}

fn rejects_audience_without_the_client<C: Clients>() {
    rejects_id_token::<C>(
        StartLoginOptions::new(),
        |emu, nonce| {
            let o = json!({"aud": "another-client"});
            id_token(emu, nonce, o, SignOptions::default())
        },
        "invalid_audience",
    );
}

fn rejects_several_audiences_without_azp<C: Clients>() {
    rejects_id_token::<C>(
        StartLoginOptions::new(),
        |emu, nonce| {
            let o = json!({"aud": [emu.client_id(), "another-client"]});
            id_token(emu, nonce, o, SignOptions::default())
        },
        "invalid_azp",
    );
}

fn rejects_several_audiences_with_a_foreign_azp<C: Clients>() {
    rejects_id_token::<C>(
        StartLoginOptions::new(),
        |emu, nonce| {
            let o = json!({"aud": [emu.client_id(), "another-client"], "azp": "another-client"});
            id_token(emu, nonce, o, SignOptions::default())
        },
        "invalid_azp",
    );
}

fn rejects_expired_token<C: Clients>() {
    rejects_id_token::<C>(
        StartLoginOptions::new(),
        |emu, nonce| {
            // Beyond the 60 s clock tolerance.
            let o = json!({"iat": now() - 3600, "exp": now() - 120});
            id_token(emu, nonce, o, SignOptions::default())
        },
        "token_expired",
    );
}

fn rejects_missing_iat<C: Clients>() {
    rejects_id_token::<C>(
        StartLoginOptions::new(),
        |emu, nonce| id_token(emu, nonce, json!({"iat": null}), SignOptions::default()),
        "missing_iat",
    );
}

fn rejects_missing_nonce<C: Clients>() {
    rejects_id_token::<C>(
        StartLoginOptions::new(),
        |emu, _| emu.mint_id_token(Map::new(), SignOptions::default()),
        "invalid_nonce",
    );
}

fn rejects_wrong_nonce<C: Clients>() {
    rejects_id_token::<C>(
        StartLoginOptions::new(),
        |emu, nonce| {
            let o = json!({"nonce": format!("{nonce}x")});
            id_token(emu, nonce, o, SignOptions::default())
        },
        "invalid_nonce",
    );
}

fn rejects_organization_mismatch<C: Clients>() {
    rejects_id_token::<C>(
        StartLoginOptions::new().organization("org_abc123"),
        |emu, nonce| {
            let o = json!({"org_id": "org_other", "org_name": "other"});
            id_token(emu, nonce, o, SignOptions::default())
        },
        "organization_mismatch",
    );
}

fn rejects_missing_organization<C: Clients>() {
    rejects_id_token::<C>(
        StartLoginOptions::new().organization("org_abc123"),
        |emu, nonce| id_token(emu, nonce, json!({}), SignOptions::default()),
        "organization_mismatch",
    );
}

fn rejects_a_callback_with_another_state<C: Clients>() {
    let fx = Fixture::new::<C>();
    let mut b = fx.browser();
    let (_, callback) = b.authorize(StartLoginOptions::new());
    let state = query(&callback, "state").unwrap();
    let code = query(&callback, "code").unwrap();
    let forged = format!("{CALLBACK}?code={code}&state={state}x");
    let err = b.complete(&forged).unwrap_err();
    assert_rejected(&fx, &b, &err, "missing_transaction");
    let no_state = format!("{CALLBACK}?code={code}");
    let err = b.complete(&no_state).unwrap_err();
    assert_rejected(&fx, &b, &err, "invalid_state");
    assert!(fx.emu.token_requests().is_empty(), "the code is never sent");
    // The genuine callback still completes.
    b.complete(&callback).expect("the real login");
    assert_eq!(fx.sessions.len(), 1);
}

fn rejects_a_callback_without_transaction<C: Clients>() {
    let fx = Fixture::new::<C>();
    let mut b = fx.browser();
    let (_, callback) = b.authorize(StartLoginOptions::new());
    // The application restarted: a new client with empty stores receives the callback.
    let other = Fixture::new::<C>();
    let mut b2 = Browser::new(&*other.api);
    b2.jar = b.jar.clone();
    let err = b2.complete(&callback).unwrap_err();
    assert_rejected(&other, &b2, &err, "missing_transaction");
    assert!(other.emu.token_requests().is_empty() && fx.emu.token_requests().is_empty());
}

fn rejects_a_replayed_callback<C: Clients>() {
    let fx = Fixture::new::<C>();
    let mut b = fx.browser();
    let (_, callback, _) = b.login(StartLoginOptions::new());
    // The same callback in another browser (an attacker replaying a leaked URL).
    let mut attacker = fx.browser();
    let err = attacker.complete(&callback).unwrap_err();
    assert_eq!(err.code(), "missing_transaction");
    assert!(attacker.jar.names().is_empty());
    assert_eq!(fx.sessions.len(), 1);
    assert_eq!(fx.emu.token_requests().len(), 1);
}

fn access_denied_in_the_callback<C: Clients>() {
    let fx = Fixture::new::<C>();
    fx.emu.set_authorize_error(Some((
        "access_denied".into(),
        "User did not authorize the request".into(),
    )));
    let mut b = fx.browser();
    let (_, callback) = b.authorize(StartLoginOptions::new());
    assert_eq!(query(&callback, "error").as_deref(), Some("access_denied"));
    let err = b.complete(&callback).unwrap_err();
    assert_rejected(&fx, &b, &err, "authorization_error");
    match login_error(&err) {
        LoginError::Authorization {
            error,
            error_description,
        } => {
            assert_eq!(error, "access_denied");
            assert_eq!(
                error_description.as_deref(),
                Some("User did not authorize the request")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(fx.emu.token_requests().is_empty());
    let replay = b.complete(&callback).unwrap_err();
    assert_eq!(
        replay.code(),
        "missing_transaction",
        "transaction forgotten"
    );
}

// ---------------------------------------------------------------------------------------------
// Both clients
// ---------------------------------------------------------------------------------------------

macro_rules! scenarios {
    ($client:ty; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                super::$name::<$client>();
            }
        )*
    };
}

macro_rules! all_scenarios {
    ($client:ty) => {
        scenarios!($client;
            full_login_saves_the_session_and_forgets_the_transaction,
            app_state_round_trips_per_tab,
            pushed_authorization_request,
            rich_authorization_request,
            organization_login,
            key_rotation_refetches_the_jwks_once,
            cookie_stores_round_trip,
            logout_returns_the_v2_url_and_deletes_the_session,
            oidc_logout_uses_the_end_session_endpoint,
            backchannel_logout_removes_exactly_the_matching_sessions,
            emulator_delivered_backchannel_logout_removes_the_session,
            invalid_logout_tokens_delete_nothing,
            valid_injected_id_token_is_accepted,
            accepts_clock_tolerance_and_azp_equal_to_the_client,
            rejects_bad_signature,
            rejects_alg_none,
            rejects_hs256_with_the_client_secret,
            rejects_unknown_kid_after_one_refetch,
            rejects_wrong_issuer,
            rejects_audience_without_the_client,
            rejects_several_audiences_without_azp,
            rejects_several_audiences_with_a_foreign_azp,
            rejects_expired_token,
            rejects_missing_iat,
            rejects_missing_nonce,
            rejects_wrong_nonce,
            rejects_organization_mismatch,
            rejects_missing_organization,
            rejects_a_callback_with_another_state,
            rejects_a_callback_without_transaction,
            rejects_a_replayed_callback,
            access_denied_in_the_callback,
        );
    };
}

mod blocking {
    all_scenarios!(crate::login_support::Blocking);
}

mod nonblocking {
    all_scenarios!(crate::login_support::Nonblocking);
}
