//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OpenID Connect Core §9):
//! the client proves who it is with a short-lived JWT signed by its private key instead of a
//! shared secret.
//!
//! The key is parsed and checked once, when the configuration is built
//! ([`ConfigBuilder::private_key_jwt`](crate::config::ConfigBuilder::private_key_jwt)). Each
//! request that authenticates the client (code exchange, refresh, connection token exchange,
//! PAR, revocation) leaves the core marked [`AtSend::ClientAssertion`](crate::effect::AtSend::ClientAssertion); right before sending
//! it, the driver reads the clock, draws [`ASSERTION_RANDOM_LEN`] bytes from the operating
//! system and calls [`AtSend::apply`](crate::effect::AtSend::apply), which calls
//! [`assertion`] here. So every request — a retry, a refresh after a rotation, a resend
//! after another caller's request failed — carries a fresh assertion with its own `jti`, and
//! the core still reads no clock and draws no randomness.
//!
//! The assertion's claims: `iss` = `sub` = the client id, `aud` = the discovered issuer (a
//! single string: draft-ietf-oauth-rfc7523bis asks for the issuer identifier, never the
//! token endpoint URL nor an array, closing the audience-injection attack on the spec as
//! written), `iat` = now, `exp` = now + [`ASSERTION_LIFETIME`], and a 128-bit random `jti`.
//! The header carries `alg`, `typ: JWT` and the configured `kid`.
//!
//! Signing is RustCrypto's: ES256 with `p256` (RFC 6979 deterministic nonces, no randomness
//! needed); RS256 (`rsa::pkcs1v15`) and PS256 (`rsa::pss`, salt of 32 bytes) with the
//! *blinded* private-key operation, its randomness from a ChaCha20 CSPRNG seeded with 32 of
//! the adapter's bytes. Blinding is the mitigation the `rsa` crate documents for its
//! non-constant-time modular exponentiation (RUSTSEC-2023-0071, "Marvin"); the messages
//! signed here are the SDK's own assertions, never chosen by a third party.

use crate::error_code::ErrorCode;
use crate::jose::b64;
use crate::time::UnixTime;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The `client_assertion_type` sent with every assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid: `exp` = `iat` + 60 s. Auth0 and RFC 7523 §3 leave the
/// bound to the server; one minute covers clock skew and a slow request, and keeps the
/// window in which a captured assertion is worth anything short.
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(60);

/// How many random bytes one assertion needs: 16 for the `jti`, 32 to seed the RSA signer's
/// blinding (and PSS salt).
pub const ASSERTION_RANDOM_LEN: usize = JTI_LEN + SEED_LEN;

const JTI_LEN: usize = 16;
const SEED_LEN: usize = 32;

/// Smallest RSA modulus accepted, in bits (RFC 7518 §3.3 and §3.5: 2048 or larger).
pub const MIN_RSA_BITS: usize = 2048;

/// The signature algorithm of the client assertion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum AssertionAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256: Auth0's default, and the peers'.
    #[default]
    Rs256,
    /// RSASSA-PSS with SHA-256 (FAPI 2.0 allows PS256 and ES256, not RS256).
    Ps256,
    /// ECDSA with P-256 and SHA-256.
    Es256,
}

impl AssertionAlg {
    /// The JWS `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            AssertionAlg::Rs256 => "RS256",
            AssertionAlg::Ps256 => "PS256",
            AssertionAlg::Es256 => "ES256",
        }
    }
}

enum KeyMaterial {
    Rsa(Box<rsa::RsaPrivateKey>),
    Ec(p256::ecdsa::SigningKey),
}

/// A validated private key for `private_key_jwt`, with its algorithm and optional `kid`.
/// Cheap to clone (shared); the key material is zeroed when the last clone drops, and never
/// printed: `Debug` shows the algorithm and `kid` only.
#[derive(Clone)]
pub struct AssertionKey {
    inner: Arc<KeyInner>,
}

struct KeyInner {
    alg: AssertionAlg,
    kid: Option<String>,
    key: KeyMaterial,
}

impl fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssertionKey")
            .field("alg", &self.inner.alg)
            .field("kid", &self.inner.kid)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Why a private key cannot sign client assertions. The reason never quotes the key; the
/// configuration reports it as an error of its `private_key_jwt` field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct InvalidKey {
    /// What is wrong with the key.
    pub reason: String,
}

fn invalid(reason: impl Into<String>) -> InvalidKey {
    InvalidKey {
        reason: reason.into(),
    }
}

impl AssertionKey {
    /// Parses `key` — a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) or a private JWK (JSON
    /// with `d`, and for RSA `p` and `q`) — and checks it can sign with `alg`: an RSA key of
    /// at least 2048 bits for RS256 and PS256, a P-256 key for ES256. `kid` overrides the
    /// JWK's own `kid`. The error never quotes the key.
    pub fn parse(key: &str, alg: AssertionAlg, kid: Option<String>) -> Result<Self, InvalidKey> {
        let trimmed = key.trim_start();
        let (material, jwk_kid) = if trimmed.starts_with('{') {
            parse_jwk(trimmed)?
        } else if trimmed.starts_with("-----BEGIN PRIVATE KEY-----") {
            (parse_pkcs8_pem(trimmed)?, None)
        } else if trimmed.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(invalid(
                "is an encrypted PKCS#8 key: decrypt it first (`openssl pkcs8 -in key.pem -nocrypt -topk8`)",
            ));
        } else if trimmed.starts_with("-----BEGIN") {
            return Err(invalid(
                "must be a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`); convert with `openssl pkcs8 -topk8 -nocrypt -in key.pem`",
            ));
        } else {
            return Err(invalid("must be a PKCS#8 PEM or a private JWK (JSON)"));
        };
        match (&material, alg) {
            (KeyMaterial::Rsa(k), AssertionAlg::Rs256 | AssertionAlg::Ps256) => {
                let bits = k.size() * 8;
                if bits < MIN_RSA_BITS {
                    return Err(invalid(format!(
                        "is an RSA key of {bits} bits; {} needs at least {MIN_RSA_BITS}",
                        alg.name()
                    )));
                }
            }
            (KeyMaterial::Ec(_), AssertionAlg::Es256) => {}
            (KeyMaterial::Rsa(_), _) => {
                return Err(invalid(format!(
                    "is an RSA key, which cannot sign {}",
                    alg.name()
                )));
            }
            (KeyMaterial::Ec(_), _) => {
                return Err(invalid(format!(
                    "is a P-256 key, which cannot sign {}",
                    alg.name()
                )));
            }
        }
        let kid = kid.or(jwk_kid);
        if kid.as_deref().is_some_and(str::is_empty) {
            return Err(invalid("has an empty `kid`"));
        }
        Ok(AssertionKey {
            inner: Arc::new(KeyInner {
                alg,
                kid,
                key: material,
            }),
        })
    }

    /// The signature algorithm.
    pub fn alg(&self) -> AssertionAlg {
        self.inner.alg
    }

    /// The `kid` put in the assertion's header, when one is configured.
    pub fn kid(&self) -> Option<&str> {
        self.inner.kid.as_deref()
    }

    /// The public half as a JWK (`kty`, `alg`, `use: sig`, `kid` when set, and `n`/`e` or
    /// `crv`/`x`/`y`): what to register with the authorization server.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = match &self.inner.key {
            KeyMaterial::Rsa(k) => json!({
                "kty": "RSA",
                "n": b64::encode(&k.n().to_bytes_be()),
                "e": b64::encode(&k.e().to_bytes_be()),
            }),
            KeyMaterial::Ec(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": b64::encode(point.x().map_or(&[][..], |x| x.as_slice())),
                    "y": b64::encode(point.y().map_or(&[][..], |y| y.as_slice())),
                })
            }
        };
        if let Value::Object(m) = &mut jwk {
            m.insert("alg".into(), self.inner.alg.name().into());
            m.insert("use".into(), "sig".into());
            if let Some(kid) = &self.inner.kid {
                m.insert("kid".into(), kid.clone().into());
            }
        }
        jwk
    }

    /// The P-256 signing key, when this is one (DPoP proofs reuse the parsing of PEM and JWK
    /// keys; see [`crate::dpop::DpopKey`]).
    pub(crate) fn ec_signing_key(&self) -> Option<&p256::ecdsa::SigningKey> {
        match &self.inner.key {
            KeyMaterial::Ec(k) => Some(k),
            KeyMaterial::Rsa(_) => None,
        }
    }

    fn sign(&self, input: &[u8], seed: [u8; SEED_LEN]) -> Result<Vec<u8>, ClientAssertionError> {
        let failed = |_| ClientAssertionError::Signing;
        match (&self.inner.key, self.inner.alg) {
            (KeyMaterial::Ec(k), _) => {
                let sig: p256::ecdsa::Signature = k.try_sign(input).map_err(failed)?;
                Ok(sig.to_bytes().to_vec())
            }
            (KeyMaterial::Rsa(k), AssertionAlg::Ps256) => {
                let mut rng = ChaCha20Rng::from_seed(seed);
                let signer = rsa::pss::BlindedSigningKey::<Sha256>::new((**k).clone());
                let sig = signer.try_sign_with_rng(&mut rng, input).map_err(failed)?;
                Ok(sig.to_vec())
            }
            (KeyMaterial::Rsa(k), _) => {
                let mut rng = ChaCha20Rng::from_seed(seed);
                let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new((**k).clone());
                // `sign_with_rng` is the blinded private-key operation.
                let sig = signer.try_sign_with_rng(&mut rng, input).map_err(failed)?;
                Ok(sig.to_vec())
            }
        }
    }
}

fn parse_pkcs8_pem(pem: &str) -> Result<KeyMaterial, InvalidKey> {
    use p256::pkcs8::DecodePrivateKey;
    if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
        return Ok(KeyMaterial::Rsa(Box::new(k)));
    }
    match p256::SecretKey::from_pkcs8_pem(pem) {
        Ok(k) => Ok(KeyMaterial::Ec(p256::ecdsa::SigningKey::from(&k))),
        Err(_) => Err(invalid(
            "is not an unencrypted PKCS#8 RSA or P-256 private key",
        )),
    }
}

fn parse_jwk(json: &str) -> Result<(KeyMaterial, Option<String>), InvalidKey> {
    let jwk: Map<String, Value> =
        serde_json::from_str(json).map_err(|_| invalid("is not a JSON object (a JWK)"))?;
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    let bytes = |name: &'static str| -> Result<Vec<u8>, InvalidKey> {
        let v = text(name).ok_or_else(|| invalid(format!("JWK has no `{name}`")))?;
        b64::decode(v).map_err(|_| invalid(format!("JWK `{name}` is not base64url")))
    };
    let kid = text("kid").map(str::to_owned);
    let material = match text("kty") {
        Some("RSA") => {
            let big = |name| bytes(name).map(|b| rsa::BigUint::from_bytes_be(&b));
            let primes = vec![big("p")?, big("q")?];
            let key = rsa::RsaPrivateKey::from_components(big("n")?, big("e")?, big("d")?, primes)
                .map_err(|_| invalid("JWK is not a consistent RSA private key"))?;
            key.validate()
                .map_err(|_| invalid("JWK is not a consistent RSA private key"))?;
            KeyMaterial::Rsa(Box::new(key))
        }
        Some("EC") => {
            if text("crv") != Some("P-256") {
                return Err(invalid("JWK is an EC key on a curve other than P-256"));
            }
            let key = p256::ecdsa::SigningKey::from_slice(&bytes("d")?)
                .map_err(|_| invalid("JWK `d` is not a P-256 private scalar"))?;
            let point = key.verifying_key().to_encoded_point(false);
            let (x, y) = (bytes("x")?, bytes("y")?);
            if point.x().map(|v| v.as_slice()) != Some(&x[..])
                || point.y().map(|v| v.as_slice()) != Some(&y[..])
            {
                return Err(invalid("JWK `x`/`y` do not belong to its `d`"));
            }
            KeyMaterial::Ec(key)
        }
        _ => return Err(invalid("JWK `kty` must be RSA or EC")),
    };
    Ok((material, kid))
}

/// Why an assertion could not be made. Neither happens with a key that passed
/// [`AssertionKey::parse`] and a driver that supplies the random bytes it was asked for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientAssertionError {
    /// The signing operation failed.
    #[error("the client assertion could not be signed")]
    Signing,
    /// The driver supplied fewer random bytes than [`ASSERTION_RANDOM_LEN`].
    #[error("the client assertion needs {ASSERTION_RANDOM_LEN} random bytes")]
    NotEnoughRandom,
    /// A request asked for an assertion but the configuration has no key.
    #[error("a client assertion was requested but no private key is configured")]
    NoKey,
}

impl ClientAssertionError {
    /// The stable error code, `client_assertion_failed`.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::ClientAssertionFailed
    }
}

/// The signed assertion for `client_id` and `audience` at `now`, its `jti` from the first 16
/// of `random` and the RSA signer's seed from the next 32.
pub fn assertion(
    key: &AssertionKey,
    client_id: &str,
    audience: &str,
    now: UnixTime,
    random: &[u8],
) -> Result<String, ClientAssertionError> {
    let (Some(jti), Some(seed)) = (
        random.get(..JTI_LEN),
        random
            .get(JTI_LEN..ASSERTION_RANDOM_LEN)
            .and_then(|s| <[u8; SEED_LEN]>::try_from(s).ok()),
    ) else {
        return Err(ClientAssertionError::NotEnoughRandom);
    };
    let mut header = Map::new();
    header.insert("alg".into(), key.alg().name().into());
    header.insert("typ".into(), "JWT".into());
    if let Some(kid) = key.kid() {
        header.insert("kid".into(), kid.into());
    }
    let iat = now.as_secs();
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": iat,
        "exp": iat.saturating_add(ASSERTION_LIFETIME.as_secs()),
        "jti": b64::encode(jti),
    });
    let mut input = b64::encode(Value::Object(header).to_string().as_bytes());
    input.push('.');
    b64::encode_into(claims.to_string().as_bytes(), &mut input);
    let signature = key.sign(input.as_bytes(), seed)?;
    input.push('.');
    b64::encode_into(&signature, &mut input);
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::signature::Verifier;
    use rsa::traits::PrivateKeyParts;

    const RSA_PEM: &str = include_str!("../../tests/data/client_keys/rsa.pem");
    const EC_PEM: &str = include_str!("../../tests/data/client_keys/ec.pem");
    const RSA_1024_PEM: &str = include_str!("../../tests/data/client_keys/rsa1024.pem");

    fn parts(jwt: &str) -> (Value, Value, Vec<u8>, String) {
        let p: Vec<&str> = jwt.split('.').collect();
        assert_eq!(p.len(), 3);
        let json = |s: &str| serde_json::from_slice::<Value>(&b64::decode(s).unwrap()).unwrap();
        (
            json(p[0]),
            json(p[1]),
            b64::decode(p[2]).unwrap(),
            format!("{}.{}", p[0], p[1]),
        )
    }

    fn verify(key: &AssertionKey, jwt: &str) -> bool {
        let (_, _, sig, input) = parts(jwt);
        match &key.inner.key {
            KeyMaterial::Rsa(k) => {
                let public = rsa::RsaPublicKey::from(&**k);
                match key.alg() {
                    AssertionAlg::Ps256 => {
                        let v = rsa::pss::VerifyingKey::<Sha256>::new(public);
                        rsa::pss::Signature::try_from(&sig[..])
                            .is_ok_and(|s| v.verify(input.as_bytes(), &s).is_ok())
                    }
                    _ => {
                        let v = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(public);
                        rsa::pkcs1v15::Signature::try_from(&sig[..])
                            .is_ok_and(|s| v.verify(input.as_bytes(), &s).is_ok())
                    }
                }
            }
            KeyMaterial::Ec(k) => p256::ecdsa::Signature::from_slice(&sig)
                .is_ok_and(|s| k.verifying_key().verify(input.as_bytes(), &s).is_ok()),
        }
    }

    fn keys() -> Vec<AssertionKey> {
        vec![
            AssertionKey::parse(RSA_PEM, AssertionAlg::Rs256, Some("k1".into())).unwrap(),
            AssertionKey::parse(RSA_PEM, AssertionAlg::Ps256, None).unwrap(),
            AssertionKey::parse(EC_PEM, AssertionAlg::Es256, Some("ec".into())).unwrap(),
        ]
    }

    #[test]
    fn claims_header_and_signature_round_trip_for_each_alg() {
        let now = UnixTime::from_secs(1_700_000_000);
        for key in keys() {
            let random: Vec<u8> = (0u8..48).collect();
            let jwt = assertion(&key, "cid", "https://t.auth0.com/", now, &random).unwrap();
            let (header, claims, _, _) = parts(&jwt);
            assert_eq!(header["alg"], key.alg().name());
            assert_eq!(header["typ"], "JWT");
            assert_eq!(header.get("kid").and_then(Value::as_str), key.kid());
            assert_eq!(claims["iss"], "cid");
            assert_eq!(claims["sub"], "cid");
            assert_eq!(claims["aud"], "https://t.auth0.com/");
            assert_eq!(claims["iat"], 1_700_000_000u64);
            assert_eq!(claims["exp"], 1_700_000_060u64);
            assert_eq!(claims["jti"], b64::encode(&random[..16]));
            assert!(verify(&key, &jwt), "{:?}", key.alg());
            // A changed claim no longer verifies.
            let p: Vec<&str> = jwt.split('.').collect();
            let forged = format!("{}.{}.{}", p[0], b64::encode(br#"{"iss":"other"}"#), p[2]);
            assert!(!verify(&key, &forged));
        }
    }

    #[test]
    fn too_few_random_bytes_is_an_error_not_a_panic() {
        for key in keys() {
            let e = assertion(&key, "c", "a", UnixTime::from_secs(1), &[0; 47]).unwrap_err();
            assert_eq!(e, ClientAssertionError::NotEnoughRandom);
            assert_eq!(e.code(), "client_assertion_failed");
        }
    }

    #[test]
    fn a_key_that_cannot_sign_with_the_alg_is_refused() {
        for (pem, alg) in [
            (RSA_PEM, AssertionAlg::Es256),
            (EC_PEM, AssertionAlg::Rs256),
            (EC_PEM, AssertionAlg::Ps256),
            (RSA_1024_PEM, AssertionAlg::Rs256),
        ] {
            let e = AssertionKey::parse(pem, alg, None).unwrap_err();
            assert!(!e.reason.contains("MII"), "{e}");
        }
        for junk in [
            "",
            "not a key",
            "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----",
            "{}",
            r#"{"kty":"RSA","n":"AQAB"}"#,
            r#"{"kty":"EC","crv":"P-384","d":"AA"}"#,
            "{",
        ] {
            assert!(AssertionKey::parse(junk, AssertionAlg::Rs256, None).is_err());
        }
    }

    #[test]
    fn a_private_jwk_signs_like_its_pem() {
        for (pem, alg) in [
            (RSA_PEM, AssertionAlg::Rs256),
            (EC_PEM, AssertionAlg::Es256),
        ] {
            let from_pem = AssertionKey::parse(pem, alg, None).unwrap();
            let jwk = private_jwk(&from_pem);
            let from_jwk = AssertionKey::parse(&jwk.to_string(), alg, None).unwrap();
            assert_eq!(from_jwk.kid(), Some("jwk-kid"));
            assert_eq!(from_jwk.public_jwk()["x"], from_pem.public_jwk()["x"]);
            assert_eq!(from_jwk.public_jwk()["n"], from_pem.public_jwk()["n"]);
            let jwt = assertion(&from_jwk, "c", "a", UnixTime::from_secs(5), &[7; 48]).unwrap();
            assert!(verify(&from_pem, &jwt));
            // An EC JWK whose public point is another key's is refused.
            if let Value::Object(mut m) = jwk.clone() {
                if m.contains_key("x") {
                    m.insert("x".into(), m["y"].clone());
                    assert!(AssertionKey::parse(&Value::Object(m).to_string(), alg, None).is_err());
                }
            }
        }
    }

    fn private_jwk(key: &AssertionKey) -> Value {
        let mut jwk = key.public_jwk();
        let m = jwk.as_object_mut().unwrap();
        m.insert("kid".into(), "jwk-kid".into());
        match &key.inner.key {
            KeyMaterial::Rsa(k) => {
                m.insert("d".into(), b64::encode(&k.d().to_bytes_be()).into());
                m.insert("p".into(), b64::encode(&k.primes()[0].to_bytes_be()).into());
                m.insert("q".into(), b64::encode(&k.primes()[1].to_bytes_be()).into());
            }
            KeyMaterial::Ec(k) => {
                m.insert("d".into(), b64::encode(&k.to_bytes()).into());
            }
        }
        jwk
    }

    #[test]
    fn debug_never_shows_the_key() {
        for key in keys() {
            let out = format!("{key:?}");
            assert!(out.contains("redacted"));
            assert!(!out.contains("MII") && !out.contains("BigUint"), "{out}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(16))]
        /// Whatever the time, client id, audience and random bytes: the claims say exactly
        /// them, `exp` is `iat` + 60, and the signature verifies.
        #[test]
        fn every_assertion_verifies_and_says_what_it_was_given(
            now in 0u64..4_000_000_000,
            client_id in "[ -~]{1,40}",
            audience in "https://[a-z]{1,12}\\.example/[a-z/]{0,10}",
            random in proptest::collection::vec(proptest::prelude::any::<u8>(), 48),
            which in 0usize..3,
        ) {
            let key = &keys()[which];
            let jwt = assertion(key, &client_id, &audience, UnixTime::from_secs(now), &random).unwrap();
            let (_, claims, _, _) = parts(&jwt);
            proptest::prop_assert_eq!(&claims["iss"], &Value::from(client_id.clone()));
            proptest::prop_assert_eq!(&claims["sub"], &Value::from(client_id));
            proptest::prop_assert_eq!(&claims["aud"], &Value::from(audience));
            proptest::prop_assert_eq!(claims["exp"].as_u64(), Some(now + 60));
            proptest::prop_assert_eq!(&claims["jti"], &Value::from(b64::encode(&random[..16])));
            proptest::prop_assert!(verify(key, &jwt));
        }
    }
}
