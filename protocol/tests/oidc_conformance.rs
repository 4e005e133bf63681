//! The checks a certified OpenID relying party makes (issue 14), one test per rule, each
//! failing without it — in the style of the OpenID Foundation's RP certification (Basic,
//! Config, Back-Channel Logout) and RFC 9700. The end-to-end counterparts against a real
//! provider shape are in `tests/tests/generic_provider.rs`.

mod common;

use auth0_server_protocol::__internals::claims::{
    IdTokenExpectations, LogoutTokenExpectations, logout_token_id, validate_id_token,
    validate_logout_token,
};
use auth0_server_protocol::__internals::jws::{AlgorithmPolicy, Jws};
use auth0_server_protocol::access_token::{AccessTokenError, AccessTokenRequest};
use auth0_server_protocol::discovery::Metadata;
use auth0_server_protocol::effect::{Effect, Input, JtiRecord, LogoutTokenClaims, Operation, Step};
use auth0_server_protocol::jose::{JoseError, Jwks};
use auth0_server_protocol::login::complete::check_callback_issuer;
use auth0_server_protocol::login::{
    LoginError, LoginSecrets, StartLoginOptions, authorization_params,
};
use auth0_server_protocol::logout::{BackchannelLogoutError, logout_token_selects};
use auth0_server_protocol::secret::Secret;
use auth0_server_protocol::session::{Internal, StateData};
use auth0_server_protocol::time::UnixTime;
use auth0_server_protocol::token_endpoint::{ResponseError, parse_token_response};
use base64::Engine;
use common::*;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use std::time::Duration;

const TOLERANCE: Duration = Duration::from_secs(60);
const BACKCHANNEL: &str = "http://schemas.openid.net/event/backchannel-logout";

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn id_claims(extra: Value) -> Map<String, Value> {
    let mut c = obj(json!({
        "iss": ISSUER, "sub": SUB, "aud": CLIENT_ID, "iat": NOW, "exp": NOW + 3600,
    }));
    c.extend(obj(extra));
    c
}

fn expect(max_age: Option<u64>) -> IdTokenExpectations<'static> {
    IdTokenExpectations {
        issuer: ISSUER,
        client_id: CLIENT_ID,
        nonce: None,
        max_age: max_age.map(Duration::from_secs),
        organization: None,
        now: UnixTime::from_secs(NOW),
        clock_tolerance: TOLERANCE,
    }
}

// --- ID token: nbf, azp, max_age / auth_time --------------------------------------------------

#[test]
fn an_id_token_with_nbf_in_the_future_is_refused() {
    let at = |nbf: u64| validate_id_token(&id_claims(json!({"nbf": nbf})), &expect(None));
    assert_eq!(at(NOW + 3600), Err(JoseError::NotYetValid));
    assert_eq!(at(NOW + 61), Err(JoseError::NotYetValid));
    assert_eq!(at(NOW + 60), Ok(()), "within the clock tolerance");
    assert_eq!(at(NOW - 10), Ok(()));
    let text = validate_id_token(&id_claims(json!({"nbf": "soon"})), &expect(None));
    assert_eq!(text.unwrap_err().code(), "token_not_yet_valid");
}

#[test]
fn an_id_token_with_a_foreign_azp_is_refused() {
    let r = validate_id_token(&id_claims(json!({"azp": "other-client"})), &expect(None));
    assert_eq!(r, Err(JoseError::InvalidAzp));
    let r = validate_id_token(&id_claims(json!({"azp": CLIENT_ID})), &expect(None));
    assert_eq!(r, Ok(()));
}

#[test]
fn a_stale_auth_time_is_refused_when_max_age_was_requested() {
    let with = |auth_time: Value| {
        validate_id_token(
            &id_claims(json!({"auth_time": auth_time})),
            &expect(Some(300)),
        )
    };
    assert_eq!(with(json!(NOW - 1000)), Err(JoseError::AuthTimeTooOld));
    assert_eq!(with(json!(NOW - 361)), Err(JoseError::AuthTimeTooOld));
    assert_eq!(with(json!(NOW - 359)), Ok(()), "max_age plus tolerance");
    assert_eq!(
        validate_id_token(&id_claims(json!({})), &expect(Some(300))),
        Err(JoseError::MissingAuthTime)
    );
    // Without max_age, auth_time is not required.
    assert_eq!(
        validate_id_token(&id_claims(json!({})), &expect(None)),
        Ok(())
    );
}

#[test]
fn max_age_travels_in_the_transaction() {
    let config = config_builder()
        .redirect_uri("https://app.example.com/callback")
        .build()
        .unwrap();
    let secrets = LoginSecrets::from_random(&[7u8; 64]).unwrap();
    let now = UnixTime::from_secs(NOW);
    let req = authorization_params(
        &config,
        &StartLoginOptions::new().param("max_age", "300"),
        &secrets,
        now,
    )
    .unwrap();
    assert_eq!(req.transaction.max_age, Some(300));
    let err = authorization_params(
        &config,
        &StartLoginOptions::new().param("max_age", "soon"),
        &secrets,
        now,
    )
    .unwrap_err();
    assert_eq!(err.code(), "invalid_parameter");
}

// --- RFC 9207: iss on the callback ------------------------------------------------------------

fn metadata_with_iss(advertised: bool) -> Metadata {
    Metadata {
        authorization_response_iss_parameter_supported: advertised,
        ..metadata()
    }
}

#[test]
fn a_callback_iss_of_another_issuer_is_refused() {
    let err = check_callback_issuer(&metadata_with_iss(false), Some("https://evil.example/"))
        .unwrap_err();
    assert_eq!(err.code(), "invalid_callback_issuer");
    assert!(
        err.to_string().contains(ISSUER),
        "names the expected issuer: {err}"
    );
    assert!(
        !err.to_string().contains("evil"),
        "the query value stays out: {err}"
    );
    let LoginError::InvalidCallbackIssuer { actual, .. } = err else {
        panic!()
    };
    assert_eq!(actual.as_deref(), Some("https://evil.example/"));
    assert!(check_callback_issuer(&metadata_with_iss(false), Some(ISSUER)).is_ok());
}

#[test]
fn a_callback_without_iss_is_refused_when_discovery_advertises_it() {
    let err = check_callback_issuer(&metadata_with_iss(true), None).unwrap_err();
    assert_eq!(err.code(), "invalid_callback_issuer");
    assert!(check_callback_issuer(&metadata_with_iss(false), None).is_ok());
    assert!(check_callback_issuer(&metadata_with_iss(true), Some(ISSUER)).is_ok());
}

// --- The ID token of a refresh ------------------------------------------------------------------

fn session() -> StateData {
    StateData {
        user: Some(user()),
        id_token: Some(Secret::new("old-id-token")),
        refresh_token: Some(Secret::new(REFRESH_TOKEN)),
        internal: Internal {
            sid: "sid-1".into(),
            created_at: NOW - 100,
            last_active_at: None,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn refresh(body: Value) -> (Result<(), AccessTokenError>, Recording) {
    let (r, rec) = Script::new()
        .session(Some(session()))
        .metadata(Some(cached_metadata(NOW, 10)))
        .jwks(Some(cached_jwks()))
        .http(json(
            if body.get("error").is_some() {
                400
            } else {
                200
            },
            &body.to_string(),
        ))
        .run(
            core(config_builder()).get_access_token(AccessTokenRequest::default()),
            NOW,
        );
    (r.map(|_| ()), rec)
}

#[test]
fn a_refreshed_id_token_for_another_client_saves_nothing() {
    for (case, claims, code) in [
        (
            "aud of another client",
            json!({"aud": "other-client"}),
            "invalid_id_token",
        ),
        (
            "azp of another client",
            json!({"aud": [CLIENT_ID, "other-client"], "azp": "other-client"}),
            "invalid_id_token",
        ),
        ("expired", json!({"exp": NOW - 3600}), "invalid_id_token"),
        (
            "another user",
            json!({"sub": "auth0|other"}),
            "session_mismatch",
        ),
    ] {
        let (r, rec) = refresh(json!({
            "access_token": "at", "token_type": "Bearer", "expires_in": 60,
            "refresh_token": ROTATED_REFRESH_TOKEN, "id_token": id_token(claims),
        }));
        assert_eq!(r.unwrap_err().code(), code, "{case}");
        assert!(rec.saved_sessions().is_empty(), "{case}: nothing saved");
    }
}

#[test]
fn an_unsigned_or_forged_refreshed_id_token_saves_nothing() {
    // What the SDK accepted before: claims read without a signature check.
    let (r, rec) = refresh(json!({
        "access_token": "at", "token_type": "Bearer", "expires_in": 60,
        "id_token": jwt(json!({"iss": ISSUER, "sub": SUB, "aud": CLIENT_ID, "iat": NOW, "exp": NOW + 60})),
    }));
    let err = r.unwrap_err();
    assert_eq!(err.code(), "invalid_id_token");
    assert!(
        matches!(
            err,
            AccessTokenError::InvalidIdToken(JoseError::InvalidSignature)
        ),
        "{err:?}"
    );
    assert!(rec.saved_sessions().is_empty());
}

#[test]
fn a_valid_refreshed_id_token_replaces_the_old_one() {
    let new_id = id_token(json!({"name": "Renamed"}));
    let (r, rec) = refresh(json!({
        "access_token": "at", "token_type": "Bearer", "expires_in": 60, "id_token": new_id,
    }));
    r.unwrap();
    let saved = rec.saved();
    assert_eq!(saved.id_token.as_ref().unwrap().expose(), new_id);
    assert_eq!(saved.user.as_ref().unwrap()["name"], "Renamed");
}

// --- Token responses ------------------------------------------------------------------------------

fn ok(body: Value) -> http::Response<Vec<u8>> {
    json(200, &body.to_string())
}

#[test]
fn a_token_type_other_than_bearer_is_refused() {
    for t in ["DPoP", "mac", ""] {
        let r = parse_token_response(&ok(json!({"access_token": "at", "token_type": t})));
        assert!(
            matches!(
                r,
                Err(ResponseError::Invalid {
                    reason: "token_type is not Bearer",
                    ..
                })
            ),
            "{t}: {r:?}"
        );
    }
    for t in ["Bearer", "bearer", "BEARER"] {
        assert!(parse_token_response(&ok(json!({"access_token": "at", "token_type": t}))).is_ok());
    }
}

#[test]
fn an_absurd_expires_in_is_an_error_not_a_huge_lifetime() {
    for bad in ["1e30", "-1", "3600.5", "\"soon\"", "true", "315360001"] {
        let body = format!(r#"{{"access_token":"at","token_type":"Bearer","expires_in":{bad}}}"#);
        let r = parse_token_response(&json(200, &body));
        assert!(
            matches!(r, Err(ResponseError::Invalid { .. })),
            "{bad}: {r:?}"
        );
    }
    for (good, secs) in [
        ("0", 0),
        ("3600", 3600),
        ("\"60\"", 60),
        ("315360000", 315_360_000),
    ] {
        let body = format!(r#"{{"access_token":"at","token_type":"Bearer","expires_in":{good}}}"#);
        assert_eq!(
            parse_token_response(&json(200, &body)).unwrap().expires_in,
            Some(secs)
        );
    }
}

proptest! {
    /// Any JSON number as expires_in: a value is accepted only when it is a whole number of
    /// seconds within the bound, and nothing panics.
    #[test]
    fn expires_in_is_accepted_only_within_bounds(n in any::<f64>()) {
        let body = json!({"access_token": "at", "expires_in": n}).to_string();
        if let Ok(r) = parse_token_response(&json(200, &body)) {
            let secs = r.expires_in.unwrap_or(0);
            prop_assert!(secs <= auth0_server_protocol::token_endpoint::MAX_EXPIRES_IN);
        }
    }
}

// --- Error text is safe to log ------------------------------------------------------------------

#[test]
fn crlf_in_error_description_cannot_forge_a_log_line() {
    let forged = "denied\r\n2026-12-01T00:00:00Z INFO admin logged in";
    let err = LoginError::Authorization {
        error: "access_denied\n".into(),
        error_description: Some(forged.into()),
    };
    let text = err.to_string();
    assert!(!text.contains('\n') && !text.contains('\r'), "{text}");
    assert!(text.contains("\\r\\n"), "{text}");
    let long = LoginError::Authorization {
        error: "e".into(),
        error_description: Some("x".repeat(100_000)),
    };
    assert!(long.to_string().len() < 1000, "server text is capped");
}

#[test]
fn an_echoed_refresh_token_is_redacted() {
    let (r, _) = refresh(json!({
        "error": "invalid_grant",
        "error_description": format!("refresh token {REFRESH_TOKEN} is revoked\r\nforged line"),
    }));
    let err = r.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains(REFRESH_TOKEN), "{text}");
    assert!(!err.to_string().contains('\n'), "{err}");
    let description = err
        .oauth_error()
        .unwrap()
        .error_description
        .clone()
        .unwrap();
    assert!(description.contains("[redacted]"), "{description}");
}

// --- Logout tokens ------------------------------------------------------------------------------

fn logout_claims(extra: Value) -> Map<String, Value> {
    let mut c = obj(json!({
        "iss": ISSUER, "aud": CLIENT_ID, "iat": NOW, "exp": NOW + 120, "jti": "jti-1",
        "sid": "sid-1", "events": { BACKCHANNEL: {} },
    }));
    for (k, v) in obj(extra) {
        if v.is_null() {
            c.remove(&k);
        } else {
            c.insert(k, v);
        }
    }
    c
}

fn logout_check(extra: Value) -> Result<LogoutTokenClaims, JoseError> {
    validate_logout_token(
        &logout_claims(extra),
        &LogoutTokenExpectations {
            issuer: ISSUER,
            client_id: CLIENT_ID,
            now: UnixTime::from_secs(NOW),
            clock_tolerance: TOLERANCE,
        },
    )
}

#[test]
fn a_logout_token_without_exp_is_refused() {
    assert_eq!(
        logout_check(json!({"exp": null})),
        Err(JoseError::MissingExp)
    );
    assert_eq!(
        logout_check(json!({"exp": NOW - 61})),
        Err(JoseError::TokenExpired)
    );
}

#[test]
fn a_logout_token_without_jti_is_refused() {
    for jti in [json!(null), json!(""), json!(7)] {
        let err = logout_check(json!({"jti": jti})).unwrap_err();
        assert_eq!(err.code(), "invalid_logout_token", "{jti}");
    }
    assert!(logout_check(json!({})).is_ok());
}

#[test]
fn a_logout_token_is_remembered_until_it_expires() {
    let id = logout_token_id(&logout_claims(json!({})), ISSUER, TOLERANCE).unwrap();
    assert_eq!(id.key, format!("{ISSUER} jti-1"));
    assert_eq!(id.until, UnixTime::from_secs(NOW + 120 + 60));
}

#[test]
fn a_logout_token_with_sid_and_a_mismatching_sub_ends_no_session() {
    let session = StateData {
        user: Some(user()),
        internal: Internal {
            sid: "sid-1".into(),
            created_at: NOW,
            last_active_at: None,
            ..Default::default()
        },
        ..Default::default()
    };
    let claims = |sub: Option<&str>, sid: Option<&str>| LogoutTokenClaims {
        iss: ISSUER.into(),
        sub: sub.map(str::to_owned),
        sid: sid.map(str::to_owned),
    };
    assert!(logout_token_selects(
        &claims(Some(SUB), Some("sid-1")),
        &session
    ));
    assert!(!logout_token_selects(
        &claims(Some("auth0|other"), Some("sid-1")),
        &session
    ));
    assert!(!logout_token_selects(
        &claims(Some(SUB), Some("sid-2")),
        &session
    ));
    assert!(logout_token_selects(&claims(None, Some("sid-1")), &session));
    assert!(logout_token_selects(&claims(Some(SUB), None), &session));
    assert!(!logout_token_selects(&claims(None, None), &session));
    let other_issuer = LogoutTokenClaims {
        iss: "https://other.example/".into(),
        ..claims(Some(SUB), Some("sid-1"))
    };
    assert!(!logout_token_selects(&other_issuer, &session));
}

/// Drives `handle_backchannel_logout` with a signed token; the replay record answers `jti`.
fn backchannel(
    token: &str,
    jti: JtiRecord,
) -> (
    Result<LogoutTokenClaims, BackchannelLogoutError>,
    Vec<String>,
) {
    let mut op = core(config_builder()).handle_backchannel_logout(token);
    let mut input = Input::Start;
    let mut names = Vec::new();
    for _ in 0..16 {
        match op.step(input, UnixTime::from_secs(NOW)) {
            Step::Done(r) => return (r, names),
            Step::Effect(e) => {
                names.push(
                    format!("{e:?}")
                        .split(['(', ' '])
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                );
                input = match e {
                    Effect::LoadMetadata => Input::Metadata(Some(cached_metadata(NOW, 1))),
                    Effect::LoadJwks => Input::Jwks(Some(cached_jwks())),
                    Effect::RecordLogoutTokenId { until, .. } => {
                        assert_eq!(until, UnixTime::from_secs(NOW + 120 + 60));
                        Input::LogoutTokenId(jti)
                    }
                    _ => Input::Done,
                };
            }
        }
    }
    panic!("did not finish: {names:?}")
}

#[test]
fn a_replayed_logout_token_ends_no_session() {
    let token = signed_jwt(&Value::Object(logout_claims(json!({}))));
    let (r, names) = backchannel(&token, JtiRecord::FirstSeen);
    assert_eq!(r.unwrap().sid.as_deref(), Some("sid-1"));
    assert_eq!(
        names.last().map(String::as_str),
        Some("DeleteSessionsByLogoutToken")
    );
    let (r, names) = backchannel(&token, JtiRecord::Replayed);
    assert_eq!(r.unwrap_err().code(), "logout_token_replayed");
    assert!(
        !names.iter().any(|n| n == "DeleteSessionsByLogoutToken"),
        "{names:?}"
    );
}

// --- Algorithms ---------------------------------------------------------------------------------

fn hs256(claims: &Value, secret: &[u8]) -> String {
    use hmac::Mac;
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

#[test]
fn hmac_is_refused_unless_hs256_is_configured() {
    let token = hs256(&json!({"sub": SUB}), CLIENT_SECRET.as_bytes());
    let jws = Jws::parse(&token).unwrap();
    let jwks = Jwks::default();
    assert_eq!(
        jws.verify(&jwks, &AlgorithmPolicy::default())
            .unwrap_err()
            .code(),
        "unsupported_algorithm"
    );
    let configured = AlgorithmPolicy {
        advertised: None,
        hs256_secret: Some(CLIENT_SECRET.as_bytes()),
    };
    assert_eq!(jws.verify(&jwks, &configured), Ok(()));
    let wrong = AlgorithmPolicy {
        hs256_secret: Some(b"another-secret"),
        ..configured
    };
    assert_eq!(jws.verify(&jwks, &wrong), Err(JoseError::InvalidSignature));
}

#[test]
fn none_is_never_accepted_and_advertised_algorithms_are_enforced() {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(br#"{"sub":"a"}"#));
    let jws = Jws::parse(&none).unwrap();
    let anything = AlgorithmPolicy {
        advertised: Some(&["none".to_owned(), "RS256".to_owned()]),
        hs256_secret: Some(b"s"),
    };
    assert_eq!(
        jws.verify(&cached_jwks().jwks, &anything)
            .unwrap_err()
            .code(),
        "unsupported_algorithm"
    );
    // A genuine RS256 token when the provider advertises PS256 only.
    let rs = signed_jwt(&json!({"sub": SUB}));
    let jws = Jws::parse(&rs).unwrap();
    let ps_only = ["PS256".to_owned()];
    let policy = AlgorithmPolicy {
        advertised: Some(&ps_only),
        hs256_secret: None,
    };
    assert_eq!(
        jws.verify(&cached_jwks().jwks, &policy).unwrap_err().code(),
        "unsupported_algorithm"
    );
    assert_eq!(
        jws.verify(&cached_jwks().jwks, &AlgorithmPolicy::default()),
        Ok(())
    );
}

// --- Authorization parameters -------------------------------------------------------------------

#[test]
fn repeated_resource_parameters_are_sent_in_order() {
    let config = config_builder()
        .redirect_uri("https://app.example.com/callback")
        .authorization_param("resource", "https://a.example/")
        .authorization_param("resource", "https://b.example/")
        .authorization_param("prompt", "login")
        .build()
        .unwrap();
    let secrets = LoginSecrets::from_random(&[1u8; 64]).unwrap();
    let now = UnixTime::from_secs(NOW);
    let values = |params: &[(String, String)], name: &str| -> Vec<String> {
        params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let req = authorization_params(&config, &StartLoginOptions::new(), &secrets, now).unwrap();
    assert_eq!(
        values(&req.params, "resource"),
        ["https://a.example/", "https://b.example/"]
    );
    // The call's values of a name replace the configured ones; other names stay.
    let call = StartLoginOptions::new()
        .param("resource", "https://c.example/")
        .param("resource", "https://d.example/");
    let req = authorization_params(&config, &call, &secrets, now).unwrap();
    assert_eq!(
        values(&req.params, "resource"),
        ["https://c.example/", "https://d.example/"]
    );
    assert_eq!(values(&req.params, "prompt"), ["login"]);
    // Reserved parameters stay protected.
    for reserved in [
        "state",
        "nonce",
        "code_challenge",
        "client_id",
        "response_type",
    ] {
        let err = authorization_params(
            &config,
            &StartLoginOptions::new().param(reserved, "x"),
            &secrets,
            now,
        )
        .unwrap_err();
        assert_eq!(err.code(), "invalid_parameter", "{reserved}");
    }
}

// --- ES256 and EdDSA ----------------------------------------------------------------------------

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

fn signing_input(alg: &str, kid: &str, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(json!({"alg": alg, "kid": kid}).to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// A P-256 key (fixed, so the test is deterministic) as a JWK, and an ES256 token it signs.
fn es256(claims: &Value) -> (Value, String) {
    use p256::ecdsa::signature::Signer;
    let key = p256::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap();
    let point = key.verifying_key().to_encoded_point(false);
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig", "alg": "ES256",
        "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
    });
    let input = signing_input("ES256", "ec-1", claims);
    let sig: p256::ecdsa::Signature = key.sign(input.as_bytes());
    (jwk, format!("{input}.{}", b64(&sig.to_bytes())))
}

/// An Ed25519 key (fixed) as a JWK, and an EdDSA token it signs.
fn eddsa(claims: &Value) -> (Value, String) {
    use ed25519_dalek::Signer;
    let key = ed25519_dalek::SigningKey::from_bytes(&[0x22; 32]);
    let jwk = json!({
        "kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "use": "sig",
        "x": b64(key.verifying_key().as_bytes()),
    });
    let input = signing_input("EdDSA", "ed-1", claims);
    let sig = key.sign(input.as_bytes());
    (jwk, format!("{input}.{}", b64(&sig.to_bytes())))
}

#[test]
fn es256_and_eddsa_tokens_verify_with_their_jwks_keys() {
    let claims = json!({"sub": SUB});
    for (name, (jwk, token)) in [("ES256", es256(&claims)), ("EdDSA", eddsa(&claims))] {
        let jwks = Jwks::from_slice(json!({"keys": [jwk]}).to_string().as_bytes()).unwrap();
        assert_eq!(jwks.len(), 1, "{name} key kept");
        let jws = Jws::parse(&token).unwrap();
        assert_eq!(
            jws.verify(&jwks, &AlgorithmPolicy::default()),
            Ok(()),
            "{name}"
        );
        // Not advertised by the provider: refused.
        let rs_only = ["RS256".to_owned()];
        let policy = AlgorithmPolicy {
            advertised: Some(&rs_only),
            hs256_secret: None,
        };
        assert_eq!(
            jws.verify(&jwks, &policy).unwrap_err().code(),
            "unsupported_algorithm",
            "{name}"
        );
        // One flipped signature bit: refused.
        let mut forged = token.clone().into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert!(
            Jws::parse(&forged)
                .and_then(|j| j.verify(&jwks, &AlgorithmPolicy::default()))
                .is_err(),
            "{name}"
        );
    }
}

#[test]
fn a_key_of_another_type_never_verifies_a_token() {
    // An ES256 token naming the kid of an RSA key, and an RS256 token naming an EC key.
    let (ec_jwk, es_token) = es256(&json!({"sub": SUB}));
    let rsa = cached_jwks().jwks;
    let rsa_kid_token = {
        let (_, t) = es256(&json!({"sub": SUB}));
        let (input, sig) = t.rsplit_once('.').unwrap();
        let (_, payload) = input.split_once('.').unwrap();
        format!(
            "{}.{payload}.{sig}",
            b64(br#"{"alg":"ES256","kid":"kid-a"}"#)
        )
    };
    assert_eq!(
        Jws::parse(&rsa_kid_token)
            .unwrap()
            .verify(&rsa, &AlgorithmPolicy::default()),
        Err(JoseError::InvalidSignature)
    );
    let ec = Jwks::from_slice(json!({"keys": [ec_jwk]}).to_string().as_bytes()).unwrap();
    let rs_token = signed_jwt(&json!({"sub": SUB}));
    let (input, sig) = rs_token.rsplit_once('.').unwrap();
    let (_, payload) = input.split_once('.').unwrap();
    let rs_with_ec_kid = format!(
        "{}.{payload}.{sig}",
        b64(br#"{"alg":"RS256","kid":"ec-1"}"#)
    );
    assert_eq!(
        Jws::parse(&rs_with_ec_kid)
            .unwrap()
            .verify(&ec, &AlgorithmPolicy::default()),
        Err(JoseError::InvalidSignature)
    );
    assert!(
        Jws::parse(&es_token)
            .unwrap()
            .verify(&ec, &AlgorithmPolicy::default())
            .is_ok()
    );
}

// --- Properties of the pure decisions -----------------------------------------------------------

proptest! {
    /// The discovered issuer is accepted exactly when it is the configured issuer URL, with or
    /// without one trailing slash (OpenID Connect Discovery §4.3).
    #[test]
    fn the_discovered_issuer_must_be_the_configured_url(
        path in "(/[a-z]{1,8}){0,3}",
        discovered_path in "(/[a-z]{1,8}){0,3}/{0,2}",
    ) {
        let base = format!("https://idp.example.com{path}");
        let config = auth0_server_protocol::config::Config::builder(base.clone(), CLIENT_ID)
            .client_secret(CLIENT_SECRET)
            .secret(COOKIE_SECRET)
            .build()
            .unwrap();
        let discovered = format!("https://idp.example.com{discovered_path}");
        let accepted =
            auth0_server_protocol::discovery::check_discovered_issuer(&config, &discovered).is_ok();
        prop_assert_eq!(accepted, discovered == base || discovered == format!("{base}/"));
    }

    /// Whatever a server sends, the displayed text has no control character and is capped.
    #[test]
    fn server_text_is_displayed_without_control_characters(text in any::<String>()) {
        let shown = auth0_server_protocol::display::SafeText(&text).to_string();
        prop_assert!(!shown.chars().any(char::is_control));
        prop_assert!(
            shown.chars().count() <= auth0_server_protocol::display::MAX_SERVER_TEXT * 10 + 1
        );
        prop_assert!(shown.chars().count() >= text.chars().count().min(1));
    }

    /// A secret the SDK sent never survives redaction, wherever the server echoes it.
    #[test]
    fn an_echoed_secret_never_survives_redaction(
        secret in "[0-9A-Z_-]{8,40}",
        before in "[ -~]{0,40}",
        after in "[ -~]{0,40}",
    ) {
        let echoed = format!("{before}{secret}{after}{secret}");
        let redacted = auth0_server_protocol::display::redact(&echoed, &[&secret]);
        prop_assert!(!redacted.contains(&secret));
    }
}

#[test]
fn a_connection_exchange_that_echoes_the_refresh_token_has_it_redacted() {
    let (r, _) = Script::new()
        .session(Some(session()))
        .metadata(Some(cached_metadata(NOW, 10)))
        .http(json(
            400,
            &json!({
                "error": "invalid_grant",
                "error_description": format!("subject_token {REFRESH_TOKEN} / {CLIENT_SECRET} refused"),
            })
            .to_string(),
        ))
        .run(
            core(config_builder()).get_access_token_for_connection(
                auth0_server_protocol::connection_token::ConnectionTokenRequest::new(
                    "google-oauth2",
                ),
            ),
            NOW,
        );
    let err = r.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains(REFRESH_TOKEN), "{text}");
    assert!(!text.contains(CLIENT_SECRET), "{text}");
    assert_eq!(err.code(), "failed_to_exchange_token");
}
