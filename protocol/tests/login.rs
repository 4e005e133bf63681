//! The pure parts of interactive login: authorization parameters, PKCE, callback parsing.

use auth0_server_protocol::config::Config;
use auth0_server_protocol::jose::b64;
use auth0_server_protocol::login::{
    LoginError, LoginSecrets, StartLoginOptions, authorization_params, authorization_url,
    code_challenge, parse_callback,
};
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
    let req = authorization_params(&config(), &options, &secrets(), 100).unwrap();
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
        0,
    )
    .unwrap_err();
    assert_eq!(err.code(), "invalid_parameter");
    let no_redirect = Config::builder("t.auth0.com", "c")
        .client_secret("s")
        .secret("0123456789abcdef0123456789abcdef")
        .build()
        .unwrap();
    let err =
        authorization_params(&no_redirect, &StartLoginOptions::new(), &secrets(), 0).unwrap_err();
    assert_eq!(err, LoginError::MissingRedirectUri);
}

#[test]
fn scope_always_contains_openid() {
    let options = StartLoginOptions::new().param("scope", "read:x offline_access");
    let req = authorization_params(&config(), &options, &secrets(), 0).unwrap();
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
        let req = authorization_params(&config(), &options, &secrets, 0).unwrap();
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
