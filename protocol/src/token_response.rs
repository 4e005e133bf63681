//! What a token endpoint (or any JSON endpoint the SDK calls) answers, read as data: a
//! [`TokenResponse`], or a [`ResponseError`] — an OAuth error body (`invalid_grant`,
//! `mfa_required` with its `mfa_token` and `mfa_requirements`, …), or a body that is not what
//! a token endpoint sends: HTML error pages, empty bodies, malformed or huge JSON. Nothing here
//! panics, and no error message quotes a response body (it could carry tokens).
//!
//! This is vocabulary below the modules that build requests ([`crate::token_endpoint`]) and
//! read metadata ([`crate::discovery`]), so that both, and the session, use it without an
//! import circle.

use crate::display::{SafeText, redact};
use crate::secret::Secret;
use crate::time::UnixTime;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Largest response body the SDK will parse (1 MiB); a larger one is [`ResponseError::TooLarge`].
pub const MAX_RESPONSE_BODY: usize = 1 << 20;

/// Longest granted `scope` the SDK keeps (64 KiB); a longer one is
/// [`ResponseError::ScopeTooLarge`].
///
/// The scope is stored with every token set and read on every access-token call and every
/// refresh. Real grants are a few hundred bytes, and even an API with thousands of
/// permissions stays well under 64 KiB; a scope of up to [`MAX_RESPONSE_BODY`] would only
/// bloat every session (and overflow the cookie store's budget) for no legitimate use.
pub const MAX_SCOPE_LEN: usize = 64 << 10;

/// Largest `expires_in` accepted: ten years, in seconds. A larger value (`1e30`) is not a
/// lifetime but a broken or hostile server, and is refused rather than clamped.
pub const MAX_EXPIRES_IN: u64 = 10 * 365 * 24 * 3600;

/// How an access token is presented to an API: as a plain bearer token, or bound to the
/// client's DPoP key (RFC 9449), where every use needs a fresh proof of possession.
///
/// Stored with every token set (absent means `Bearer`, so sessions written before DPoP, or
/// by the peers' SDKs, read unchanged) and carried by the access token handed to the
/// application, so a DPoP-bound token is never silently used as a bearer token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
pub enum TokenType {
    /// `Bearer` (RFC 6750): `Authorization: Bearer <token>`.
    #[default]
    #[serde(rename = "Bearer", alias = "bearer", alias = "BEARER")]
    Bearer,
    /// `DPoP` (RFC 9449): `Authorization: DPoP <token>` plus a `DPoP` proof header.
    #[serde(rename = "DPoP", alias = "dpop", alias = "DPOP")]
    Dpop,
}

impl TokenType {
    /// The `token_type` and `Authorization` scheme name: `Bearer` or `DPoP`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Bearer => "Bearer",
            TokenType::Dpop => "DPoP",
        }
    }
    /// Whether this is `Bearer` (used to leave the field out of stored sessions).
    pub fn is_bearer(&self) -> bool {
        *self == TokenType::Bearer
    }
    /// Reads a `token_type` value, case-insensitively (RFC 6749 §5.1); `None` for any other.
    pub fn parse(value: &str) -> Option<TokenType> {
        if value.eq_ignore_ascii_case("bearer") {
            Some(TokenType::Bearer)
        } else if value.eq_ignore_ascii_case("dpop") {
            Some(TokenType::Dpop)
        } else {
            None
        }
    }
}

impl std::fmt::Display for TokenType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A successful token endpoint answer.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: Secret,
    /// Lifetime in seconds, when sent.
    pub expires_in: Option<u64>,
    /// The granted scope, when sent.
    pub scope: Option<String>,
    /// A new (rotated) refresh token, when sent.
    pub refresh_token: Option<Secret>,
    /// An ID token, when sent.
    pub id_token: Option<Secret>,
    /// The token type (`Bearer` or `DPoP`), when sent; see [`TokenResponse::kind`].
    pub token_type: Option<String>,
    /// Rich Authorization Request details, when sent.
    pub authorization_details: Option<Value>,
}

/// An OAuth error answered by the server.
#[derive(Clone, Debug, PartialEq)]
pub struct OAuthError {
    /// The HTTP status.
    pub status: u16,
    /// The OAuth `error` code.
    pub error: String,
    /// The OAuth `error_description`, when sent.
    pub error_description: Option<String>,
    /// The MFA token of an `mfa_required` answer.
    pub mfa_token: Option<Secret>,
    /// The `mfa_requirements` of an `mfa_required` answer.
    pub mfa_requirements: Option<Value>,
}

/// Why a token endpoint answer was not a usable token response.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The server answered with an OAuth error.
    #[error("the authorization server answered `{}`{}", SafeText(&.0.error), .0.error_description.as_deref().map(|d| format!(": {}", SafeText(d))).unwrap_or_default())]
    OAuth(OAuthError),
    /// The body is larger than [`MAX_RESPONSE_BODY`].
    #[error("the response body is larger than the SDK accepts")]
    TooLarge {
        /// The HTTP status.
        status: u16,
    },
    /// The granted `scope` is longer than [`MAX_SCOPE_LEN`].
    #[error("the granted scope is longer than the SDK accepts")]
    ScopeTooLarge {
        /// The HTTP status.
        status: u16,
    },
    /// The discovery document names another issuer than the configured one (mix-up defence).
    #[error("the discovered issuer `{}` is not the expected issuer `{}`", SafeText(.actual), SafeText(.expected))]
    IssuerMismatch {
        /// The issuer the configuration expects.
        expected: String,
        /// The issuer the discovery document names.
        actual: String,
    },
    /// The server answered another `token_type` than the client asked for: a `Bearer` token
    /// (or none) to a request that carried a DPoP proof. The token is not used or saved.
    #[error("the authorization server answered token_type `{}` to a request for a {expected} token", SafeText(.received))]
    TokenTypeMismatch {
        /// The type the client asked for.
        expected: TokenType,
        /// What the server answered (empty when it sent no `token_type`).
        received: String,
    },
    /// The body is not the JSON a token endpoint sends.
    #[error("invalid response from the authorization server (HTTP {status}): {reason}")]
    Invalid {
        /// The HTTP status.
        status: u16,
        /// What was wrong, without quoting the body.
        reason: &'static str,
    },
}

impl ResponseError {
    /// This error with every occurrence of the given secrets (the ones the SDK sent in the
    /// exchange: a refresh token, a code, the client secret) removed from the server's
    /// `error` and `error_description`, so an echo never reaches a log.
    pub fn redact(self, secrets: &[&str]) -> Self {
        match self {
            ResponseError::OAuth(mut o) => {
                o.error = redact(&o.error, secrets);
                o.error_description = o.error_description.map(|d| redact(&d, secrets));
                ResponseError::OAuth(o)
            }
            other => other,
        }
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> u16 {
        match self {
            ResponseError::OAuth(e) => e.status,
            ResponseError::IssuerMismatch { .. } | ResponseError::TokenTypeMismatch { .. } => 200,
            ResponseError::TooLarge { status }
            | ResponseError::ScopeTooLarge { status }
            | ResponseError::Invalid { status, .. } => *status,
        }
    }
    /// The OAuth error, when the server sent one.
    pub fn oauth(&self) -> Option<&OAuthError> {
        match self {
            ResponseError::OAuth(e) => Some(e),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct RawSuccess {
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<Value>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    authorization_details: Option<Value>,
}

#[derive(Deserialize)]
struct RawError {
    error: Option<Value>,
    #[serde(default)]
    error_description: Option<Value>,
    #[serde(default)]
    mfa_token: Option<Value>,
    #[serde(default)]
    mfa_requirements: Option<Value>,
}

impl TokenResponse {
    /// The answered token type: `DPoP` when the server said so (in any case), else `Bearer`.
    pub fn kind(&self) -> TokenType {
        self.token_type
            .as_deref()
            .and_then(TokenType::parse)
            .unwrap_or_default()
    }

    /// When the received access token expires: `now + expires_in`; without `expires_in`,
    /// the JWT's `exp`; for an opaque token without either, `now` (used once, never served
    /// from the cache).
    pub fn expires_at(&self, now: UnixTime) -> UnixTime {
        match self.expires_in {
            Some(secs) => now + Duration::from_secs(secs),
            None => crate::jose::jws::unverified_claim(self.access_token.expose(), "exp")
                .and_then(|exp| exp.as_u64())
                .map_or(now, UnixTime::from_secs),
        }
    }
}

/// A stable, non-reversible identifier of a refresh token (SHA-256, hex), for coalescing keys.
pub fn refresh_token_hash(refresh_token: &Secret) -> String {
    let digest = Sha256::digest(refresh_token.expose().as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
    }
    out
}

/// Reads a token endpoint answer of any status, for a client that asked for a bearer token:
/// any other `token_type` is refused. See [`parse_token_response_expecting`].
pub fn parse_token_response(
    response: &http::Response<Vec<u8>>,
) -> Result<TokenResponse, ResponseError> {
    parse_token_response_expecting(response, Some(TokenType::Bearer))
}

/// Reads a token endpoint answer of any status. `expected` is the token type the request
/// asked for ([`Config::token_type`](crate::config::Config::token_type)): with
/// [`TokenType::Dpop`], anything but `token_type: DPoP` is
/// [`ResponseError::TokenTypeMismatch`] (RFC 9449 §5: a server that ignored the proof issued
/// a bearer token, which the application must not take for a bound one); with
/// [`TokenType::Bearer`], anything but `Bearer` (or no `token_type`) is refused as
/// [`ResponseError::Invalid`]. `None` accepts either (reading what a request rotated, or a
/// federated connection's token, which is the upstream provider's).
pub fn parse_token_response_expecting(
    response: &http::Response<Vec<u8>>,
    expected: Option<TokenType>,
) -> Result<TokenResponse, ResponseError> {
    let status = response.status().as_u16();
    let body = response.body();
    if body.len() > MAX_RESPONSE_BODY {
        return Err(ResponseError::TooLarge { status });
    }
    if !response.status().is_success() {
        return Err(parse_error_body(status, body));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ResponseError::Invalid {
            status,
            reason: "empty body",
        });
    }
    let raw: RawSuccess = match serde_json::from_slice(body) {
        Ok(raw) => raw,
        Err(_) => {
            // A 2xx carrying an OAuth error object is still an error.
            if let Ok(ResponseError::OAuth(e)) = try_oauth_error(status, body) {
                return Err(ResponseError::OAuth(e));
            }
            return Err(ResponseError::Invalid {
                status,
                reason: if looks_like_html(body) {
                    "HTML instead of JSON"
                } else {
                    "malformed JSON"
                },
            });
        }
    };
    let access_token = match raw.access_token {
        Some(t) if !t.is_empty() => Secret::new(t),
        _ => {
            if let Ok(ResponseError::OAuth(e)) = try_oauth_error(status, body) {
                return Err(ResponseError::OAuth(e));
            }
            return Err(ResponseError::Invalid {
                status,
                reason: "no access_token in the response",
            });
        }
    };
    if raw.scope.as_ref().is_some_and(|s| s.len() > MAX_SCOPE_LEN) {
        return Err(ResponseError::ScopeTooLarge { status });
    }
    let expires_in = match raw.expires_in {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_u64()),
        Some(Value::String(s)) => Some(s.trim().parse::<u64>().ok()),
        Some(_) => Some(None),
    };
    let expires_in = match expires_in {
        None => None,
        Some(Some(secs)) if secs <= MAX_EXPIRES_IN => Some(secs),
        Some(_) => {
            return Err(ResponseError::Invalid {
                status,
                reason: "expires_in is not a non-negative whole number of seconds within ten years",
            });
        }
    };
    // RFC 6749 §7.1: a token of another type than asked for is a token this application
    // could not use as it thinks.
    let answered = raw.token_type.as_deref();
    match expected {
        Some(TokenType::Bearer) if answered.is_some_and(|t| !t.eq_ignore_ascii_case("bearer")) => {
            return Err(ResponseError::Invalid {
                status,
                reason: "token_type is not Bearer",
            });
        }
        Some(TokenType::Dpop) if !answered.is_some_and(|t| t.eq_ignore_ascii_case("dpop")) => {
            return Err(ResponseError::TokenTypeMismatch {
                expected: TokenType::Dpop,
                received: answered.unwrap_or_default().to_owned(),
            });
        }
        None if answered.is_some_and(|t| TokenType::parse(t).is_none()) => {
            return Err(ResponseError::Invalid {
                status,
                reason: "token_type is neither Bearer nor DPoP",
            });
        }
        _ => {}
    }
    Ok(TokenResponse {
        access_token,
        expires_in,
        scope: raw.scope.filter(|s| !s.trim().is_empty()),
        refresh_token: raw.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
        id_token: raw.id_token.filter(|t| !t.is_empty()).map(Secret::new),
        token_type: raw.token_type,
        authorization_details: raw.authorization_details,
    })
}

/// Reads a non-2xx answer (token, PAR or revocation endpoint) as an error.
pub fn parse_error_body(status: u16, body: &[u8]) -> ResponseError {
    if body.len() > MAX_RESPONSE_BODY {
        return ResponseError::TooLarge { status };
    }
    match try_oauth_error(status, body) {
        Ok(e) => e,
        Err(()) => ResponseError::Invalid {
            status,
            reason: if body.iter().all(u8::is_ascii_whitespace) {
                "error status with an empty body"
            } else if looks_like_html(body) {
                "error status with an HTML body"
            } else {
                "error status without an OAuth error body"
            },
        },
    }
}

fn try_oauth_error(status: u16, body: &[u8]) -> Result<ResponseError, ()> {
    let raw: RawError = serde_json::from_slice(body).map_err(|_| ())?;
    let error = match raw.error {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => return Err(()),
    };
    let text = |v: Option<Value>| match v {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    Ok(ResponseError::OAuth(OAuthError {
        status,
        error,
        error_description: text(raw.error_description),
        mfa_token: text(raw.mfa_token).map(Secret::new),
        mfa_requirements: raw.mfa_requirements.filter(|v| !v.is_null()),
    }))
}

fn looks_like_html(body: &[u8]) -> bool {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    body[start..].first() == Some(&b'<')
}

/// The new refresh token a successful token endpoint answer carries (refresh-token
/// rotation), if any. Drivers use it to know what a lane's refresh token was rotated to
/// without waiting for the operation that sent the request.
pub fn rotated_refresh_token(response: &http::Response<Vec<u8>>) -> Option<Secret> {
    // Whatever the token type: a DPoP answer rotates refresh tokens too.
    parse_token_response_expecting(response, None)
        .ok()?
        .refresh_token
}
