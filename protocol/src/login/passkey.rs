//! Passkeys (WebAuthn) with Auth0's native passkey API: sign a new user up, or log a
//! returning user in, with a passkey the browser creates or uses.
//!
//! 1. **Challenge.** [`RequestPasskeyChallenge`] posts to `/passkey/register` (signup: the new
//!    user's profile, [`PasskeySignup`]) or `/passkey/challenge` (login, [`PasskeyLogin`]) on
//!    the issuer's host, as JSON with `client_id`, the `realm` (connection) and organization
//!    when given, and the client's credential as these endpoints take it: `client_secret` in
//!    the body for a client with a secret (post or basic alike: the endpoints read no
//!    `Authorization` header); nothing more for mutual TLS (the certificate authenticates) or
//!    `private_key_jwt` (the endpoints take no assertion: a tenant that requires one refuses,
//!    and the refusal is returned as `passkey_challenge_error`).
//! 2. Auth0 answers the WebAuthn options (`authn_params_public_key`) and an `auth_session`.
//!    The options are handed over untouched ([`PasskeyChallenge::authn_params_public_key`], a
//!    JSON value for `navigator.credentials.create()` / `.get()`). The `auth_session` is
//!    **sealed** ([`SealedPasskeySession`]): encrypted with the configured secret (compact JWE,
//!    `dir` + `A256CBC-HS512`, HKDF salt [`PASSKEY_SALT`]) together with what the challenge
//!    asked (signup or login, realm, organization) and an expiry ([`PASSKEY_SESSION_TTL`]).
//!    An application can therefore keep it in the page (a hidden form field) without a
//!    server-side store, the browser never sees Auth0's handle, and the sign-in cannot be
//!    pointed at another realm or organization than the challenge's.
//! 3. **Sign in.** [`LoginWithPasskey`](super::LoginWithPasskey) (a session) or
//!    [`PasskeyTokens`](super::PasskeyTokens) (tokens only) open the sealed session (altered:
//!    `passkey_session_invalid`; expired: `passkey_session_expired`; nothing sent), then post
//!    the `urn:okta:params:oauth:grant-type:webauthn` grant to the token endpoint like every
//!    other grant: a form with `auth_session`, `authn_response` (the browser's credential as
//!    compact JSON, which is how Auth0's own JavaScript SDK sends it), `realm`, `scope`
//!    (always with `openid`), `audience`, `organization`, with every client authentication
//!    method (secret post or basic, `private_key_jwt`, mutual TLS) and DPoP when configured.
//!    The answer's ID token is verified exactly as an interactive login's (organization
//!    included when the challenge named one) and the session replaced.
//!
//! Inputs are checked before anything is sent: profile fields of bounded length without
//! control characters, an email address and E.164 phone number when given, at least one of
//! them or a username for a signup, `user_metadata` of at most 16 KiB, names without
//! whitespace; a credential that is a JSON object of at most [`MAX_AUTHN_RESPONSE_LEN`] bytes
//! with a non-empty `id`, `type` `public-key` and a `response` object holding
//! `clientDataJSON` and, for a signup, `attestationObject`, for a login `authenticatorData`
//! and `signature`. Errors never show the `auth_session` (raw or sealed), and an error answer
//! that echoes it or the client secret has them removed.

use super::error::LoginError;
use crate::config::{ClientAuthMethod, Config};
use crate::discovery::Metadata;
use crate::effect::{Effect, HttpRequest, Input, Operation, Step, UnexpectedInput};
use crate::jose::jwe::{self, JweKey};
use crate::metadata_step::{MetadataOutcome, MetadataStep};
use crate::secret::Secret;
use crate::time::UnixTime;
use crate::token_endpoint::{MAX_RESPONSE_BODY, ResponseError, parse_error_body};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The grant type of a passkey sign-in at the token endpoint.
pub const WEBAUTHN_GRANT_TYPE: &str = "urn:okta:params:oauth:grant-type:webauthn";
/// The HKDF salt of the key that seals `auth_session`s (its own: a sealed passkey session is
/// never a session cookie or a sealed MFA token, nor the other way round).
pub const PASSKEY_SALT: &[u8] = b"_a0_passkey";
/// How long a sealed passkey session opens: long enough for a user to answer the browser's
/// passkey prompt (WebAuthn's own timeouts are one to five minutes). Auth0 bounds its
/// `auth_session` too; whichever ends first wins.
pub const PASSKEY_SESSION_TTL: Duration = Duration::from_secs(600);
/// The random bytes a challenge needs (the seal's IV).
pub const PASSKEY_RANDOM_LEN: usize = 16;
/// Longest credential (`authn_response`, as compact JSON) accepted, in bytes.
pub const MAX_AUTHN_RESPONSE_LEN: usize = 64 * 1024;
/// Longest sealed passkey session accepted, in bytes.
pub const MAX_SEALED_SESSION_LEN: usize = 8 * 1024;
/// Longest `auth_session` accepted from Auth0, in bytes.
const MAX_AUTH_SESSION_LEN: usize = 4 * 1024;
/// Longest profile field, realm, organization or username, in bytes.
const MAX_FIELD_LEN: usize = 256;
/// Longest `picture` URL, in bytes.
const MAX_PICTURE_LEN: usize = 2048;
/// Largest `user_metadata` (as JSON), Auth0's own limit.
const MAX_USER_METADATA_LEN: usize = 16 * 1024;

/// The profile of the user a passkey signup creates (Auth0's `user_profile`). Which members
/// the connection needs depends on its identifier settings (email, phone number, username).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PasskeyUserProfile {
    /// The email address.
    pub email: Option<String>,
    /// The phone number, in E.164 form.
    pub phone_number: Option<String>,
    /// The username.
    pub username: Option<String>,
    /// The full name.
    pub name: Option<String>,
    /// The given name.
    pub given_name: Option<String>,
    /// The family name.
    pub family_name: Option<String>,
    /// The nickname.
    pub nickname: Option<String>,
    /// A picture URL.
    pub picture: Option<String>,
}

/// A passkey signup: the challenge that creates a new user with a new passkey.
///
/// ```
/// use auth0_server_protocol::login::PasskeySignup;
/// assert!(PasskeySignup::email("ann@example.com").name("Ann").check().is_ok());
/// assert!(PasskeySignup::email("not an address").check().is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PasskeySignup {
    /// The new user's profile.
    pub profile: PasskeyUserProfile,
    /// The database connection (`realm`); the tenant's default when `None`.
    pub realm: Option<String>,
    /// The organization (id or name) the user signs up into.
    pub organization: Option<String>,
    /// The new user's `user_metadata`.
    pub user_metadata: Option<Map<String, Value>>,
}

impl PasskeySignup {
    /// A signup identified by an email address.
    pub fn email(email: impl Into<String>) -> Self {
        let mut s = Self::default();
        s.profile.email = Some(email.into());
        s
    }
    /// A signup identified by a phone number (E.164).
    pub fn phone_number(phone_number: impl Into<String>) -> Self {
        let mut s = Self::default();
        s.profile.phone_number = Some(phone_number.into());
        s
    }
    /// A signup identified by a username.
    pub fn username(username: impl Into<String>) -> Self {
        let mut s = Self::default();
        s.profile.username = Some(username.into());
        s
    }
    /// Sets the full name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.profile.name = Some(name.into());
        self
    }
    /// Sets the connection (`realm`).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }
    /// Sets the organization.
    pub fn organization(mut self, organization: impl Into<String>) -> Self {
        self.organization = Some(organization.into());
        self
    }
    /// Sets the new user's `user_metadata`.
    pub fn user_metadata(mut self, metadata: Map<String, Value>) -> Self {
        self.user_metadata = Some(metadata);
        self
    }

    /// Checks the request before anything is sent.
    pub fn check(&self) -> Result<(), LoginError> {
        let p = &self.profile;
        if p.email.is_none() && p.phone_number.is_none() && p.username.is_none() {
            return Err(invalid(
                "a passkey signup needs an email address, a phone number or a username",
            ));
        }
        if p.email
            .as_deref()
            .is_some_and(|e| !crate::params::is_email_address(e))
        {
            return Err(invalid("the email address is not valid"));
        }
        if p.phone_number
            .as_deref()
            .is_some_and(|n| !crate::params::is_e164(n))
        {
            return Err(invalid(
                "the phone number must be in E.164 form (+ and 7 to 15 digits)",
            ));
        }
        for (name, value) in [
            ("username", &p.username),
            ("name", &p.name),
            ("given_name", &p.given_name),
            ("family_name", &p.family_name),
            ("nickname", &p.nickname),
        ] {
            check_text(name, value.as_deref(), MAX_FIELD_LEN)?;
        }
        check_text("picture", p.picture.as_deref(), MAX_PICTURE_LEN)?;
        check_name("realm", self.realm.as_deref())?;
        check_name("organization", self.organization.as_deref())?;
        if self
            .user_metadata
            .as_ref()
            .is_some_and(|m| Value::Object(m.clone()).to_string().len() > MAX_USER_METADATA_LEN)
        {
            return Err(invalid("user_metadata must be at most 16 KiB of JSON"));
        }
        Ok(())
    }
}

/// A passkey login: the challenge for a returning user's passkey.
///
/// ```
/// use auth0_server_protocol::login::PasskeyLogin;
/// assert!(PasskeyLogin::new().realm("Username-Password-Authentication").check().is_ok());
/// assert!(PasskeyLogin::new().realm("two words").check().is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PasskeyLogin {
    /// The user's username or email, to narrow the passkeys offered; any of the
    /// connection's (discoverable credentials) when `None`.
    pub username: Option<String>,
    /// The database connection (`realm`); the tenant's default when `None`.
    pub realm: Option<String>,
    /// The organization (id or name) to log in to.
    pub organization: Option<String>,
}

impl PasskeyLogin {
    /// A login challenge for any passkey of the connection.
    pub fn new() -> Self {
        Self::default()
    }
    /// Names the user.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }
    /// Sets the connection (`realm`).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }
    /// Sets the organization.
    pub fn organization(mut self, organization: impl Into<String>) -> Self {
        self.organization = Some(organization.into());
        self
    }

    /// Checks the request before anything is sent.
    pub fn check(&self) -> Result<(), LoginError> {
        check_text("username", self.username.as_deref(), MAX_FIELD_LEN)?;
        check_name("realm", self.realm.as_deref())?;
        check_name("organization", self.organization.as_deref())
    }
}

fn invalid(message: &str) -> LoginError {
    LoginError::InvalidParameter(message.to_owned())
}

/// A free-text field: not blank, bounded, no control characters.
fn check_text(name: &str, value: Option<&str>, max: usize) -> Result<(), LoginError> {
    match value {
        Some(v) if v.trim().is_empty() || v.len() > max || v.chars().any(char::is_control) => {
            Err(LoginError::InvalidParameter(format!(
                "{name} must be 1 to {max} bytes without control characters"
            )))
        }
        _ => Ok(()),
    }
}

/// A name (realm, organization): not empty, bounded, no whitespace or control characters.
fn check_name(name: &str, value: Option<&str>) -> Result<(), LoginError> {
    match value {
        Some(v)
            if v.is_empty()
                || v.len() > MAX_FIELD_LEN
                || v.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Err(LoginError::InvalidParameter(format!(
                "{name} must be 1 to {MAX_FIELD_LEN} bytes without whitespace"
            )))
        }
        _ => Ok(()),
    }
}

/// Which ceremony a challenge starts.
#[derive(Clone, Debug, PartialEq)]
pub enum PasskeyChallengeRequest {
    /// `/passkey/register`: a new user, a new passkey (`navigator.credentials.create()`).
    Signup(PasskeySignup),
    /// `/passkey/challenge`: an existing passkey (`navigator.credentials.get()`).
    Login(PasskeyLogin),
}

impl PasskeyChallengeRequest {
    /// Checks the request before anything is sent.
    pub fn check(&self) -> Result<(), LoginError> {
        match self {
            PasskeyChallengeRequest::Signup(s) => s.check(),
            PasskeyChallengeRequest::Login(l) => l.check(),
        }
    }
    fn kind(&self) -> PasskeyCeremony {
        match self {
            PasskeyChallengeRequest::Signup(_) => PasskeyCeremony::Signup,
            PasskeyChallengeRequest::Login(_) => PasskeyCeremony::Login,
        }
    }
    fn realm(&self) -> Option<&str> {
        match self {
            PasskeyChallengeRequest::Signup(s) => s.realm.as_deref(),
            PasskeyChallengeRequest::Login(l) => l.realm.as_deref(),
        }
    }
    fn organization(&self) -> Option<&str> {
        match self {
            PasskeyChallengeRequest::Signup(s) => s.organization.as_deref(),
            PasskeyChallengeRequest::Login(l) => l.organization.as_deref(),
        }
    }
}

/// The ceremony a sealed session belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasskeyCeremony {
    /// A signup: the credential is an attestation (`attestationObject`).
    Signup,
    /// A login: the credential is an assertion (`authenticatorData`, `signature`).
    Login,
}

/// The endpoint of a challenge, on the issuer's host (the custom domain when the tenant is
/// reached through one).
pub fn challenge_endpoint(metadata: &Metadata, ceremony: PasskeyCeremony) -> String {
    let path = match ceremony {
        PasskeyCeremony::Signup => "register",
        PasskeyCeremony::Login => "challenge",
    };
    format!("{}/passkey/{path}", metadata.issuer.trim_end_matches('/'))
}

/// The JSON body of a challenge request (see the [module](self) for the client's credential).
pub fn challenge_body(config: &Config, request: &PasskeyChallengeRequest) -> Value {
    let mut body = Map::new();
    body.insert("client_id".into(), config.client_id().into());
    match config.client_auth_method() {
        ClientAuthMethod::ClientSecretPost | ClientAuthMethod::ClientSecretBasic => {
            if let Some(secret) = config.client_secret() {
                body.insert("client_secret".into(), secret.expose().into());
            }
        }
        _ => {}
    }
    if let Some(realm) = request.realm() {
        body.insert("realm".into(), realm.into());
    }
    if let Some(organization) = request.organization() {
        body.insert("organization".into(), organization.into());
    }
    match request {
        PasskeyChallengeRequest::Signup(s) => {
            let p = &s.profile;
            let mut profile = Map::new();
            for (name, value) in [
                ("email", &p.email),
                ("phone_number", &p.phone_number),
                ("username", &p.username),
                ("name", &p.name),
                ("given_name", &p.given_name),
                ("family_name", &p.family_name),
                ("nickname", &p.nickname),
                ("picture", &p.picture),
            ] {
                if let Some(v) = value {
                    profile.insert(name.into(), v.clone().into());
                }
            }
            body.insert("user_profile".into(), Value::Object(profile));
            if let Some(metadata) = &s.user_metadata {
                body.insert("user_metadata".into(), Value::Object(metadata.clone()));
            }
        }
        PasskeyChallengeRequest::Login(l) => {
            if let Some(username) = &l.username {
                body.insert("username".into(), username.clone().into());
            }
        }
    }
    Value::Object(body)
}

fn challenge_request(
    config: &Config,
    metadata: &Metadata,
    request: &PasskeyChallengeRequest,
) -> Result<HttpRequest, LoginError> {
    let request = http::Request::post(challenge_endpoint(metadata, request.kind()))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .body(challenge_body(config, request).to_string().into_bytes())
        .map_err(|_| LoginError::InvalidMetadata("the issuer is not a usable URL"))?;
    Ok(HttpRequest {
        request,
        coalesce: None,
        at_send: Vec::new(),
    })
}

/// A sealed passkey session: Auth0's `auth_session` encrypted and time-bounded with what its
/// challenge asked. Opaque, URL-safe (base64url and dots), safe to put in a page; `Debug`
/// does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedPasskeySession(String);

impl SealedPasskeySession {
    /// Wraps a sealed session received back from the browser (checked when opened).
    pub fn new(sealed: impl Into<String>) -> Self {
        SealedPasskeySession(sealed.into())
    }
    /// The sealed session, to put in a page or a form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SealedPasskeySession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedPasskeySession(..)")
    }
}

impl From<String> for SealedPasskeySession {
    fn from(s: String) -> Self {
        SealedPasskeySession(s)
    }
}

impl From<&str> for SealedPasskeySession {
    fn from(s: &str) -> Self {
        SealedPasskeySession(s.to_owned())
    }
}

/// What a sealed passkey session carries.
#[derive(Clone, Debug, PartialEq)]
pub struct PasskeySession {
    /// Auth0's `auth_session`.
    pub auth_session: Secret,
    /// Signup or login.
    pub ceremony: PasskeyCeremony,
    /// The challenge's realm.
    pub realm: Option<String>,
    /// The challenge's organization: the ID token must name it.
    pub organization: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    auth_session: String,
    ceremony: PasskeyCeremony,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    realm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    organization: Option<String>,
    exp: u64,
}

/// Seals `session` with the first of `secrets`, to open until `now + ttl`, with the
/// caller-drawn random `iv` (fresh for every seal).
pub fn seal_passkey_session(
    secrets: &[Secret],
    session: &PasskeySession,
    now: UnixTime,
    ttl: Duration,
    iv: [u8; PASSKEY_RANDOM_LEN],
) -> Result<SealedPasskeySession, LoginError> {
    let Some(secret) = secrets.first() else {
        return Err(invalid("no secret is configured"));
    };
    let payload = Payload {
        auth_session: session.auth_session.expose().to_owned(),
        ceremony: session.ceremony,
        realm: session.realm.clone(),
        organization: session.organization.clone(),
        exp: now.saturating_add(ttl).as_secs(),
    };
    let plaintext = serde_json::to_vec(&payload)
        .map_err(|_| invalid("the passkey session is not serializable"))?;
    let key = JweKey::derive(secret.expose().as_bytes(), PASSKEY_SALT);
    Ok(SealedPasskeySession(jwe::encrypt(&key, &plaintext, iv)))
}

/// Opens a sealed session with any of `secrets`: [`LoginError::PasskeySessionInvalid`] when
/// it was altered, sealed under another secret or is not a sealed session;
/// [`LoginError::PasskeySessionExpired`] at or after its expiry.
pub fn open_passkey_session(
    secrets: &[Secret],
    sealed: &SealedPasskeySession,
    now: UnixTime,
) -> Result<PasskeySession, LoginError> {
    if sealed.0.len() > MAX_SEALED_SESSION_LEN {
        return Err(LoginError::PasskeySessionInvalid);
    }
    let keys: Vec<JweKey> = secrets
        .iter()
        .map(|s| JweKey::derive(s.expose().as_bytes(), PASSKEY_SALT))
        .collect();
    let plaintext =
        jwe::decrypt(&keys, &sealed.0).map_err(|_| LoginError::PasskeySessionInvalid)?;
    let payload: Payload =
        serde_json::from_slice(&plaintext).map_err(|_| LoginError::PasskeySessionInvalid)?;
    if payload.auth_session.is_empty() {
        return Err(LoginError::PasskeySessionInvalid);
    }
    if now.as_secs() >= payload.exp {
        return Err(LoginError::PasskeySessionExpired);
    }
    Ok(PasskeySession {
        auth_session: Secret::new(payload.auth_session),
        ceremony: payload.ceremony,
        realm: payload.realm,
        organization: payload.organization,
    })
}

/// A challenge: the WebAuthn options for the browser and the sealed session to sign in with.
#[derive(Clone, Debug, PartialEq)]
pub struct PasskeyChallenge {
    /// Auth0's `authn_params_public_key`, untouched: `PublicKeyCredentialCreationOptions`
    /// for a signup, `PublicKeyCredentialRequestOptions` for a login (binary members as
    /// base64url strings, to decode in the browser before calling WebAuthn).
    pub authn_params_public_key: Value,
    /// The sealed `auth_session`, for [`PasskeySignIn`].
    pub auth_session: SealedPasskeySession,
    /// Signup or login.
    pub ceremony: PasskeyCeremony,
}

#[derive(Deserialize)]
struct RawChallenge {
    authn_params_public_key: Option<Value>,
    auth_session: Option<String>,
}

/// Reads a challenge answer: the options (a JSON object) and a non-empty, bounded
/// `auth_session`.
pub fn parse_challenge_answer(
    response: &http::Response<Vec<u8>>,
) -> Result<(Value, Secret), ResponseError> {
    let status = response.status().as_u16();
    if !response.status().is_success() {
        return Err(parse_error_body(status, response.body()));
    }
    if response.body().len() > MAX_RESPONSE_BODY {
        return Err(ResponseError::TooLarge { status });
    }
    let unusable = |reason| ResponseError::Invalid { status, reason };
    let raw: RawChallenge = serde_json::from_slice(response.body())
        .map_err(|_| unusable("the passkey challenge answer is not a JSON object"))?;
    let options = match raw.authn_params_public_key {
        Some(o @ Value::Object(_)) => o,
        _ => return Err(unusable("the answer has no authn_params_public_key object")),
    };
    match raw.auth_session {
        Some(s) if !s.is_empty() && s.len() <= MAX_AUTH_SESSION_LEN => {
            Ok((options, Secret::new(s)))
        }
        _ => Err(unusable("the answer has no usable auth_session")),
    }
}

#[derive(Debug)]
enum ChallengeState {
    Start,
    Random,
    Metadata {
        iv: [u8; PASSKEY_RANDOM_LEN],
        meta: MetadataStep,
    },
    Sending {
        iv: [u8; PASSKEY_RANDOM_LEN],
    },
    Finished,
}

/// The `passkey_signup_challenge` and `passkey_login_challenge` operations.
#[derive(Debug)]
pub struct RequestPasskeyChallenge {
    config: Arc<Config>,
    request: PasskeyChallengeRequest,
    state: ChallengeState,
}

impl RequestPasskeyChallenge {
    pub(crate) fn new(config: Arc<Config>, request: PasskeyChallengeRequest) -> Self {
        RequestPasskeyChallenge {
            config,
            request,
            state: ChallengeState::Start,
        }
    }

    fn finish(
        &mut self,
        r: Result<PasskeyChallenge, LoginError>,
    ) -> Step<PasskeyChallenge, LoginError> {
        self.state = ChallengeState::Finished;
        Step::Done(r)
    }

    fn answered(
        &mut self,
        iv: [u8; PASSKEY_RANDOM_LEN],
        response: &http::Response<Vec<u8>>,
        now: UnixTime,
    ) -> Step<PasskeyChallenge, LoginError> {
        let (options, auth_session) = match parse_challenge_answer(response) {
            Ok(answer) => answer,
            Err(e) => {
                let sent = [self.config.client_secret().map_or("", Secret::expose)];
                return self.finish(Err(LoginError::PasskeyChallenge(e.redact(&sent))));
            }
        };
        let session = PasskeySession {
            auth_session,
            ceremony: self.request.kind(),
            realm: self.request.realm().map(str::to_owned),
            organization: self.request.organization().map(str::to_owned),
        };
        let sealed = seal_passkey_session(
            self.config.secrets(),
            &session,
            now,
            PASSKEY_SESSION_TTL,
            iv,
        );
        self.finish(sealed.map(|auth_session| PasskeyChallenge {
            authn_params_public_key: options,
            auth_session,
            ceremony: session.ceremony,
        }))
    }
}

impl Operation for RequestPasskeyChallenge {
    type Output = PasskeyChallenge;
    type Error = LoginError;

    fn step(&mut self, input: Input, now: UnixTime) -> Step<PasskeyChallenge, LoginError> {
        match (
            std::mem::replace(&mut self.state, ChallengeState::Finished),
            input,
        ) {
            (ChallengeState::Start, Input::Start) => {
                if let Err(e) = self.request.check() {
                    return self.finish(Err(e));
                }
                self.state = ChallengeState::Random;
                Step::Effect(Effect::Random {
                    len: PASSKEY_RANDOM_LEN,
                })
            }
            (ChallengeState::Random, Input::Random(random)) => {
                let Ok(iv) = <[u8; PASSKEY_RANDOM_LEN]>::try_from(random.as_slice()) else {
                    return self.finish(Err(UnexpectedInput {
                        expected: "Random (16 bytes)",
                    }
                    .into()));
                };
                let (meta, effect) = MetadataStep::start();
                self.state = ChallengeState::Metadata { iv, meta };
                Step::Effect(effect)
            }
            (ChallengeState::Metadata { iv, mut meta }, input) => {
                match meta.handle(&self.config, input, now) {
                    MetadataOutcome::Ready(m) => {
                        match challenge_request(&self.config, &m, &self.request) {
                            Ok(request) => {
                                self.state = ChallengeState::Sending { iv };
                                Step::Effect(Effect::Http(Box::new(request)))
                            }
                            Err(e) => self.finish(Err(e)),
                        }
                    }
                    MetadataOutcome::Effect(e) => {
                        self.state = ChallengeState::Metadata { iv, meta };
                        Step::Effect(e)
                    }
                    MetadataOutcome::Failed(e) => self.finish(Err(LoginError::Discovery(e))),
                    MetadataOutcome::Unexpected(e) => self.finish(Err(e.into())),
                }
            }
            (ChallengeState::Sending { iv }, Input::Http(response)) => {
                self.answered(iv, &response, now)
            }
            (state, _) => {
                let expected = match state {
                    ChallengeState::Start => "Start",
                    ChallengeState::Random => "Random",
                    ChallengeState::Metadata { .. } => "metadata",
                    ChallengeState::Sending { .. } => "Http (passkey challenge)",
                    ChallengeState::Finished => "nothing (the operation has finished)",
                };
                self.finish(Err(UnexpectedInput { expected }.into()))
            }
        }
    }
}

/// A passkey sign-in: the sealed session of the challenge and the browser's credential.
///
/// ```
/// use auth0_server_protocol::login::PasskeySignIn;
/// let credential = serde_json::json!({
///     "id": "cred-1", "rawId": "cred-1", "type": "public-key",
///     "response": {"clientDataJSON": "e30", "authenticatorData": "AA", "signature": "AA"}
/// });
/// assert!(PasskeySignIn::new("sealed".into(), credential).check().is_ok());
/// assert!(PasskeySignIn::new("sealed".into(), serde_json::json!("nope")).check().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct PasskeySignIn {
    /// The sealed `auth_session` of the challenge.
    pub auth_session: SealedPasskeySession,
    /// The browser's credential, serialized as JSON (`PublicKeyCredential.toJSON()`): `id`,
    /// `rawId`, `type`, `authenticatorAttachment`, `response` (`clientDataJSON`, and
    /// `attestationObject` for a signup or `authenticatorData`, `signature`, `userHandle` for
    /// a login).
    pub authn_response: Value,
    /// The scope asked for (the configured default when `None`); `openid` is always added.
    pub scope: Option<String>,
    /// The API the access token is for; the configured audience when `None`.
    pub audience: Option<String>,
    /// What the sealed session holds, once opened.
    opened: Option<Opened>,
}

#[derive(Clone, Debug, PartialEq)]
struct Opened {
    session: PasskeySession,
    /// `authn_response` as compact JSON, as sent.
    authn_response: String,
}

impl PasskeySignIn {
    /// Signs in with `authn_response` for the challenge sealed in `auth_session`.
    pub fn new(auth_session: SealedPasskeySession, authn_response: Value) -> Self {
        PasskeySignIn {
            auth_session,
            authn_response,
            scope: None,
            audience: None,
            opened: None,
        }
    }
    /// Sets the scope.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
    /// Sets the audience.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Checks the request before anything is sent (the sealed session is opened when the
    /// operation runs).
    pub fn check(&self) -> Result<(), LoginError> {
        if self.auth_session.0.is_empty() || self.auth_session.0.len() > MAX_SEALED_SESSION_LEN {
            return Err(LoginError::PasskeySessionInvalid);
        }
        check_credential(&self.authn_response, None)?;
        if self
            .audience
            .as_deref()
            .is_some_and(|a| a.trim().is_empty())
        {
            return Err(invalid("audience must not be blank when given"));
        }
        Ok(())
    }

    /// Opens the sealed session and checks the credential against its ceremony.
    pub(crate) fn open(&mut self, config: &Config, now: UnixTime) -> Result<(), LoginError> {
        let session = open_passkey_session(config.secrets(), &self.auth_session, now)?;
        check_credential(&self.authn_response, Some(session.ceremony))?;
        self.opened = Some(Opened {
            session,
            authn_response: self.authn_response.to_string(),
        });
        Ok(())
    }

    /// The organization of the challenge (once opened).
    pub(crate) fn organization(&self) -> Option<&str> {
        self.opened
            .as_ref()
            .and_then(|o| o.session.organization.as_deref())
    }

    /// The token request's form parameters, in order (empty before [`Self::open`]).
    pub(crate) fn params<'a>(
        &'a self,
        config: &'a Config,
        scope: Option<&'a str>,
    ) -> Vec<(&'a str, &'a str)> {
        let Some(opened) = &self.opened else {
            return Vec::new();
        };
        let mut params = vec![
            ("grant_type", WEBAUTHN_GRANT_TYPE),
            ("auth_session", opened.session.auth_session.expose()),
            ("authn_response", opened.authn_response.as_str()),
        ];
        if let Some(realm) = &opened.session.realm {
            params.push(("realm", realm));
        }
        if let Some(audience) = self
            .audience
            .as_deref()
            .or(config.authorization_params().audience.as_deref())
        {
            params.push(("audience", audience));
        }
        if let Some(scope) = scope {
            params.push(("scope", scope));
        }
        if let Some(organization) = &opened.session.organization {
            params.push(("organization", organization));
        }
        params
    }

    /// What was sent that an error answer must not echo.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        vec![
            self.auth_session.0.as_str(),
            self.opened
                .as_ref()
                .map_or("", |o| o.session.auth_session.expose()),
        ]
    }
}

/// Checks the browser's credential: a JSON object of bounded size with a non-empty string
/// `id`, `type` `public-key`, and a `response` object with the members of its ceremony (when
/// known).
pub fn check_credential(
    credential: &Value,
    ceremony: Option<PasskeyCeremony>,
) -> Result<(), LoginError> {
    let Value::Object(c) = credential else {
        return Err(invalid("the passkey credential must be a JSON object"));
    };
    if credential.to_string().len() > MAX_AUTHN_RESPONSE_LEN {
        return Err(invalid(
            "the passkey credential must be at most 64 KiB of JSON",
        ));
    }
    fn string(v: Option<&Value>) -> Option<&str> {
        v.and_then(Value::as_str).filter(|s| !s.is_empty())
    }
    if string(c.get("id")).is_none_or(|id| id.len() > 1024) {
        return Err(invalid("the passkey credential needs an `id`"));
    }
    if c.get("type").and_then(Value::as_str) != Some("public-key") {
        return Err(invalid(
            "the passkey credential's `type` must be `public-key`",
        ));
    }
    let Some(Value::Object(response)) = c.get("response") else {
        return Err(invalid("the passkey credential needs a `response` object"));
    };
    let needed: &[&str] = match ceremony {
        None => &["clientDataJSON"],
        Some(PasskeyCeremony::Signup) => &["clientDataJSON", "attestationObject"],
        Some(PasskeyCeremony::Login) => &["clientDataJSON", "authenticatorData", "signature"],
    };
    match needed.iter().find(|m| string(response.get(**m)).is_none()) {
        Some(missing) => Err(LoginError::InvalidParameter(format!(
            "the passkey credential's response needs `{missing}`"
        ))),
        None => Ok(()),
    }
}
