//! End-to-end: `private_key_jwt` client authentication (RFC 7523, OpenID Connect Core §9)
//! through both clients (blocking and async) against the emulator, for RS256, PS256 and
//! ES256: a login with PAR and the code exchange, a refresh, a connection token exchange and
//! a logout that revokes the refresh token each send a fresh assertion (its own `jti`) that
//! the emulator verifies (signature by the registered public key, `iss` = `sub` = client id,
//! `aud` = the issuer, lifetime, replay) — and never the client secret. A wrong key is a
//! typed error; a replayed or otherwise bad assertion is refused by the emulator.

mod adapter_support;
mod emulator_support;
mod login_support;

use adapter_support::SECRET;
use auth0_emulator::{DEFAULT_AUDIENCE, Emulator, EmulatorConfig, RecordedRequest};
use auth0_server::protocol::client_assertion::{self, ASSERTION_TYPE, AssertionAlg, AssertionKey};
use auth0_server::protocol::login::LoginError;
use auth0_server::protocol::time::UnixTime;
use auth0_server::{Config, ConnectionTokenRequest, Error, LogoutOptions, StartLoginOptions};
use login_support::{Browser, CALLBACK, Clients, Sessions, Transactions};
use serde_json::Value;
use std::collections::HashSet;

const RSA_PEM: &str = include_str!("../data/client_keys/rsa.pem");
const RSA_OTHER_PEM: &str = include_str!("../data/client_keys/rsa_other.pem");
const EC_PEM: &str = include_str!("../data/client_keys/ec.pem");
const EC_OTHER_PEM: &str = include_str!("../data/client_keys/ec_other.pem");

/// The fixture key for `alg`, and another key of the same kind.
fn keys(alg: AssertionAlg) -> (&'static str, &'static str) {
    match alg {
        AssertionAlg::Es256 => (EC_PEM, EC_OTHER_PEM),
        _ => (RSA_PEM, RSA_OTHER_PEM),
    }
}

/// An emulator whose client is registered with the public half of `pem`; its access tokens
/// live 10 s, under the SDK's 30 s leeway, so every `get_access_token` refreshes.
fn emulator(pem: &str, alg: AssertionAlg) -> Emulator {
    let public = AssertionKey::parse(pem, alg, None)
        .expect("fixture key")
        .public_jwk();
    Emulator::start(EmulatorConfig {
        client_public_key: Some(public),
        access_token_lifetime: 10,
        ..Default::default()
    })
}

/// The application's configuration: the private key, a `kid`, and (to prove it is never
/// sent) the client secret too.
fn config(emu: &Emulator, pem: &str, alg: AssertionAlg) -> Config {
    Config::builder(emu.issuer_url(), emu.client_id())
        .client_secret(emu.client_secret())
        .private_key_jwt(pem, alg)
        .client_assertion_kid("app-key-1")
        .secret(SECRET)
        .redirect_uri(CALLBACK)
        .audience(DEFAULT_AUDIENCE)
        .build()
        .expect("valid config")
}

/// Checks one client-authenticated request: an assertion signed with `alg` carrying the
/// expected claims, `client_id`, no secret anywhere. Returns its `jti`.
fn assert_authenticated_by_assertion(
    emu: &Emulator,
    r: &RecordedRequest,
    alg: AssertionAlg,
) -> String {
    assert_eq!(
        r.param("client_assertion_type"),
        Some(ASSERTION_TYPE),
        "{}",
        r.path
    );
    assert_eq!(r.param("client_id"), Some(emu.client_id()));
    assert_eq!(r.param("client_secret"), None, "{}: no secret", r.path);
    assert_eq!(
        r.header("authorization"),
        None,
        "{}: no Basic header",
        r.path
    );
    let body = String::from_utf8_lossy(&r.body);
    assert!(!body.contains(emu.client_secret()), "{}", r.path);
    let assertion = r.param("client_assertion").expect("client_assertion");
    let header = auth0_emulator::decode_header(assertion).expect("JWS header");
    assert_eq!(header["alg"], alg.name());
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], "app-key-1");
    let claims = auth0_emulator::decode_payload(assertion).expect("JWS payload");
    assert_eq!(claims["iss"], emu.client_id());
    assert_eq!(claims["sub"], emu.client_id());
    assert_eq!(claims["aud"], Value::String(emu.issuer()));
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 60);
    claims["jti"].as_str().expect("jti").to_owned()
}

/// Every authenticated call of a session's life: PAR + code exchange, refresh, connection
/// token, logout with revocation. Each sent a fresh assertion the emulator accepted.
fn whole_session<C: Clients>(alg: AssertionAlg) {
    let (pem, _) = keys(alg);
    let emu = emulator(pem, alg);
    let api = C::build(
        config(&emu, pem, alg),
        Sessions::default(),
        Transactions::default(),
    );
    let mut b = Browser::new(&*api);
    let (_, _, result) = b.login(StartLoginOptions::new().pushed(true));
    assert_eq!(result.app_state, None);
    let session = b.session().expect("session saved");

    let refreshed = b.request(|api, c| api.token(c)).expect("refresh");
    assert_ne!(
        Some(refreshed.access_token.expose()),
        session.token_sets.first().map(|t| t.access_token.expose()),
        "a new access token"
    );
    let connection = b
        .request(|api, c| api.connection(ConnectionTokenRequest::new("google-oauth2"), c))
        .expect("connection token");
    assert_eq!(
        connection.access_token.expose(),
        "ya29.emulator-google-access-token"
    );
    let rt = b
        .session()
        .and_then(|s| s.refresh_token.clone())
        .expect("the session's (rotated) refresh token");
    assert!(emu.refresh_token_is_live(rt.expose()));
    b.request(|api, c| {
        api.logout(
            LogoutOptions {
                revoke_refresh_token: true,
                ..LogoutOptions::return_to("http://127.0.0.1:3000/")
            },
            c,
        )
    })
    .expect("logout");
    assert!(b.session().is_none());

    let authenticated: Vec<RecordedRequest> = emu
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    let paths: Vec<&str> = authenticated.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/oauth/par",
            "/oauth/token",
            "/oauth/token",
            "/oauth/token",
            "/oauth/revoke"
        ],
        "PAR, code exchange, refresh, connection token, revocation"
    );
    let jtis: Vec<String> = authenticated
        .iter()
        .map(|r| assert_authenticated_by_assertion(&emu, r, alg))
        .collect();
    assert_eq!(
        jtis.iter().collect::<HashSet<_>>().len(),
        jtis.len(),
        "a fresh jti each time"
    );
    assert_eq!(emu.accepted_client_assertions(), jtis, "each one accepted");
    // The refresh token the session ended with was revoked by the authenticated revocation.
    assert!(!emu.refresh_token_is_live(rt.expose()));
}

/// The client is configured with another key than the registered one: the code exchange is
/// refused with `invalid_client`, a typed login error, and no session is saved.
fn wrong_key_is_refused<C: Clients>(alg: AssertionAlg) {
    let (registered, other) = keys(alg);
    let emu = emulator(registered, alg);
    let sessions = Sessions::default();
    let api = C::build(
        config(&emu, other, alg),
        sessions.clone(),
        Transactions::default(),
    );
    let mut b = Browser::new(&*api);
    let (_, callback) = b.authorize(StartLoginOptions::new());
    let err = b.complete(&callback).unwrap_err();
    assert_eq!(err.code(), "failed_to_exchange_code", "{err:?}");
    match &err {
        Error::Login(e) => match &**e {
            LoginError::CodeExchange(r) => {
                assert_eq!(
                    r.oauth().map(|o| (o.status, o.error.as_str())),
                    Some((401, "invalid_client"))
                );
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    assert!(sessions.is_empty(), "nothing saved");
    assert!(b.session().is_none());
    assert!(emu.accepted_client_assertions().is_empty());
}

macro_rules! per_client {
    ($client:ty) => {
        use super::*;
        #[test]
        fn whole_session_rs256() {
            whole_session::<$client>(AssertionAlg::Rs256);
        }
        #[test]
        fn whole_session_ps256() {
            whole_session::<$client>(AssertionAlg::Ps256);
        }
        #[test]
        fn whole_session_es256() {
            whole_session::<$client>(AssertionAlg::Es256);
        }
        #[test]
        fn wrong_rsa_key_is_invalid_client() {
            wrong_key_is_refused::<$client>(AssertionAlg::Rs256);
        }
        #[test]
        fn wrong_ec_key_is_invalid_client() {
            wrong_key_is_refused::<$client>(AssertionAlg::Es256);
        }
    };
}

mod blocking {
    per_client!(login_support::Blocking);
}

mod nonblocking {
    per_client!(login_support::Nonblocking);
}

// ---------------------------------------------------------------------------------------------
// The emulator's verification, over plain HTTP
// ---------------------------------------------------------------------------------------------

fn now() -> u64 {
    adapter_support::now()
}

/// An assertion for the emulator's client signed with `pem`, with this audience and time.
fn assertion(
    emu: &Emulator,
    pem: &str,
    alg: AssertionAlg,
    aud: &str,
    iat: u64,
    seed: u8,
) -> String {
    let key = AssertionKey::parse(pem, alg, None).unwrap();
    let random: Vec<u8> = (0..48).map(|i| seed.wrapping_add(i)).collect();
    client_assertion::assertion(
        &key,
        emu.client_id(),
        aud,
        UnixTime::from_secs(iat),
        &random,
    )
    .unwrap()
}

/// POSTs a refresh grant to the token endpoint with these extra form fields: (status, body).
fn post_refresh(emu: &Emulator, refresh_token: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", emu.client_id()),
    ];
    form.extend_from_slice(extra);
    let answer = emulator_support::answer(
        emulator_support::agent()
            .post(emu.url("/oauth/token"))
            .send_form(form.iter().copied()),
    );
    (answer.status, answer.json())
}

#[test]
fn emulator_accepts_a_good_assertion_once_and_refuses_its_replay() {
    let emu = emulator(RSA_PEM, AssertionAlg::Rs256);
    let rt = emu.issue_refresh_token(Default::default());
    let jwt = assertion(&emu, RSA_PEM, AssertionAlg::Rs256, &emu.issuer(), now(), 1);
    let extra = [
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", jwt.as_str()),
    ];
    let (status, body) = post_refresh(&emu, &rt, &extra);
    assert_eq!(status, 200, "{body}");
    let rotated = body["refresh_token"].as_str().expect("rotated").to_owned();
    let (status, body) = post_refresh(&emu, &rotated, &extra);
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "replay"
    );
    assert!(
        emu.refresh_token_is_live(&rotated),
        "the replay spent nothing"
    );
}

#[test]
fn emulator_refuses_bad_assertions_and_secrets() {
    let emu = emulator(EC_PEM, AssertionAlg::Es256);
    let rt = emu.issue_refresh_token(Default::default());
    let issuer = emu.issuer();
    let token_endpoint = emu.url("/oauth/token");
    let good = assertion(&emu, EC_PEM, AssertionAlg::Es256, &issuer, now(), 10);
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "signed by another key",
            vec![
                ("client_assertion_type", ASSERTION_TYPE.into()),
                (
                    "client_assertion",
                    assertion(&emu, EC_OTHER_PEM, AssertionAlg::Es256, &issuer, now(), 20),
                ),
            ],
        ),
        (
            "aud is the token endpoint, not the issuer",
            vec![
                ("client_assertion_type", ASSERTION_TYPE.into()),
                (
                    "client_assertion",
                    assertion(
                        &emu,
                        EC_PEM,
                        AssertionAlg::Es256,
                        &token_endpoint,
                        now(),
                        30,
                    ),
                ),
            ],
        ),
        (
            "expired",
            vec![
                ("client_assertion_type", ASSERTION_TYPE.into()),
                (
                    "client_assertion",
                    assertion(&emu, EC_PEM, AssertionAlg::Es256, &issuer, now() - 600, 40),
                ),
            ],
        ),
        (
            "issued 2 minutes ahead (Auth0 allows 10 s of skew)",
            vec![
                ("client_assertion_type", ASSERTION_TYPE.into()),
                (
                    "client_assertion",
                    assertion(&emu, EC_PEM, AssertionAlg::Es256, &issuer, now() + 120, 50),
                ),
            ],
        ),
        (
            "wrong assertion type",
            vec![
                ("client_assertion_type", "urn:example:other".into()),
                ("client_assertion", good.clone()),
            ],
        ),
        (
            "a secret instead",
            vec![("client_secret", emu.client_secret().into())],
        ),
        (
            "a secret as well",
            vec![
                ("client_assertion_type", ASSERTION_TYPE.into()),
                ("client_assertion", good.clone()),
                ("client_secret", emu.client_secret().into()),
            ],
        ),
        ("nothing", vec![]),
    ];
    for (what, extra) in cases {
        let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = post_refresh(&emu, &rt, &extra);
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{what}: {body}"
        );
    }
    assert!(emu.accepted_client_assertions().is_empty());
    assert!(emu.refresh_token_is_live(&rt), "nothing was spent");
}

#[test]
fn a_key_that_cannot_sign_with_the_alg_is_a_configuration_error() {
    let emu = emulator(RSA_PEM, AssertionAlg::Rs256);
    let err = Config::builder(emu.issuer_url(), emu.client_id())
        .private_key_jwt(EC_PEM, AssertionAlg::Rs256)
        .secret(SECRET)
        .build()
        .unwrap_err();
    assert_eq!(
        (err.field, err.code().as_str()),
        ("private_key_jwt", "invalid_configuration")
    );
    assert!(!err.to_string().contains("PRIVATE KEY"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Single-flight: the assertion is no part of what callers share
// ---------------------------------------------------------------------------------------------

const CALLERS: usize = 20;

/// Concurrent refreshes of one session, half of them for a second audience: per audience one
/// request goes out (the waiters share its answer and sign nothing), the second request of
/// the lane spends the rotated token with an assertion of its own, and the emulator accepted
/// exactly those two assertions.
#[test]
fn concurrent_refreshes_sign_once_per_request_sent() {
    use adapter_support::{RecordingStore, TestOptions, expired_session, lane_audience};
    use std::sync::Barrier;
    let emu = emulator(EC_PEM, AssertionAlg::Es256);
    let store = RecordingStore::default();
    let client = auth0_server::blocking::ServerClient::builder(
        config(&emu, EC_PEM, AssertionAlg::Es256),
        store.clone(),
        store,
    )
    .build();
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    let original = session.refresh_token.clone().unwrap();
    let barrier = Barrier::new(CALLERS);
    let tokens: Vec<(usize, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CALLERS)
            .map(|i| {
                let (client, barrier) = (client.clone(), &barrier);
                let mut o = TestOptions::with(&format!("t{i}"), session.clone());
                s.spawn(move || {
                    barrier.wait();
                    let t = client
                        .get_access_token_with(lane_audience(i), &mut o)
                        .unwrap();
                    (i, t.access_token.expose().to_owned())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    adapter_support::assert_two_refreshes_on_one_lane(&emu, original.expose(), &tokens, CALLERS);
    let sent: Vec<String> = emu
        .token_requests()
        .iter()
        .map(|r| assert_authenticated_by_assertion(&emu, r, AssertionAlg::Es256))
        .collect();
    assert_ne!(sent[0], sent[1], "the second request signed afresh");
    assert_eq!(emu.accepted_client_assertions(), sent);
}
