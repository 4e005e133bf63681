//! The scripted driver of the `test-util` feature (`auth0_server_protocol::testing`), and
//! fixtures.
//!
//! A test reads like "given this session and this response, the core sends exactly this and
//! saves exactly that":
//!
//! ```text
//! let (result, rec) = Script::new()
//!     .session(Some(session))
//!     .metadata(Some(cached))
//!     .http(json(200, r#"{"access_token":"..."}"#))
//!     .run(core.get_access_token(req), NOW);
//! assert_eq!(rec.http_requests()[0].param("grant_type"), Some("refresh_token"));
//! ```
//!
//! Every effect the script has no answer for fails the test with a message naming the effect.
//! Saves and deletes are answered `Done` and recorded.
#![allow(dead_code)]

use auth0_server_protocol::Core;
use auth0_server_protocol::config::Config;
use auth0_server_protocol::discovery::{CachedMetadata, Metadata};
use auth0_server_protocol::time::UnixTime;
use base64::Engine;
use std::sync::Arc;

/// The time every test runs at, unless it says otherwise.
pub const NOW: u64 = 1_700_000_000;
pub const DOMAIN: &str = "tenant.auth0.com";
pub const ISSUER: &str = "https://tenant.auth0.com/";
pub const TOKEN_ENDPOINT: &str = "https://tenant.auth0.com/oauth/token";
pub const CLIENT_ID: &str = "client-id-123";
pub const CLIENT_SECRET: &str = "client-secret-SHOULD-NOT-LEAK";
pub const COOKIE_SECRET: &str = "cookie-secret-of-at-least-32-bytes-SHOULD-NOT-LEAK";
pub const REFRESH_TOKEN: &str = "refresh-token-SHOULD-NOT-LEAK";
pub const ROTATED_REFRESH_TOKEN: &str = "rotated-refresh-token-SHOULD-NOT-LEAK";
pub const SUB: &str = "auth0|user-1";

pub use auth0_server_protocol::testing::*;

// ---------------------------------------------------------------------------------------------
// Fixtures

/// A builder with the test tenant, client and secrets; add audience / scope as needed.
pub fn config_builder() -> auth0_server_protocol::config::ConfigBuilder {
    Config::builder(DOMAIN, CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .secret(COOKIE_SECRET)
}

pub fn core(builder: auth0_server_protocol::config::ConfigBuilder) -> Core {
    Core::new(builder.build().expect("valid test configuration"))
}

pub fn metadata() -> Metadata {
    Metadata {
        issuer: ISSUER.into(),
        authorization_endpoint: format!("{ISSUER}authorize"),
        token_endpoint: TOKEN_ENDPOINT.into(),
        jwks_uri: Some(format!("{ISSUER}.well-known/jwks.json")),
        pushed_authorization_request_endpoint: None,
        end_session_endpoint: None,
        revocation_endpoint: None,
        ..Default::default()
    }
}

/// Metadata fetched `age` seconds before `now`.
pub fn cached_metadata(now: u64, age: u64) -> CachedMetadata {
    CachedMetadata {
        metadata: Arc::new(metadata()),
        fetched_at: UnixTime::from_secs(now - age),
    }
}

/// The discovery document the tenant serves, with the token endpoint at `token_endpoint`.
pub fn discovery_document(token_endpoint: &str) -> http::Response<Vec<u8>> {
    json(
        200,
        &serde_json::json!({
            "issuer": ISSUER,
            "authorization_endpoint": format!("{ISSUER}authorize"),
            "token_endpoint": token_endpoint,
            "jwks_uri": format!("{ISSUER}.well-known/jwks.json"),
        })
        .to_string(),
    )
}

/// An unsigned compact JWT with these claims (the core only reads claims of tokens it got
/// straight from the token endpoint).
pub fn jwt(claims: serde_json::Value) -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    )
}

/// The user claims of the test user.
pub fn user() -> serde_json::Map<String, serde_json::Value> {
    serde_json::json!({"sub": SUB, "iss": ISSUER, "name": "Jane", "email": "jane@example.com"})
        .as_object()
        .cloned()
        .expect("object")
}

/// An ID token for the test user with extra claims merged in.
pub fn id_token(extra: serde_json::Value) -> String {
    let mut claims = serde_json::Value::Object(user());
    if let Some(c) = claims.as_object_mut() {
        c.insert("aud".into(), CLIENT_ID.into());
        c.insert("iat".into(), NOW.into());
        c.insert("exp".into(), (NOW + 3600).into());
    }
    if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    signed_jwt(&claims)
}

static SIGNING_KEY: std::sync::LazyLock<rsa::RsaPrivateKey> = std::sync::LazyLock::new(|| {
    use rsa::pkcs8::DecodePrivateKey;
    rsa::RsaPrivateKey::from_pkcs8_pem(include_str!("../data/rs256-a.pem")).unwrap()
});

/// An RS256 JWT with these claims, signed by the tenant's key (`kid-a`, in [`cached_jwks`]).
pub fn signed_jwt(claims: &serde_json::Value) -> String {
    use rsa::signature::{SignatureEncoding, Signer};
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"RS256","typ":"JWT","kid":"kid-a"}"#),
        b64(claims.to_string().as_bytes())
    );
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(SIGNING_KEY.clone());
    let sig = signer.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig.to_bytes()))
}

/// The tenant's key set (the key [`signed_jwt`] signs with), fetched at `NOW`.
pub fn cached_jwks() -> auth0_server_protocol::effect::CachedJwks {
    use rsa::traits::PublicKeyParts;
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let public = SIGNING_KEY.to_public_key();
    let doc = serde_json::json!({"keys": [{
        "kty": "RSA", "kid": "kid-a", "use": "sig", "alg": "RS256",
        "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be()),
    }]});
    auth0_server_protocol::effect::CachedJwks {
        jwks: auth0_server_protocol::jose::Jwks::from_slice(doc.to_string().as_bytes()).unwrap(),
        fetched_at: UnixTime::from_secs(NOW),
    }
}
