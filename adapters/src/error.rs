//! [`Error`]: what a client operation can fail with — the core operation's own error, a
//! transport failure, or a store failure — each with a stable machine-readable [`Error::code`].
//!
//! No variant carries a token, a secret, a cookie, a request body or a URL query string, so
//! `Display` and `Debug` are safe to log.

use crate::store::StoreError;
use auth0_server_protocol::ErrorCode;
use auth0_server_protocol::access_token::AccessTokenError;
use auth0_server_protocol::client_assertion::ClientAssertionError;
use auth0_server_protocol::connection_token::ConnectionTokenError;
use auth0_server_protocol::dpop::DpopError;
use auth0_server_protocol::effect::{AtSendError, UnexpectedInput};
use auth0_server_protocol::login::LoginError;
use auth0_server_protocol::logout::{BackchannelLogoutError, LogoutError};
use auth0_server_protocol::mcd::{DomainBound, DomainError};
use auth0_server_protocol::mfa::MfaError;
use auth0_server_protocol::my_account::MyAccountError;
use auth0_server_protocol::token_endpoint::OAuthError;
use std::fmt;

/// Why a client operation failed.
///
/// Match on the variant, or use [`Error::code`] for a stable string. New operations add
/// variants (hence `#[non_exhaustive]`); each core error type converts with `From`, which is
/// all the generic drivers need.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `get_access_token` failed (missing session or refresh token, refresh refused,
    /// `mfa_required`, `audience_mismatch`, …). Boxed to keep `Result`s small.
    #[error(transparent)]
    AccessToken(Box<AccessTokenError>),
    /// `get_access_token_for_connection` failed.
    #[error(transparent)]
    ConnectionToken(Box<ConnectionTokenError>),
    /// `start_interactive_login` or `complete_interactive_login` failed (`invalid_state`,
    /// `missing_transaction`, `invalid_id_token`, …).
    #[error(transparent)]
    Login(Box<LoginError>),
    /// `logout` failed.
    #[error(transparent)]
    Logout(Box<LogoutError>),
    /// An MFA operation failed (`mfa_token_expired`, `mfa_token_invalid`, `mfa_failed`,
    /// `invalid_parameter`, …).
    #[error(transparent)]
    Mfa(Box<MfaError>),
    /// A connected-account or My Account API operation failed (`my_account_api_error` with
    /// the API's problem answer, `connect_account_error`, `missing_transaction`, or the
    /// access token's own code such as `missing_session`).
    #[error(transparent)]
    MyAccount(Box<MyAccountError>),
    /// `handle_backchannel_logout` refused the logout token.
    #[error(transparent)]
    BackchannelLogout(Box<BackchannelLogoutError>),
    /// The driver and an operation disagreed (a bug in the SDK, reported rather than panicking).
    #[error(transparent)]
    UnexpectedInput(#[from] UnexpectedInput),
    /// The HTTP request could not be completed (timeout, connection failure, oversized answer).
    /// An HTTP error *status* is not a transport error: the core interprets it.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The state or transaction store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
    /// The `private_key_jwt` client assertion could not be made (nothing was sent).
    #[error(transparent)]
    ClientAssertion(#[from] ClientAssertionError),
    /// A DPoP proof could not be made (nothing was sent), or `dpop_headers` was asked for a
    /// bearer token or without a DPoP key.
    #[error(transparent)]
    Dpop(#[from] DpopError),
    /// Multiple custom domains: the domain resolver failed or returned an invalid domain
    /// (`domain_resolver_error`), or a login transaction of another domain reached this one
    /// (`domain_mismatch`).
    #[error(transparent)]
    Domain(Box<DomainError>),
}

impl From<DomainError> for Error {
    fn from(e: DomainError) -> Self {
        Error::Domain(Box::new(e))
    }
}

impl<E> From<DomainBound<E>> for Error
where
    Error: From<E>,
{
    fn from(e: DomainBound<E>) -> Self {
        match e {
            DomainBound::Operation(e) => Error::from(e),
            DomainBound::Domain(e) => Error::Domain(Box::new(e)),
        }
    }
}

impl From<AtSendError> for Error {
    fn from(e: AtSendError) -> Self {
        match e {
            AtSendError::ClientAssertion(e) => Error::ClientAssertion(e),
            AtSendError::Dpop(e) => Error::Dpop(e),
            // A new kind of part made at sending, not known to this version.
            _ => Error::UnexpectedInput(UnexpectedInput {
                expected: "a request part the driver can make",
            }),
        }
    }
}

impl From<AccessTokenError> for Error {
    fn from(e: AccessTokenError) -> Self {
        Error::AccessToken(Box::new(e))
    }
}

impl From<ConnectionTokenError> for Error {
    fn from(e: ConnectionTokenError) -> Self {
        Error::ConnectionToken(Box::new(e))
    }
}

impl From<LoginError> for Error {
    fn from(e: LoginError) -> Self {
        Error::Login(Box::new(e))
    }
}

impl From<MfaError> for Error {
    fn from(e: MfaError) -> Self {
        Error::Mfa(Box::new(e))
    }
}

impl From<MyAccountError> for Error {
    fn from(e: MyAccountError) -> Self {
        Error::MyAccount(Box::new(e))
    }
}

impl From<LogoutError> for Error {
    fn from(e: LogoutError) -> Self {
        Error::Logout(Box::new(e))
    }
}

impl From<BackchannelLogoutError> for Error {
    fn from(e: BackchannelLogoutError) -> Self {
        Error::BackchannelLogout(Box::new(e))
    }
}

impl Error {
    /// The stable, machine-readable code: the core's code for operation errors
    /// (`missing_refresh_token`, `failed_to_refresh_token`, `mfa_required`,
    /// `audience_mismatch`, …), [`TransportError::code`] for transport failures,
    /// `store_error`, `random_unavailable`.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::AccessToken(e) => e.code(),
            Error::ConnectionToken(e) => e.code(),
            Error::Login(e) => e.code(),
            Error::Logout(e) => e.code(),
            Error::Mfa(e) => e.code(),
            Error::MyAccount(e) => e.code(),
            Error::BackchannelLogout(e) => e.code(),
            Error::UnexpectedInput(_) => ErrorCode::UnexpectedInput,
            Error::Transport(e) => e.code(),
            Error::Store(_) => ErrorCode::StoreError,
            Error::Random => ErrorCode::RandomUnavailable,
            Error::ClientAssertion(e) => e.code(),
            Error::Dpop(e) => e.code(),
            Error::Domain(e) => e.code(),
        }
    }

    /// The OAuth error the authorization server sent (`invalid_grant`, …), if any.
    pub fn oauth_error(&self) -> Option<&OAuthError> {
        match self {
            Error::AccessToken(e) => e.oauth_error(),
            Error::ConnectionToken(e) => e.oauth_error(),
            Error::Mfa(e) => e.oauth_error(),
            Error::MyAccount(e) => e.oauth_error(),
            Error::Login(e) => match &**e {
                LoginError::Passwordless(r) | LoginError::TokenExchange(r) => r.oauth(),
                LoginError::PasskeyChallenge(r) | LoginError::PasskeyToken(r) => r.oauth(),
                _ => None,
            },
            _ => None,
        }
    }
}

/// What kind of transport failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// A connect, read or overall timeout elapsed.
    Timeout,
    /// The connection could not be established (DNS, refused, TLS handshake).
    Connect,
    /// Any other I/O or protocol failure while sending or receiving.
    Io,
    /// The response body is larger than the client accepts.
    ResponseTooLarge,
}

/// An HTTP request could not be completed.
///
/// The message names the method, scheme, host and path only — never the query string,
/// headers or body, which can carry credentials. The HTTP client's own error, when there is
/// one, is the [`source`](std::error::Error::source) (equality compares kind and message).
#[derive(Clone)]
pub struct TransportError {
    kind: TransportErrorKind,
    message: String,
    source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

impl PartialEq for TransportError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.message == other.message
    }
}

impl Eq for TransportError {}

impl TransportError {
    /// A transport error of `kind`. The message must not contain secrets, query strings or
    /// bodies; [`TransportError::for_request`] builds a safe prefix.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        TransportError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// The same error caused by `source` (the HTTP client's error, for `anyhow`/`eyre`
    /// chains). `source`'s `Display` must not contain secrets, query strings or bodies.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(std::sync::Arc::new(source));
        self
    }

    /// A transport error for `request`, described as `METHOD scheme://host/path: detail`.
    pub fn for_request<B>(
        request: &http::Request<B>,
        kind: TransportErrorKind,
        detail: impl fmt::Display,
    ) -> Self {
        TransportError::for_target(request.method(), request.uri(), kind, detail)
    }

    /// A transport error for a request to `uri`, described as
    /// `METHOD scheme://host/path: detail` (the query string is left out).
    pub fn for_target(
        method: &http::Method,
        uri: &http::Uri,
        kind: TransportErrorKind,
        detail: impl fmt::Display,
    ) -> Self {
        let target = match (uri.scheme_str(), uri.authority()) {
            (Some(s), Some(a)) => format!("{s}://{a}{}", uri.path()),
            _ => uri.path().to_owned(),
        };
        TransportError::new(kind, format!("{method} {target}: {detail}"))
    }

    /// The kind of failure.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// The message (no secrets).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The stable code: `transport_timeout`, `transport_connect`, `transport_error` or
    /// `response_too_large`.
    pub fn code(&self) -> ErrorCode {
        match self.kind {
            TransportErrorKind::Timeout => ErrorCode::TransportTimeout,
            TransportErrorKind::Connect => ErrorCode::TransportConnect,
            TransportErrorKind::Io => ErrorCode::TransportError,
            TransportErrorKind::ResponseTooLarge => ErrorCode::ResponseTooLarge,
        }
    }
}

impl fmt::Debug for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            TransportErrorKind::Timeout => "HTTP request timed out",
            TransportErrorKind::Connect => "could not connect",
            TransportErrorKind::Io => "HTTP request failed",
            TransportErrorKind::ResponseTooLarge => "HTTP response too large",
        };
        write!(f, "{what}: {}", self.message)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_message_has_no_query() {
        let req = http::Request::get("https://t.example/authorize?code=secret-code")
            .body(Vec::<u8>::new())
            .unwrap();
        let e = TransportError::for_request(&req, TransportErrorKind::Timeout, "timed out");
        let shown = format!("{e} {e:?} {:?}", Error::from(e.clone()));
        assert!(!shown.contains("secret-code"), "{shown}");
        assert!(shown.contains("GET https://t.example/authorize"), "{shown}");
        assert_eq!(Error::from(e).code(), "transport_timeout");
    }

    #[test]
    fn results_stay_small() {
        assert!(
            std::mem::size_of::<Error>() <= 64,
            "{}",
            std::mem::size_of::<Error>()
        );
    }

    #[test]
    fn codes_delegate_to_the_core() {
        assert_eq!(
            Error::from(AccessTokenError::MissingRefreshToken).code(),
            "missing_refresh_token"
        );
        assert_eq!(Error::from(StoreError::new("down")).code(), "store_error");
    }
}
