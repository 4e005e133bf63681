//! End-to-end: DPoP (RFC 9449) through both clients (blocking and async) against the
//! emulator, which verifies every proof (signature by the embedded key, `typ`, `alg`, `htm`,
//! `htu`, `iat`, `jti` replay, nonce) and binds the tokens it issues to the key (`cnf.jkt`,
//! `token_type: DPoP`).
//!
//! A login with PAR, a refresh answered by a nonce challenge (one retry, then success; the
//! nonce is remembered for the next refresh), a connection token exchange, and a call to a
//! DPoP-protected API through `dpop_headers` with the API's own nonce challenge. Negatives: a
//! bearer answer to a DPoP request is `token_type_mismatch` and nothing is saved; a proof for
//! another URL, a replayed proof and a proof by another key are refused by the emulator; the
//! key never shows in `Debug`.

mod adapter_support;
mod emulator_support;
mod login_support;

use adapter_support::SECRET;
use auth0_emulator::{DEFAULT_AUDIENCE, Emulator, EmulatorConfig, RecordedRequest};
use auth0_server::protocol::dpop::{self, DpopKey, NonceRetry, ProofFor, TokenType};
use auth0_server::protocol::time::UnixTime;
use auth0_server::{Config, ConnectionTokenRequest, Error, StartLoginOptions};
use login_support::{Browser, CALLBACK, Clients, Sessions, Transactions};
use serde_json::Value;
use std::collections::HashSet;

const EC_PEM: &str = include_str!("../data/client_keys/ec.pem");
const EC_OTHER_PEM: &str = include_str!("../data/client_keys/ec_other.pem");

/// An emulator whose access tokens live 10 s, under the SDK's 30 s leeway, so every
/// `get_access_token` refreshes.
fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig {
        access_token_lifetime: 10,
        ..Default::default()
    })
}

/// The application's configuration with DPoP on (the fixture P-256 key).
fn config(emu: &Emulator) -> Config {
    Config::builder(emu.issuer_url(), emu.client_id())
        .client_secret(emu.client_secret())
        .dpop(EC_PEM)
        .secret(SECRET)
        .redirect_uri(CALLBACK)
        .audience(DEFAULT_AUDIENCE)
        .build()
        .expect("valid config")
}

fn jkt() -> String {
    DpopKey::parse(EC_PEM).unwrap().thumbprint().to_owned()
}

/// The `cnf.jkt` of an access token the emulator minted.
fn bound_to(access_token: &str) -> Option<String> {
    let claims = auth0_emulator::decode_payload(access_token)?;
    claims.get("cnf")?.get("jkt")?.as_str().map(str::to_owned)
}

/// The claims of the DPoP proof a recorded request carried.
fn proof_claims(r: &RecordedRequest) -> serde_json::Map<String, Value> {
    let proof = r.header("dpop").expect("a DPoP proof");
    let header = auth0_emulator::decode_header(proof).expect("proof header");
    assert_eq!(header["typ"], "dpop+jwt");
    assert_eq!(header["alg"], "ES256");
    assert!(header["jwk"].get("d").is_none(), "no private part");
    auth0_emulator::decode_payload(proof).expect("proof claims")
}

/// Login (PAR + code exchange), a refresh through a nonce challenge, a second refresh with
/// the remembered nonce, a connection token; every token-endpoint request and PAR carried a
/// fresh proof for its own URL, and the tokens are stored and handed out as DPoP tokens.
fn login_refresh_with_nonce_and_connection<C: Clients>() {
    let emu = emulator();
    let api = C::build(config(&emu), Sessions::default(), Transactions::default());
    let mut b = Browser::new(&*api);
    b.login(StartLoginOptions::new().pushed(true));
    let session = b.session().expect("session saved");
    let set = &session.token_sets[0];
    assert_eq!(set.token_type, TokenType::Dpop);
    assert_eq!(bound_to(set.access_token.expose()), Some(jkt()));
    let stored = serde_json::to_value(&*session).unwrap();
    assert_eq!(
        stored["token_sets"][0]["token_type"], "DPoP",
        "marked in the session"
    );

    emu.require_dpop_nonce(true);
    let token = b
        .request(|api, c| api.token(c))
        .expect("refresh after a nonce challenge");
    assert_eq!(token.token_type, TokenType::Dpop);
    assert_eq!(bound_to(token.access_token.expose()), Some(jkt()));
    assert_eq!(emu.dpop_nonce_challenges(), 1, "one challenge, one retry");
    let again = b.request(|api, c| api.token(c)).expect("second refresh");
    assert_ne!(again.access_token, token.access_token);
    assert_eq!(emu.dpop_nonce_challenges(), 1, "the nonce was remembered");

    let connection = b
        .request(|api, c| api.connection(ConnectionTokenRequest::new("google-oauth2"), c))
        .expect("connection token");
    assert_eq!(
        connection.access_token.expose(),
        "ya29.emulator-google-access-token"
    );

    let posts: Vec<RecordedRequest> = emu
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    let paths: Vec<&str> = posts.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/oauth/par",
            "/oauth/token",
            "/oauth/token",
            "/oauth/token",
            "/oauth/token",
            "/oauth/token"
        ],
        "PAR, code exchange, refresh challenged + retried, refresh, connection token"
    );
    let claims: Vec<_> = posts.iter().map(proof_claims).collect();
    for (r, c) in posts.iter().zip(&claims) {
        assert_eq!(c["htm"], "POST");
        assert_eq!(c["htu"], format!("{}{}", emu.issuer_url(), r.path));
        assert!(c.get("ath").is_none(), "no ath at the token endpoint");
    }
    assert!(claims[2].get("nonce").is_none(), "challenged: no nonce yet");
    let nonce = claims[3]["nonce"]
        .as_str()
        .expect("the retry carries the nonce");
    assert_eq!(claims[4]["nonce"], nonce, "the next refresh reuses it");
    let jtis: HashSet<&str> = claims.iter().map(|c| c["jti"].as_str().unwrap()).collect();
    assert_eq!(jtis.len(), claims.len(), "a fresh proof every time");
    assert_eq!(emu.accepted_dpop_proofs().len(), claims.len() - 1);
}

/// A call to the DPoP-protected API with `dpop_headers`: the API challenges for its nonce,
/// `dpop::resource_retry` says to retry with it, and the second call succeeds.
fn resource_call_with_nonce<C: Clients>() {
    let emu = emulator();
    let api = C::build(config(&emu), Sessions::default(), Transactions::default());
    let mut b = Browser::new(&*api);
    b.login(StartLoginOptions::new());
    let token = b.request(|api, c| api.token(c)).expect("token");
    emu.require_resource_dpop_nonce(true);
    let url = format!("{}?page=2#top", emu.url("/api/dpop"));
    let call = |nonce: Option<&str>| {
        let headers = api
            .dpop_headers(&token, "GET", &url, nonce)
            .expect("headers");
        assert!(headers.authorization().starts_with("DPoP "));
        assert!(!format!("{headers:?}").contains(token.access_token.expose()));
        let mut request = emulator_support::agent().get(&url);
        for (name, value) in headers.pairs() {
            request = request.header(name, value);
        }
        let mut response = request.call().expect("transport ok");
        let body = response.body_mut().read_to_string().unwrap_or_default();
        (response.status(), response.headers().clone(), body)
    };
    let (status, headers, body) = call(None);
    assert_eq!(status, 401, "{body}");
    let NonceRetry::RetryWith(nonce) = dpop::resource_retry(status, &headers, 0) else {
        panic!("a nonce challenge: {headers:?}");
    };
    let (status, headers, body) = call(Some(&nonce));
    assert_eq!(status, 200, "{body}");
    assert_eq!(dpop::resource_retry(status, &headers, 1), NonceRetry::Done);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["jkt"], jkt());
    let last = emu.accepted_dpop_proofs().pop().expect("the API's proof");
    assert_eq!(last["htm"], "GET");
    assert_eq!(last["htu"], emu.url("/api/dpop"), "no query, no fragment");
    assert_eq!(last["nonce"], nonce.as_str());
    assert_eq!(
        last["ath"],
        dpop::access_token_hash(token.access_token.expose())
    );
    // The bound token is refused as a bearer token by the bearer API.
    let status = emulator_support::agent()
        .get(emu.url("/api/data"))
        .header(
            "authorization",
            format!("Bearer {}", token.access_token.expose()),
        )
        .call()
        .expect("transport ok")
        .status();
    assert_eq!(status, 401);
}

/// The server answers a DPoP request with a bearer token: a typed error, nothing saved.
fn bearer_answer_is_refused<C: Clients>() {
    let emu = emulator();
    emu.answer_bearer_to_dpop(true);
    let sessions = Sessions::default();
    let api = C::build(config(&emu), sessions.clone(), Transactions::default());
    let mut b = Browser::new(&*api);
    let (_, callback) = b.authorize(StartLoginOptions::new());
    let err = b.complete(&callback).unwrap_err();
    assert_eq!(err.code(), "token_type_mismatch", "{err:?}");
    assert!(sessions.is_empty(), "nothing saved");
    assert!(b.session().is_none());
}

/// A bearer answer to a DPoP refresh is refused too, and the session is left as it was;
/// `dpop_headers` refuses a bearer token rather than present it with a proof.
fn bearer_refresh_is_refused<C: Clients>() {
    let emu = emulator();
    let api = C::build(config(&emu), Sessions::default(), Transactions::default());
    let mut b = Browser::new(&*api);
    b.login(StartLoginOptions::new());
    let mut token = b.request(|api, c| api.token(c)).expect("a DPoP token");
    let before = b.session().expect("session");
    emu.answer_bearer_to_dpop(true);
    let err = b.request(|api, c| api.token(c)).unwrap_err();
    assert_eq!(err.code(), "token_type_mismatch", "{err:?}");
    assert_eq!(b.session(), Some(before), "nothing saved");
    token.token_type = TokenType::Bearer;
    let err = api
        .dpop_headers(&token, "GET", &emu.url("/api/dpop"), None)
        .unwrap_err();
    assert_eq!(err.code(), "dpop_failed");
    assert!(matches!(err, Error::Dpop(_)));
}

/// A nonce required from the first request on: PAR is challenged and retried, and the code
/// exchange carries the remembered nonce without a challenge of its own.
fn nonce_from_the_start<C: Clients>() {
    let emu = emulator();
    emu.require_dpop_nonce(true);
    let api = C::build(config(&emu), Sessions::default(), Transactions::default());
    let mut b = Browser::new(&*api);
    b.login(StartLoginOptions::new().pushed(true));
    assert_eq!(emu.dpop_nonce_challenges(), 1, "PAR only");
    let paths: Vec<String> = emu
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.path)
        .collect();
    assert_eq!(paths, ["/oauth/par", "/oauth/par", "/oauth/token"]);
    assert_eq!(
        b.session().expect("session").token_sets[0].token_type,
        TokenType::Dpop
    );
}

macro_rules! per_client {
    ($client:ty) => {
        use super::*;
        #[test]
        fn dpop_login_refresh_with_a_nonce_challenge_and_connection_token() {
            login_refresh_with_nonce_and_connection::<$client>();
        }
        #[test]
        fn resource_call_through_dpop_headers_with_the_apis_nonce() {
            resource_call_with_nonce::<$client>();
        }
        #[test]
        fn a_bearer_answer_to_a_dpop_login_is_a_typed_error_and_nothing_is_saved() {
            bearer_answer_is_refused::<$client>();
        }
        #[test]
        fn a_nonce_required_from_the_start_challenges_par_once() {
            nonce_from_the_start::<$client>();
        }
        #[test]
        fn a_bearer_answer_to_a_dpop_refresh_is_a_typed_error() {
            bearer_refresh_is_refused::<$client>();
        }
    };
}

mod blocking {
    per_client!(login_support::Blocking);
}

mod nonblocking {
    per_client!(login_support::Nonblocking);
}

/// Concurrent refreshes of one session under a nonce challenge: everyone gets a DPoP token,
/// and the retries never spend one refresh token twice (rotation is on: a second spending
/// would trip reuse detection and revoke the family).
#[test]
fn concurrent_refreshes_under_a_nonce_challenge_never_spend_a_refresh_token_twice() {
    let emu = emulator();
    let sessions = Sessions::default();
    let client = auth0_server::blocking::ServerClient::builder(
        config(&emu),
        sessions,
        Transactions::default(),
    )
    .build();
    let mut b = Browser::new(&client);
    b.login(StartLoginOptions::new());
    emu.require_dpop_nonce(true);
    let barrier = std::sync::Barrier::new(6);
    let tokens: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let mut cookies = b.jar.request();
                let (client, barrier) = (&client, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    client.get_access_token(&mut cookies)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for token in &tokens {
        let token = token.as_ref().expect("a DPoP token for every caller");
        assert_eq!(token.token_type, TokenType::Dpop);
    }
    assert_eq!(emu.reuse_detections(), 0, "no refresh token spent twice");
    assert!(emu.dpop_nonce_challenges() >= 1);
    let rt = b
        .session()
        .and_then(|s| s.refresh_token.clone())
        .expect("refresh token");
    assert!(emu.refresh_token_is_live(rt.expose()));
}

/// Two application instances coordinating refreshes through Redis (`REDIS_URL`; skipped
/// without it), one session, a nonce challenge: the challenge spent nothing, so it is not
/// published — each instance's retry is really sent (a published copy would be taken
/// instead, and carries no `DPoP-Nonce` header) — and no refresh token is spent twice.
#[test]
fn a_nonce_challenge_is_retried_across_instances_coordinated_by_redis() {
    use auth0_server::store::redis::RedisRefreshCoordinator;
    let Ok(url) = std::env::var("REDIS_URL") else {
        eprintln!("skipped: set REDIS_URL to run against a Redis");
        return;
    };
    let emu = emulator();
    let sessions = Sessions::default();
    let prefix = format!("dpop-test-{}:", adapter_support::now());
    let instance = || {
        let cfg = config(&emu);
        let coordinator = RedisRefreshCoordinator::builder(&cfg, &url)
            .key_prefix(&prefix)
            .build()
            .expect("coordinator");
        auth0_server::blocking::ServerClient::builder(
            cfg,
            sessions.clone(),
            Transactions::default(),
        )
        .coordinator(coordinator)
        .build()
    };
    let (a, b_instance) = (instance(), instance());
    let mut b = Browser::new(&a);
    b.login(StartLoginOptions::new());
    emu.require_dpop_nonce(true);
    let barrier = std::sync::Barrier::new(2);
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = [&a, &b_instance]
            .into_iter()
            .map(|client| {
                let mut cookies = b.jar.request();
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    client.get_access_token(&mut cookies)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &results {
        let token = r.as_ref().expect("a DPoP token on both instances");
        assert_eq!(token.token_type, TokenType::Dpop);
    }
    assert!(emu.dpop_nonce_challenges() >= 1);
    assert_eq!(emu.reuse_detections(), 0, "no refresh token spent twice");
}

/// DPoP with `private_key_jwt`: every token request carries both an assertion and a proof,
/// and both are verified (the async client; the blocking one shares the driver).
#[test]
fn dpop_with_private_key_jwt() {
    use auth0_server::protocol::client_assertion::{AssertionAlg, AssertionKey};
    const RSA_PEM: &str = include_str!("../data/client_keys/rsa.pem");
    let public = AssertionKey::parse(RSA_PEM, AssertionAlg::Rs256, None)
        .unwrap()
        .public_jwk();
    let emu = Emulator::start(EmulatorConfig {
        client_public_key: Some(public),
        access_token_lifetime: 10,
        ..Default::default()
    });
    let config = Config::builder(emu.issuer_url(), emu.client_id())
        .private_key_jwt(RSA_PEM, AssertionAlg::Rs256)
        .dpop(EC_PEM)
        .secret(SECRET)
        .redirect_uri(CALLBACK)
        .audience(DEFAULT_AUDIENCE)
        .build()
        .unwrap();
    let api =
        login_support::Nonblocking::build(config, Sessions::default(), Transactions::default());
    let mut b = Browser::new(&*api);
    b.login(StartLoginOptions::new());
    emu.require_dpop_nonce(true);
    let token = b.request(|api, c| api.token(c)).expect("refresh");
    assert_eq!(token.token_type, TokenType::Dpop);
    let tokens = emu.requests_to("/oauth/token");
    assert_eq!(
        tokens.len(),
        3,
        "code exchange, refresh challenged and retried"
    );
    for r in &tokens {
        assert!(r.param("client_assertion").is_some());
        assert!(r.header("dpop").is_some());
    }
    assert_eq!(
        emu.accepted_client_assertions().len(),
        3,
        "a fresh assertion for the retry too"
    );
}

// ---------------------------------------------------------------------------------------------
// The emulator's verification, over plain HTTP
// ---------------------------------------------------------------------------------------------

/// A proof by `pem` for `POST url` now.
fn proof(pem: &str, url: &str, seed: u8) -> String {
    let key = DpopKey::parse(pem).unwrap();
    let random: Vec<u8> = (0..16).map(|i| seed.wrapping_add(i)).collect();
    dpop::proof(
        &key,
        &ProofFor {
            method: "POST",
            url,
            nonce: None,
            access_token: None,
        },
        UnixTime::from_secs(adapter_support::now()),
        &random,
    )
    .unwrap()
}

/// POSTs a refresh grant with this proof: (status, body).
fn post_refresh(emu: &Emulator, refresh_token: &str, proof: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", emu.client_id()),
        ("client_secret", emu.client_secret()),
    ];
    let answer = emulator_support::answer(
        emulator_support::agent()
            .post(emu.url("/oauth/token"))
            .header("dpop", proof)
            .send_form(form.iter().copied()),
    );
    (answer.status, answer.json())
}

#[test]
fn emulator_binds_a_good_proof_and_refuses_its_replay() {
    let emu = emulator();
    let rt = emu.issue_refresh_token(Default::default());
    let good = proof(EC_PEM, &emu.url("/oauth/token"), 1);
    let (status, body) = post_refresh(&emu, &rt, &good);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(
        bound_to(body["access_token"].as_str().unwrap()),
        Some(jkt())
    );
    let rotated = body["refresh_token"].as_str().expect("rotated").to_owned();
    let (status, body) = post_refresh(&emu, &rotated, &good);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "replay"
    );
    assert!(
        emu.refresh_token_is_live(&rotated),
        "the replay spent nothing"
    );
}

#[test]
fn emulator_refuses_a_proof_for_another_url() {
    let emu = emulator();
    let rt = emu.issue_refresh_token(Default::default());
    for (why, url) in [
        ("another endpoint", emu.url("/oauth/par")),
        ("another host", "http://localhost:1/oauth/token".to_owned()),
    ] {
        let (status, body) = post_refresh(&emu, &rt, &proof(EC_PEM, &url, 7));
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{why}: {body}"
        );
    }
    // A proof whose signature is not by its embedded key (header of one key, signature of
    // another) is refused too.
    let mine = proof(EC_PEM, &emu.url("/oauth/token"), 3);
    let other = proof(EC_OTHER_PEM, &emu.url("/oauth/token"), 3);
    let forged = format!(
        "{}.{}",
        mine.rsplit_once('.').unwrap().0,
        other.rsplit_once('.').unwrap().1
    );
    let (status, _) = post_refresh(&emu, &rt, &forged);
    assert_eq!(status, 400);
    assert!(emu.refresh_token_is_live(&rt), "nothing was spent");
}

#[test]
fn the_dpop_key_never_shows_in_debug() {
    let emu = emulator();
    let config = config(&emu);
    let client = auth0_server::blocking::ServerClient::builder(
        config.clone(),
        Sessions::default(),
        Transactions::default(),
    )
    .build();
    let pem_body: String = EC_PEM.lines().nth(1).unwrap().to_owned();
    for out in [
        format!("{config:?}"),
        format!("{client:?}"),
        format!("{:?}", config.dpop_key()),
    ] {
        assert!(!out.contains(&pem_body[..20]), "{out}");
        assert!(!out.contains("BEGIN"), "{out}");
    }
    assert!(format!("{:?}", config.dpop_key()).contains("redacted"));
    let err = Config::builder(emu.issuer_url(), emu.client_id())
        .client_secret("s")
        .dpop(include_str!("../data/client_keys/rsa.pem"))
        .secret(SECRET)
        .build()
        .unwrap_err();
    assert_eq!(err.field, "dpop");
    assert!(!err.to_string().contains("MII"), "{err}");
}
