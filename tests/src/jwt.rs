//! Signing keys, compact JWS creation and verification (RS256), base64url helpers.
//!
//! The RSA keys are generated once and committed under `tests/data/keys/`: generating
//! 2048-bit keys at runtime is slow. They are parsed once per process.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

const PEMS: [&str; 3] = [
    include_str!("../data/keys/key1.pem"),
    include_str!("../data/keys/key2.pem"),
    include_str!("../data/keys/key3.pem"),
];

/// One bundled RSA signing key with its published JWK form.
pub(crate) struct Key {
    pub(crate) kid: String,
    private: RsaPrivateKey,
    /// The P-256 key published instead of this RSA key when the provider signs ES256.
    pub(crate) ec: EcKey,
    signing: SigningKey<Sha256>,
    verifying: VerifyingKey<Sha256>,
    pub(crate) jwk: Value,
}

/// A P-256 signing key (fixed bytes: deterministic) with its published JWK form.
pub(crate) struct EcKey {
    pub(crate) kid: String,
    signing: p256::ecdsa::SigningKey,
    pub(crate) jwk: Value,
}

impl EcKey {
    fn fixed(seed: u8) -> EcKey {
        let signing = p256::ecdsa::SigningKey::from_slice(&[seed; 32]).expect("a valid scalar");
        let point = signing.verifying_key().to_encoded_point(false);
        let (x, y) = (
            b64(point.x().expect("uncompressed")),
            b64(point.y().expect("uncompressed")),
        );
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = b64(&Sha256::digest(canonical.as_bytes()));
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256", "x": x, "y": y});
        EcKey { kid, signing, jwk }
    }
}

/// Signs `payload` with ES256 using `key`.
pub(crate) fn sign_es256(key: &EcKey, payload: &Map<String, Value>) -> String {
    use p256::ecdsa::signature::Signer as _;
    let mut header = Map::new();
    header.insert("alg".into(), "ES256".into());
    header.insert("typ".into(), "JWT".into());
    header.insert("kid".into(), key.kid.clone().into());
    let input = signing_input(&header, payload);
    let sig: p256::ecdsa::Signature = key.signing.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig.to_bytes()))
}

/// The bundled keys, parsed once per process.
pub(crate) fn keys() -> &'static [Key] {
    static KEYS: OnceLock<Vec<Key>> = OnceLock::new();
    KEYS.get_or_init(|| {
        PEMS.iter()
            .zip(1u8..)
            .map(|(pem, seed)| {
                let private = RsaPrivateKey::from_pkcs8_pem(pem).expect("bundled test key parses");
                let public = RsaPublicKey::from(&private);
                let n = b64(&public.n().to_bytes_be());
                let e = b64(&public.e().to_bytes_be());
                // RFC 7638 thumbprint as the key id.
                let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
                let kid = b64(&Sha256::digest(canonical.as_bytes()));
                let jwk =
                    json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": n, "e": e});
                Key {
                    kid,
                    ec: EcKey::fixed(seed),
                    private: private.clone(),
                    signing: SigningKey::<Sha256>::new(private),
                    verifying: VerifyingKey::<Sha256>::new(public),
                    jwk,
                }
            })
            .collect()
    })
}

/// base64url without padding.
pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url (padding tolerated).
pub(crate) fn b64_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// Decodes standard base64 (used for HTTP Basic authentication).
pub(crate) fn std_b64_decode(s: &str) -> Option<Vec<u8>> {
    STANDARD.decode(s.trim()).ok()
}

/// Signs `header.payload` with RS256 using `key`; the header gets `alg`, `typ` and `kid`
/// first, then `header_overrides` (a `Null` value removes the header parameter).
pub(crate) fn sign_rs256(
    key: &Key,
    payload: &Map<String, Value>,
    header_overrides: &Map<String, Value>,
) -> String {
    let mut header = Map::new();
    header.insert("alg".into(), "RS256".into());
    header.insert("typ".into(), "JWT".into());
    header.insert("kid".into(), key.kid.clone().into());
    apply_overrides(&mut header, header_overrides);
    let input = signing_input(&header, payload);
    let sig = memoized_signature(key, &input);
    format!("{input}.{sig}")
}

/// Signs `payload` with PS256 (RSASSA-PSS, SHA-256, salt as long as the hash) using `key`.
pub(crate) fn sign_ps256(key: &Key, payload: &Map<String, Value>) -> String {
    use rsa::signature::RandomizedSigner;
    let mut header = Map::new();
    header.insert("alg".into(), "PS256".into());
    header.insert("typ".into(), "JWT".into());
    header.insert("kid".into(), key.kid.clone().into());
    let input = signing_input(&header, payload);
    let signer = rsa::pss::SigningKey::<Sha256>::new(key.private.clone());
    let sig = signer.sign_with_rng(&mut rand_core::OsRng, input.as_bytes());
    format!("{input}.{}", b64(&sig.to_bytes()))
}

/// RS256 (PKCS#1 v1.5) signatures are deterministic, so the signature of an input already
/// signed with the same key is reused. An RSA-2048 private-key operation costs milliseconds,
/// which dominated every request that returns an ID token (a refresh repeated within the same
/// second signs exactly the same claims).
fn memoized_signature(key: &Key, input: &str) -> String {
    static MEMO: OnceLock<Mutex<HashMap<(String, String), String>>> = OnceLock::new();
    let memo = MEMO.get_or_init(Mutex::default);
    let cache_key = (key.kid.clone(), input.to_owned());
    if let Some(sig) = memo
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&cache_key)
    {
        return sig.clone();
    }
    let sig = b64(&key.signing.sign(input.as_bytes()).to_bytes());
    let mut memo = memo.lock().unwrap_or_else(|e| e.into_inner());
    if memo.len() >= 4096 {
        memo.clear();
    }
    memo.insert(cache_key, sig.clone());
    sig
}

/// Builds the `base64url(header).base64url(payload)` signing input.
pub(crate) fn signing_input(header: &Map<String, Value>, payload: &Map<String, Value>) -> String {
    let h = serde_json::to_vec(header).unwrap_or_default();
    let p = serde_json::to_vec(payload).unwrap_or_default();
    format!("{}.{}", b64(&h), b64(&p))
}

/// HMAC-SHA256 (RFC 2104) over `data` with `key`.
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(data);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// Applies claim/header overrides: `Null` removes, anything else sets.
pub(crate) fn apply_overrides(target: &mut Map<String, Value>, overrides: &Map<String, Value>) {
    for (k, v) in overrides {
        if v.is_null() {
            target.remove(k);
        } else {
            target.insert(k.clone(), v.clone());
        }
    }
}

/// Decodes the payload of a compact JWS without verifying it.
pub fn decode_payload(token: &str) -> Option<Map<String, Value>> {
    let mut parts = token.split('.');
    let _header = parts.next()?;
    let payload = parts.next()?;
    let bytes = b64_decode(payload)?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// Decodes the header of a compact JWS without verifying it.
pub fn decode_header(token: &str) -> Option<Map<String, Value>> {
    let header = token.split('.').next()?;
    let bytes = b64_decode(header)?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// Verifies an RS256 compact JWS against the given candidate keys (matched by `kid`) and
/// returns its payload.
pub(crate) fn verify_rs256<'a>(
    token: &str,
    candidates: impl IntoIterator<Item = &'a Key>,
) -> Option<Map<String, Value>> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return None;
    }
    let header = decode_header(token)?;
    let alg = header.get("alg")?.as_str()?;
    let kid = header.get("kid")?.as_str()?;
    let sig_bytes = b64_decode(parts[2])?;
    let input = format!("{}.{}", parts[0], parts[1]);
    if alg == "ES256" {
        use p256::ecdsa::signature::Verifier as _;
        let key = candidates.into_iter().find(|k| k.ec.kid == kid)?;
        let sig = p256::ecdsa::Signature::from_slice(&sig_bytes).ok()?;
        key.ec
            .signing
            .verifying_key()
            .verify(input.as_bytes(), &sig)
            .ok()?;
        return decode_payload(token);
    }
    let key = candidates.into_iter().find(|k| k.kid == kid)?;
    match alg {
        "RS256" => {
            let sig = Signature::try_from(sig_bytes.as_slice()).ok()?;
            key.verifying.verify(input.as_bytes(), &sig).ok()?;
        }
        // The emulator's own PS256 tokens (the generic-provider shape).
        "PS256" => {
            let sig = rsa::pss::Signature::try_from(sig_bytes.as_slice()).ok()?;
            rsa::pss::VerifyingKey::<Sha256>::new(RsaPublicKey::from(&key.private))
                .verify(input.as_bytes(), &sig)
                .ok()?;
        }
        _ => return None,
    }
    decode_payload(token)
}
