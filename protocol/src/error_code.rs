//! [`ErrorCode`]: the stable, machine-readable name of every failure the SDK reports.
//!
//! Each error type of the core (and of the adapters) answers `code()` with one of these, so an
//! application can match on the kind of failure without parsing messages, and log or count it
//! under a name that does not change between releases. The OAuth `error` and
//! `error_description` a server sent are data of the error itself, not codes.

use std::fmt;

/// The stable code of an error: matchable, and printed as a snake_case string
/// ([`ErrorCode::as_str`], `Display`) that never changes once released.
///
/// New failure kinds add variants, so a `match` needs a wildcard arm. Comparing with a string
/// compares the snake_case form:
///
/// ```
/// use auth0_server_protocol::ErrorCode;
/// assert_eq!(ErrorCode::MissingRefreshToken, "missing_refresh_token");
/// assert_eq!(ErrorCode::MfaRequired.to_string(), "mfa_required");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorCode {
    // --- sessions and access tokens ---
    /// `missing_session`: there is no session (the user is not logged in), or it ended.
    MissingSession,
    /// `missing_refresh_token`: a token must be refreshed but the session has none.
    MissingRefreshToken,
    /// `failed_to_refresh_token`: the refresh was refused or its answer was unusable.
    FailedToRefreshToken,
    /// `mfa_required`: the token endpoint asks for multi-factor authentication first.
    MfaRequired,
    /// `audience_mismatch`: the token endpoint answered with a token for another audience.
    AudienceMismatch,
    /// `session_mismatch`: a refreshed ID token belongs to another user or issuer.
    SessionMismatch,
    /// `session_expired`: the ID token's IPSIE `session_expiry` ceiling is already reached.
    SessionExpired,
    /// `session_not_saved`: tokens were obtained but the session could not be saved; a rotated
    /// refresh token is kept in the process until a later save succeeds.
    SessionNotSaved,
    /// `invalid_request`: the call's arguments are unusable (e.g. an empty connection name).
    InvalidRequest,
    /// `failed_to_exchange_token`: a token exchange (a connection token, or a Custom Token
    /// Exchange) was refused or its answer was unusable.
    FailedToExchangeToken,

    // --- the tenant's metadata and keys ---
    /// `discovery_failed`: the OpenID discovery document could not be fetched or read.
    DiscoveryFailed,
    /// `invalid_metadata`: the discovered metadata lacks an endpoint the operation needs, or
    /// names it in a form the SDK cannot use.
    InvalidMetadata,
    /// `jwks_fetch_failed`: the tenant's signing keys could not be fetched or read.
    JwksFetchFailed,

    // --- interactive login ---
    /// `invalid_parameter`: a login parameter is reserved or invalid.
    InvalidParameter,
    /// `missing_redirect_uri`: no `redirect_uri` is configured or given.
    MissingRedirectUri,
    /// `par_not_supported`: Pushed Authorization Requests were asked for, the tenant has none.
    ParNotSupported,
    /// `par_failed`: the pushed authorization request failed.
    ParFailed,
    /// `invalid_callback`: the callback URL cannot be read.
    InvalidCallback,
    /// `invalid_state`: the callback's `state` is missing or does not match.
    InvalidState,
    /// `missing_transaction`: no login transaction matches the callback.
    MissingTransaction,
    /// `authorization_error`: the authorization server refused the login.
    AuthorizationError,
    /// `missing_code`: the callback has no authorization code.
    MissingCode,
    /// `failed_to_exchange_code`: the authorization code exchange failed.
    FailedToExchangeCode,
    /// `passwordless_failed`: Auth0 refused to send a passwordless code or link, or refused
    /// the one-time code (wrong, expired or used).
    PasswordlessFailed,
    /// `missing_id_token`: the token response has no ID token.
    MissingIdToken,
    /// `backchannel_authentication_not_supported`: a CIBA login was asked for but the tenant's
    /// discovery lists no `backchannel_authentication_endpoint`.
    BackchannelAuthenticationNotSupported,
    /// `backchannel_authentication_failed`: the backchannel authentication request was
    /// refused, or its answer was unusable.
    BackchannelAuthenticationFailed,
    /// `backchannel_authentication_expired`: the user did not approve the CIBA request before
    /// it expired (`expired_token`, or the `expires_in` deadline passed while polling).
    BackchannelAuthenticationExpired,
    /// `access_denied`: the user (or the tenant's policy) denied the CIBA request.
    AccessDenied,
    /// `invalid_id_token`: the ID token failed verification (the token error says why).
    InvalidIdToken,

    // --- logout ---
    /// `end_session_not_supported`: OIDC logout was asked for, the tenant has no endpoint.
    EndSessionNotSupported,
    /// `invalid_return_to`: `return_to` is not an absolute URL.
    InvalidReturnTo,
    /// `invalid_logout_token`: a back-channel logout token was refused.
    InvalidLogoutToken,

    // --- configuration and driving ---
    /// `invalid_configuration`: the client configuration is invalid.
    InvalidConfiguration,
    /// `unexpected_input`: the driver and an operation disagreed (a bug, not a panic).
    UnexpectedInput,

    // --- the precise reasons of token (JOSE) errors ---
    /// `malformed_token`: not a well-formed compact JWS or JWE.
    MalformedToken,
    /// `too_large`: an input is larger than its parser accepts.
    TooLarge,
    /// `unsupported_algorithm`: the token's algorithm is not the expected one.
    UnsupportedAlgorithm,
    /// `unknown_kid`: no key of the key set matches the token's key id.
    UnknownKid,
    /// `invalid_jwks`: the key set document is invalid.
    InvalidJwks,
    /// `invalid_signature`: the signature does not verify.
    InvalidSignature,
    /// `invalid_issuer`: `iss` is missing or not the expected issuer.
    InvalidIssuer,
    /// `invalid_audience`: `aud` does not contain the client id.
    InvalidAudience,
    /// `invalid_azp`: `azp` is missing where required, or not the client id.
    InvalidAzp,
    /// `invalid_subject`: `sub` is missing or empty.
    InvalidSubject,
    /// `missing_exp`: the token has no numeric `exp`.
    MissingExp,
    /// `token_expired`: the token has expired (clock tolerance applied).
    TokenExpired,
    /// `missing_iat`: the token has no numeric `iat`.
    MissingIat,
    /// `invalid_iat`: the token was issued in the future.
    InvalidIat,
    /// `invalid_nonce`: `nonce` does not match the login transaction.
    InvalidNonce,
    /// `organization_mismatch`: the token's organization is not the requested one.
    OrganizationMismatch,
    /// `decryption_failed`: an encrypted token could not be decrypted.
    DecryptionFailed,
    /// `token_not_yet_valid`: the token's `nbf` is in the future (clock tolerance applied).
    TokenNotYetValid,
    /// `missing_auth_time`: `max_age` was requested but the ID token has no `auth_time`.
    MissingAuthTime,
    /// `auth_time_too_old`: the user authenticated longer ago than the requested `max_age`.
    AuthTimeTooOld,
    /// `logout_token_replayed`: a logout token with this `jti` was already accepted.
    LogoutTokenReplayed,
    /// `invalid_callback_issuer`: the callback's RFC 9207 `iss` is not the issuer, or is
    /// missing although the provider advertises it.
    InvalidCallbackIssuer,

    // --- the adapters' own failures ---
    /// `transport_timeout`: an HTTP request timed out.
    TransportTimeout,
    /// `transport_connect`: an HTTP connection could not be established.
    TransportConnect,
    /// `transport_error`: any other failure while sending or receiving.
    TransportError,
    /// `response_too_large`: an HTTP response is larger than the client accepts.
    ResponseTooLarge,
    /// `store_error`: the state or transaction store failed.
    StoreError,
    /// `random_unavailable`: the operating system's random number generator failed.
    RandomUnavailable,

    // --- client authentication ---
    /// `client_assertion_failed`: the `private_key_jwt` client assertion could not be made.
    ClientAssertionFailed,
    /// `dpop_failed`: a DPoP proof could not be made (no DPoP key configured, a token that is
    /// not DPoP-bound, a URL that is not absolute http(s)).
    DpopFailed,
    /// `token_type_mismatch`: the token endpoint answered another `token_type` than the
    /// client asked for (a `Bearer` token to a DPoP request); nothing was saved.
    TokenTypeMismatch,

    // --- multi-factor authentication ---
    /// `mfa_token_expired`: the sealed MFA token (or Auth0's `mfa_token`) has expired.
    MfaTokenExpired,
    /// `mfa_token_invalid`: the sealed MFA token was altered or sealed with another secret.
    MfaTokenInvalid,
    /// `mfa_failed`: Auth0 refused an MFA request (a wrong or used code), or its answer was
    /// unusable.
    MfaFailed,

    // --- multiple custom domains ---
    /// `domain_resolver_error`: the domain resolver failed or returned an invalid domain.
    DomainResolverError,
    /// `domain_mismatch`: something of another custom domain (a login transaction, a logout
    /// token) reached this one.
    DomainMismatch,

    // --- connected accounts and the My Account API ---
    /// `my_account_api_error`: the My Account API refused a request (its problem answer's
    /// `type`, `title`, `detail` and `status` are data of the error), or its answer was
    /// unusable.
    MyAccountApiError,
    /// `connect_account_error`: connecting an account failed (the connect callback carried an
    /// `error`, or no `connect_code`).
    ConnectAccountError,

    // --- passkeys ---
    /// `passkey_challenge_error`: Auth0 refused a passkey signup or login challenge, or its
    /// answer was unusable.
    PasskeyChallengeError,
    /// `passkey_token_error`: Auth0 refused the passkey sign-in (the WebAuthn grant), or its
    /// answer was unusable.
    PasskeyTokenError,
    /// `passkey_session_invalid`: the sealed passkey session was altered or sealed with
    /// another secret.
    PasskeySessionInvalid,
    /// `passkey_session_expired`: the sealed passkey session has expired.
    PasskeySessionExpired,
}

impl ErrorCode {
    /// The stable snake_case string of this code, e.g. `"missing_refresh_token"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MissingSession => "missing_session",
            ErrorCode::MissingRefreshToken => "missing_refresh_token",
            ErrorCode::FailedToRefreshToken => "failed_to_refresh_token",
            ErrorCode::MfaRequired => "mfa_required",
            ErrorCode::AudienceMismatch => "audience_mismatch",
            ErrorCode::SessionMismatch => "session_mismatch",
            ErrorCode::SessionExpired => "session_expired",
            ErrorCode::SessionNotSaved => "session_not_saved",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::FailedToExchangeToken => "failed_to_exchange_token",
            ErrorCode::DiscoveryFailed => "discovery_failed",
            ErrorCode::InvalidMetadata => "invalid_metadata",
            ErrorCode::JwksFetchFailed => "jwks_fetch_failed",
            ErrorCode::InvalidParameter => "invalid_parameter",
            ErrorCode::MissingRedirectUri => "missing_redirect_uri",
            ErrorCode::ParNotSupported => "par_not_supported",
            ErrorCode::ParFailed => "par_failed",
            ErrorCode::InvalidCallback => "invalid_callback",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::MissingTransaction => "missing_transaction",
            ErrorCode::AuthorizationError => "authorization_error",
            ErrorCode::MissingCode => "missing_code",
            ErrorCode::FailedToExchangeCode => "failed_to_exchange_code",
            ErrorCode::PasswordlessFailed => "passwordless_failed",
            ErrorCode::MissingIdToken => "missing_id_token",
            ErrorCode::InvalidIdToken => "invalid_id_token",
            ErrorCode::BackchannelAuthenticationNotSupported => {
                "backchannel_authentication_not_supported"
            }
            ErrorCode::BackchannelAuthenticationFailed => "backchannel_authentication_failed",
            ErrorCode::BackchannelAuthenticationExpired => "backchannel_authentication_expired",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::EndSessionNotSupported => "end_session_not_supported",
            ErrorCode::InvalidReturnTo => "invalid_return_to",
            ErrorCode::InvalidLogoutToken => "invalid_logout_token",
            ErrorCode::InvalidConfiguration => "invalid_configuration",
            ErrorCode::UnexpectedInput => "unexpected_input",
            ErrorCode::MalformedToken => "malformed_token",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::UnsupportedAlgorithm => "unsupported_algorithm",
            ErrorCode::UnknownKid => "unknown_kid",
            ErrorCode::InvalidJwks => "invalid_jwks",
            ErrorCode::InvalidSignature => "invalid_signature",
            ErrorCode::InvalidIssuer => "invalid_issuer",
            ErrorCode::InvalidAudience => "invalid_audience",
            ErrorCode::InvalidAzp => "invalid_azp",
            ErrorCode::InvalidSubject => "invalid_subject",
            ErrorCode::MissingExp => "missing_exp",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::MissingIat => "missing_iat",
            ErrorCode::InvalidIat => "invalid_iat",
            ErrorCode::InvalidNonce => "invalid_nonce",
            ErrorCode::OrganizationMismatch => "organization_mismatch",
            ErrorCode::DecryptionFailed => "decryption_failed",
            ErrorCode::TokenNotYetValid => "token_not_yet_valid",
            ErrorCode::MissingAuthTime => "missing_auth_time",
            ErrorCode::AuthTimeTooOld => "auth_time_too_old",
            ErrorCode::LogoutTokenReplayed => "logout_token_replayed",
            ErrorCode::InvalidCallbackIssuer => "invalid_callback_issuer",
            ErrorCode::TransportTimeout => "transport_timeout",
            ErrorCode::TransportConnect => "transport_connect",
            ErrorCode::TransportError => "transport_error",
            ErrorCode::ResponseTooLarge => "response_too_large",
            ErrorCode::StoreError => "store_error",
            ErrorCode::RandomUnavailable => "random_unavailable",
            ErrorCode::ClientAssertionFailed => "client_assertion_failed",
            ErrorCode::DpopFailed => "dpop_failed",
            ErrorCode::TokenTypeMismatch => "token_type_mismatch",
            ErrorCode::MfaTokenExpired => "mfa_token_expired",
            ErrorCode::MfaTokenInvalid => "mfa_token_invalid",
            ErrorCode::MfaFailed => "mfa_failed",
            ErrorCode::DomainResolverError => "domain_resolver_error",
            ErrorCode::DomainMismatch => "domain_mismatch",
            ErrorCode::MyAccountApiError => "my_account_api_error",
            ErrorCode::ConnectAccountError => "connect_account_error",
            ErrorCode::PasskeyChallengeError => "passkey_challenge_error",
            ErrorCode::PasskeyTokenError => "passkey_token_error",
            ErrorCode::PasskeySessionInvalid => "passkey_session_invalid",
            ErrorCode::PasskeySessionExpired => "passkey_session_expired",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for ErrorCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for ErrorCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<ErrorCode> for str {
    fn eq(&self, other: &ErrorCode) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<ErrorCode> for &str {
    fn eq(&self, other: &ErrorCode) -> bool {
        *self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn compares_with_its_string_both_ways() {
        assert_eq!(ErrorCode::InvalidIat, "invalid_iat");
        assert!("invalid_iat" == ErrorCode::InvalidIat);
        assert!(ErrorCode::InvalidIat != "issued_in_future");
        assert_eq!(format!("{}", ErrorCode::StoreError), "store_error");
    }
}
