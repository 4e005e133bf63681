//! Passwordless login (Auth0's email and SMS connections): Auth0 sends the user a one-time
//! code (email or SMS) or a magic link (email), and the application logs them in with it.
//!
//! * [`StartPasswordless`] posts to `/passwordless/start` (JSON, with the client's
//!   credentials: its secret, or a `private_key_jwt` assertion). For a magic link it also
//!   saves a login transaction (`state`, `nonce`), so the link's callback is completed by
//!   [`complete_interactive_login`](crate::Core::complete_interactive_login) like any login.
//! * [`LoginWithPasswordless`](super::LoginWithPasswordless) exchanges the code at the token endpoint (the
//!   `passwordless/otp` grant), verifies the ID token as an interactive login does, and
//!   replaces the session.
//!
//! Inputs are checked before anything is sent: an email address with one `@` and no
//! whitespace, a phone number in E.164 form, a code of at most 64 characters without
//! whitespace, a language tag of letters, digits and `-`.

use super::error::LoginError;
use super::start::{LOGIN_RANDOM_BYTES, LoginSecrets, login_scope};
use crate::client_assertion::{ASSERTION_RANDOM_LEN, ASSERTION_TYPE};
use crate::config::{ClientAuthMethod, Config};
use crate::discovery::Metadata;
use crate::effect::{Effect, HttpRequest, Input, Operation, Step, UnexpectedInput};
use crate::metadata_step::{MetadataOutcome, MetadataStep};
use crate::secret::Secret;
use crate::time::UnixTime;
use crate::token_response::parse_error_body;
use crate::transaction::{TransactionData, transaction_key};
use serde_json::{Map, Value};
use std::sync::Arc;

/// The grant type of a passwordless one-time code at the token endpoint.
pub const OTP_GRANT_TYPE: &str = "http://auth0.com/oauth/grant-type/passwordless/otp";

/// Longest one-time code accepted, in bytes.
const MAX_CODE_LEN: usize = 64;

/// Which passwordless connection: Auth0's built-in `email` or `sms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordlessConnection {
    /// A code or a magic link by email.
    Email,
    /// A code by SMS.
    Sms,
}

impl PasswordlessConnection {
    /// The connection's name (and the grant's `realm`).
    pub fn as_str(self) -> &'static str {
        match self {
            PasswordlessConnection::Email => "email",
            PasswordlessConnection::Sms => "sms",
        }
    }

    /// The body member that names the recipient.
    fn recipient_member(self) -> &'static str {
        match self {
            PasswordlessConnection::Email => "email",
            PasswordlessConnection::Sms => "phone_number",
        }
    }

    /// Checks an email address (one `@`, something on each side, no whitespace or control
    /// characters) or an E.164 phone number (`+`, then 7 to 15 digits, the first not 0).
    fn check_recipient(self, recipient: &str) -> Result<(), LoginError> {
        let ok = match self {
            PasswordlessConnection::Email => crate::params::is_email_address(recipient),
            PasswordlessConnection::Sms => crate::params::is_e164(recipient),
        };
        if ok {
            Ok(())
        } else {
            Err(LoginError::InvalidParameter(match self {
                PasswordlessConnection::Email => "the email address is not valid".into(),
                PasswordlessConnection::Sms => {
                    "the phone number must be in E.164 form (+ and 7 to 15 digits)".into()
                }
            }))
        }
    }
}

/// What Auth0 sends the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordlessSend {
    /// A one-time code, then [`LoginWithPasswordless`](super::LoginWithPasswordless).
    Code,
    /// A magic link (email only) to the application's callback.
    Link,
}

/// Parameters a magic link sets itself: never taken from [`PasswordlessStart::auth_param`].
const LINK_OWN_PARAMS: [&str; 6] = [
    "response_type",
    "redirect_uri",
    "state",
    "nonce",
    "client_id",
    "scope",
];

/// What to send, to whom.
///
/// ```
/// use auth0_server_protocol::login::PasswordlessStart;
/// assert!(PasswordlessStart::email("user@example.com").check().is_ok());
/// assert!(PasswordlessStart::sms("+14155550100").check().is_ok());
/// assert!(PasswordlessStart::sms("4155550100").check().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct PasswordlessStart {
    /// Email or SMS.
    pub connection: PasswordlessConnection,
    /// The email address or E.164 phone number.
    pub recipient: String,
    /// A code (default) or a magic link.
    pub send: PasswordlessSend,
    /// The language of the message (`x-request-language`), e.g. `fr` or `pt-BR`.
    pub language: Option<String>,
    /// For a magic link: the scope of the login it completes (the configured default when
    /// `None`).
    pub scope: Option<String>,
    /// For a magic link: further authorization parameters, in order.
    pub auth_params: Vec<(String, String)>,
    /// For a magic link: application state returned by its callback.
    pub app_state: Option<Value>,
}

impl PasswordlessStart {
    /// A one-time code by email.
    pub fn email(address: impl Into<String>) -> Self {
        Self::new(PasswordlessConnection::Email, address.into())
    }
    /// A one-time code by SMS, to an E.164 phone number.
    pub fn sms(phone_number: impl Into<String>) -> Self {
        Self::new(PasswordlessConnection::Sms, phone_number.into())
    }
    fn new(connection: PasswordlessConnection, recipient: String) -> Self {
        PasswordlessStart {
            connection,
            recipient,
            send: PasswordlessSend::Code,
            language: None,
            scope: None,
            auth_params: Vec::new(),
            app_state: None,
        }
    }
    /// Sends a magic link instead of a code (email only).
    pub fn magic_link(mut self) -> Self {
        self.send = PasswordlessSend::Link;
        self
    }
    /// Sets the message's language.
    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }
    /// Sets the magic link's scope.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
    /// Adds an authorization parameter to the magic link (e.g. `audience`).
    pub fn auth_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.auth_params.push((name.into(), value.into()));
        self
    }
    /// Sets the application state the magic link's callback returns.
    pub fn app_state(mut self, state: Value) -> Self {
        self.app_state = Some(state);
        self
    }

    /// Checks the request before anything is sent.
    pub fn check(&self) -> Result<(), LoginError> {
        self.connection.check_recipient(&self.recipient)?;
        let bad_language = |language: &str| {
            language.is_empty()
                || language.len() > 35
                || !language
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if self.language.as_deref().is_some_and(bad_language) {
            return Err(LoginError::InvalidParameter(
                "the language must be a language tag such as `fr` or `pt-BR`".into(),
            ));
        }
        if self.send == PasswordlessSend::Link && self.connection != PasswordlessConnection::Email {
            return Err(LoginError::InvalidParameter(
                "a magic link can only be sent by email".into(),
            ));
        }
        if let Some((name, _)) = self
            .auth_params
            .iter()
            .find(|(k, _)| LINK_OWN_PARAMS.contains(&k.as_str()))
        {
            return Err(LoginError::InvalidParameter(format!(
                "`{}` is set by the SDK",
                crate::display::SafeText(name)
            )));
        }
        if self.send == PasswordlessSend::Code
            && (!self.auth_params.is_empty() || self.scope.is_some() || self.app_state.is_some())
        {
            return Err(LoginError::InvalidParameter(
                "authorization parameters, scope and app_state apply to a magic link only".into(),
            ));
        }
        Ok(())
    }
}

/// A one-time code the user received, to log them in with.
///
/// ```
/// use auth0_server_protocol::login::PasswordlessOtp;
/// let otp = PasswordlessOtp::email("user@example.com", "123456");
/// assert!(otp.check().is_ok());
/// assert!(PasswordlessOtp::email("user@example.com", "12 34").check().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordlessOtp {
    /// Email or SMS.
    pub connection: PasswordlessConnection,
    /// The email address or E.164 phone number the code was sent to.
    pub recipient: String,
    /// The code.
    pub code: Secret,
    /// The scope asked for (the configured default, with `openid`, when `None`).
    pub scope: Option<String>,
    /// The API the access token is for; the configured audience when `None`.
    pub audience: Option<String>,
}

impl PasswordlessOtp {
    /// A code sent by email.
    pub fn email(address: impl Into<String>, code: impl Into<String>) -> Self {
        Self::new(PasswordlessConnection::Email, address.into(), code.into())
    }
    /// A code sent by SMS.
    pub fn sms(phone_number: impl Into<String>, code: impl Into<String>) -> Self {
        Self::new(
            PasswordlessConnection::Sms,
            phone_number.into(),
            code.into(),
        )
    }
    fn new(connection: PasswordlessConnection, recipient: String, code: String) -> Self {
        PasswordlessOtp {
            connection,
            recipient,
            code: Secret::new(code),
            scope: None,
            audience: None,
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

    /// Checks the request before anything is sent; the error never shows the code.
    pub fn check(&self) -> Result<(), LoginError> {
        self.connection.check_recipient(&self.recipient)?;
        let code = self.code.expose();
        if code.is_empty()
            || code.len() > MAX_CODE_LEN
            || code.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(LoginError::InvalidParameter(
                "the one-time code must be 1 to 64 characters without whitespace".into(),
            ));
        }
        if self
            .audience
            .as_deref()
            .is_some_and(|a| a.trim().is_empty())
        {
            return Err(LoginError::InvalidParameter(
                "audience must not be blank when given".into(),
            ));
        }
        Ok(())
    }

    /// The token request's form parameters, in order.
    pub(crate) fn params<'a>(
        &'a self,
        config: &'a Config,
        scope: Option<&'a str>,
    ) -> Vec<(&'a str, &'a str)> {
        let mut params = vec![
            ("grant_type", OTP_GRANT_TYPE),
            ("realm", self.connection.as_str()),
            ("username", self.recipient.as_str()),
            ("otp", self.code.expose()),
        ];
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
        params
    }
}

/// The `/passwordless/start` endpoint of the tenant: on the issuer's host (the custom domain
/// when the tenant is reached through one).
pub fn start_endpoint(metadata: &Metadata) -> String {
    format!(
        "{}/passwordless/start",
        metadata.issuer.trim_end_matches('/')
    )
}

/// The magic link's login: its authorization parameters and the transaction its callback
/// completes.
struct MagicLink {
    auth_params: Map<String, Value>,
    transaction: TransactionData,
}

fn magic_link(
    config: &Config,
    start: &PasswordlessStart,
    secrets: &LoginSecrets,
    now: UnixTime,
) -> Result<MagicLink, LoginError> {
    let configured = config.authorization_params();
    let redirect_uri = configured
        .redirect_uri
        .clone()
        .ok_or(LoginError::MissingRedirectUri)?;
    let audience = start
        .auth_params
        .iter()
        .find(|(k, _)| k == "audience")
        .map(|(_, v)| v.clone())
        .or_else(|| configured.audience.clone());
    let scope = login_scope(
        config,
        config.audience_key(audience.as_deref()),
        start.scope.as_deref(),
    );
    let mut auth_params = Map::new();
    for (k, v) in configured
        .audience
        .iter()
        .map(|a| ("audience".to_owned(), a.clone()))
        .chain(start.auth_params.iter().cloned())
    {
        auth_params.insert(k, Value::String(v));
    }
    auth_params.insert("response_type".into(), "code".into());
    auth_params.insert("redirect_uri".into(), redirect_uri.clone().into());
    auth_params.insert("scope".into(), scope.clone().into());
    auth_params.insert("state".into(), secrets.state.clone().into());
    auth_params.insert("nonce".into(), secrets.nonce.clone().into());
    Ok(MagicLink {
        auth_params,
        transaction: TransactionData {
            // The link's code is exchanged without PKCE: Auth0 starts that login itself.
            code_verifier: None,
            state: Some(secrets.state.clone()),
            nonce: Some(secrets.nonce.clone()),
            app_state: start.app_state.clone(),
            audience,
            scope: Some(scope),
            redirect_uri: Some(redirect_uri),
            organization: None,
            max_age: None,
            created_at: now.as_secs(),
            link: None,
            domain: None,
            connect: None,
        },
    })
}

/// The JSON request to `/passwordless/start`, authenticated as the client: its secret in the
/// body, or a `private_key_jwt` assertion for the issuer signed now with `random`; with mutual
/// TLS only the client id (the certificate authenticates).
fn start_request(
    config: &Config,
    metadata: &Metadata,
    start: &PasswordlessStart,
    auth_params: Option<Map<String, Value>>,
    now: UnixTime,
    random: &[u8],
) -> Result<HttpRequest, LoginError> {
    let mut body = Map::new();
    body.insert("client_id".into(), config.client_id().into());
    match config.client_auth_method() {
        ClientAuthMethod::PrivateKeyJwt => {
            let key = config.assertion_key().ok_or_else(|| {
                LoginError::InvalidParameter("no private key is configured".into())
            })?;
            let assertion = crate::client_assertion::assertion(
                key,
                config.client_id(),
                &metadata.issuer,
                now,
                random,
            )
            .map_err(|_| LoginError::InvalidParameter("the client assertion failed".into()))?;
            body.insert("client_assertion_type".into(), ASSERTION_TYPE.into());
            body.insert("client_assertion".into(), assertion.into());
        }
        ClientAuthMethod::TlsClientAuth | ClientAuthMethod::SelfSignedTlsClientAuth => {}
        _ => {
            if let Some(secret) = config.client_secret() {
                body.insert("client_secret".into(), secret.expose().into());
            }
        }
    }
    body.insert("connection".into(), start.connection.as_str().into());
    body.insert(
        start.connection.recipient_member().into(),
        start.recipient.clone().into(),
    );
    body.insert(
        "send".into(),
        match start.send {
            PasswordlessSend::Code => "code",
            PasswordlessSend::Link => "link",
        }
        .into(),
    );
    if let Some(auth_params) = auth_params {
        body.insert("authParams".into(), Value::Object(auth_params));
    }
    let mut builder = http::Request::post(start_endpoint(metadata))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json");
    if let Some(language) = &start.language {
        builder = builder.header("x-request-language", language.as_str());
    }
    let request = builder
        .body(Value::Object(body).to_string().into_bytes())
        .map_err(|_| LoginError::InvalidMetadata("the issuer is not a usable URL"))?;
    Ok(HttpRequest {
        request,
        coalesce: None,
        at_send: Vec::new(),
    })
}

#[derive(Debug)]
enum StartState {
    Start,
    Random,
    Metadata {
        random: Vec<u8>,
        meta: MetadataStep,
    },
    Sending {
        transaction: Option<Box<TransactionData>>,
    },
    Saving,
    Finished,
}

/// The `start_passwordless` operation: Auth0 sends the code or the magic link.
#[derive(Debug)]
pub struct StartPasswordless {
    config: Arc<Config>,
    start: PasswordlessStart,
    state: StartState,
}

impl StartPasswordless {
    pub(crate) fn new(config: Arc<Config>, start: PasswordlessStart) -> Self {
        StartPasswordless {
            config,
            start,
            state: StartState::Start,
        }
    }

    fn finish(&mut self, r: Result<(), LoginError>) -> Step<(), LoginError> {
        self.state = StartState::Finished;
        Step::Done(r)
    }

    fn send(&mut self, random: &[u8], metadata: &Metadata, now: UnixTime) -> Step<(), LoginError> {
        let (auth_params, transaction) = match self.start.send {
            PasswordlessSend::Code => (None, None),
            PasswordlessSend::Link => {
                let Some(secrets) = LoginSecrets::from_random(random) else {
                    return self.finish(Err(UnexpectedInput {
                        expected: "Random (login secrets)",
                    }
                    .into()));
                };
                match magic_link(&self.config, &self.start, &secrets, now) {
                    Ok(link) => (Some(link.auth_params), Some(Box::new(link.transaction))),
                    Err(e) => return self.finish(Err(e)),
                }
            }
        };
        let assertion_random = random.get(LOGIN_RANDOM_BYTES..).unwrap_or_default();
        match start_request(
            &self.config,
            metadata,
            &self.start,
            auth_params,
            now,
            assertion_random,
        ) {
            Ok(request) => {
                self.state = StartState::Sending { transaction };
                Step::Effect(Effect::Http(Box::new(request)))
            }
            Err(e) => self.finish(Err(e)),
        }
    }
}

impl Operation for StartPasswordless {
    type Output = ();
    type Error = LoginError;

    fn step(&mut self, input: Input, now: UnixTime) -> Step<(), LoginError> {
        match (
            std::mem::replace(&mut self.state, StartState::Finished),
            input,
        ) {
            (StartState::Start, Input::Start) => {
                if let Err(e) = self.start.check() {
                    return self.finish(Err(e));
                }
                self.state = StartState::Random;
                Step::Effect(Effect::Random {
                    len: LOGIN_RANDOM_BYTES + ASSERTION_RANDOM_LEN,
                })
            }
            (StartState::Random, Input::Random(random)) => {
                let (meta, effect) = MetadataStep::start();
                self.state = StartState::Metadata { random, meta };
                Step::Effect(effect)
            }
            (StartState::Metadata { random, mut meta }, input) => {
                match meta.handle(&self.config, input, now) {
                    MetadataOutcome::Ready(m) => self.send(&random, &m, now),
                    MetadataOutcome::Effect(e) => {
                        self.state = StartState::Metadata { random, meta };
                        Step::Effect(e)
                    }
                    MetadataOutcome::Failed(e) => self.finish(Err(LoginError::Discovery(e))),
                    MetadataOutcome::Unexpected(e) => self.finish(Err(e.into())),
                }
            }
            (StartState::Sending { transaction }, Input::Http(response)) => {
                if !response.status().is_success() {
                    let sent = [
                        self.config.client_secret().map_or("", Secret::expose),
                        self.start.recipient.as_str(),
                    ];
                    let e = parse_error_body(response.status().as_u16(), response.body());
                    return self.finish(Err(LoginError::Passwordless(e.redact(&sent))));
                }
                match transaction {
                    None => self.finish(Ok(())),
                    Some(transaction) => {
                        let key = transaction_key(transaction.state.as_deref().unwrap_or_default());
                        self.state = StartState::Saving;
                        Step::Effect(Effect::SaveTransaction { key, transaction })
                    }
                }
            }
            (StartState::Saving, Input::Done) => self.finish(Ok(())),
            (state, _) => {
                let expected = match state {
                    StartState::Start => "Start",
                    StartState::Random => "Random",
                    StartState::Metadata { .. } => "metadata",
                    StartState::Sending { .. } => "Http (passwordless start)",
                    StartState::Saving => "SaveTransaction",
                    StartState::Finished => "nothing (the operation has finished)",
                };
                self.finish(Err(UnexpectedInput { expected }.into()))
            }
        }
    }
}
