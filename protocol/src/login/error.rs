//! [`LoginError`]: why a login could not start or complete.

use crate::display::SafeText;
use crate::effect::UnexpectedInput;
use crate::error_code::ErrorCode;
use crate::jose::JoseError;
use crate::signed_token::VerifyFailure;
use crate::token_endpoint::ResponseError;

/// Why a login could not start or complete.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// A per-call parameter the SDK sets itself, or an invalid value.
    #[error("invalid login parameter: {0}")]
    InvalidParameter(String),
    /// No `redirect_uri` configured or given.
    #[error("no redirect_uri is configured or given for the login")]
    MissingRedirectUri,
    /// PAR was asked for but the tenant has no PAR endpoint.
    #[error("Pushed Authorization Requests are not supported by this tenant")]
    ParNotSupported,
    /// The PAR request failed.
    #[error("the pushed authorization request failed: {0}")]
    ParFailed(ResponseError),
    /// The callback URL cannot be read.
    #[error("the callback URL is invalid: {0}")]
    InvalidCallback(&'static str),
    /// The callback has no `state`, or it does not match the transaction.
    #[error("the callback's state is missing or does not match the login transaction")]
    InvalidState,
    /// No transaction for the callback's `state` (expired, already used, or another browser).
    #[error(
        "no login transaction matches this callback (expired, already completed, or started elsewhere)"
    )]
    MissingTransaction,
    /// The authorization server answered the login with an error.
    #[error("the authorization server refused the login: {}{}", SafeText(.error), .error_description.as_deref().map(|d| format!(": {}", SafeText(d))).unwrap_or_default())]
    Authorization {
        /// The OAuth `error`.
        error: String,
        /// The OAuth `error_description`.
        error_description: Option<String>,
    },
    /// The callback's RFC 9207 `iss` is not the discovered issuer, or is missing although
    /// discovery advertises `authorization_response_iss_parameter_supported` (mix-up defence).
    /// The message names the expected issuer and whether one was sent; the callback's value
    /// is in `actual` (part of a URL query: never in the message).
    #[error("the callback's issuer is {} the expected issuer `{}`", if .actual.is_some() { "not" } else { "missing; expected" }, SafeText(.expected))]
    InvalidCallbackIssuer {
        /// The discovered issuer.
        expected: String,
        /// The callback's `iss`, or `None` when it has none.
        actual: Option<String>,
    },
    /// The callback has no `code`.
    #[error("the callback has no authorization code")]
    MissingCode,
    /// The code exchange failed.
    #[error("the authorization code exchange failed: {0}")]
    CodeExchange(ResponseError),
    /// A token exchange ([`super::token_exchange`]) was refused, or its answer was unusable.
    #[error("the token exchange failed: {0}")]
    TokenExchange(ResponseError),
    /// A CIBA login was asked for, but the tenant's discovery lists no
    /// `backchannel_authentication_endpoint`.
    #[error("backchannel authentication (CIBA) is not supported by this tenant")]
    BackchannelNotSupported,
    /// The backchannel authentication request, or a poll, was refused, or its answer was
    /// unusable ([`super::ciba`]).
    #[error("the backchannel authentication failed: {0}")]
    Backchannel(ResponseError),
    /// The user did not answer the backchannel authentication before it expired
    /// (`expired_token`, or the request's `expires_in` deadline passed while polling).
    #[error("the backchannel authentication expired before the user approved it")]
    BackchannelExpired,
    /// The user, or the tenant's policy, denied the backchannel authentication
    /// (`access_denied`).
    #[error("the backchannel authentication was denied{}", .error_description.as_deref().map(|d| format!(": {}", SafeText(d))).unwrap_or_default())]
    AccessDenied {
        /// The server's `error_description`.
        error_description: Option<String>,
    },
    /// A passwordless start or one-time-code login was refused, or its answer was unusable.
    #[error("the passwordless login failed: {0}")]
    Passwordless(ResponseError),
    /// A passkey challenge (`/passkey/register`, `/passkey/challenge`) was refused, or its
    /// answer was unusable ([`super::passkey`]).
    #[error("the passkey challenge failed: {0}")]
    PasskeyChallenge(ResponseError),
    /// The passkey sign-in (the WebAuthn grant) was refused, or its answer was unusable.
    #[error("the passkey sign-in failed: {0}")]
    PasskeyToken(ResponseError),
    /// The sealed passkey session was altered, sealed with another secret, or is not one.
    #[error("the passkey session is not one this application sealed")]
    PasskeySessionInvalid,
    /// The sealed passkey session has expired: request a new challenge.
    #[error("the passkey session has expired")]
    PasskeySessionExpired,
    /// The operation needs a logged-in user (with an ID token) and there is none.
    #[error("there is no session: the user is not logged in")]
    MissingSession,
    /// An account-linking callback does not belong to the session's user: the session ended
    /// or changed hands since the link started, or the ID token names someone else.
    #[error("the account-linking answer is for another user than the session's")]
    SessionMismatch,
    /// The token response has no ID token.
    #[error("the token response has no ID token")]
    MissingIdToken,
    /// The ID token is invalid.
    #[error("the ID token is invalid: {0}")]
    InvalidIdToken(JoseError),
    /// The JWKS could not be fetched.
    #[error("the tenant's signing keys could not be fetched: {0}")]
    Jwks(ResponseError),
    /// Discovery failed.
    #[error("OpenID discovery failed: {0}")]
    Discovery(ResponseError),
    /// The discovered metadata names an endpoint the login needs in a form it cannot use.
    #[error("the tenant's discovery metadata is unusable: {0}")]
    InvalidMetadata(&'static str),
    /// The ID token's IPSIE `session_expiry` ceiling is already reached: the identity
    /// provider's session ends now, so no session is created.
    #[error(transparent)]
    SessionExpired(#[from] crate::session::SessionBornExpired),
    /// The driver broke the protocol.
    #[error(transparent)]
    UnexpectedInput(#[from] UnexpectedInput),
}

impl LoginError {
    /// The stable, machine-readable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            LoginError::InvalidParameter(_) => ErrorCode::InvalidParameter,
            LoginError::MissingRedirectUri => ErrorCode::MissingRedirectUri,
            LoginError::ParNotSupported => ErrorCode::ParNotSupported,
            LoginError::ParFailed(_) => ErrorCode::ParFailed,
            LoginError::InvalidCallback(_) => ErrorCode::InvalidCallback,
            LoginError::InvalidState => ErrorCode::InvalidState,
            LoginError::MissingTransaction => ErrorCode::MissingTransaction,
            LoginError::Authorization { .. } => ErrorCode::AuthorizationError,
            LoginError::MissingCode => ErrorCode::MissingCode,
            LoginError::InvalidCallbackIssuer { .. } => ErrorCode::InvalidCallbackIssuer,
            LoginError::CodeExchange(crate::token_response::ResponseError::TokenTypeMismatch {
                ..
            }) => ErrorCode::TokenTypeMismatch,
            LoginError::CodeExchange(_) => ErrorCode::FailedToExchangeCode,
            LoginError::TokenExchange(_) => ErrorCode::FailedToExchangeToken,
            LoginError::BackchannelNotSupported => ErrorCode::BackchannelAuthenticationNotSupported,
            LoginError::Backchannel(_) => ErrorCode::BackchannelAuthenticationFailed,
            LoginError::BackchannelExpired => ErrorCode::BackchannelAuthenticationExpired,
            LoginError::AccessDenied { .. } => ErrorCode::AccessDenied,
            LoginError::MissingSession => ErrorCode::MissingSession,
            LoginError::Passwordless(_) => ErrorCode::PasswordlessFailed,
            LoginError::PasskeyChallenge(_) => ErrorCode::PasskeyChallengeError,
            LoginError::PasskeyToken(ResponseError::TokenTypeMismatch { .. }) => {
                ErrorCode::TokenTypeMismatch
            }
            LoginError::PasskeyToken(_) => ErrorCode::PasskeyTokenError,
            LoginError::PasskeySessionInvalid => ErrorCode::PasskeySessionInvalid,
            LoginError::PasskeySessionExpired => ErrorCode::PasskeySessionExpired,
            LoginError::SessionMismatch => ErrorCode::SessionMismatch,
            LoginError::MissingIdToken => ErrorCode::MissingIdToken,
            LoginError::InvalidIdToken(_) => ErrorCode::InvalidIdToken,
            LoginError::Jwks(_) => ErrorCode::JwksFetchFailed,
            LoginError::Discovery(_) => ErrorCode::DiscoveryFailed,
            LoginError::InvalidMetadata(_) => ErrorCode::InvalidMetadata,
            LoginError::SessionExpired(_) => ErrorCode::SessionExpired,
            LoginError::UnexpectedInput(_) => ErrorCode::UnexpectedInput,
        }
    }

    /// For `invalid_id_token`, the precise reason (`invalid_signature`, `invalid_nonce`, …).
    pub fn id_token_error(&self) -> Option<&JoseError> {
        match self {
            LoginError::InvalidIdToken(e) => Some(e),
            _ => None,
        }
    }
}

impl From<VerifyFailure> for LoginError {
    fn from(f: VerifyFailure) -> Self {
        match f {
            VerifyFailure::Token(e) => LoginError::InvalidIdToken(e),
            VerifyFailure::Discovery(e) => LoginError::Discovery(e),
            VerifyFailure::Metadata(reason) => LoginError::InvalidMetadata(reason),
            VerifyFailure::Jwks(e) => LoginError::Jwks(e),
            VerifyFailure::Unexpected(e) => LoginError::UnexpectedInput(e),
        }
    }
}
