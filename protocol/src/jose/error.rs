//! The one error type of the JOSE layer.

use crate::display::SafeText;
use crate::error_code::ErrorCode;

/// Why a token, a key set or an encrypted payload was rejected.
///
/// Each variant has a stable machine-readable [`code`](JoseError::code). Messages describe the
/// failed check only: they never contain token contents, claim values or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoseError {
    /// The token is not a well-formed compact JWS/JWE (wrong number of parts, bad base64url,
    /// header or payload not a JSON object, wrong IV/tag length, …). The string names the
    /// structural check that failed.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The input is larger than the limit this parser accepts.
    #[error("input larger than the {limit}-byte limit")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The token's `alg` (or, for a JWE, `alg`/`enc`) is not the one expected. `alg` is the
    /// header's value (truncated to 32 characters), kept for logs; it is not in the message.
    #[error("unsupported or unexpected token algorithm")]
    UnsupportedAlgorithm {
        /// The algorithm the header named (truncated), or empty when absent.
        alg: String,
    },
    /// No key of the JWKS matches the token's `kid` (`None`: the token has no `kid` and the
    /// JWKS does not hold exactly one key). The caller should refetch the JWKS once.
    #[error("no key of the key set matches the token's key id")]
    UnknownKid(Option<String>),
    /// The JWKS document is not a JSON object with a `keys` array.
    #[error("invalid JWKS document: {0}")]
    InvalidJwks(&'static str),
    /// The signature does not verify with the selected key.
    #[error("invalid token signature")]
    InvalidSignature,
    /// `iss` is missing or differs from the expected (discovered) issuer. The message names
    /// the expected issuer; the token's value is in `actual` (a claim value: never in the
    /// message, like every token content).
    #[error("the token's issuer is not the expected issuer `{}`", SafeText(.expected))]
    InvalidIssuer {
        /// The issuer expected (the discovered one).
        expected: String,
        /// The token's `iss` (truncated), or `None` when absent.
        actual: Option<String>,
    },
    /// `nbf` is further in the future than the clock tolerance allows, or not a number.
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    /// `max_age` was requested but the ID token has no numeric `auth_time`.
    #[error("the ID token has no auth_time although max_age was requested")]
    MissingAuthTime,
    /// `auth_time + max_age` (clock tolerance applied) is past: the user authenticated too
    /// long ago.
    #[error("the user's authentication (auth_time) is older than the requested max_age")]
    AuthTimeTooOld,
    /// The ID token of a refresh names another subject than the session.
    #[error("the token's subject is not the session's")]
    SubjectMismatch,
    /// `aud` is missing, malformed, or does not contain the client id.
    #[error("the token's audience does not contain the client id")]
    InvalidAudience,
    /// `azp` is required (several audiences) but missing, or differs from the client id.
    #[error("the token's authorized party is not the client id")]
    InvalidAzp,
    /// `sub` is missing, not a string, or empty.
    #[error("the token's subject is missing or empty")]
    InvalidSubject,
    /// `exp` is missing or not a number.
    #[error("the token has no numeric expiry (exp)")]
    MissingExp,
    /// The token expired (clock tolerance applied).
    #[error("the token has expired")]
    TokenExpired,
    /// `iat` is missing or not a number.
    #[error("the token has no numeric issued-at time (iat)")]
    MissingIat,
    /// `iat` is further in the future than the clock tolerance allows.
    #[error("the token was issued in the future")]
    IssuedInFuture,
    /// `nonce` is missing or differs from the one sent with the authorization request.
    #[error("the token's nonce does not match the login transaction")]
    InvalidNonce,
    /// `org_id` / `org_name` is missing or differs from the requested organization.
    #[error("the token's organization does not match the requested organization")]
    OrganizationMismatch,
    /// A logout-token-specific rule failed (events, sub/sid, nonce). The string names it.
    #[error("invalid logout token: {0}")]
    InvalidLogoutToken(&'static str),
    /// No key authenticates the JWE (wrong key, tampered token), or its padding is invalid.
    #[error("the encrypted token could not be decrypted")]
    DecryptionFailed,
}

impl JoseError {
    /// Stable machine-readable code of this error, e.g. `"unknown_kid"`.
    pub fn code(&self) -> ErrorCode {
        match self {
            JoseError::Malformed(_) => ErrorCode::MalformedToken,
            JoseError::TooLarge { .. } => ErrorCode::TooLarge,
            JoseError::UnsupportedAlgorithm { .. } => ErrorCode::UnsupportedAlgorithm,
            JoseError::UnknownKid(_) => ErrorCode::UnknownKid,
            JoseError::InvalidJwks(_) => ErrorCode::InvalidJwks,
            JoseError::InvalidSignature => ErrorCode::InvalidSignature,
            JoseError::InvalidIssuer { .. } => ErrorCode::InvalidIssuer,
            JoseError::NotYetValid => ErrorCode::TokenNotYetValid,
            JoseError::MissingAuthTime => ErrorCode::MissingAuthTime,
            JoseError::AuthTimeTooOld => ErrorCode::AuthTimeTooOld,
            JoseError::SubjectMismatch => ErrorCode::SessionMismatch,
            JoseError::InvalidAudience => ErrorCode::InvalidAudience,
            JoseError::InvalidAzp => ErrorCode::InvalidAzp,
            JoseError::InvalidSubject => ErrorCode::InvalidSubject,
            JoseError::MissingExp => ErrorCode::MissingExp,
            JoseError::TokenExpired => ErrorCode::TokenExpired,
            JoseError::MissingIat => ErrorCode::MissingIat,
            JoseError::IssuedInFuture => ErrorCode::InvalidIat,
            JoseError::InvalidNonce => ErrorCode::InvalidNonce,
            JoseError::OrganizationMismatch => ErrorCode::OrganizationMismatch,
            JoseError::InvalidLogoutToken(_) => ErrorCode::InvalidLogoutToken,
            JoseError::DecryptionFailed => ErrorCode::DecryptionFailed,
        }
    }

    /// `UnsupportedAlgorithm` with the header value truncated to a loggable size.
    pub(crate) fn unsupported_alg(alg: &str) -> JoseError {
        JoseError::UnsupportedAlgorithm {
            alg: alg.chars().take(32).collect(),
        }
    }
}
