//! Multi-factor authentication (step-up) with Auth0's MFA API, after the token endpoint
//! answered `mfa_required`.
//!
//! 1. **Seal** the `mfa_token` of the `mfa_required` answer ([`seal_mfa_token`]): it is
//!    encrypted (compact JWE, `dir` + `A256CBC-HS512`, key derived from the configured
//!    secrets with the HKDF salt [`MFA_SALT`]) together with the `mfa_requirements`, the
//!    audience and scope asked for, and an expiry ([`DEFAULT_MFA_TOKEN_TTL`] unless
//!    configured). The [`SealedMfaToken`] is opaque and safe to put in a page; the raw
//!    `mfa_token` never leaves the server. Secret rotation: the first secret seals, every
//!    secret opens.
//! 2. Every MFA operation takes the sealed token and opens it first ([`open_mfa_token`]): a
//!    tampered one is `mfa_token_invalid`, an expired one `mfa_token_expired`; nothing is sent.
//! 3. [`ListAuthenticators`] (`GET /mfa/authenticators`), [`EnrollAuthenticator`]
//!    (`POST /mfa/associate`), [`DeleteAuthenticator`] (`DELETE /mfa/authenticators/{id}`),
//!    [`ChallengeAuthenticator`] (`POST /mfa/challenge`, with the
//!    client's authentication) on the issuer's host.
//! 4. [`VerifyMfa`]: the token endpoint grants `mfa-otp`, `mfa-oob` (+ binding code) and
//!    `mfa-recovery-code`, sent like every grant (every client authentication method, mTLS,
//!    DPoP). An ID token in the answer is verified as a login's. With
//!    [`MfaVerify::persist`], the tokens are saved into the **current** session (the token set
//!    for the sealed audience, a new refresh token kept, a new ID token only when it names the
//!    session's user) through the update-only save a refresh uses: without a session nothing
//!    is sent and nothing is created (`missing_session`).
//!
//! Inputs are checked before anything is sent (an OTP of 4 to 10 digits, codes without
//! whitespace and of bounded length, an E.164 phone number, an email address), and what was
//! sent (the `mfa_token`, codes, the client secret) is redacted from any error answer echoed.

use crate::access_token::{AccessTokenError, apply_refresh, requested_scope};
use crate::config::Config;
use crate::discovery::Metadata;
use crate::effect::{AtSend, Effect, HttpRequest, Input, Operation, Step, UnexpectedInput};
use crate::error_code::ErrorCode;
use crate::jose::sealed::{self, Opened};
use crate::login::LoginError;
use crate::login::TokenExchangeResult;
use crate::metadata_step::{MetadataOutcome, MetadataStep};
use crate::secret::Secret;
use crate::session::{SessionUpdate, StateData, UpdateNext, after_update};
use crate::time::UnixTime;
use crate::token_endpoint::{
    ResponseError, TokenResponse, form_post, parse_error_body, parse_token_response_expecting,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The HKDF salt of the key that seals MFA tokens (its own: a sealed MFA token is never a
/// session cookie, nor the other way round).
pub const MFA_SALT: &[u8] = b"_a0_mfa";
pub use crate::config::DEFAULT_MFA_TOKEN_TTL;
/// The random bytes a seal needs (the JWE's IV).
pub use crate::jose::sealed::SEAL_IV_LEN;
/// Longest sealed token accepted, in bytes.
pub const MAX_SEALED_LEN: usize = 16 * 1024;

/// Grant type of a one-time password (authenticator app, or an SMS/email code).
pub const MFA_OTP_GRANT_TYPE: &str = "http://auth0.com/oauth/grant-type/mfa-otp";
/// Grant type of an out-of-band challenge (SMS, voice, email, push), with its binding code.
pub const MFA_OOB_GRANT_TYPE: &str = "http://auth0.com/oauth/grant-type/mfa-oob";
/// Grant type of a recovery code.
pub const MFA_RECOVERY_CODE_GRANT_TYPE: &str =
    "http://auth0.com/oauth/grant-type/mfa-recovery-code";

/// Longest code (OOB code, binding code, recovery code) or identifier accepted, in bytes.
const MAX_CODE_LEN: usize = 512;

/// Why an MFA operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MfaError {
    /// The error to seal is not an `mfa_required` answer with an `mfa_token`.
    #[error("the error is not `mfa_required` with an mfa_token")]
    NotMfaRequired,
    /// An argument is unusable (nothing was sent); the message never shows a code.
    #[error("invalid MFA parameter: {0}")]
    InvalidParameter(String),
    /// The sealed MFA token (or Auth0's `mfa_token` in it) has expired: start over.
    #[error("the MFA token has expired")]
    TokenExpired,
    /// The sealed MFA token was altered, sealed with another secret, or is not one.
    #[error("the sealed MFA token is invalid")]
    TokenInvalid,
    /// Auth0 refused the request (a wrong or used code is `invalid_grant`), or its answer was
    /// unusable. Codes sent are redacted from the description.
    #[error("the MFA request failed: {0}")]
    Failed(ResponseError),
    /// Discovery of the tenant's endpoints failed.
    #[error("OpenID discovery failed: {0}")]
    Discovery(ResponseError),
    /// The ID token of the verification's answer failed verification (or its keys could not
    /// be fetched); nothing was saved.
    #[error(transparent)]
    IdToken(Box<LoginError>),
    /// The tokens could not be saved into the session (`missing_session`, `session_mismatch`,
    /// `audience_mismatch`, `session_not_saved`).
    #[error("the MFA tokens were not saved into the session: {0}")]
    NotPersisted(Box<AccessTokenError>),
    /// The driver broke the protocol.
    #[error(transparent)]
    UnexpectedInput(#[from] UnexpectedInput),
}

impl MfaError {
    /// The stable, machine-readable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            MfaError::NotMfaRequired | MfaError::InvalidParameter(_) => ErrorCode::InvalidParameter,
            MfaError::TokenExpired => ErrorCode::MfaTokenExpired,
            MfaError::TokenInvalid => ErrorCode::MfaTokenInvalid,
            MfaError::Failed(_) => ErrorCode::MfaFailed,
            MfaError::Discovery(_) => ErrorCode::DiscoveryFailed,
            MfaError::IdToken(e) => e.code(),
            MfaError::NotPersisted(e) => e.code(),
            MfaError::UnexpectedInput(_) => ErrorCode::UnexpectedInput,
        }
    }

    /// The OAuth error Auth0 sent, if any.
    pub fn oauth_error(&self) -> Option<&crate::token_endpoint::OAuthError> {
        match self {
            MfaError::Failed(e) | MfaError::Discovery(e) => e.oauth(),
            _ => None,
        }
    }

    /// An error answer, redacted of what was sent; Auth0's `expired_token` is
    /// [`MfaError::TokenExpired`].
    fn refused(e: ResponseError, sent: &[&str]) -> MfaError {
        match e.oauth() {
            Some(o) if o.error == "expired_token" => MfaError::TokenExpired,
            _ => MfaError::Failed(e.redact(sent)),
        }
    }
}

/// A sealed MFA token: Auth0's `mfa_token` encrypted and time-bounded by
/// [`seal_mfa_token`]. Opaque, URL-safe (base64url and dots), safe to hand to the browser.
/// `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedMfaToken(String);

impl SealedMfaToken {
    /// Wraps a sealed token received back from the browser (checked when opened).
    pub fn new(sealed: impl Into<String>) -> Self {
        SealedMfaToken(sealed.into())
    }
    /// The sealed token, to put in a page or a form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SealedMfaToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedMfaToken(..)")
    }
}

impl From<String> for SealedMfaToken {
    fn from(s: String) -> Self {
        SealedMfaToken(s)
    }
}

impl From<&str> for SealedMfaToken {
    fn from(s: &str) -> Self {
        SealedMfaToken(s.to_owned())
    }
}

/// What a sealed MFA token carries.
#[derive(Clone, Debug, PartialEq)]
pub struct MfaContext {
    /// Auth0's `mfa_token`.
    pub mfa_token: Secret,
    /// The `mfa_requirements` of the `mfa_required` answer (what to enroll or challenge).
    pub mfa_requirements: Option<Value>,
    /// The audience the refused request asked for (where verified tokens are saved); the
    /// configured audience when `None`.
    pub audience: Option<String>,
    /// The scope the refused request asked for.
    pub scope: Option<String>,
}

impl MfaContext {
    /// The context of an `mfa_required` error, for the audience and scope of the request
    /// Auth0 refused; `None` when the error is not `mfa_required` with an `mfa_token`.
    pub fn from_access_token_error(
        error: &AccessTokenError,
        request: &crate::access_token::AccessTokenRequest,
    ) -> Option<MfaContext> {
        match error {
            AccessTokenError::MfaRequired {
                mfa_token,
                mfa_requirements,
                ..
            } if !mfa_token.expose().is_empty() => Some(MfaContext {
                mfa_token: mfa_token.clone(),
                mfa_requirements: mfa_requirements.clone(),
                audience: request.audience.clone(),
                scope: request.scope.clone(),
            }),
            _ => None,
        }
    }

    /// The context of an OAuth `mfa_required` answer (from any grant).
    pub fn from_oauth_error(
        error: &crate::token_endpoint::OAuthError,
        audience: Option<String>,
        scope: Option<String>,
    ) -> Option<MfaContext> {
        let token = error.mfa_token.as_ref().filter(|t| !t.expose().is_empty());
        match (error.error.as_str(), token) {
            ("mfa_required", Some(token)) => Some(MfaContext {
                mfa_token: token.clone(),
                mfa_requirements: error.mfa_requirements.clone(),
                audience,
                scope,
            }),
            _ => None,
        }
    }
}

/// The sealed payload (its expiry is added by [`sealed`]).
#[derive(Serialize, Deserialize)]
struct Payload {
    mfa_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mfa_requirements: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// Seals `context` with the first of `secrets` (the configured secrets), to open until
/// `now + ttl`, with the caller-drawn random `iv` (fresh for every seal).
pub fn seal_mfa_token(
    secrets: &[Secret],
    context: &MfaContext,
    now: UnixTime,
    ttl: Duration,
    iv: [u8; SEAL_IV_LEN],
) -> Result<SealedMfaToken, MfaError> {
    let Some(secret) = secrets.first() else {
        return Err(MfaError::InvalidParameter("no secret is configured".into()));
    };
    let payload = Payload {
        mfa_token: context.mfa_token.expose().to_owned(),
        mfa_requirements: context.mfa_requirements.clone(),
        audience: context.audience.clone(),
        scope: context.scope.clone(),
    };
    sealed::seal(secret, MFA_SALT, payload, now.saturating_add(ttl), iv)
        .map(SealedMfaToken)
        .map_err(|_| MfaError::InvalidParameter("the MFA context is not serializable".into()))
}

/// Opens a sealed token with any of `secrets`: [`MfaError::TokenInvalid`] when it was altered,
/// sealed under another secret or is not a sealed token; [`MfaError::TokenExpired`] at or
/// after its expiry.
pub fn open_mfa_token(
    secrets: &[Secret],
    sealed: &SealedMfaToken,
    now: UnixTime,
) -> Result<MfaContext, MfaError> {
    match sealed::open::<Payload>(secrets, MFA_SALT, &sealed.0, MAX_SEALED_LEN, now) {
        Opened::Valid(payload) if !payload.mfa_token.is_empty() => Ok(MfaContext {
            mfa_token: Secret::new(payload.mfa_token),
            mfa_requirements: payload.mfa_requirements,
            audience: payload.audience,
            scope: payload.scope,
        }),
        Opened::Valid(_) | Opened::Invalid => Err(MfaError::TokenInvalid),
        Opened::Expired => Err(MfaError::TokenExpired),
    }
}

fn bad_code(value: &str, max: usize) -> bool {
    value.is_empty()
        || value.len() > max
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn check_email(email: &str) -> Result<(), MfaError> {
    if crate::params::is_email_address(email) {
        Ok(())
    } else {
        Err(MfaError::InvalidParameter(
            "the email address is not valid".into(),
        ))
    }
}

fn check_phone(phone: &str) -> Result<(), MfaError> {
    if crate::params::is_e164(phone) {
        Ok(())
    } else {
        Err(MfaError::InvalidParameter(
            "the phone number must be in E.164 form (+ and 7 to 15 digits)".into(),
        ))
    }
}

/// An authenticator the user has enrolled, as `GET /mfa/authenticators` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Authenticator {
    /// Its id (for a challenge).
    pub id: String,
    /// `otp`, `oob` or `recovery-code`.
    pub authenticator_type: String,
    /// Whether enrollment is complete.
    #[serde(default)]
    pub active: bool,
    /// For `oob`: `sms`, `voice`, `email` or `auth0` (push).
    #[serde(default)]
    pub oob_channel: Option<String>,
    /// A display name (e.g. a masked phone number).
    #[serde(default)]
    pub name: Option<String>,
}

/// What to enroll.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MfaFactor {
    /// An authenticator app (TOTP).
    Otp,
    /// A code by SMS to an E.164 phone number.
    Sms(String),
    /// A code by voice call to an E.164 phone number.
    Voice(String),
    /// A code by email.
    Email(String),
}

impl MfaFactor {
    fn check(&self) -> Result<(), MfaError> {
        match self {
            MfaFactor::Otp => Ok(()),
            MfaFactor::Sms(p) | MfaFactor::Voice(p) => check_phone(p),
            MfaFactor::Email(e) => check_email(e),
        }
    }

    /// The JSON body of `POST /mfa/associate`.
    fn body(&self) -> Value {
        let oob = |channel: &str, member: &str, value: &str| {
            serde_json::json!({
                "authenticator_types": ["oob"],
                "oob_channels": [channel],
                member: value,
            })
        };
        match self {
            MfaFactor::Otp => serde_json::json!({"authenticator_types": ["otp"]}),
            MfaFactor::Sms(p) => oob("sms", "phone_number", p),
            MfaFactor::Voice(p) => oob("voice", "phone_number", p),
            MfaFactor::Email(e) => oob("email", "email", e),
        }
    }
}

/// What `POST /mfa/associate` answered: the secret to show as a QR code (OTP), or the OOB
/// code of the first challenge, and the recovery codes of a first enrollment.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Enrollment {
    /// `otp` or `oob`.
    pub authenticator_type: String,
    /// OTP: the shared secret.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// OTP: the `otpauth://` URI to show as a QR code (it carries the secret).
    #[serde(default)]
    pub barcode_uri: Option<Secret>,
    /// Recovery codes, on the first enrollment.
    #[serde(default)]
    pub recovery_codes: Vec<Secret>,
    /// OOB: the code to verify the enrollment with ([`MfaProof::Oob`]).
    #[serde(default)]
    pub oob_code: Option<Secret>,
    /// OOB: the channel.
    #[serde(default)]
    pub oob_channel: Option<String>,
    /// OOB: `prompt` when the user must type the code they received (the binding code).
    #[serde(default)]
    pub binding_method: Option<String>,
}

/// Which challenge to start.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChallengeType {
    /// The user types a code from their authenticator app.
    Otp,
    /// Auth0 sends a code (SMS, voice, email) or a push.
    Oob,
}

impl ChallengeType {
    fn as_str(&self) -> &'static str {
        match self {
            ChallengeType::Otp => "otp",
            ChallengeType::Oob => "oob",
        }
    }
}

/// What `POST /mfa/challenge` answered.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Challenge {
    /// `otp` or `oob`.
    pub challenge_type: String,
    /// OOB: the code to verify with ([`MfaProof::Oob`]).
    #[serde(default)]
    pub oob_code: Option<Secret>,
    /// OOB: `prompt` when the user must type the code they received (the binding code).
    #[serde(default)]
    pub binding_method: Option<String>,
}

/// What the user proves their second factor with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MfaProof {
    /// A one-time password: 4 to 10 digits.
    Otp(Secret),
    /// The OOB code of a challenge (or enrollment), and the binding code the user typed when
    /// its `binding_method` is `prompt`.
    Oob {
        /// The challenge's `oob_code`.
        oob_code: Secret,
        /// The code the user received.
        binding_code: Option<Secret>,
    },
    /// A recovery code (a new one comes back: show it to the user).
    RecoveryCode(Secret),
}

impl MfaProof {
    /// A one-time password.
    pub fn otp(otp: impl Into<String>) -> Self {
        MfaProof::Otp(Secret::new(otp))
    }
    /// An OOB code, with the binding code when the challenge asked for one.
    pub fn oob(oob_code: impl Into<String>, binding_code: Option<String>) -> Self {
        MfaProof::Oob {
            oob_code: Secret::new(oob_code),
            binding_code: binding_code.map(Secret::new),
        }
    }
    /// A recovery code.
    pub fn recovery_code(code: impl Into<String>) -> Self {
        MfaProof::RecoveryCode(Secret::new(code))
    }

    /// Checks the proof before anything is sent; the error never shows the code.
    pub fn check(&self) -> Result<(), MfaError> {
        match self {
            MfaProof::Otp(otp) => {
                let otp = otp.expose();
                if !(4..=10).contains(&otp.len()) || !otp.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(MfaError::InvalidParameter(
                        "the one-time password must be 4 to 10 digits".into(),
                    ));
                }
            }
            MfaProof::Oob {
                oob_code,
                binding_code,
            } => {
                if bad_code(oob_code.expose(), MAX_CODE_LEN) {
                    return Err(MfaError::InvalidParameter(
                        "the oob_code must be 1 to 512 characters without whitespace".into(),
                    ));
                }
                if binding_code
                    .as_ref()
                    .is_some_and(|b| bad_code(b.expose(), 64))
                {
                    return Err(MfaError::InvalidParameter(
                        "the binding code must be 1 to 64 characters without whitespace".into(),
                    ));
                }
            }
            MfaProof::RecoveryCode(code) => {
                let code = code.expose();
                if code.is_empty()
                    || code.len() > 64
                    || !code.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    return Err(MfaError::InvalidParameter(
                        "the recovery code must be 1 to 64 letters and digits".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The grant's form parameters after `mfa_token`.
    fn params(&self) -> Vec<(&'static str, &str)> {
        match self {
            MfaProof::Otp(otp) => vec![("grant_type", MFA_OTP_GRANT_TYPE), ("otp", otp.expose())],
            MfaProof::Oob {
                oob_code,
                binding_code,
            } => {
                let mut p = vec![
                    ("grant_type", MFA_OOB_GRANT_TYPE),
                    ("oob_code", oob_code.expose()),
                ];
                if let Some(b) = binding_code {
                    p.push(("binding_code", b.expose()));
                }
                p
            }
            MfaProof::RecoveryCode(code) => vec![
                ("grant_type", MFA_RECOVERY_CODE_GRANT_TYPE),
                ("recovery_code", code.expose()),
            ],
        }
    }

    fn secrets(&self) -> Vec<&str> {
        match self {
            MfaProof::Otp(s) | MfaProof::RecoveryCode(s) => vec![s.expose()],
            MfaProof::Oob {
                oob_code,
                binding_code,
            } => vec![
                oob_code.expose(),
                binding_code.as_ref().map_or("", Secret::expose),
            ],
        }
    }
}

/// A verification: the sealed token, the proof, and whether to save the tokens into the
/// current session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MfaVerify {
    /// The sealed token of the `mfa_required` error.
    pub sealed: SealedMfaToken,
    /// The proof.
    pub proof: MfaProof,
    /// Save the tokens into the current session (for the sealed audience).
    pub persist: bool,
}

impl MfaVerify {
    /// Verifies `proof`, returning the tokens only.
    pub fn new(sealed: SealedMfaToken, proof: MfaProof) -> Self {
        MfaVerify {
            sealed,
            proof,
            persist: false,
        }
    }
    /// Also saves the tokens into the current session.
    pub fn persist(mut self) -> Self {
        self.persist = true;
        self
    }
}

/// What a verification returns.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct MfaVerified {
    /// The tokens (an ID token verified as a login's).
    pub tokens: TokenExchangeResult,
    /// After a recovery code: the new recovery code Auth0 issued (show it to the user).
    pub recovery_code: Option<Secret>,
    /// Whether the tokens were saved into the session.
    pub persisted: bool,
}

/// The MFA API endpoint `path` of the tenant, on the issuer's host.
pub fn mfa_endpoint(metadata: &Metadata, path: &str) -> String {
    format!("{}/mfa/{path}", metadata.issuer.trim_end_matches('/'))
}

/// The request to `/mfa/authenticators` (list), `/mfa/authenticators/{id}` (delete) or
/// `/mfa/associate` (enroll), authorized by the
/// `mfa_token` as a bearer token; the challenge is a form post with the client's
/// authentication (its DPoP mark dropped: the MFA API takes no proof).
pub fn api_request(
    config: &Config,
    metadata: &Metadata,
    mfa_token: &Secret,
    call: &MfaCall,
) -> HttpRequest {
    let bearer = format!("Bearer {}", mfa_token.expose());
    let request = match call {
        MfaCall::List => http::Request::get(mfa_endpoint(metadata, "authenticators"))
            .header(http::header::AUTHORIZATION, bearer)
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new()),
        MfaCall::Delete { authenticator_id } => {
            // The id as one percent-encoded path segment (`totp|dev_1` -> `totp%7Cdev_1`);
            // it has no whitespace (checked), so form encoding's `+` never appears.
            let id: String =
                url::form_urlencoded::byte_serialize(authenticator_id.as_bytes()).collect();
            let url = format!("{}/{id}", mfa_endpoint(metadata, "authenticators"));
            http::Request::delete(url)
                .header(http::header::AUTHORIZATION, bearer)
                .header(http::header::ACCEPT, "application/json")
                .body(Vec::new())
        }
        MfaCall::Enroll(factor) => http::Request::post(mfa_endpoint(metadata, "associate"))
            .header(http::header::AUTHORIZATION, bearer)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(factor.body().to_string().into_bytes()),
        MfaCall::Challenge {
            challenge_type,
            authenticator_id,
        } => {
            let mut params = vec![
                ("mfa_token", mfa_token.expose()),
                ("challenge_type", challenge_type.as_str()),
            ];
            if let Some(id) = authenticator_id {
                params.push(("authenticator_id", id.as_str()));
            }
            let mut request = form_post(
                config,
                metadata,
                &mfa_endpoint(metadata, "challenge"),
                &params,
            );
            request
                .at_send
                .retain(|a| !matches!(a, AtSend::DpopProof { .. }));
            return request;
        }
    };
    HttpRequest {
        // The issuer comes from validated metadata: the request builds.
        request: request.unwrap_or_default(),
        coalesce: None,
        at_send: Vec::new(),
    }
}

/// One call to the MFA API.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MfaCall {
    /// `GET /mfa/authenticators`.
    List,
    /// `POST /mfa/associate`.
    Enroll(MfaFactor),
    /// `DELETE /mfa/authenticators/{id}`.
    Delete {
        /// Which authenticator (from [`ListAuthenticators`]).
        authenticator_id: String,
    },
    /// `POST /mfa/challenge`.
    Challenge {
        /// OTP or OOB.
        challenge_type: ChallengeType,
        /// Which authenticator (from [`ListAuthenticators`]); Auth0 picks when `None`.
        authenticator_id: Option<String>,
    },
}

impl MfaCall {
    fn check(&self) -> Result<(), MfaError> {
        match self {
            MfaCall::List => Ok(()),
            MfaCall::Enroll(f) => f.check(),
            MfaCall::Delete { authenticator_id } if bad_code(authenticator_id, MAX_CODE_LEN) => {
                Err(MfaError::InvalidParameter(
                    "the authenticator id must be 1 to 512 characters without whitespace".into(),
                ))
            }
            MfaCall::Delete { .. } => Ok(()),
            MfaCall::Challenge {
                authenticator_id, ..
            } => match authenticator_id {
                Some(id) if bad_code(id, MAX_CODE_LEN) => Err(MfaError::InvalidParameter(
                    "the authenticator id must be 1 to 512 characters without whitespace".into(),
                )),
                _ => Ok(()),
            },
        }
    }
}

#[derive(Debug)]
enum ApiState {
    Start,
    Metadata {
        context: Box<MfaContext>,
        meta: MetadataStep,
    },
    Sending {
        context: Box<MfaContext>,
    },
    Finished,
}

/// An MFA API operation ([`ListAuthenticators`], [`EnrollAuthenticator`],
/// [`ChallengeAuthenticator`]): opens the sealed token, then one request.
#[derive(Debug)]
pub struct MfaApi<T> {
    config: Arc<Config>,
    sealed: SealedMfaToken,
    call: MfaCall,
    parse: fn(&[u8]) -> Option<T>,
    state: ApiState,
}

/// `list_authenticators`: the user's enrolled authenticators.
pub type ListAuthenticators = MfaApi<Vec<Authenticator>>;
/// `enroll_authenticator`: enrolls a new authenticator.
pub type EnrollAuthenticator = MfaApi<Enrollment>;
/// `challenge_authenticator`: starts a challenge (Auth0 sends an OOB code).
pub type ChallengeAuthenticator = MfaApi<Challenge>;
/// `delete_authenticator`: removes an enrolled authenticator (Auth0 answers 204, no body).
pub type DeleteAuthenticator = MfaApi<()>;

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<T> {
    serde_json::from_slice(body).ok()
}

impl<T> MfaApi<T> {
    fn finish(&mut self, r: Result<T, MfaError>) -> Step<T, MfaError> {
        self.state = ApiState::Finished;
        Step::Done(r)
    }
}

impl ListAuthenticators {
    pub(crate) fn list(config: Arc<Config>, sealed: SealedMfaToken) -> Self {
        MfaApi::with(config, sealed, MfaCall::List, parse_json)
    }
}

impl EnrollAuthenticator {
    pub(crate) fn enroll(config: Arc<Config>, sealed: SealedMfaToken, factor: MfaFactor) -> Self {
        MfaApi::with(config, sealed, MfaCall::Enroll(factor), parse_json)
    }
}

impl DeleteAuthenticator {
    pub(crate) fn delete(
        config: Arc<Config>,
        sealed: SealedMfaToken,
        authenticator_id: String,
    ) -> Self {
        MfaApi::with(config, sealed, MfaCall::Delete { authenticator_id }, |_| {
            Some(())
        })
    }
}

impl ChallengeAuthenticator {
    pub(crate) fn challenge(
        config: Arc<Config>,
        sealed: SealedMfaToken,
        challenge_type: ChallengeType,
        authenticator_id: Option<String>,
    ) -> Self {
        MfaApi::with(
            config,
            sealed,
            MfaCall::Challenge {
                challenge_type,
                authenticator_id,
            },
            parse_json,
        )
    }
}

impl<T> MfaApi<T> {
    fn with(
        config: Arc<Config>,
        sealed: SealedMfaToken,
        call: MfaCall,
        parse: fn(&[u8]) -> Option<T>,
    ) -> Self {
        MfaApi {
            config,
            sealed,
            call,
            parse,
            state: ApiState::Start,
        }
    }
}

impl<T> Operation for MfaApi<T> {
    type Output = T;
    type Error = MfaError;

    fn step(&mut self, input: Input, now: UnixTime) -> Step<T, MfaError> {
        match (
            std::mem::replace(&mut self.state, ApiState::Finished),
            input,
        ) {
            (ApiState::Start, Input::Start) => {
                if let Err(e) = self.call.check() {
                    return self.finish(Err(e));
                }
                let context = match open_mfa_token(self.config.secrets(), &self.sealed, now) {
                    Ok(c) => Box::new(c),
                    Err(e) => return self.finish(Err(e)),
                };
                let (meta, effect) = MetadataStep::start();
                self.state = ApiState::Metadata { context, meta };
                Step::Effect(effect)
            }
            (ApiState::Metadata { context, mut meta }, input) => {
                match meta.handle(&self.config, input, now) {
                    MetadataOutcome::Ready(m) => {
                        let request = api_request(&self.config, &m, &context.mfa_token, &self.call);
                        self.state = ApiState::Sending { context };
                        Step::Effect(Effect::Http(Box::new(request)))
                    }
                    MetadataOutcome::Effect(e) => {
                        self.state = ApiState::Metadata { context, meta };
                        Step::Effect(e)
                    }
                    MetadataOutcome::Failed(e) => self.finish(Err(MfaError::Discovery(e))),
                    MetadataOutcome::Unexpected(e) => self.finish(Err(e.into())),
                }
            }
            (ApiState::Sending { context }, Input::Http(response)) => {
                let status = response.status().as_u16();
                if !response.status().is_success() {
                    let sent = [
                        context.mfa_token.expose(),
                        self.config.client_secret().map_or("", Secret::expose),
                    ];
                    let e = parse_error_body(status, response.body());
                    return self.finish(Err(MfaError::refused(e, &sent)));
                }
                if response.body().len() > crate::token_response::MAX_RESPONSE_BODY {
                    return self.finish(Err(MfaError::Failed(ResponseError::TooLarge { status })));
                }
                match (self.parse)(response.body()) {
                    Some(out) => self.finish(Ok(out)),
                    None => self.finish(Err(MfaError::Failed(ResponseError::Invalid {
                        status,
                        reason: "the MFA API's answer is not the expected JSON",
                    }))),
                }
            }
            (state, _) => {
                let expected = match state {
                    ApiState::Start => "Start",
                    ApiState::Metadata { .. } => "metadata",
                    ApiState::Sending { .. } => "Http (MFA API)",
                    ApiState::Finished => "nothing (the operation has finished)",
                };
                self.finish(Err(UnexpectedInput { expected }.into()))
            }
        }
    }
}

/// The verification grant's form parameters: `mfa_token`, then the proof's.
pub fn verify_params<'a>(mfa_token: &'a Secret, proof: &'a MfaProof) -> Vec<(&'a str, &'a str)> {
    let mut params = proof.params();
    params.insert(1, ("mfa_token", mfa_token.expose()));
    params
}

/// A verification's answer while its ID token is verified.
#[derive(Debug)]
struct Pending {
    context: Box<MfaContext>,
    /// The session read (with [`MfaVerify::persist`]).
    session: Option<Box<StateData>>,
    response: TokenResponse,
    recovery_code: Option<Secret>,
}

#[derive(Debug)]
enum VerifyState {
    Start,
    LoadingSession {
        context: Box<MfaContext>,
    },
    Metadata {
        context: Box<MfaContext>,
        session: Option<Box<StateData>>,
        meta: MetadataStep,
    },
    Exchanging {
        context: Box<MfaContext>,
        session: Option<Box<StateData>>,
        metadata: Arc<Metadata>,
    },
    Landing {
        pending: Box<Pending>,
        landing: Box<crate::login::landing::Landing>,
    },
    Saving {
        update: Box<SessionUpdate>,
        verified: Box<MfaVerified>,
    },
    Finished,
}

/// `verify_mfa`: the verification grant; the tokens, saved into the session with
/// [`MfaVerify::persist`].
#[derive(Debug)]
pub struct VerifyMfa {
    config: Arc<Config>,
    verify: MfaVerify,
    state: VerifyState,
}

impl VerifyMfa {
    pub(crate) fn new(config: Arc<Config>, verify: MfaVerify) -> Self {
        VerifyMfa {
            config,
            verify,
            state: VerifyState::Start,
        }
    }

    fn finish(&mut self, r: Result<MfaVerified, MfaError>) -> Step<MfaVerified, MfaError> {
        self.state = VerifyState::Finished;
        Step::Done(r)
    }

    fn metadata(
        &mut self,
        context: Box<MfaContext>,
        session: Option<Box<StateData>>,
    ) -> Step<MfaVerified, MfaError> {
        let (meta, effect) = MetadataStep::start();
        self.state = VerifyState::Metadata {
            context,
            session,
            meta,
        };
        Step::Effect(effect)
    }

    fn landed(
        &mut self,
        pending: Box<Pending>,
        landing: Option<crate::login::landing::Landing>,
        step: crate::login::landing::LandingStep,
        now: UnixTime,
    ) -> Step<MfaVerified, MfaError> {
        use crate::login::landing::{Landed, LandingStep};
        match step {
            LandingStep::Effect(e) => match landing {
                Some(landing) => {
                    self.state = VerifyState::Landing {
                        pending,
                        landing: Box::new(landing),
                    };
                    Step::Effect(e)
                }
                None => self.finish(Err(UnexpectedInput {
                    expected: "a landing to continue",
                }
                .into())),
            },
            LandingStep::Done(Err(e)) => self.finish(Err(MfaError::IdToken(Box::new(e)))),
            LandingStep::Done(Ok(Landed::Session(_))) => self.finish(Err(UnexpectedInput {
                expected: "tokens (the MFA landing makes no session)",
            }
            .into())),
            LandingStep::Done(Ok(Landed::Tokens(tokens))) => {
                let Pending {
                    context,
                    session,
                    response,
                    recovery_code,
                } = *pending;
                let verified = MfaVerified {
                    tokens,
                    recovery_code,
                    persisted: session.is_some(),
                };
                let Some(base) = session else {
                    return self.finish(Ok(verified));
                };
                let key = self
                    .config
                    .audience_key(context.audience.as_deref())
                    .to_owned();
                let scope = requested_scope(&self.config, &key, context.scope.as_deref());
                let mut after = base.clone();
                if let Err(e) = apply_refresh(&mut after, &key, scope.as_deref(), &response, now) {
                    return self.finish(Err(MfaError::NotPersisted(Box::new(e))));
                }
                let update = Box::new(SessionUpdate::between(&base, &after, &[]));
                self.state = VerifyState::Saving {
                    update: update.clone(),
                    verified: Box::new(verified),
                };
                Step::Effect(Effect::UpdateSession(update))
            }
        }
    }
}

impl Operation for VerifyMfa {
    type Output = MfaVerified;
    type Error = MfaError;

    fn step(&mut self, input: Input, now: UnixTime) -> Step<MfaVerified, MfaError> {
        match (
            std::mem::replace(&mut self.state, VerifyState::Finished),
            input,
        ) {
            (VerifyState::Start, Input::Start) => {
                if let Err(e) = self.verify.proof.check() {
                    return self.finish(Err(e));
                }
                let context = match open_mfa_token(self.config.secrets(), &self.verify.sealed, now)
                {
                    Ok(c) => Box::new(c),
                    Err(e) => return self.finish(Err(e)),
                };
                if self.verify.persist {
                    self.state = VerifyState::LoadingSession { context };
                    return Step::Effect(Effect::LoadSession);
                }
                self.metadata(context, None)
            }
            (VerifyState::LoadingSession { context }, Input::Session(session)) => match session {
                // Nothing is sent and nothing is created without a session.
                None => self.finish(Err(MfaError::NotPersisted(Box::new(
                    AccessTokenError::MissingSession,
                )))),
                Some(session) => {
                    self.metadata(context, Some(Box::new(Arc::unwrap_or_clone(session))))
                }
            },
            (
                VerifyState::Metadata {
                    context,
                    session,
                    mut meta,
                },
                input,
            ) => match meta.handle(&self.config, input, now) {
                MetadataOutcome::Ready(metadata) => {
                    let params = verify_params(&context.mfa_token, &self.verify.proof);
                    let request = form_post(
                        &self.config,
                        &metadata,
                        metadata.token_endpoint_for(self.config.client_auth_method().transport()),
                        &params,
                    );
                    self.state = VerifyState::Exchanging {
                        context,
                        session,
                        metadata,
                    };
                    Step::Effect(Effect::Http(Box::new(request)))
                }
                MetadataOutcome::Effect(e) => {
                    self.state = VerifyState::Metadata {
                        context,
                        session,
                        meta,
                    };
                    Step::Effect(e)
                }
                MetadataOutcome::Failed(e) => self.finish(Err(MfaError::Discovery(e))),
                MetadataOutcome::Unexpected(e) => self.finish(Err(e.into())),
            },
            (
                VerifyState::Exchanging {
                    context,
                    session,
                    metadata,
                },
                Input::Http(response),
            ) => {
                let parsed =
                    match parse_token_response_expecting(&response, Some(self.config.token_type()))
                    {
                        Ok(parsed) => parsed,
                        Err(e) => {
                            let mut sent = self.verify.proof.secrets();
                            sent.push(context.mfa_token.expose());
                            sent.push(self.config.client_secret().map_or("", Secret::expose));
                            return self.finish(Err(MfaError::refused(e, &sent)));
                        }
                    };
                let recovery_code = serde_json::from_slice::<Map<String, Value>>(response.body())
                    .ok()
                    .and_then(|mut m| m.remove("recovery_code"))
                    .and_then(|v| v.as_str().map(Secret::new));
                let destination = crate::login::landing::Destination {
                    session: false,
                    audience_key: self
                        .config
                        .audience_key(context.audience.as_deref())
                        .to_owned(),
                    scope: context.scope.clone(),
                    organization: None,
                };
                let pending = Box::new(Pending {
                    context,
                    session,
                    response: parsed.clone(),
                    recovery_code,
                });
                let (landing, step) =
                    crate::login::landing::Landing::start(destination, metadata, parsed, now);
                self.landed(pending, landing, step, now)
            }
            (
                VerifyState::Landing {
                    pending,
                    mut landing,
                },
                input,
            ) => {
                let step = landing.step(&self.config, input, now);
                self.landed(pending, Some(*landing), step, now)
            }
            (VerifyState::Saving { update, verified }, Input::Updated(outcome)) => {
                match after_update(&update, outcome) {
                    UpdateNext::Saved => self.finish(Ok(*verified)),
                    UpdateNext::Gone => self.finish(Err(MfaError::NotPersisted(Box::new(
                        AccessTokenError::MissingSession,
                    )))),
                    UpdateNext::Failed { reason, .. } => self.finish(Err(MfaError::NotPersisted(
                        Box::new(AccessTokenError::SessionNotSaved {
                            refresh_token_kept: false,
                            reason,
                        }),
                    ))),
                }
            }
            (state, _) => {
                let expected = match state {
                    VerifyState::Start => "Start",
                    VerifyState::LoadingSession { .. } => "LoadSession",
                    VerifyState::Metadata { .. } => "metadata",
                    VerifyState::Exchanging { .. } => "Http (MFA verification)",
                    VerifyState::Landing { .. } => "the landing's effects",
                    VerifyState::Saving { .. } => "Updated",
                    VerifyState::Finished => "nothing (the operation has finished)",
                };
                self.finish(Err(UnexpectedInput { expected }.into()))
            }
        }
    }
}
