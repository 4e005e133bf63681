//! The tenant's JSON Web Key Set (RFC 7517): the public keys ID and logout tokens are
//! verified with.
//!
//! The adapter fetches `/.well-known/jwks.json`, hands the body to [`Jwks::from_slice`] and
//! caches the result (cloning a [`Jwks`] is a reference-count increment). Each usable key is
//! converted to an RSA verifier once, at parse time, so verifying a token does no parsing.
//!
//! Signature keys are kept: RSA (for RS256 and PS256, 2048–8192 bits), EC P-256 (ES256) and
//! OKP Ed25519 (EdDSA). Keys of another type or curve, encryption keys (`use=enc`), keys for
//! another algorithm, keys without `verify` among their `key_ops`, keys with malformed numbers
//! or points, and RSA keys outside 2048–8192 bits are skipped, not fatal: a provider may
//! publish keys this SDK does not use.

use std::fmt;
use std::sync::Arc;

use rsa::{BigUint, RsaPublicKey};
use serde_json::Value;

use super::{JoseError, b64};

/// Largest JWKS document accepted, in bytes.
pub const MAX_JWKS_LEN: usize = 256 * 1024;
/// Number of entries of `keys` examined; later entries are ignored.
pub const MAX_KEYS: usize = 64;
/// Smallest accepted RSA modulus, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest accepted RSA modulus, in bits.
pub const MAX_RSA_BITS: usize = 8192;

/// A parsed key set: the RSA signature keys of a JWKS, ready to verify with.
///
/// Cheap to clone (shared). An empty set is valid: every lookup then fails with
/// [`JoseError::UnknownKid`], which tells the adapter to refetch.
#[derive(Clone, Debug, Default)]
pub struct Jwks {
    keys: Arc<[JwkKey]>,
}

/// The JWS algorithms an RSA key verifies.
pub const RSA_ALGORITHMS: [&str; 2] = ["RS256", "PS256"];

/// Every asymmetric JWS algorithm the SDK verifies.
pub const ASYMMETRIC_ALGORITHMS: [&str; 4] = ["RS256", "PS256", "ES256", "EdDSA"];

/// The public key of a [`JwkKey`], by type.
#[derive(Clone)]
pub(crate) enum KeyMaterial {
    /// `kty=RSA`: RS256 and PS256.
    Rsa(RsaPublicKey),
    /// `kty=EC`, `crv=P-256`: ES256.
    P256(p256::ecdsa::VerifyingKey),
    /// `kty=OKP`, `crv=Ed25519`: EdDSA.
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// One signature key of a [`Jwks`].
#[derive(Clone)]
pub struct JwkKey {
    kid: Option<String>,
    alg: Option<String>,
    bits: usize,
    material: KeyMaterial,
}

impl fmt::Debug for JwkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwkKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

impl JwkKey {
    /// The key id (`kid`), if the JWK has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Size of the RSA modulus in bits (256 for a P-256 or Ed25519 key).
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The algorithm the JWK is restricted to (`alg`), if it names one.
    pub fn alg(&self) -> Option<&str> {
        self.alg.as_deref()
    }

    /// Whether this key may verify a token signed with `alg`: an algorithm of the key's type
    /// (RSA: RS256, PS256; P-256: ES256; Ed25519: EdDSA), and the JWK's own `alg` when it
    /// names one.
    pub fn verifies(&self, alg: &str) -> bool {
        let by_type = match self.material {
            KeyMaterial::Rsa(_) => RSA_ALGORITHMS.contains(&alg),
            KeyMaterial::P256(_) => alg == "ES256",
            KeyMaterial::Ed25519(_) => alg == "EdDSA",
        };
        by_type && self.alg.as_deref().is_none_or(|a| a == alg)
    }

    /// The public key.
    pub(crate) fn material(&self) -> &KeyMaterial {
        &self.material
    }

    /// Builds a key from one JWK object, or `None` when it is not a usable signature key.
    fn from_jwk(jwk: &Value) -> Option<JwkKey> {
        let obj = jwk.as_object()?;
        let str_member = |name: &str| obj.get(name).and_then(Value::as_str);
        let kty = str_member("kty")?;
        if obj.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
            return None;
        }
        let alg = match obj.get("alg") {
            None => None,
            Some(Value::String(a)) if ASYMMETRIC_ALGORITHMS.contains(&a.as_str()) => {
                Some(a.clone())
            }
            Some(_) => return None,
        };
        if let Some(ops) = obj.get("key_ops") {
            let ops = ops.as_array()?;
            if !ops.iter().any(|op| op.as_str() == Some("verify")) {
                return None;
            }
        }
        let kid = match obj.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return None,
        };
        let material = match (kty, str_member("crv")) {
            ("RSA", _) => None,
            ("EC", Some("P-256")) => {
                let x = b64::decode(str_member("x")?).ok()?;
                let y = b64::decode(str_member("y")?).ok()?;
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let point = p256::EncodedPoint::from_affine_coordinates(
                    p256::FieldBytes::from_slice(&x),
                    p256::FieldBytes::from_slice(&y),
                    false,
                );
                Some(KeyMaterial::P256(
                    p256::ecdsa::VerifyingKey::from_encoded_point(&point).ok()?,
                ))
            }
            ("OKP", Some("Ed25519")) => {
                let x: [u8; 32] = b64::decode(str_member("x")?).ok()?.try_into().ok()?;
                Some(KeyMaterial::Ed25519(
                    ed25519_dalek::VerifyingKey::from_bytes(&x).ok()?,
                ))
            }
            _ => return None,
        };
        if let Some(material) = material {
            let key = JwkKey {
                kid,
                alg,
                bits: 256,
                material,
            };
            // A JWK whose `alg` is not one its type verifies is unusable.
            return key
                .alg
                .clone()
                .is_none_or(|a| key.verifies(&a))
                .then_some(key);
        }
        if alg.as_deref().is_some_and(|a| !RSA_ALGORITHMS.contains(&a)) {
            return None;
        }
        let n = b64::decode(str_member("n")?).ok()?;
        let e = b64::decode(str_member("e")?).ok()?;
        // A public exponent longer than 8 bytes is absurd; `rsa` rejects e > 2^33 anyway.
        if e.len() > 8 || n.len() > MAX_RSA_BITS / 8 + 1 {
            return None;
        }
        let n = BigUint::from_bytes_be(&n);
        let bits = n.bits();
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return None;
        }
        let e = BigUint::from_bytes_be(&e);
        let public = RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS).ok()?;
        Some(JwkKey {
            kid,
            alg,
            bits,
            material: KeyMaterial::Rsa(public),
        })
    }
}

impl Jwks {
    /// Parses a JWKS document (`{"keys": [...]}`), keeping its usable signature keys.
    ///
    /// Errors only when the document itself is unusable: larger than [`MAX_JWKS_LEN`]
    /// ([`JoseError::TooLarge`]), not JSON, not an object, or without a `keys` array
    /// ([`JoseError::InvalidJwks`]). Unusable individual keys are skipped.
    pub fn from_slice(json: &[u8]) -> Result<Jwks, JoseError> {
        if json.len() > MAX_JWKS_LEN {
            return Err(JoseError::TooLarge {
                limit: MAX_JWKS_LEN,
            });
        }
        let doc: Value =
            serde_json::from_slice(json).map_err(|_| JoseError::InvalidJwks("not JSON"))?;
        let keys = doc
            .as_object()
            .ok_or(JoseError::InvalidJwks("not a JSON object"))?
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JoseError::InvalidJwks("no keys array"))?;
        let keys: Vec<JwkKey> = keys
            .iter()
            .take(MAX_KEYS)
            .filter_map(JwkKey::from_jwk)
            .collect();
        Ok(Jwks { keys: keys.into() })
    }

    /// The key whose `kid` is `kid` (the first one, should the set repeat a kid).
    pub fn find(&self, kid: &str) -> Option<&JwkKey> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }

    /// All usable keys, in document order.
    pub fn keys(&self) -> &[JwkKey] {
        &self.keys
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
