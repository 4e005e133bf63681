//! DPoP (RFC 9449): access tokens bound to a key the application holds, so a stolen token is
//! useless without the key.
//!
//! Opt-in per client with [`ConfigBuilder::dpop`](crate::config::ConfigBuilder::dpop) and an
//! ES256 (P-256) private key. Then:
//!
//! - **Every token-endpoint request and PAR carries a fresh proof** — a JWT in the `DPoP`
//!   header, `typ: dpop+jwt`, `alg: ES256`, the public key as `jwk`, and the claims `jti`
//!   (16 random bytes), `htm` (the method), `htu` (the URL without query and fragment, see
//!   [`htu`]), `iat` and, once the server gave one, `nonce`. The request leaves the core
//!   marked [`AtSend::DpopProof`](crate::effect::AtSend::DpopProof); the driver makes the
//!   proof right before sending, with the clock and the operating system's random bytes, so a
//!   resent request carries a new one (as for `private_key_jwt` client assertions).
//! - **A nonce challenge is answered once.** A server that wants a nonce answers `400` (token
//!   endpoint, PAR) or `401` with `error=use_dpop_nonce` and a `DPoP-Nonce` header;
//!   [`token_endpoint_retry`] decides whether to send again with that nonce (at most once).
//!   The driver remembers the last nonce the server gave and puts it in later proofs.
//! - **Tokens keep their type.** The answer must say `token_type: DPoP`; a bearer token to a
//!   DPoP request is refused
//!   ([`ResponseError::TokenTypeMismatch`](crate::token_response::ResponseError::TokenTypeMismatch),
//!   code `token_type_mismatch`) and nothing is saved. Token sets store their
//!   [`TokenType`], and the [`AccessToken`](crate::access_token::AccessToken) handed to the
//!   application carries it.
//! - **Calling an API** with a DPoP-bound token needs a proof per request, with `ath` (the
//!   token's SHA-256): [`resource_headers`] gives both headers, and [`resource_retry`] reads
//!   a resource server's nonce challenge. The clients wrap them as `dpop_headers`.
//!
//! Signing is RustCrypto's `p256` (ECDSA with RFC 6979 deterministic nonces: no randomness
//! needed beyond the `jti`). The key is parsed once, never printed, and never in an error.

use crate::client_assertion::{AssertionAlg, AssertionKey, InvalidKey};
use crate::error_code::ErrorCode;
use crate::jose::b64;
use crate::secret::Secret;
use crate::time::UnixTime;
pub use crate::token_response::TokenType;
use p256::ecdsa::signature::Signer;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::fmt;

/// The request header carrying a proof.
pub const DPOP_HEADER: &str = "dpop";
/// The response header carrying a server's nonce (RFC 9449 §8, §9).
pub const DPOP_NONCE_HEADER: &str = "dpop-nonce";
/// The `typ` of every proof.
pub const PROOF_TYPE: &str = "dpop+jwt";
/// The OAuth error of a nonce challenge.
pub const USE_DPOP_NONCE: &str = "use_dpop_nonce";
/// How many random bytes one proof needs (its `jti`).
pub const PROOF_RANDOM_LEN: usize = 16;
/// Longest nonce accepted from a server; a longer one is ignored (no retry).
pub const MAX_NONCE_LEN: usize = 1024;

/// A validated ES256 (P-256) private key for DPoP proofs. Cheap to clone; never printed:
/// `Debug` shows the public key's thumbprint only.
#[derive(Clone)]
pub struct DpopKey {
    key: AssertionKey,
    public_jwk: Value,
    thumbprint: String,
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey")
            .field("jkt", &self.thumbprint)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl DpopKey {
    /// Parses a P-256 private key: an unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`,
    /// e.g. `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`) or a private
    /// JWK (`kty: EC`, `crv: P-256`, `d`, `x`, `y`). The error never quotes the key.
    pub fn parse(key: &str) -> Result<Self, InvalidKey> {
        let key = AssertionKey::parse(key, AssertionAlg::Es256, None).map_err(|e| InvalidKey {
            reason: format!("{} (DPoP needs an ES256 P-256 key)", e.reason),
        })?;
        let full = key.public_jwk();
        let member = |name: &str| full.get(name).cloned().unwrap_or(Value::Null);
        // RFC 7638 §3.2: the required members of an EC key, in lexicographic order, no
        // whitespace; serde_json's map is ordered, so this is the canonical form.
        let public_jwk = json!({
            "crv": member("crv"),
            "kty": member("kty"),
            "x": member("x"),
            "y": member("y"),
        });
        let thumbprint = b64::encode(&Sha256::digest(public_jwk.to_string().as_bytes()));
        Ok(DpopKey {
            key,
            public_jwk,
            thumbprint,
        })
    }

    /// The public key as the JWK put in every proof's header (`crv`, `kty`, `x`, `y`).
    pub fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    /// The key's JWK SHA-256 thumbprint (RFC 7638), base64url: the `jkt` a server binds
    /// tokens to (`cnf.jkt`).
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    fn sign(&self, input: &[u8]) -> Result<Vec<u8>, DpopError> {
        let key = self.key.ec_signing_key().ok_or(DpopError::Signing)?;
        let sig: p256::ecdsa::Signature = key.try_sign(input).map_err(|_| DpopError::Signing)?;
        Ok(sig.to_bytes().to_vec())
    }
}

/// Why a DPoP proof could not be made. Nothing was sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// A proof was asked for but the client has no DPoP key
    /// ([`ConfigBuilder::dpop`](crate::config::ConfigBuilder::dpop)).
    #[error("a DPoP proof was requested but no DPoP key is configured")]
    NotConfigured,
    /// The access token is a bearer token: it is not bound to the DPoP key, and presenting
    /// it with a proof would fail at the API.
    #[error("the access token is a {0} token, not a DPoP-bound one")]
    NotDpopBound(TokenType),
    /// The URL is not an absolute `http`/`https` URL.
    #[error("the DPoP proof's URL is not an absolute http(s) URL")]
    InvalidUrl,
    /// The driver supplied fewer than [`PROOF_RANDOM_LEN`] random bytes.
    #[error("a DPoP proof needs {PROOF_RANDOM_LEN} random bytes")]
    NotEnoughRandom,
    /// The signing operation failed.
    #[error("the DPoP proof could not be signed")]
    Signing,
}

impl DpopError {
    /// The stable error code, `dpop_failed`.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::DpopFailed
    }
}

/// The `htu` of a request to `url` (RFC 9449 §4.2): the URL without query and fragment. The
/// URL is normalised as the WHATWG URL parser does (lower-case scheme and host, default port
/// dropped), which the comparison of RFC 9449 §4.3 (RFC 3986 §6.2.2–6.2.3) tolerates.
pub fn htu(url: &str) -> Result<String, DpopError> {
    let mut url = url::Url::parse(url).map_err(|_| DpopError::InvalidUrl)?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(DpopError::InvalidUrl);
    }
    url.set_query(None);
    url.set_fragment(None);
    // Credentials in a URL (deprecated for http) are never copied into a proof.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok(url.into())
}

/// What a proof is for: the request's method and URL, the server's nonce when one is known,
/// and the access token it presents (resource requests only: it becomes `ath`).
#[derive(Clone, Copy)]
pub struct ProofFor<'a> {
    /// The HTTP method (`htm`), e.g. `POST`.
    pub method: &'a str,
    /// The request URL; its query and fragment are not part of `htu`.
    pub url: &'a str,
    /// The server's last `DPoP-Nonce`, when one is known.
    pub nonce: Option<&'a str>,
    /// The access token presented with the proof (sets `ath`).
    pub access_token: Option<&'a str>,
}

impl fmt::Debug for ProofFor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProofFor")
            .field("method", &self.method)
            .field("nonce", &self.nonce.is_some())
            .field("access_token", &self.access_token.map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// The claims of a proof for `what` at `now` with `jti` bytes (before signing).
pub fn proof_claims(what: &ProofFor<'_>, now: UnixTime, jti: &[u8]) -> Result<Value, DpopError> {
    let mut claims = json!({
        "jti": b64::encode(jti),
        "htm": what.method,
        "htu": htu(what.url)?,
        "iat": now.as_secs(),
    });
    if let Value::Object(m) = &mut claims {
        if let Some(nonce) = what.nonce {
            m.insert("nonce".into(), nonce.into());
        }
        if let Some(token) = what.access_token {
            m.insert("ath".into(), access_token_hash(token).into());
        }
    }
    Ok(claims)
}

/// `ath` (RFC 9449 §4.2): base64url of the SHA-256 of the access token's ASCII.
pub fn access_token_hash(access_token: &str) -> String {
    b64::encode(&Sha256::digest(access_token.as_bytes()))
}

/// A signed proof for `what` at `now`, its `jti` from the first [`PROOF_RANDOM_LEN`] bytes of
/// `random`.
pub fn proof(
    key: &DpopKey,
    what: &ProofFor<'_>,
    now: UnixTime,
    random: &[u8],
) -> Result<String, DpopError> {
    let jti = random
        .get(..PROOF_RANDOM_LEN)
        .ok_or(DpopError::NotEnoughRandom)?;
    let header = json!({"typ": PROOF_TYPE, "alg": "ES256", "jwk": key.public_jwk()});
    let claims = proof_claims(what, now, jti)?;
    let mut input = b64::encode(header.to_string().as_bytes());
    input.push('.');
    b64::encode_into(claims.to_string().as_bytes(), &mut input);
    let signature = key.sign(input.as_bytes())?;
    input.push('.');
    b64::encode_into(&signature, &mut input);
    Ok(input)
}

/// `request` with a fresh proof in its `DPoP` header, for its own method and URL: what
/// [`AtSend::DpopProof`](crate::effect::AtSend::DpopProof) does at sending.
pub fn with_proof(
    key: &DpopKey,
    request: http::Request<Vec<u8>>,
    nonce: Option<&str>,
    now: UnixTime,
    random: &[u8],
) -> Result<http::Request<Vec<u8>>, DpopError> {
    let url = request.uri().to_string();
    // A request presenting a DPoP-bound access token (`Authorization: DPoP <token>`, a
    // resource request) binds the proof to it with `ath` (RFC 9449 §4.2).
    let bound_token = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("DPoP "));
    let jwt = proof(
        key,
        &ProofFor {
            method: request.method().as_str(),
            url: &url,
            nonce,
            access_token: bound_token,
        },
        now,
        random,
    )?;
    let value = http::HeaderValue::from_str(&jwt).map_err(|_| DpopError::Signing)?;
    let (mut parts, body) = request.into_parts();
    parts.headers.insert(DPOP_HEADER, value);
    Ok(http::Request::from_parts(parts, body))
}

/// Whether to send a request again, and with which nonce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NonceRetry {
    /// The server asked for a nonce and gave this one: send once more, with a new proof
    /// carrying it.
    RetryWith(String),
    /// Take the answer as it is (no nonce challenge, no usable nonce, or already retried).
    Done,
}

/// The server's `DPoP-Nonce` header, when it holds a usable nonce (non-empty, at most
/// [`MAX_NONCE_LEN`] bytes of RFC 9449's `NQCHAR`: visible ASCII but `"` and `\`). A server
/// may send a fresh one with any answer (§8.2); the driver keeps the last.
pub fn nonce_of(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get(DPOP_NONCE_HEADER)?.to_str().ok()?;
    let ok = !value.is_empty()
        && value.len() <= MAX_NONCE_LEN
        && value
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\');
    ok.then(|| value.to_owned())
}

/// Whether a `WWW-Authenticate` header challenges with `DPoP` (first, or after a comma among
/// several challenges) and `error="use_dpop_nonce"`.
fn challenges_for_nonce(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            let dpop_scheme = v.split(',').any(|part| {
                let part = part.trim_start();
                part.get(..5)
                    .is_some_and(|s| s.eq_ignore_ascii_case("dpop "))
            });
            dpop_scheme
                && v.split([',', ' '])
                    .filter_map(|p| p.trim().split_once('='))
                    .any(|(k, val)| {
                        k.trim().eq_ignore_ascii_case("error")
                            && val.trim().trim_matches('"') == USE_DPOP_NONCE
                    })
        })
}

/// The nonce-retry decision for an answer of the token endpoint or PAR (RFC 9449 §8):
/// [`NonceRetry::RetryWith`] the server's nonce when the answer is `400` or `401` with
/// `error=use_dpop_nonce` (in the JSON body or a `WWW-Authenticate: DPoP` challenge) and a
/// usable `DPoP-Nonce` header, and the request was not retried yet (`retries_so_far` = 0);
/// otherwise [`NonceRetry::Done`]. One retry only: a server that challenges again is
/// answered with its error, never in a loop.
pub fn token_endpoint_retry(response: &http::Response<Vec<u8>>, retries_so_far: u8) -> NonceRetry {
    if retries_so_far > 0 || !matches!(response.status().as_u16(), 400 | 401) {
        return NonceRetry::Done;
    }
    let body_says =
        crate::token_response::parse_error_body(response.status().as_u16(), response.body())
            .oauth()
            .is_some_and(|o| o.error == USE_DPOP_NONCE);
    if !body_says && !challenges_for_nonce(response.headers()) {
        return NonceRetry::Done;
    }
    match nonce_of(response.headers()) {
        Some(nonce) => NonceRetry::RetryWith(nonce),
        None => NonceRetry::Done,
    }
}

/// The nonce-retry decision for a resource server's answer (RFC 9449 §9):
/// [`NonceRetry::RetryWith`] its nonce when it answered `401` with
/// `WWW-Authenticate: DPoP error="use_dpop_nonce"` and a usable `DPoP-Nonce` header, and the
/// request was not retried yet; otherwise [`NonceRetry::Done`]. Pass the status and headers
/// of the API's answer, then call `dpop_headers` again with the nonce and send once more.
pub fn resource_retry(
    status: http::StatusCode,
    headers: &http::HeaderMap,
    retries_so_far: u8,
) -> NonceRetry {
    if retries_so_far > 0 || status != http::StatusCode::UNAUTHORIZED {
        return NonceRetry::Done;
    }
    if !challenges_for_nonce(headers) {
        return NonceRetry::Done;
    }
    match nonce_of(headers) {
        Some(nonce) => NonceRetry::RetryWith(nonce),
        None => NonceRetry::Done,
    }
}

/// The two headers of a request to an API with a DPoP-bound access token:
/// `Authorization: DPoP <token>` and `DPoP: <proof>`. `Debug` never shows the token.
#[derive(Clone)]
pub struct DpopHeaders {
    authorization: Secret,
    proof: String,
}

impl fmt::Debug for DpopHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopHeaders")
            .field("authorization", &"DPoP [redacted]")
            .finish_non_exhaustive()
    }
}

impl DpopHeaders {
    /// The `Authorization` value: `DPoP <access token>`. It carries the token: never log it.
    pub fn authorization(&self) -> &str {
        self.authorization.expose()
    }
    /// The `DPoP` value: the proof (single use; make new headers for every request).
    pub fn proof(&self) -> &str {
        &self.proof
    }
    /// Both as `(name, value)` pairs, for any HTTP client:
    /// `[("authorization", …), ("dpop", …)]`.
    pub fn pairs(&self) -> [(&'static str, &str); 2] {
        [
            ("authorization", self.authorization()),
            (DPOP_HEADER, self.proof()),
        ]
    }
    /// Inserts both into `headers` (replacing any `Authorization` or `DPoP` already there).
    pub fn apply_to(&self, headers: &mut http::HeaderMap) -> Result<(), DpopError> {
        for (name, value) in self.pairs() {
            let mut value = http::HeaderValue::from_str(value).map_err(|_| DpopError::Signing)?;
            if name == "authorization" {
                value.set_sensitive(true);
            }
            headers.insert(name, value);
        }
        Ok(())
    }
}

/// An access token as an API request presents it: the token and its type. An
/// [`AccessToken`](crate::access_token::AccessToken) converts into one.
#[derive(Clone, Copy, Debug)]
pub struct PresentedToken<'t> {
    /// The token.
    pub access_token: &'t Secret,
    /// How it is bound: only a [`TokenType::Dpop`] token gets DPoP headers.
    pub token_type: TokenType,
}

/// The headers of a request to an API (`method`, `url`) presenting `token`, with a proof
/// whose `ath` is the token's hash and whose `nonce` is the API's, when it gave one. The
/// token must be DPoP-bound ([`TokenType::Dpop`]): a bearer token is refused rather than
/// sent with a scheme the API would reject.
pub fn resource_headers<'t>(
    key: &DpopKey,
    token: impl Into<PresentedToken<'t>>,
    method: &str,
    url: &str,
    nonce: Option<&str>,
    now: UnixTime,
    random: &[u8],
) -> Result<DpopHeaders, DpopError> {
    let token = token.into();
    if token.token_type != TokenType::Dpop {
        return Err(DpopError::NotDpopBound(token.token_type));
    }
    let access_token = token.access_token.expose();
    let proof = proof(
        key,
        &ProofFor {
            method,
            url,
            nonce,
            access_token: Some(access_token),
        },
        now,
        random,
    )?;
    Ok(DpopHeaders {
        authorization: Secret::new(format!("DPoP {access_token}")),
        proof,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EC_PEM: &str = include_str!("../../tests/data/client_keys/ec.pem");

    #[test]
    fn the_thumbprint_hashes_the_canonical_public_jwk() {
        // RFC 7638 §3.2: the required members in lexicographic order, no whitespace.
        let key = DpopKey::parse(EC_PEM).unwrap();
        let canonical = key.public_jwk().to_string();
        assert!(
            canonical.starts_with(r#"{"crv":"P-256","kty":"EC","x":""#),
            "{canonical}"
        );
        assert_eq!(
            key.thumbprint(),
            b64::encode(&Sha256::digest(canonical.as_bytes()))
        );
        assert!(!format!("{key:?}").contains("BEGIN"));
    }

    #[test]
    fn an_rsa_key_is_refused() {
        let rsa = include_str!("../../tests/data/client_keys/rsa.pem");
        let e = DpopKey::parse(rsa).unwrap_err();
        assert!(e.reason.contains("DPoP"), "{e}");
        assert!(!e.reason.contains("MII"));
    }
}
