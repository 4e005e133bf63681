//! Fixtures shared by the fuzz targets and the seed generator: one client configuration, the
//! fixed signing keys (the protocol tests' PEM fixtures) and the cookie encryption secret.

use std::sync::OnceLock;

use auth0_server_protocol::__internals::b64;
use auth0_server_protocol::__internals::jwk::Jwks;
use auth0_server_protocol::config::Config;
use auth0_server_protocol::jose::jwe::JweKey;
use rsa::RsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::traits::PublicKeyParts as _;

/// The tenant domain of every fixture.
pub const DOMAIN: &str = "tenant.auth0.com";
/// The issuer (`{origin}/`).
pub const ISSUER: &str = "https://tenant.auth0.com/";
/// The client id.
pub const CLIENT_ID: &str = "client-id";
/// The application secret (the Python SDK vectors' secret, so their JWEs decrypt).
pub const SECRET: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
/// A second secret (rotation: decrypt-only).
pub const OLD_SECRET: &str = "an-older-secret-of-at-least-32-bytes!!";
/// "Now" for the fixed-time targets (2023-11-14).
pub const NOW: u64 = 1_700_000_000;

/// The signing key `a` (kid `a`).
pub const PEM_A: &str = include_str!("../../protocol/tests/data/rs256-a.pem");
/// The signing key `b` (kid `b`).
pub const PEM_B: &str = include_str!("../../protocol/tests/data/rs256-b.pem");

/// The client configuration every target uses.
pub fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        Config::builder(DOMAIN, CLIENT_ID)
            .client_secret("client-secret")
            .secret(SECRET)
            .secret(OLD_SECRET)
            .build()
            .expect("fixture configuration is valid")
    })
}

/// A private key from a PKCS#8 PEM fixture.
pub fn private_key(pem: &str) -> RsaPrivateKey {
    RsaPrivateKey::from_pkcs8_pem(pem).expect("fixture key parses")
}

/// A compact JWS of `claims` under `header`, signed RS256 with a fixture key.
pub fn sign(pem: &str, header: serde_json::Value, claims: serde_json::Value) -> String {
    use rsa::pkcs1v15::SigningKey;
    use rsa::sha2::Sha256;
    use rsa::signature::{SignatureEncoding as _, Signer as _};
    let input = format!(
        "{}.{}",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(claims.to_string().as_bytes())
    );
    let key = SigningKey::<Sha256>::new(private_key(pem));
    let sig = key.sign(input.as_bytes()).to_vec();
    format!("{input}.{}", b64::encode(&sig))
}

/// The JWK (JSON) of a fixture key's public half.
pub fn jwk_json(pem: &str, kid: Option<&str>) -> serde_json::Value {
    let key = private_key(pem);
    let mut jwk = serde_json::json!({
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "n": b64::encode(&key.n().to_bytes_be()),
        "e": b64::encode(&key.e().to_bytes_be()),
    });
    if let Some(kid) = kid {
        jwk["kid"] = kid.into();
    }
    jwk
}

/// The JWKS document with keys `a` and `b`.
pub fn jwks_document() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "keys": [jwk_json(PEM_A, Some("a")), jwk_json(PEM_B, Some("b"))]
    }))
    .expect("serialises")
}

/// The parsed two-key JWKS (`a`, `b`).
pub fn jwks() -> &'static Jwks {
    static JWKS: OnceLock<Jwks> = OnceLock::new();
    JWKS.get_or_init(|| Jwks::from_slice(&jwks_document()).expect("fixture JWKS parses"))
}

/// A one-key JWKS (key `a`, no kid), for tokens without `kid`.
pub fn single_key_jwks() -> &'static Jwks {
    static JWKS: OnceLock<Jwks> = OnceLock::new();
    JWKS.get_or_init(|| {
        let doc = serde_json::json!({ "keys": [jwk_json(PEM_A, None)] });
        Jwks::from_slice(doc.to_string().as_bytes()).expect("fixture JWKS parses")
    })
}

/// The session cookie keys: the current secret first, then the old one (salt `_a0_session`).
pub fn jwe_keys() -> &'static [JweKey] {
    static KEYS: OnceLock<Vec<JweKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        vec![
            JweKey::derive(SECRET.as_bytes(), b"_a0_session"),
            JweKey::derive(OLD_SECRET.as_bytes(), b"_a0_session"),
        ]
    })
}
