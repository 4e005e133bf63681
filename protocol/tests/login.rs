//! The pure parts of interactive login: authorization parameters, PKCE, callback parsing.

use auth0_server_protocol::__internals::b64;
use auth0_server_protocol::config::Config;
use auth0_server_protocol::login::{
    LoginError, LoginSecrets, StartLoginOptions, authorization_params, authorization_url,
    code_challenge, parse_callback,
};
use auth0_server_protocol::time::UnixTime;
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

fn config() -> Config {
    Config::builder("tenant.auth0.com", "client-1")
        .client_secret("s")
        .secret("0123456789abcdef0123456789abcdef")
        .redirect_uri("https://app.example.com/callback")
        .audience("https://api.example.com")
        .authorization_param("prompt", "consent")
        .build()
        .unwrap()
}

fn secrets() -> LoginSecrets {
    LoginSecrets::from_random(&[7u8; 64]).unwrap()
}

#[test]
fn pkce_challenge_matches_rfc7636_appendix_b() {
    assert_eq!(
        code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}

#[test]
fn url_carries_sdk_params_and_per_call_params_win() {
    let options = StartLoginOptions::new()
        .param("prompt", "login")
        .param("audience", "https://other.example.com");
    let req =
        authorization_params(&config(), &options, &secrets(), UnixTime::from_secs(100)).unwrap();
    let url = authorization_url("https://tenant.auth0.com/authorize", &req.params).unwrap();
    let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "client-1");
    assert_eq!(q["prompt"], "login");
    assert_eq!(q["audience"], "https://other.example.com");
    assert_eq!(q["redirect_uri"], "https://app.example.com/callback");
    assert_eq!(q["scope"], "openid profile email offline_access");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(
        q["code_challenge"],
        code_challenge(secrets().code_verifier.expose())
    );
    assert_eq!(q["state"], secrets().state);
    assert_eq!(q["nonce"], secrets().nonce);
    assert_eq!(
        req.transaction.audience.as_deref(),
        Some("https://other.example.com")
    );
    assert_eq!(
        req.transaction.nonce.as_deref(),
        Some(secrets().nonce.as_str())
    );
}

#[test]
fn reserved_params_and_missing_redirect_uri_are_refused() {
    let err = authorization_params(
        &config(),
        &StartLoginOptions::new().param("state", "x"),
        &secrets(),
        UnixTime::EPOCH,
    )
    .unwrap_err();
    assert_eq!(err.code(), "invalid_parameter");
    let no_redirect = Config::builder("t.auth0.com", "c")
        .client_secret("s")
        .secret("0123456789abcdef0123456789abcdef")
        .build()
        .unwrap();
    let err = authorization_params(
        &no_redirect,
        &StartLoginOptions::new(),
        &secrets(),
        UnixTime::EPOCH,
    )
    .unwrap_err();
    assert_eq!(err, LoginError::MissingRedirectUri);
}

#[test]
fn scope_always_contains_openid() {
    let options = StartLoginOptions::new().param("scope", "read:x offline_access");
    let req = authorization_params(&config(), &options, &secrets(), UnixTime::EPOCH).unwrap();
    let scope = &req.params.iter().find(|(k, _)| k == "scope").unwrap().1;
    assert_eq!(scope, "openid read:x offline_access");
}

#[test]
fn callback_parsing() {
    let cb = parse_callback("https://app/cb?code=abc&state=xyz").unwrap();
    assert_eq!(
        (cb.code.as_deref(), cb.state.as_deref()),
        (Some("abc"), Some("xyz"))
    );
    let cb = parse_callback("/cb?error=access_denied&error_description=nope&state=s").unwrap();
    assert_eq!(cb.error.as_deref(), Some("access_denied"));
    assert_eq!(
        parse_callback("/cb?state=a&state=b").unwrap_err().code(),
        "invalid_callback"
    );
    assert_eq!(
        parse_callback(&"a".repeat(20_000)).unwrap_err().code(),
        "invalid_callback"
    );
    assert!(parse_callback("http://[::1").is_err());
}

fn param_name() -> impl Strategy<Value = String> {
    "[a-z_]{1,12}".prop_filter("not reserved", |k| {
        ![
            "client_id",
            "response_type",
            "code_challenge",
            "code_challenge_method",
            "state",
            "nonce",
            "scope",
            "redirect_uri",
            "audience",
        ]
        .contains(&k.as_str())
    })
}

proptest! {
    #[test]
    fn authorization_url_round_trips_every_parameter(
        per_call in proptest::collection::btree_map(param_name(), "\\PC{0,20}", 0..6),
        random in proptest::collection::vec(any::<u8>(), 64),
    ) {
        let secrets = LoginSecrets::from_random(&random).unwrap();
        let mut options = StartLoginOptions::new();
        for (k, v) in &per_call { options = options.param(k.clone(), v.clone()); }
        let req = authorization_params(&config(), &options, &secrets, UnixTime::EPOCH).unwrap();
        let url = authorization_url("https://tenant.auth0.com/authorize", &req.params).unwrap();
        let parsed: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        prop_assert_eq!(&parsed, &req.params);
        let q: BTreeMap<String, String> = parsed.into_iter().collect();
        for (k, v) in &per_call { prop_assert_eq!(&q[k], v); }
        if !per_call.contains_key("prompt") { prop_assert_eq!(&q["prompt"], "consent"); }
        let expected = b64::encode(&Sha256::digest(secrets.code_verifier.expose().as_bytes()));
        prop_assert_eq!(&q["code_challenge"], &expected);
        prop_assert_eq!(secrets.code_verifier.expose().len(), 43);
    }

    #[test]
    fn callback_parser_never_panics(s in "\\PC{0,200}") {
        let _ = parse_callback(&s);
    }
}

mod complete_login {
    //! `complete_interactive_login` driven by hand: exactly which effects, in which order.

    use auth0_server_protocol::__internals::b64;
    use auth0_server_protocol::Core;
    use auth0_server_protocol::discovery::{CachedMetadata, Metadata};
    use auth0_server_protocol::effect::{CachedJwks, Effect, Input, Operation, Step};
    use auth0_server_protocol::jose::Jwks;
    use auth0_server_protocol::secret::Secret;
    use auth0_server_protocol::session::StateData;
    use auth0_server_protocol::time::UnixTime;
    use auth0_server_protocol::transaction::TransactionData;
    use rsa::pkcs1v15::SigningKey;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    use rsa::traits::PublicKeyParts;
    use rsa::{RsaPrivateKey, sha2::Sha256};
    use serde_json::{Value, json};
    use std::sync::Arc;

    const NOW: u64 = 1_800_000_000;

    fn key(pem: &str) -> RsaPrivateKey {
        RsaPrivateKey::from_pkcs8_pem(pem).unwrap()
    }

    fn jwks_json(kid: &str, k: &RsaPrivateKey) -> Vec<u8> {
        let p = k.to_public_key();
        json!({"keys": [{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": b64::encode(&p.n().to_bytes_be()), "e": b64::encode(&p.e().to_bytes_be())}]})
        .to_string()
        .into_bytes()
    }

    fn id_token(kid: &str, k: &RsaPrivateKey, claims: Value) -> String {
        let header = b64::encode(
            json!({"alg": "RS256", "kid": kid, "typ": "JWT"})
                .to_string()
                .as_bytes(),
        );
        let payload = b64::encode(claims.to_string().as_bytes());
        let input = format!("{header}.{payload}");
        let sig = SigningKey::<Sha256>::new(k.clone()).sign(input.as_bytes());
        format!("{input}.{}", b64::encode(&sig.to_bytes()))
    }

    fn claims(nonce: &str) -> Value {
        json!({"iss": "https://tenant.auth0.com/", "aud": "client-1", "sub": "auth0|u1", "sid": "sid-1",
            "iat": NOW, "exp": NOW + 600, "nonce": nonce, "email": "u1@example.com"})
    }

    fn core() -> Core {
        Core::new(super::config())
    }

    fn metadata() -> CachedMetadata {
        CachedMetadata {
            metadata: Arc::new(Metadata {
                issuer: "https://tenant.auth0.com/".into(),
                authorization_endpoint: "https://tenant.auth0.com/authorize".into(),
                token_endpoint: "https://tenant.auth0.com/oauth/token".into(),
                jwks_uri: Some("https://tenant.auth0.com/.well-known/jwks.json".into()),
                pushed_authorization_request_endpoint: None,
                end_session_endpoint: None,
                revocation_endpoint: None,
                ..Default::default()
            }),
            fetched_at: UnixTime::from_secs(NOW),
        }
    }

    fn transaction() -> TransactionData {
        TransactionData {
            code_verifier: Some(Secret::new("v".repeat(43))),
            state: Some("s1".into()),
            nonce: Some("n1".into()),
            app_state: Some(json!({"return_to": "/profile"})),
            audience: Some("https://api.example.com".into()),
            scope: Some("openid profile offline_access".into()),
            redirect_uri: Some("https://app.example.com/callback".into()),
            organization: None,
            max_age: None,
            created_at: NOW,
            link: None,
            domain: None,
            connect: None,
        }
    }

    fn token_response(id_token: &str) -> http::Response<Vec<u8>> {
        let body = json!({"access_token": "at-1", "refresh_token": "rt-1", "id_token": id_token,
            "expires_in": 3600, "scope": "openid profile offline_access", "token_type": "Bearer"});
        http::Response::new(body.to_string().into_bytes())
    }

    /// The result of an operation, the names of its effects, and the sessions it saved.
    type Driven<O> = (
        Result<<O as Operation>::Output, <O as Operation>::Error>,
        Vec<String>,
        Vec<StateData>,
    );

    /// Drives `op`, answering each effect with `answer`; returns the result, the effect names
    /// and the sessions saved.
    fn drive<O: Operation>(mut op: O, mut answer: impl FnMut(&Effect) -> Input) -> Driven<O> {
        let (mut names, mut saved, mut input) = (Vec::new(), Vec::new(), Input::Start);
        for _ in 0..32 {
            match op.step(input, UnixTime::from_secs(NOW)) {
                Step::Done(r) => return (r, names, saved),
                Step::Effect(e) => {
                    let name = format!("{e:?}");
                    names.push(name.split(['(', ' ']).next().unwrap_or_default().to_owned());
                    input = answer(&e);
                    if let Effect::SaveSession(s) = e {
                        saved.push(*s);
                    }
                }
            }
        }
        panic!("operation did not finish: {names:?}");
    }

    fn answers(
        id_token: String,
        cached_jwks: Option<CachedJwks>,
        fresh_jwks: Vec<u8>,
    ) -> impl FnMut(&Effect) -> Input {
        move |e| match e {
            Effect::LoadTransaction { key } => {
                assert_eq!(key, "_a0_tx.s1");
                Input::Transaction(Some(transaction()))
            }
            Effect::LoadMetadata => Input::Metadata(Some(metadata())),
            Effect::LoadJwks => Input::Jwks(cached_jwks.clone()),
            Effect::Http(req) if req.request.uri().path() == "/oauth/token" => {
                let form: std::collections::BTreeMap<String, String> =
                    url::form_urlencoded::parse(req.request.body())
                        .into_owned()
                        .collect();
                assert_eq!(form["grant_type"], "authorization_code");
                assert_eq!(form["code"], "c1");
                assert_eq!(form["code_verifier"], "v".repeat(43));
                assert_eq!(form["redirect_uri"], "https://app.example.com/callback");
                Input::Http(token_response(&id_token))
            }
            Effect::Http(_) => Input::Http(http::Response::new(fresh_jwks.clone())),
            _ => Input::Done,
        }
    }

    /// IPSIE: the ID token's `session_expiry` caps the session; one already reached at login
    /// (within the 30 s leeway) creates no session and forgets the transaction.
    #[test]
    fn the_id_tokens_session_expiry_caps_the_session_and_a_reached_one_refuses_it() {
        let a = key(include_str!("data/rs256-a.pem"));
        let with = |expiry: Value| {
            let mut c = claims("n1");
            c["session_expiry"] = expiry;
            drive(
                core().complete_interactive_login("/callback?code=c1&state=s1"),
                answers(id_token("a", &a, c), None, jwks_json("a", &a)),
            )
        };
        let (result, _, saved) = with(json!(NOW + 3600));
        result.unwrap();
        assert_eq!(saved[0].internal.session_expires_at, Some(NOW + 3600));
        let (result, names, saved) = with(json!(NOW + 30));
        assert_eq!(result.unwrap_err().code(), "session_expired");
        assert!(saved.is_empty());
        assert_eq!(names.last().map(String::as_str), Some("DeleteTransaction"));
        // Not a plausible ceiling (a boolean, a float, zero, 10^10 and more): no ceiling, as
        // Auth0's SDKs.
        for odd in [
            json!(true),
            json!(1.5e9),
            json!(0),
            json!(10_000_000_000u64),
        ] {
            let (result, _, saved) = with(odd);
            result.unwrap();
            assert_eq!(saved[0].internal.session_expires_at, None);
        }
    }

    #[test]
    fn a_valid_callback_replaces_the_session_then_forgets_the_transaction() {
        let a = key(include_str!("data/rs256-a.pem"));
        let token = id_token("a", &a, claims("n1"));
        let (result, names, saved) = drive(
            core().complete_interactive_login("/callback?code=c1&state=s1"),
            answers(token.clone(), None, jwks_json("a", &a)),
        );
        let result = result.unwrap();
        assert_eq!(result.app_state, Some(json!({"return_to": "/profile"})));
        assert_eq!(
            names,
            [
                "LoadTransaction",
                "LoadMetadata",
                "Http",
                "LoadJwks",
                "Http",
                "StoreJwks",
                "DeleteSession",
                "SaveSession",
                "DeleteTransaction"
            ]
        );
        let s = &saved[0];
        assert_eq!(s.sub(), Some("auth0|u1"));
        assert_eq!(
            s.id_token.as_ref().map(Secret::expose),
            Some(token.as_str())
        );
        assert_eq!(s.refresh_token.as_ref().map(Secret::expose), Some("rt-1"));
        assert_eq!(s.token_sets.len(), 1);
        assert_eq!(s.token_sets[0].audience, "https://api.example.com");
        assert_eq!(s.token_sets[0].expires_at, NOW + 3600);
        assert_eq!(
            (s.internal.sid.as_str(), s.internal.created_at),
            ("sid-1", NOW)
        );
    }

    #[test]
    fn an_unknown_kid_refetches_the_jwks_once_then_fails_without_a_session() {
        let (a, b) = (
            key(include_str!("data/rs256-a.pem")),
            key(include_str!("data/rs256-b.pem")),
        );
        let token = id_token("a", &a, claims("n1"));
        let cached = CachedJwks {
            jwks: Jwks::from_slice(&jwks_json("b", &b)).unwrap(),
            fetched_at: UnixTime::from_secs(NOW),
        };
        let (result, names, saved) = drive(
            core().complete_interactive_login("/callback?code=c1&state=s1"),
            answers(token, Some(cached), jwks_json("b", &b)),
        );
        let err = result.unwrap_err();
        assert_eq!(err.code(), "invalid_id_token");
        assert_eq!(
            err.id_token_error().map(|e| e.code().as_str()),
            Some("unknown_kid")
        );
        assert_eq!(
            names.iter().filter(|n| *n == "Http").count(),
            2,
            "token + one JWKS refetch: {names:?}"
        );
        assert!(
            saved.is_empty() && !names.contains(&"DeleteSession".to_owned()),
            "{names:?}"
        );
        assert_eq!(names.last().map(String::as_str), Some("DeleteTransaction"));
    }

    #[test]
    fn a_rotated_key_is_found_by_the_one_refetch() {
        let (a, b) = (
            key(include_str!("data/rs256-a.pem")),
            key(include_str!("data/rs256-b.pem")),
        );
        let token = id_token("b", &b, claims("n1"));
        let cached = CachedJwks {
            jwks: Jwks::from_slice(&jwks_json("a", &a)).unwrap(),
            fetched_at: UnixTime::from_secs(NOW),
        };
        let (result, _, saved) = drive(
            core().complete_interactive_login("/callback?code=c1&state=s1"),
            answers(token, Some(cached), jwks_json("b", &b)),
        );
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(saved.len(), 1);
    }

    #[test]
    fn a_logout_token_with_an_unknown_kid_refetches_the_jwks_only_after_a_cooldown() {
        let (a, b) = (
            key(include_str!("data/rs256-a.pem")),
            key(include_str!("data/rs256-b.pem")),
        );
        let token = id_token(
            "b",
            &b,
            json!({"iss": "https://tenant.auth0.com/", "aud": "client-1", "iat": NOW, "exp": NOW + 120, "jti": "j1", "sid": "sid-1",
                "events": {"http://schemas.openid.net/event/backchannel-logout": {}}}),
        );
        // Fetched 5 s ago: a forged token naming an unknown key costs the tenant no request.
        // Fetched 31 s ago: the tenant may have rotated its keys; look once.
        for (age, refetches) in [(5, false), (31, true)] {
            let cached = CachedJwks {
                jwks: Jwks::from_slice(&jwks_json("a", &a)).unwrap(),
                fetched_at: UnixTime::from_secs(NOW - age),
            };
            let fresh = jwks_json("b", &b);
            let (result, names, _) = drive(core().handle_backchannel_logout(&token), |e| match e {
                Effect::LoadMetadata => Input::Metadata(Some(metadata())),
                Effect::LoadJwks => Input::Jwks(Some(cached.clone())),
                Effect::Http(_) => Input::Http(http::Response::new(fresh.clone())),
                Effect::RecordLogoutTokenId { .. } => {
                    Input::LogoutTokenId(auth0_server_protocol::effect::JtiRecord::FirstSeen)
                }
                _ => Input::Done,
            });
            let fetched = names.iter().filter(|n| *n == "Http").count();
            if refetches {
                assert_eq!(fetched, 1, "{names:?}");
                assert_eq!(result.unwrap().sid.as_deref(), Some("sid-1"));
            } else {
                assert_eq!(fetched, 0, "{names:?}");
                assert_eq!(
                    result.unwrap_err().token_error().map(|e| e.code().as_str()),
                    Some("unknown_kid")
                );
            }
        }
    }

    #[test]
    fn a_wrong_nonce_writes_no_session() {
        let a = key(include_str!("data/rs256-a.pem"));
        let token = id_token("a", &a, claims("other"));
        let (result, names, saved) = drive(
            core().complete_interactive_login("/callback?code=c1&state=s1"),
            answers(token, None, jwks_json("a", &a)),
        );
        assert_eq!(
            result
                .unwrap_err()
                .id_token_error()
                .map(|e| e.code().as_str()),
            Some("invalid_nonce")
        );
        assert!(saved.is_empty(), "{names:?}");
    }
}

mod logout {
    //! `logout`: the URL, the session deletion, and best-effort revocation.

    use auth0_server_protocol::Core;
    use auth0_server_protocol::discovery::{CachedMetadata, Metadata};
    use auth0_server_protocol::effect::{Effect, Input, Operation, Step};
    use auth0_server_protocol::logout::LogoutOptions;
    use auth0_server_protocol::secret::Secret;
    use auth0_server_protocol::session::StateData;
    use auth0_server_protocol::time::UnixTime;
    use std::sync::Arc;

    fn metadata() -> CachedMetadata {
        CachedMetadata {
            metadata: Arc::new(Metadata {
                issuer: "https://tenant.auth0.com/".into(),
                authorization_endpoint: "https://tenant.auth0.com/authorize".into(),
                token_endpoint: "https://tenant.auth0.com/oauth/token".into(),
                jwks_uri: None,
                pushed_authorization_request_endpoint: None,
                end_session_endpoint: Some("https://tenant.auth0.com/oidc/logout".into()),
                revocation_endpoint: Some("https://tenant.auth0.com/oauth/revoke".into()),
                ..Default::default()
            }),
            fetched_at: UnixTime::from_secs(100),
        }
    }

    /// Runs a logout; the revocation endpoint answers `revoke_status`. Returns the URL, the
    /// effect names and the revocation request's form.
    fn run(
        options: LogoutOptions,
        revoke_status: u16,
    ) -> (url::Url, Vec<String>, Vec<(String, String)>) {
        let mut op = Core::new(super::config()).logout(options);
        let (mut input, mut names, mut form) = (Input::Start, Vec::new(), Vec::new());
        loop {
            match op.step(input, UnixTime::from_secs(100)) {
                Step::Done(r) => return (r.unwrap(), names, form),
                Step::Effect(e) => {
                    names.push(
                        format!("{e:?}")
                            .split(['(', ' '])
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                    input = match e {
                        Effect::LoadSession => {
                            Input::Session(Some(std::sync::Arc::new(StateData {
                                refresh_token: Some(Secret::new("rt-1")),
                                id_token: Some(Secret::new("it-1")),
                                ..Default::default()
                            })))
                        }
                        Effect::LoadMetadata => Input::Metadata(Some(metadata())),
                        Effect::Http(req) => {
                            assert_eq!(req.request.uri(), "https://tenant.auth0.com/oauth/revoke");
                            form = url::form_urlencoded::parse(req.request.body())
                                .into_owned()
                                .collect();
                            Input::Http(
                                http::Response::builder()
                                    .status(revoke_status)
                                    .body(Vec::new())
                                    .unwrap(),
                            )
                        }
                        _ => Input::Done,
                    };
                }
            }
        }
    }

    #[test]
    fn v2_logout_needs_no_network() {
        let (url, names, _) = run(
            LogoutOptions::return_to("https://app.example.com/")
                .endpoint(auth0_server_protocol::logout::LogoutEndpoint::Auth0V2),
            200,
        );
        assert_eq!(
            url.as_str(),
            "https://tenant.auth0.com/v2/logout?client_id=client-1&returnTo=https%3A%2F%2Fapp.example.com%2F"
        );
        assert_eq!(names, ["LoadSession", "DeleteSession"]);
    }

    #[test]
    fn by_default_logout_follows_the_advertised_end_session_endpoint() {
        let (url, names, _) = run(LogoutOptions::return_to("https://app.example.com/"), 200);
        assert_eq!(url.path(), "/oidc/logout");
        let q: std::collections::BTreeMap<String, String> =
            url.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], "client-1");
        assert_eq!(q["id_token_hint"], "it-1");
        assert_eq!(q["post_logout_redirect_uri"], "https://app.example.com/");
        assert_eq!(names, ["LoadSession", "LoadMetadata", "DeleteSession"]);
    }

    #[test]
    fn oidc_logout_carries_the_id_token_hint() {
        let (url, _, _) = run(
            LogoutOptions::return_to("https://app.example.com/").oidc_logout(true),
            200,
        );
        let q: std::collections::BTreeMap<String, String> =
            url.query_pairs().into_owned().collect();
        assert_eq!(url.path(), "/oidc/logout");
        assert_eq!(q["post_logout_redirect_uri"], "https://app.example.com/");
        assert_eq!(q["id_token_hint"], "it-1");
    }

    #[test]
    fn revocation_is_sent_and_a_failure_still_ends_the_session() {
        for status in [200, 503] {
            let (_, names, form) = run(LogoutOptions::default().revoke_refresh_token(true), status);
            assert_eq!(
                names,
                ["LoadSession", "LoadMetadata", "Http", "DeleteSession"],
                "status {status}"
            );
            assert!(form.contains(&("token".into(), "rt-1".into())));
            assert!(form.contains(&("token_type_hint".into(), "refresh_token".into())));
        }
    }
}

mod account_linking {
    use auth0_server_protocol::login::LinkUserOptions;
    use auth0_server_protocol::login::link::{LinkAction, link_login_options, merge_linked};
    use auth0_server_protocol::secret::Secret;
    use auth0_server_protocol::session::{Internal, StateData, TokenSet};
    use auth0_server_protocol::time::UnixTime;
    use proptest::prelude::*;

    fn set(audience: &str, token: &str) -> TokenSet {
        TokenSet {
            audience: audience.into(),
            access_token: Secret::new(token),
            scope: Some("read".into()),
            expires_at: 2_000,
            requested_scope: None,
            token_type: Default::default(),
        }
    }

    #[test]
    fn the_link_flow_sets_its_own_parameters_and_refuses_them_from_the_caller() {
        let login = link_login_options(
            LinkAction::Link,
            &LinkUserOptions::new("google-oauth2").connection_scope("calendar"),
            "the-id-token",
        )
        .unwrap();
        let get = |n: &str| {
            login
                .params
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("scope"), Some("openid link_account offline_access"));
        assert_eq!(get("id_token_hint"), Some("the-id-token"));
        assert_eq!(get("requested_connection"), Some("google-oauth2"));
        assert_eq!(get("requested_connection_scope"), Some("calendar"));
        let unlink =
            link_login_options(LinkAction::Unlink, &LinkUserOptions::new("github"), "t").unwrap();
        assert!(
            unlink
                .params
                .iter()
                .any(|(k, v)| k == "scope" && v.contains("unlink_account"))
        );
        for name in [
            "scope",
            "id_token_hint",
            "requested_connection",
            "requested_connection_scope",
        ] {
            let e = link_login_options(
                LinkAction::Link,
                &LinkUserOptions::new("github").param(name, "x"),
                "t",
            )
            .unwrap_err();
            assert_eq!(e.code(), "invalid_parameter", "{name}");
        }
        assert!(link_login_options(LinkAction::Link, &LinkUserOptions::new(""), "t").is_err());
    }

    proptest! {
        /// A merge keeps the session (id, creation, the other APIs' token sets), takes the
        /// new user and ID token, keeps the refresh token unless a new one came, and stores
        /// the answer's token set.
        #[test]
        fn a_merge_keeps_the_session_and_takes_the_answer(
            others in proptest::collection::vec("[a-z]{1,6}", 0..4),
            rotated in proptest::bool::ANY,
        ) {
            let session = StateData {
                user: Some(serde_json::Map::new()),
                id_token: Some(Secret::new("old-id")),
                refresh_token: Some(Secret::new("old-rt")),
                token_sets: others.iter().map(|a| set(&format!("https://{a}/"), "at")).collect(),
                connection_token_sets: Vec::new(),
                internal: Internal {
                    sid: "sid-1".into(),
                    created_at: 1_000,
                    last_active_at: Some(1_100),
                    extra: Default::default(),
                    session_expires_at: None,
                },
                extra: Default::default(),
            };
            let mut claims = serde_json::Map::new();
            claims.insert("sub".into(), "auth0|u".into());
            let merged = merge_linked(
                session.clone(),
                claims.clone(),
                Some(Secret::new("new-id")),
                rotated.then(|| Secret::new("new-rt")),
                Some(set("https://linked/", "new-at")),
                Some(UnixTime::from_secs(9_000)),
            );
            prop_assert_eq!(&merged.internal.sid, "sid-1");
            prop_assert_eq!(merged.internal.created_at, 1_000);
            prop_assert_eq!(merged.user.as_ref(), Some(&claims));
            prop_assert_eq!(merged.id_token.as_ref().map(Secret::expose), Some("new-id"));
            let rt = if rotated { "new-rt" } else { "old-rt" };
            prop_assert_eq!(merged.refresh_token.as_ref().map(Secret::expose), Some(rt));
            for s in &session.token_sets {
                prop_assert!(merged.token_sets.iter().any(|m| m.audience == s.audience));
            }
            prop_assert!(merged.token_sets.iter().any(|m| m.audience == "https://linked/"));
            prop_assert_eq!(merged.internal.session_expires_at, Some(9_000));
        }
    }
}
