//! Inputs found by the fuzz targets in `fuzz/` (each kept in `fuzz/regressions/` too, so
//! `cargo +nightly fuzz run <target> fuzz/regressions/<file>` replays it), and the resource
//! limits every parser of outside data enforces: too large is a typed error, deep JSON
//! nesting is a typed error (never a stack overflow), nothing panics.

use auth0_server_protocol::__internals::jwk::{Jwks, MAX_JWKS_LEN};
use auth0_server_protocol::__internals::jws::unverified_claims;
use auth0_server_protocol::__internals::jws::{Jws, MAX_JWS_LEN};
use auth0_server_protocol::config::Config;
use auth0_server_protocol::discovery::parse_metadata;
use auth0_server_protocol::jose::jwe::{JweKey, MAX_JWE_LEN, decrypt};
use auth0_server_protocol::login::{LoginError, MAX_CALLBACK_URL, parse_callback};
use auth0_server_protocol::session::{MAX_SESSION_JSON, SessionDecodeError, StateData};
use auth0_server_protocol::token_endpoint::{
    MAX_RESPONSE_BODY, ResponseError, parse_error_body, parse_token_response,
};

fn config() -> Config {
    Config::builder("tenant.auth0.com", "client-id")
        .client_secret("client-secret")
        .secret("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        .build()
        .expect("valid configuration")
}

fn response(status: u16, body: impl Into<Vec<u8>>) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .body(body.into())
        .expect("valid response")
}

/// Found by the `discovery` target (fuzz/regressions/discovery-endpoint-rejected-by-http-uri.json):
/// `url` accepts `https://tenant.auth0.com{/oauth/token`, `http::Uri` does not, so the refresh
/// request built from it silently became an empty `GET /`. Such metadata is now refused.
#[test]
fn discovery_endpoint_that_http_cannot_carry_is_refused() {
    let body = br#"{"issuer":"https://tenant.auth0.com/","authorization_endpoint":"https://tenant.authR.com/authorize","token_endpoint":"https://tenant.auth0.com{/oauth/token","jwks_uri":"https://tenant.auth0.com/.well-known/jwks.json"}"#;
    match parse_metadata(&config(), &response(200, body.to_vec())) {
        Err(ResponseError::Invalid { status: 200, .. }) => {}
        other => panic!("expected an invalid-metadata error, got {other:?}"),
    }
    // The same document with a well-formed endpoint is accepted.
    let fixed = String::from_utf8_lossy(body).replace("com{/", "com/");
    assert!(parse_metadata(&config(), &response(200, fixed.clone())).is_ok());
    for bad in [
        "https://tenant.auth0.com/oauth/token with space",
        "https://tenant.auth0.com/oauth/\"token\"",
        "https://tenant.auth0.com/oauth/token\u{7f}",
    ] {
        let doc = fixed.replace("https://tenant.auth0.com/oauth/token", bad);
        assert!(
            parse_metadata(&config(), &response(200, doc)).is_err(),
            "{bad:?}"
        );
    }
}

/// Found by the `session_json` target (fuzz/regressions/session-json-float-round-trip.json): a
/// user claim holding a number too large for an integer (a 56-digit value) drifted by one ulp
/// each time the session was written and read again, because serde_json's default float parser
/// is not exact. The workspace enables `float_roundtrip`: a session's JSON is now a fixed point.
#[test]
fn a_session_with_large_numbers_survives_its_own_round_trip() {
    let input = include_bytes!("../../fuzz/regressions/session-json-float-round-trip.json");
    let first = StateData::from_json(input).expect("a session").to_json();
    let second = StateData::from_json(&first)
        .expect("reads what it wrote")
        .to_json();
    assert_eq!(
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&second)
    );
    for n in [
        "1.0000000000000002",
        "9.999999999999999e55",
        "123456789012345678901234567890",
    ] {
        let json = format!(r#"{{"user":{{"sub":"u","n":{n}}}}}"#);
        let once = StateData::from_json(json.as_bytes()).unwrap().to_json();
        let twice = StateData::from_json(&once).unwrap().to_json();
        assert_eq!(once, twice, "{n}");
    }
}

/// A JSON value nested `depth` levels deep.
fn nested(depth: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(depth * 2 + 2);
    v.extend(std::iter::repeat_n(b'[', depth));
    v.extend(std::iter::repeat_n(b']', depth));
    v
}

/// An object whose member `key` is nested `depth` levels deep.
fn nested_member(key: &str, depth: usize) -> Vec<u8> {
    let mut v = format!("{{\"{key}\":").into_bytes();
    v.extend(nested(depth));
    v.push(b'}');
    v
}

#[test]
fn token_endpoint_bodies_are_bounded() {
    let huge = vec![b' '; MAX_RESPONSE_BODY + 1];
    for status in [200, 400, 500] {
        assert_eq!(
            parse_token_response(&response(status, huge.clone())),
            Err(ResponseError::TooLarge { status })
        );
        assert_eq!(
            parse_error_body(status, &huge),
            ResponseError::TooLarge { status }
        );
    }
    // Deep nesting is a typed error, not a stack overflow.
    for body in [
        nested(100_000),
        nested_member("access_token", 100_000),
        nested_member("mfa_requirements", 100_000),
        nested_member("authorization_details", 100_000),
    ] {
        for status in [200, 403] {
            assert!(matches!(
                parse_token_response(&response(status, body.clone())),
                Err(ResponseError::Invalid { .. })
            ));
        }
    }
    // Nesting within serde_json's limit is accepted where a value is free-form.
    let ok = [
        br#"{"access_token":"at","authorization_details":"#.to_vec(),
        nested(100),
        b"}".to_vec(),
    ]
    .concat();
    assert!(parse_token_response(&response(200, ok)).is_ok());
}

#[test]
fn discovery_bodies_are_bounded() {
    let huge = vec![b' '; MAX_RESPONSE_BODY + 1];
    assert_eq!(
        parse_metadata(&config(), &response(200, huge)),
        Err(ResponseError::TooLarge { status: 200 })
    );
    assert!(matches!(
        parse_metadata(&config(), &response(200, nested_member("issuer", 100_000))),
        Err(ResponseError::Invalid { .. })
    ));
}

#[test]
fn jose_inputs_are_bounded() {
    let huge_jwks = vec![b' '; MAX_JWKS_LEN + 1];
    assert_eq!(
        Jwks::from_slice(&huge_jwks).unwrap_err().code(),
        "too_large"
    );
    assert_eq!(
        Jwks::from_slice(&nested_member("keys", 100_000))
            .unwrap_err()
            .code(),
        "invalid_jwks"
    );
    assert_eq!(
        Jws::parse(&"a".repeat(MAX_JWS_LEN + 1)).unwrap_err().code(),
        "too_large"
    );
    let key = JweKey::derive(b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", b"_a0_session");
    assert_eq!(
        decrypt(&[key], &"a".repeat(MAX_JWE_LEN + 1))
            .unwrap_err()
            .code(),
        "too_large"
    );
    // A JWS whose payload is nested beyond serde_json's limit is malformed, not a crash.
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let deep = format!(
        "{}.{}.c2ln",
        b64(br#"{"alg":"RS256"}"#),
        b64(&nested_member("sub", 5_000))
    );
    assert_eq!(Jws::parse(&deep).unwrap_err().code(), "malformed_token");
    assert!(unverified_claims(&deep).is_none());
    assert!(unverified_claims(&"a.b.c".repeat(20_000)).is_none());
}

#[test]
fn sessions_and_callbacks_are_bounded() {
    let huge = vec![b' '; MAX_SESSION_JSON + 1];
    assert_eq!(
        StateData::from_json(&huge),
        Err(SessionDecodeError::TooLarge)
    );
    for json in [nested(100_000), nested_member("user", 100_000)] {
        assert!(matches!(
            StateData::from_json(&json),
            Err(SessionDecodeError::Invalid { .. })
        ));
    }
    let long = format!("/callback?code=x&state={}", "s".repeat(MAX_CALLBACK_URL));
    assert!(matches!(
        parse_callback(&long),
        Err(LoginError::InvalidCallback(_))
    ));
}
