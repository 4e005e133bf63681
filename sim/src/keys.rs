//! The model tenant's signing key (the emulator's bundled test key 1) and the back-channel
//! logout tokens it signs (RS256 with the `rsa` crate). Tokens are signed once per process
//! and reused by every seed: their claims do not depend on the seed.

use crate::world::{CLIENT_ID, ORIGIN};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

const PEM: &str = include_str!("../../tests/data/keys/key1.pem");
const KID: &str = "sim-key-1";

/// When every logout token was issued (the simulation starts here too).
pub const T0: u64 = 1_700_000_000;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

struct Keys {
    signing: SigningKey<Sha256>,
    jwks: serde_json::Value,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let private = RsaPrivateKey::from_pkcs8_pem(PEM).expect("the bundled test key parses");
        let public = RsaPublicKey::from(&private);
        let jwks = serde_json::json!({"keys": [{
            "kty": "RSA", "kid": KID, "use": "sig", "alg": "RS256",
            "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be()),
        }]});
        Keys {
            signing: SigningKey::<Sha256>::new(private),
            jwks,
        }
    })
}

/// The tenant's JWKS.
pub fn jwks() -> &'static serde_json::Value {
    &keys().jwks
}

/// A back-channel logout token for session `sid` of user `sub`, the `n`th one for that
/// session (distinct `jti`s).
pub fn logout_token(sid: &str, sub: &str, n: u32) -> String {
    static MEMO: OnceLock<Mutex<HashMap<(String, u32), String>>> = OnceLock::new();
    let memo = MEMO.get_or_init(Mutex::default);
    let key = (sid.to_owned(), n);
    if let Some(t) = memo.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return t.clone();
    }
    let header = serde_json::json!({"alg": "RS256", "typ": "logout+jwt", "kid": KID});
    let claims = serde_json::json!({
        "iss": format!("{ORIGIN}/"),
        "aud": CLIENT_ID,
        "iat": T0,
        "exp": T0 + 10 * 365 * 86_400,
        "jti": format!("jti-{sid}-{n}"),
        "sid": sid,
        "sub": sub,
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    });
    let input = format!(
        "{}.{}",
        b64(&serde_json::to_vec(&header).unwrap_or_default()),
        b64(&serde_json::to_vec(&claims).unwrap_or_default())
    );
    let signature = keys().signing.sign(input.as_bytes()).to_bytes();
    let token = format!("{input}.{}", b64(&signature));
    memo.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, token.clone());
    token
}
