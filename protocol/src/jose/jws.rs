//! Compact JWS (RFC 7515 §7.1) parsing and signature verification.
//!
//! A compact JWS is `BASE64URL(header) . BASE64URL(payload) . BASE64URL(signature)`. The
//! signature covers the ASCII of the first two parts (the *signing input*). Parsing decodes
//! header and payload so the caller can read `kid` before picking a key; nothing in a parsed
//! token may be trusted until [`Jws::verify`] succeeded and the claims were validated
//! ([`super::claims`]).
//!
//! Accepted: RS256 and PS256 with an RSA key of the JWKS, ES256 with a P-256 key, EdDSA with
//! an Ed25519 key (the key's own `alg`, when it names one, must be the token's), among the
//! algorithms discovery advertises for ID tokens when it advertises any; HS256 only when the configuration allows it, keyed by the client secret.
//! `none` and every other algorithm are rejected before any key is touched (the classic
//! "verify an RSA key as an HMAC secret" confusion cannot happen: HMAC never uses the JWKS).

use std::fmt;

use hmac::{Hmac, Mac as _};
use rsa::signature::Verifier as _;
use serde_json::{Map, Value};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use super::jwk::{Jwks, KeyMaterial};
use super::{JoseError, b64};

/// Which algorithms a verification accepts, beyond the key's own constraints.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlgorithmPolicy<'a> {
    /// `id_token_signing_alg_values_supported` from discovery: when present, the token's
    /// `alg` must be listed (HS256 excepted when configured).
    pub advertised: Option<&'a [String]>,
    /// The client secret, when HS256 was configured explicitly; `None` refuses HS256.
    pub hs256_secret: Option<&'a [u8]>,
}

/// Longest token [`Jws::parse`] accepts, in bytes.
pub const MAX_JWS_LEN: usize = 16 * 1024;

/// The protected header of a JWS.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwsHeader {
    /// `alg`: the signature algorithm the token claims.
    pub alg: String,
    /// `kid`: the id of the signing key, if given.
    pub kid: Option<String>,
    /// `typ`: the media type, if given (`JWT`, `logout+jwt`, …).
    pub typ: Option<String>,
}

/// A parsed, not yet verified, compact JWS whose payload is a JSON object.
///
/// `Debug` shows the header only: the claims are personal data.
#[derive(Clone)]
pub struct Jws {
    header: JwsHeader,
    claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

impl fmt::Debug for Jws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jws")
            .field("header", &self.header)
            .field("claims", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Jws {
    /// Parses a compact JWS.
    ///
    /// Checks: at most [`MAX_JWS_LEN`] bytes ([`JoseError::TooLarge`]); exactly three parts;
    /// strict base64url; the header a JSON object with a string `alg`, optional string `kid`
    /// and `typ`, and no `crit` (no extension is understood); the payload a JSON object.
    /// Everything else is [`JoseError::Malformed`].
    pub fn parse(token: &str) -> Result<Jws, JoseError> {
        if token.len() > MAX_JWS_LEN {
            return Err(JoseError::TooLarge { limit: MAX_JWS_LEN });
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JoseError::Malformed("a JWS has three parts"));
        };
        if h.is_empty() || p.is_empty() {
            return Err(JoseError::Malformed("empty JWS header or payload"));
        }
        let header: Map<String, Value> = serde_json::from_slice(&b64::decode(h)?)
            .map_err(|_| JoseError::Malformed("JWS header is not a JSON object"))?;
        let header = parse_header(&header)?;
        let claims: Map<String, Value> = serde_json::from_slice(&b64::decode(p)?)
            .map_err(|_| JoseError::Malformed("JWS payload is not a JSON object"))?;
        let signature = b64::decode(s)?;
        Ok(Jws {
            header,
            claims,
            signing_input: token[..h.len() + 1 + p.len()].to_owned(),
            signature,
        })
    }

    /// Verifies an RS256 signature only (the policy of a provider that advertises RS256).
    pub fn verify_rs256(&self, jwks: &Jwks) -> Result<(), JoseError> {
        let rs256 = ["RS256".to_owned()];
        self.verify(
            jwks,
            &AlgorithmPolicy {
                advertised: Some(&rs256),
                hs256_secret: None,
            },
        )
    }

    /// Verifies the signature under `policy`: `alg` is RS256, PS256, ES256 or EdDSA (listed
    /// in the advertised algorithms when some are), verified with the JWKS key named by `kid`
    /// (or, without `kid`, the only key of the set that verifies `alg`), whose type must fit
    /// the algorithm; or HS256 with the client secret when the policy carries one.
    ///
    /// Errors: [`JoseError::UnsupportedAlgorithm`] for `none` and any other `alg`;
    /// [`JoseError::UnknownKid`] when no key matches (refetch the JWKS once and retry);
    /// [`JoseError::InvalidSignature`] when the signature does not verify, or the key named
    /// by `kid` is not for `alg`.
    pub fn verify(&self, jwks: &Jwks, policy: &AlgorithmPolicy<'_>) -> Result<(), JoseError> {
        let alg = self.header.alg.as_str();
        if alg == "HS256" {
            let Some(secret) = policy.hs256_secret else {
                return Err(JoseError::unsupported_alg(alg));
            };
            let mut mac =
                Hmac::<Sha256>::new_from_slice(secret).map_err(|_| JoseError::InvalidSignature)?;
            mac.update(self.signing_input.as_bytes());
            let expected = mac.finalize().into_bytes();
            return if bool::from(expected.as_slice().ct_eq(&self.signature)) {
                Ok(())
            } else {
                Err(JoseError::InvalidSignature)
            };
        }
        if !super::jwk::ASYMMETRIC_ALGORITHMS.contains(&alg)
            || policy
                .advertised
                .is_some_and(|list| !list.iter().any(|a| a == alg))
        {
            return Err(JoseError::unsupported_alg(alg));
        }
        let key = match &self.header.kid {
            Some(kid) => jwks
                .find(kid)
                .ok_or_else(|| JoseError::UnknownKid(Some(kid.clone())))?,
            None => {
                let mut usable = jwks.keys().iter().filter(|k| k.verifies(alg));
                match (usable.next(), usable.next()) {
                    (Some(only), None) => only,
                    _ => return Err(JoseError::UnknownKid(None)),
                }
            }
        };
        if !key.verifies(alg) {
            return Err(JoseError::InvalidSignature);
        }
        let message = self.signing_input.as_bytes();
        let sig = self.signature.as_slice();
        let verified = match (alg, key.material()) {
            ("RS256", KeyMaterial::Rsa(public)) => {
                rsa_verifies(RsaScheme::Pkcs1v15, public, message, sig).then_some(())
            }
            ("PS256", KeyMaterial::Rsa(public)) => {
                rsa_verifies(RsaScheme::Pss, public, message, sig).then_some(())
            }
            // JWS ES256 signatures are the raw 64-byte `r || s` (RFC 7518 §3.4).
            ("ES256", KeyMaterial::P256(public)) => p256::ecdsa::Signature::from_slice(sig)
                .ok()
                .and_then(|sig| public.verify(message, &sig).ok()),
            ("EdDSA", KeyMaterial::Ed25519(public)) => ed25519_dalek::Signature::from_slice(sig)
                .ok()
                .and_then(|sig| public.verify_strict(message, &sig).ok()),
            _ => None,
        };
        verified.ok_or(JoseError::InvalidSignature)
    }

    /// The protected header.
    pub fn header(&self) -> &JwsHeader {
        &self.header
    }

    /// The claims (payload). Untrusted until verified and validated.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// Consumes the token, returning its claims.
    pub fn into_claims(self) -> Map<String, Value> {
        self.claims
    }

    /// The signing input: the first two parts of the token, dot-separated.
    pub fn signing_input(&self) -> &str {
        &self.signing_input
    }

    /// The decoded signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}

fn parse_header(header: &Map<String, Value>) -> Result<JwsHeader, JoseError> {
    let opt_str = |name: &'static str| match header.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JoseError::Malformed("JWS header member is not a string")),
    };
    if header.contains_key("crit") {
        return Err(JoseError::Malformed("JWS header has unsupported crit"));
    }
    let alg = opt_str("alg")?.ok_or(JoseError::Malformed("JWS header has no alg"))?;
    Ok(JwsHeader {
        alg,
        kid: opt_str("kid")?,
        typ: opt_str("typ")?,
    })
}

/// The claims of a JWT's payload, decoded without verifying the signature. Used only for
/// tokens received directly from the token endpoint over TLS (OpenID Core §3.1.3.7 (6)), to
/// read `aud` of an access token or `sub`/`iss` of a refreshed ID token.
pub fn unverified_claims(token: &str) -> Option<serde_json::Map<String, Value>> {
    serde_json::from_slice(&unverified_payload(token)?).ok()
}

/// One top-level claim of a JWT's payload (`aud`, `exp`), decoded without verifying the
/// signature, as [`unverified_claims`] would give it (`None` when the token is not a JWT with
/// a JSON object payload or has no such claim; the last of duplicate members wins). The other
/// members are skipped, not built: reading an access token's `aud` on every refresh costs no
/// map. One difference: a member skipped is only checked to be well-formed JSON (not that its
/// numbers fit an `f64` or its strings are valid Unicode), so such a member no longer hides
/// this one: an access token's `aud` is then checked where it was not before.
pub fn unverified_claim(token: &str, name: &str) -> Option<Value> {
    let bytes = unverified_payload(token)?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let found = serde::de::Deserializer::deserialize_map(&mut de, OneClaim(name)).ok()?;
    de.end().ok()?;
    found
}

/// The decoded payload of a compact JWS (at most 64 KiB of token), unverified.
fn unverified_payload(token: &str) -> Option<Vec<u8>> {
    if token.len() > 64 * 1024 {
        return None;
    }
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    b64::decode(payload).ok()
}

/// The RSA signature schemes of the JWS algorithms verified (both with SHA-256).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RsaScheme {
    /// RS256: RSASSA-PKCS1-v1_5.
    Pkcs1v15,
    /// PS256: RSASSA-PSS, MGF1 with SHA-256, salt as long as the hash.
    Pss,
}

/// Whether `sig` is `public`'s signature of `message` under `scheme`. With the `ring` feature
/// ring verifies (the key is 2048 to 8192 bits, as [`Jwk`](super::jwk) admits it; ring takes
/// the same range); without it, the `rsa` crate.
fn rsa_verifies(scheme: RsaScheme, public: &rsa::RsaPublicKey, message: &[u8], sig: &[u8]) -> bool {
    #[cfg(feature = "ring")]
    {
        rsa_verifies_ring(scheme, public, message, sig)
    }
    #[cfg(not(feature = "ring"))]
    {
        rsa_verifies_rustcrypto(scheme, public, message, sig)
    }
}

#[cfg(feature = "ring")]
fn rsa_verifies_ring(
    scheme: RsaScheme,
    public: &rsa::RsaPublicKey,
    message: &[u8],
    sig: &[u8],
) -> bool {
    use rsa::traits::PublicKeyParts as _;
    let (n, e) = (public.n().to_bytes_be(), public.e().to_bytes_be());
    let params = match scheme {
        RsaScheme::Pkcs1v15 => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        RsaScheme::Pss => &ring::signature::RSA_PSS_2048_8192_SHA256,
    };
    // A signature must be the modulus' length (RFC 8017 I2OSP, RFC 7518 §3.3): one shorter
    // (leading zero octets dropped) or longer is refused, as the `rsa` crate refuses it.
    ring::signature::RsaPublicKeyComponents { n: &n, e: &e }
        .verify(params, message, sig)
        .is_ok()
}

#[cfg_attr(feature = "ring", allow(dead_code))]
fn rsa_verifies_rustcrypto(
    scheme: RsaScheme,
    public: &rsa::RsaPublicKey,
    message: &[u8],
    sig: &[u8],
) -> bool {
    match scheme {
        RsaScheme::Pkcs1v15 => rsa::pkcs1v15::Signature::try_from(sig).is_ok_and(|sig| {
            rsa::pkcs1v15::VerifyingKey::<Sha256>::new(public.clone())
                .verify(message, &sig)
                .is_ok()
        }),
        RsaScheme::Pss => rsa::pss::Signature::try_from(sig).is_ok_and(|sig| {
            rsa::pss::VerifyingKey::<Sha256>::new(public.clone())
                .verify(message, &sig)
                .is_ok()
        }),
    }
}

/// Visits a JSON object keeping the value of one member ([`unverified_claim`]).
struct OneClaim<'n>(&'n str);

impl<'de> serde::de::Visitor<'de> for OneClaim<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(is_name) = map.next_key_seed(IsName(self.0))? {
            if is_name {
                found = Some(map.next_value::<Value>()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Reads an object key and tells whether it is the wanted name, without allocating it.
struct IsName<'n>(&'n str);

impl<'de> serde::de::DeserializeSeed<'de> for IsName<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for IsName<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ring and the `rsa` crate agree on every RS256 and PS256 signature: valid ones verify
    /// under both, and a changed message, signature, scheme or key fails under both.
    #[cfg(feature = "ring")]
    #[test]
    fn jose_jws_ring_and_rustcrypto_agree_on_rsa_signatures() {
        use rand_chacha::ChaCha20Rng;
        use rand_chacha::rand_core::SeedableRng as _;
        use rsa::pkcs8::DecodePrivateKey as _;
        use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
        let key = |pem: &str| rsa::RsaPrivateKey::from_pkcs8_pem(pem).expect("a test key");
        let a = key(include_str!("../../tests/data/rs256-a.pem"));
        let b = key(include_str!("../../tests/data/rs256-b.pem"));
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let message: &[u8] = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhdXRoMHwxIn0";
        let pkcs1 = rsa::pkcs1v15::SigningKey::<Sha256>::new(a.clone())
            .sign_with_rng(&mut rng, message)
            .to_vec();
        let pss = rsa::pss::BlindedSigningKey::<Sha256>::new(a.clone())
            .sign_with_rng(&mut rng, message)
            .to_vec();
        let mut flipped = pkcs1.clone();
        flipped[17] ^= 1;
        // A signature whose first octet is zero (signed again until one is), sent without it
        // as some signers do: not the modulus' length, refused by both.
        let mut nonce = 0u32;
        let stripped = loop {
            let msg = [message, nonce.to_be_bytes().as_slice()].concat();
            let sig = rsa::pkcs1v15::SigningKey::<Sha256>::new(a.clone())
                .sign_with_rng(&mut rng, &msg)
                .to_vec();
            if sig[0] == 0 {
                break (msg, sig[1..].to_vec());
            }
            nonce += 1;
        };
        let (pa, pb) = (a.to_public_key(), b.to_public_key());
        struct Case<'a> {
            scheme: RsaScheme,
            key: &'a rsa::RsaPublicKey,
            message: &'a [u8],
            sig: &'a [u8],
            valid: bool,
        }
        let case = |scheme, key, message, sig, valid| Case {
            scheme,
            key,
            message,
            sig,
            valid,
        };
        let other: &[u8] = b"another message";
        let longer = [&[0u8][..], &pkcs1].concat();
        let cases = [
            case(RsaScheme::Pkcs1v15, &pa, message, &pkcs1, true),
            case(RsaScheme::Pss, &pa, message, &pss, true),
            case(RsaScheme::Pkcs1v15, &pa, other, &pkcs1, false),
            case(RsaScheme::Pss, &pa, other, &pss, false),
            case(RsaScheme::Pkcs1v15, &pa, message, &flipped, false),
            case(RsaScheme::Pkcs1v15, &pa, message, &pss, false),
            case(RsaScheme::Pss, &pa, message, &pkcs1, false),
            case(RsaScheme::Pkcs1v15, &pb, message, &pkcs1, false),
            case(RsaScheme::Pkcs1v15, &pa, message, &pkcs1[..100], false),
            case(RsaScheme::Pkcs1v15, &pa, &stripped.0, &stripped.1, false),
            case(RsaScheme::Pkcs1v15, &pa, message, &longer, false),
        ];
        for (i, c) in cases.iter().enumerate() {
            assert_eq!(
                rsa_verifies_ring(c.scheme, c.key, c.message, c.sig),
                c.valid,
                "ring, case {i}"
            );
            assert_eq!(
                rsa_verifies_rustcrypto(c.scheme, c.key, c.message, c.sig),
                c.valid,
                "rsa crate, case {i}"
            );
        }
    }

    fn token(header: &str, payload: &str, sig: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            b64::encode(header.as_bytes()),
            b64::encode(payload.as_bytes()),
            b64::encode(sig)
        )
    }

    #[test]
    fn jose_jws_parse_keeps_header_claims_and_signing_input() {
        let t = token(
            r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#,
            r#"{"sub":"a"}"#,
            b"sig",
        );
        let jws = Jws::parse(&t).unwrap();
        assert_eq!(jws.header().alg, "RS256");
        assert_eq!(jws.header().kid.as_deref(), Some("k1"));
        assert_eq!(jws.header().typ.as_deref(), Some("JWT"));
        assert_eq!(jws.claims()["sub"], "a");
        assert_eq!(jws.signature(), b"sig");
        assert_eq!(jws.signing_input(), &t[..t.rfind('.').unwrap()]);
        assert!(!format!("{jws:?}").contains("\"a\""));
    }

    #[test]
    fn jose_jws_parse_rejects_structural_errors() {
        let good = token(r#"{"alg":"RS256"}"#, "{}", b"s");
        assert!(Jws::parse(&good).is_ok());
        for bad in [
            String::new(),
            "a.b".to_owned(),
            format!("{good}.x"),
            token(r#"{"kid":"k"}"#, "{}", b"s"),
            token(r#"{"alg":1}"#, "{}", b"s"),
            token(r#"{"alg":"RS256","crit":["b64"]}"#, "{}", b"s"),
            token(r#"{"alg":"RS256"}"#, "[]", b"s"),
            token(r#"[]"#, "{}", b"s"),
            format!("{good}="),
        ] {
            assert_eq!(
                Jws::parse(&bad).unwrap_err().code(),
                "malformed_token",
                "{bad}"
            );
        }
        let huge = "a".repeat(MAX_JWS_LEN + 1);
        assert_eq!(Jws::parse(&huge).unwrap_err().code(), "too_large");
    }

    #[test]
    fn unverified_claims_reads_payload() {
        let payload = b64::encode(br#"{"aud":"x"}"#);
        let c = unverified_claims(&format!("e30.{payload}.sig")).unwrap();
        assert_eq!(c["aud"], "x");
        assert!(unverified_claims("opaque-token").is_none());
        assert!(unverified_claims("a.b.c.d").is_none());
    }

    #[test]
    fn unverified_claim_reads_one_member_like_the_map() {
        let jwt = |payload: &str| format!("e30.{}.sig", b64::encode(payload.as_bytes()));
        for payload in [
            r#"{"aud":"a","sub":"x"}"#,
            r#"{"sub":{"n":[1,2,{"aud":"inner"}]},"aud":["a","b"],"x":null}"#,
            r#"{"aud":"first","aud":"last"}"#,
            r#"{"sub":"no aud"}"#,
            r#"{"a\u0075d":"escaped key"}"#,
            r#"["aud"]"#,
            r#"{"aud":"a"} trailing"#,
            r#"{"aud":"a""#,
            "not json",
        ] {
            let token = jwt(payload);
            assert_eq!(
                unverified_claim(&token, "aud"),
                unverified_claims(&token).and_then(|mut c| c.remove("aud")),
                "{payload}"
            );
        }
        assert!(unverified_claim("opaque-token", "aud").is_none());
        assert!(unverified_claim("a.b.c.d", "aud").is_none());
    }
}
