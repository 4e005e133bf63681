//! Interactive login: `start_interactive_login` builds the authorization URL
//! (PKCE S256, `state`, `nonce`, optional PAR and RAR, organization, invitation) and saves the
//! transaction; `complete_interactive_login` checks the callback, exchanges the code, verifies
//! the ID token and saves the session.
//!
//! Randomness (verifier, state, nonce) comes from the adapter through [`Effect::Random`]; the
//! URL is a pure function of the configuration, the call's options and those bytes
//! ([`authorization_params`]), so it is property-tested offline.

use crate::access_token::expiry;
use crate::config::Config;
use crate::discovery::{Metadata, MetadataOutcome, MetadataStep};
use crate::effect::{Effect, HttpRequest, Input, Operation, Step, UnexpectedInput};
use crate::jose::claims::{IdTokenExpectations, validate_id_token};
use crate::jose::{JoseError, b64};
use crate::scope;
use crate::secret::Secret;
use crate::session::{Internal, StateData, TokenSet};
use crate::signed_token::{VerifyFailure, VerifyOutcome, VerifySignedToken};
use crate::token_endpoint::{
    ResponseError, TokenResponse, form_post, parse_error_body, parse_token_response,
};
use crate::transaction::{TransactionData, transaction_key};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Parameters the SDK sets itself; a call may not override them.
pub const RESERVED_PARAMS: [&str; 6] = [
    "client_id",
    "response_type",
    "code_challenge",
    "code_challenge_method",
    "state",
    "nonce",
];

/// Random bytes drawn per login: 32 for the PKCE verifier, 16 for `state`, 16 for `nonce`.
pub const LOGIN_RANDOM_BYTES: usize = 64;

/// Per-call options of `start_interactive_login`.
///
/// ```
/// use auth0_server_protocol::login::StartLoginOptions;
/// let options = StartLoginOptions::new()
///     .app_state(serde_json::json!({"return_to": "/profile"}))
///     .param("prompt", "login")
///     .organization("org_123");
/// assert_eq!(options.params.get("prompt").map(String::as_str), Some("login"));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StartLoginOptions {
    /// Application state kept in the transaction and returned by the callback.
    pub app_state: Option<Value>,
    /// Authorization parameters for this call (`audience`, `scope`, `redirect_uri`,
    /// `prompt`, …). They win over the configured ones.
    pub params: BTreeMap<String, String>,
    /// The organization (`org_…` id or name) to log in to; validated in the ID token.
    pub organization: Option<String>,
    /// An organization invitation.
    pub invitation: Option<String>,
    /// Rich Authorization Request details (sent as JSON in `authorization_details`).
    pub authorization_details: Option<Value>,
    /// Push the parameters to the PAR endpoint and redirect with `request_uri` only.
    pub pushed_authorization_requests: bool,
}

impl StartLoginOptions {
    /// Options with nothing set.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the application state.
    pub fn app_state(mut self, state: Value) -> Self {
        self.app_state = Some(state);
        self
    }
    /// Sets an authorization parameter for this call.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.insert(name.into(), value.into());
        self
    }
    /// Sets the organization.
    pub fn organization(mut self, org: impl Into<String>) -> Self {
        self.organization = Some(org.into());
        self
    }
    /// Sets the invitation.
    pub fn invitation(mut self, invitation: impl Into<String>) -> Self {
        self.invitation = Some(invitation.into());
        self
    }
    /// Sets Rich Authorization Request details.
    pub fn authorization_details(mut self, details: Value) -> Self {
        self.authorization_details = Some(details);
        self
    }
    /// Uses Pushed Authorization Requests.
    pub fn pushed(mut self, yes: bool) -> Self {
        self.pushed_authorization_requests = yes;
        self
    }
}

/// The per-login secrets derived from the adapter's random bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginSecrets {
    /// PKCE code verifier (43 base64url characters).
    pub code_verifier: Secret,
    /// The `state` value.
    pub state: String,
    /// The `nonce` value.
    pub nonce: String,
}

impl LoginSecrets {
    /// Derives verifier, state and nonce from [`LOGIN_RANDOM_BYTES`] random bytes.
    pub fn from_random(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < LOGIN_RANDOM_BYTES {
            return None;
        }
        Some(LoginSecrets {
            code_verifier: Secret::new(b64::encode(&bytes[..32])),
            state: b64::encode(&bytes[32..48]),
            nonce: b64::encode(&bytes[48..64]),
        })
    }
}

/// The PKCE S256 challenge of a verifier: base64url(SHA-256(verifier)).
pub fn code_challenge(verifier: &str) -> String {
    b64::encode(&Sha256::digest(verifier.as_bytes()))
}

/// The login scope for an audience key: the call's scope, else the configured one (the map
/// entry for the audience, or the configured string), else the default; `openid` is always
/// included because the login needs an ID token.
fn login_scope(config: &Config, audience_key: &str, call: Option<&str>) -> String {
    let configured = call.or_else(|| {
        config
            .authorization_params()
            .scope
            .for_audience(audience_key)
    });
    let base = configured.unwrap_or(crate::config::DEFAULT_SCOPE);
    scope::merge_scopes(Some("openid"), Some(base)).unwrap_or_else(|| "openid".to_owned())
}

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
    #[error("the authorization server refused the login: {error}{}", .error_description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Authorization {
        /// The OAuth `error`.
        error: String,
        /// The OAuth `error_description`.
        error_description: Option<String>,
    },
    /// The callback has no `code`.
    #[error("the callback has no authorization code")]
    MissingCode,
    /// The code exchange failed.
    #[error("the authorization code exchange failed: {0}")]
    CodeExchange(ResponseError),
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
    /// The driver broke the protocol.
    #[error(transparent)]
    UnexpectedInput(#[from] UnexpectedInput),
}

impl LoginError {
    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::InvalidParameter(_) => "invalid_parameter",
            LoginError::MissingRedirectUri => "missing_redirect_uri",
            LoginError::ParNotSupported => "par_not_supported",
            LoginError::ParFailed(_) => "par_failed",
            LoginError::InvalidCallback(_) => "invalid_callback",
            LoginError::InvalidState => "invalid_state",
            LoginError::MissingTransaction => "missing_transaction",
            LoginError::Authorization { .. } => "authorization_error",
            LoginError::MissingCode => "missing_code",
            LoginError::CodeExchange(_) => "failed_to_exchange_code",
            LoginError::MissingIdToken => "missing_id_token",
            LoginError::InvalidIdToken(_) => "invalid_id_token",
            LoginError::Jwks(_) => "jwks_fetch_failed",
            LoginError::Discovery(_) => "discovery_failed",
            LoginError::UnexpectedInput(_) => "unexpected_input",
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
            VerifyFailure::Jwks(e) => LoginError::Jwks(e),
            VerifyFailure::Unexpected(e) => LoginError::UnexpectedInput(e),
        }
    }
}

/// Everything a login sends to `/authorize` (or the PAR endpoint), and the transaction to keep.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthorizationRequest {
    /// The parameters, in order.
    pub params: Vec<(String, String)>,
    /// The transaction to save under `transaction_key(state)`.
    pub transaction: TransactionData,
}

/// Builds the authorization parameters and the transaction: configured parameters, then the
/// call's (which win), then the SDK's own (`response_type`, `client_id`, PKCE, `state`,
/// `nonce`). Pure: same inputs, same output.
pub fn authorization_params(
    config: &Config,
    options: &StartLoginOptions,
    secrets: &LoginSecrets,
    now: u64,
) -> Result<AuthorizationRequest, LoginError> {
    if let Some(reserved) = options
        .params
        .keys()
        .find(|k| RESERVED_PARAMS.contains(&k.as_str()))
    {
        return Err(LoginError::InvalidParameter(format!(
            "`{reserved}` is set by the SDK"
        )));
    }
    for (field, value) in [
        ("organization", &options.organization),
        ("invitation", &options.invitation),
    ] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(LoginError::InvalidParameter(format!(
                "`{field}` must not be blank"
            )));
        }
    }
    let configured = config.authorization_params();
    let mut params: BTreeMap<String, String> = configured.extra.clone();
    if let Some(uri) = &configured.redirect_uri {
        params.insert("redirect_uri".into(), uri.clone());
    }
    if let Some(aud) = &configured.audience {
        params.insert("audience".into(), aud.clone());
    }
    for (k, v) in &options.params {
        params.insert(k.clone(), v.clone());
    }
    let redirect_uri = params
        .get("redirect_uri")
        .cloned()
        .ok_or(LoginError::MissingRedirectUri)?;
    if url::Url::parse(&redirect_uri).is_err() {
        return Err(LoginError::InvalidParameter(
            "`redirect_uri` is not an absolute URL".into(),
        ));
    }
    let audience = params.get("audience").cloned();
    let audience_key = config.audience_key(audience.as_deref()).to_owned();
    let scope = login_scope(
        config,
        &audience_key,
        options.params.get("scope").map(String::as_str),
    );
    params.insert("scope".into(), scope.clone());
    if let Some(org) = &options.organization {
        params.insert("organization".into(), org.clone());
    }
    if let Some(inv) = &options.invitation {
        params.insert("invitation".into(), inv.clone());
    }
    if let Some(details) = &options.authorization_details {
        params.insert("authorization_details".into(), details.to_string());
    }
    // Whatever `organization` goes on the wire (typed option, per-call or configured
    // parameter) is the one the ID token must carry.
    let organization = params
        .get("organization")
        .filter(|org| !org.trim().is_empty())
        .cloned();
    let mut ordered: Vec<(String, String)> = vec![
        ("response_type".into(), "code".into()),
        ("client_id".into(), config.client_id().to_owned()),
    ];
    ordered.extend(params);
    ordered.push((
        "code_challenge".into(),
        code_challenge(secrets.code_verifier.expose()),
    ));
    ordered.push(("code_challenge_method".into(), "S256".into()));
    ordered.push(("state".into(), secrets.state.clone()));
    ordered.push(("nonce".into(), secrets.nonce.clone()));
    Ok(AuthorizationRequest {
        params: ordered,
        transaction: TransactionData {
            code_verifier: Some(secrets.code_verifier.clone()),
            state: Some(secrets.state.clone()),
            nonce: Some(secrets.nonce.clone()),
            app_state: options.app_state.clone(),
            audience,
            scope: Some(scope),
            redirect_uri: Some(redirect_uri),
            organization,
            created_at: now,
        },
    })
}

/// `{endpoint}?{params}`, form-encoded.
pub fn authorization_url(
    endpoint: &str,
    params: &[(String, String)],
) -> Result<url::Url, LoginError> {
    let mut url = url::Url::parse(endpoint).map_err(|_| {
        LoginError::Discovery(ResponseError::Invalid {
            status: 200,
            reason: "the authorization endpoint is not a valid URL",
        })
    })?;
    url.query_pairs_mut().extend_pairs(params);
    Ok(url)
}

/// The `start_interactive_login` operation: returns the URL to redirect the browser to.
#[derive(Debug)]
pub struct StartInteractiveLogin {
    config: Arc<Config>,
    options: StartLoginOptions,
    state: StartState,
}

#[derive(Debug)]
enum StartState {
    Start,
    Random,
    Metadata(LoginSecrets, MetadataStep),
    Pushing(Box<AuthorizationRequest>, Arc<Metadata>),
    Saving(url::Url),
    Finished,
}

impl StartInteractiveLogin {
    pub(crate) fn new(config: Arc<Config>, options: StartLoginOptions) -> Self {
        StartInteractiveLogin {
            config,
            options,
            state: StartState::Start,
        }
    }

    fn finish(&mut self, r: Result<url::Url, LoginError>) -> Step<url::Url, LoginError> {
        self.state = StartState::Finished;
        Step::Done(r)
    }

    fn save(&mut self, request: AuthorizationRequest, url: url::Url) -> Step<url::Url, LoginError> {
        let key = transaction_key(request.transaction.state.as_deref().unwrap_or_default());
        self.state = StartState::Saving(url);
        Step::Effect(Effect::SaveTransaction {
            key,
            transaction: Box::new(request.transaction),
        })
    }

    fn with_metadata(
        &mut self,
        secrets: LoginSecrets,
        metadata: Arc<Metadata>,
        now: u64,
    ) -> Step<url::Url, LoginError> {
        let request = match authorization_params(&self.config, &self.options, &secrets, now) {
            Ok(r) => r,
            Err(e) => return self.finish(Err(e)),
        };
        if self.options.pushed_authorization_requests {
            let Some(endpoint) = metadata.pushed_authorization_request_endpoint.clone() else {
                return self.finish(Err(LoginError::ParNotSupported));
            };
            // client_id is added by client authentication.
            let params: Vec<(&str, &str)> = request
                .params
                .iter()
                .filter(|(k, _)| k != "client_id")
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let http = form_post(&self.config, &endpoint, &params);
            self.state = StartState::Pushing(Box::new(request), metadata);
            return Step::Effect(Effect::Http(Box::new(HttpRequest {
                request: http,
                coalesce: None,
            })));
        }
        match authorization_url(&metadata.authorization_endpoint, &request.params) {
            Ok(url) => self.save(request, url),
            Err(e) => self.finish(Err(e)),
        }
    }
}

#[derive(Deserialize)]
struct ParResponse {
    request_uri: String,
}

impl Operation for StartInteractiveLogin {
    type Output = url::Url;
    type Error = LoginError;

    fn step(&mut self, input: Input, now: u64) -> Step<url::Url, LoginError> {
        match (
            std::mem::replace(&mut self.state, StartState::Finished),
            input,
        ) {
            (StartState::Start, Input::Start) => {
                self.state = StartState::Random;
                Step::Effect(Effect::Random {
                    len: LOGIN_RANDOM_BYTES,
                })
            }
            (StartState::Random, Input::Random(bytes)) => match LoginSecrets::from_random(&bytes) {
                Some(secrets) => {
                    let (meta, effect) = MetadataStep::start();
                    self.state = StartState::Metadata(secrets, meta);
                    Step::Effect(effect)
                }
                None => self.finish(Err(UnexpectedInput {
                    expected: "Random (64 bytes)",
                }
                .into())),
            },
            (StartState::Metadata(secrets, mut meta), input) => {
                match meta.handle(&self.config, input, now) {
                    MetadataOutcome::Ready(m) => self.with_metadata(secrets, m, now),
                    MetadataOutcome::Effect(e) => {
                        self.state = StartState::Metadata(secrets, meta);
                        Step::Effect(e)
                    }
                    MetadataOutcome::Failed(e) => self.finish(Err(LoginError::Discovery(e))),
                    MetadataOutcome::Unexpected(e) => self.finish(Err(e.into())),
                }
            }
            (StartState::Pushing(request, metadata), Input::Http(response)) => {
                let status = response.status().as_u16();
                if !response.status().is_success() {
                    return self.finish(Err(LoginError::ParFailed(parse_error_body(
                        status,
                        response.body(),
                    ))));
                }
                let par: ParResponse = match serde_json::from_slice(response.body()) {
                    Ok(p) => p,
                    Err(_) => {
                        return self.finish(Err(LoginError::ParFailed(ResponseError::Invalid {
                            status,
                            reason: "the PAR response has no request_uri",
                        })));
                    }
                };
                let params = [
                    ("client_id".to_owned(), self.config.client_id().to_owned()),
                    ("request_uri".to_owned(), par.request_uri),
                ];
                match authorization_url(&metadata.authorization_endpoint, &params) {
                    Ok(url) => self.save(*request, url),
                    Err(e) => self.finish(Err(e)),
                }
            }
            (StartState::Saving(url), Input::Done) => self.finish(Ok(url)),
            (state, _) => {
                let expected = match state {
                    StartState::Start => "Start",
                    StartState::Random => "Random",
                    StartState::Metadata(..) => "metadata",
                    StartState::Pushing(..) => "Http (PAR)",
                    StartState::Saving(_) => "SaveTransaction",
                    StartState::Finished => "nothing (the operation has finished)",
                };
                self.finish(Err(UnexpectedInput { expected }.into()))
            }
        }
    }
}

/// What a completed login returns to the application.
#[derive(Clone, Debug, PartialEq)]
pub struct LoginResult {
    /// The `app_state` given to `start_interactive_login`.
    pub app_state: Option<Value>,
    /// Rich Authorization Request details granted, when any.
    pub authorization_details: Option<Value>,
}

/// The query parameters of a callback that matter.
///
/// `Debug` does not show the authorization code (a credential).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Callback {
    /// `state`.
    pub state: Option<String>,
    /// `code`.
    pub code: Option<String>,
    /// `error`.
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("state", &self.state)
            .field("code", &self.code.as_ref().map(|_| "<redacted>"))
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .finish()
    }
}

/// Longest callback URL accepted.
pub const MAX_CALLBACK_URL: usize = 16 * 1024;

/// Reads a callback URL: absolute (`https://app/callback?code=…`) or just the path and query
/// (`/callback?code=…`). A parameter given twice is refused (parameter pollution).
pub fn parse_callback(callback_url: &str) -> Result<Callback, LoginError> {
    if callback_url.len() > MAX_CALLBACK_URL {
        return Err(LoginError::InvalidCallback("too long"));
    }
    let url = match url::Url::parse(callback_url) {
        Ok(u) => u,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let base = url::Url::parse("http://callback.invalid/")
                .map_err(|_| LoginError::InvalidCallback("unparsable"))?;
            base.join(callback_url)
                .map_err(|_| LoginError::InvalidCallback("not a URL"))?
        }
        Err(_) => return Err(LoginError::InvalidCallback("not a URL")),
    };
    let mut cb = Callback::default();
    for (k, v) in url.query_pairs() {
        let slot = match k.as_ref() {
            "state" => &mut cb.state,
            "code" => &mut cb.code,
            "error" => &mut cb.error,
            "error_description" => &mut cb.error_description,
            _ => continue,
        };
        if slot.is_some() {
            return Err(LoginError::InvalidCallback("a parameter is repeated"));
        }
        *slot = Some(v.into_owned());
    }
    Ok(cb)
}

/// Builds the session of a freshly logged-in user from a verified token response.
pub fn session_from_login(
    config: &Config,
    transaction: &TransactionData,
    response: &TokenResponse,
    claims: serde_json::Map<String, Value>,
    now: u64,
) -> StateData {
    let audience_key = config
        .audience_key(transaction.audience.as_deref())
        .to_owned();
    let sid = claims
        .get("sid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    StateData {
        user: Some(claims),
        id_token: response.id_token.clone(),
        refresh_token: response.refresh_token.clone(),
        token_sets: vec![TokenSet {
            audience: audience_key,
            access_token: response.access_token.clone(),
            scope: response.scope.clone().or_else(|| transaction.scope.clone()),
            expires_at: expiry(response, now),
        }],
        connection_token_sets: Vec::new(),
        internal: Internal {
            sid,
            created_at: now,
            last_active_at: Some(now),
        },
    }
}

/// The `complete_interactive_login` operation. The previous session, if any, is deleted before
/// the new one is saved, so stores that key sessions by an id issue a fresh id (no session
/// fixation).
#[derive(Debug)]
pub struct CompleteInteractiveLogin {
    config: Arc<Config>,
    callback: Result<Callback, LoginError>,
    state: CompleteState,
}

#[derive(Debug)]
enum CompleteState {
    Start,
    LoadingTransaction(String),
    DeletingFailed(LoginError),
    Metadata(String, Box<TransactionData>, Secret, MetadataStep),
    Exchanging(String, Box<TransactionData>, Arc<Metadata>),
    Verifying(
        String,
        Box<TransactionData>,
        Box<TokenResponse>,
        VerifySignedToken,
    ),
    /// The previous session is being deleted, so a store that keys sessions by an id issues
    /// a new id for the new session (no session fixation).
    Replacing(String, Box<LoginResult>, Box<StateData>),
    Saving(String, Box<LoginResult>),
    Deleting(Box<LoginResult>),
    Finished,
}

impl CompleteInteractiveLogin {
    pub(crate) fn new(config: Arc<Config>, callback_url: &str) -> Self {
        CompleteInteractiveLogin {
            config,
            callback: parse_callback(callback_url),
            state: CompleteState::Start,
        }
    }

    fn finish(&mut self, r: Result<LoginResult, LoginError>) -> Step<LoginResult, LoginError> {
        self.state = CompleteState::Finished;
        Step::Done(r)
    }

    /// Fails the login and deletes its transaction (a failed callback cannot be retried).
    fn fail_and_forget(&mut self, key: String, error: LoginError) -> Step<LoginResult, LoginError> {
        self.state = CompleteState::DeletingFailed(error);
        Step::Effect(Effect::DeleteTransaction { key })
    }
}

impl Operation for CompleteInteractiveLogin {
    type Output = LoginResult;
    type Error = LoginError;

    fn step(&mut self, input: Input, now: u64) -> Step<LoginResult, LoginError> {
        match (
            std::mem::replace(&mut self.state, CompleteState::Finished),
            input,
        ) {
            (CompleteState::Start, Input::Start) => {
                let callback = match &self.callback {
                    Ok(cb) => cb,
                    Err(e) => return self.finish(Err(e.clone())),
                };
                let Some(state) = callback
                    .state
                    .as_deref()
                    .filter(|s| !s.is_empty() && s.len() <= 256)
                else {
                    return self.finish(Err(LoginError::InvalidState));
                };
                let key = transaction_key(state);
                self.state = CompleteState::LoadingTransaction(key.clone());
                Step::Effect(Effect::LoadTransaction { key })
            }
            (CompleteState::LoadingTransaction(key), Input::Transaction(tx)) => {
                let Some(tx) = tx else {
                    return self.finish(Err(LoginError::MissingTransaction));
                };
                let Ok(callback) = self.callback.clone() else {
                    return self.finish(Err(LoginError::InvalidState));
                };
                let expected = tx.state.as_deref().unwrap_or_default().as_bytes();
                let got = callback.state.as_deref().unwrap_or_default().as_bytes();
                if expected.is_empty() || !bool::from(expected.ct_eq(got)) {
                    return self.fail_and_forget(key, LoginError::InvalidState);
                }
                if let Some(error) = callback.error {
                    let err = LoginError::Authorization {
                        error,
                        error_description: callback.error_description,
                    };
                    return self.fail_and_forget(key, err);
                }
                let Some(code) = callback.code.filter(|c| !c.is_empty()).map(Secret::new) else {
                    return self.fail_and_forget(key, LoginError::MissingCode);
                };
                let (meta, effect) = MetadataStep::start();
                self.state = CompleteState::Metadata(key, Box::new(tx), code, meta);
                Step::Effect(effect)
            }
            (CompleteState::Metadata(key, tx, code, mut meta), input) => {
                match meta.handle(&self.config, input, now) {
                    MetadataOutcome::Ready(m) => {
                        let verifier = tx
                            .code_verifier
                            .as_ref()
                            .map(Secret::expose)
                            .unwrap_or_default();
                        let redirect_uri = tx.redirect_uri.as_deref().unwrap_or_default();
                        let params = [
                            ("grant_type", "authorization_code"),
                            ("code", code.expose()),
                            ("redirect_uri", redirect_uri),
                            ("code_verifier", verifier),
                        ];
                        let request = form_post(&self.config, &m.token_endpoint, &params);
                        self.state = CompleteState::Exchanging(key, tx, m);
                        Step::Effect(Effect::Http(Box::new(HttpRequest {
                            request,
                            coalesce: None,
                        })))
                    }
                    MetadataOutcome::Effect(e) => {
                        self.state = CompleteState::Metadata(key, tx, code, meta);
                        Step::Effect(e)
                    }
                    MetadataOutcome::Failed(e) => self.finish(Err(LoginError::Discovery(e))),
                    MetadataOutcome::Unexpected(e) => self.finish(Err(e.into())),
                }
            }
            (CompleteState::Exchanging(key, tx, metadata), Input::Http(response)) => {
                let parsed = match parse_token_response(&response) {
                    Ok(p) => p,
                    // The code is single-use: this transaction cannot succeed any more.
                    Err(e) => return self.fail_and_forget(key, LoginError::CodeExchange(e)),
                };
                let Some(id_token) = parsed.id_token.clone() else {
                    return self.fail_and_forget(key, LoginError::MissingIdToken);
                };
                match VerifySignedToken::start_with_metadata(id_token.expose(), metadata) {
                    Ok((verify, effect)) => {
                        self.state = CompleteState::Verifying(key, tx, Box::new(parsed), verify);
                        Step::Effect(effect)
                    }
                    Err(e) => self.fail_and_forget(key, LoginError::InvalidIdToken(e)),
                }
            }
            (CompleteState::Verifying(key, tx, response, mut verify), input) => {
                match verify.handle(&self.config, input, now) {
                    VerifyOutcome::Verified(claims) => {
                        let expectations = IdTokenExpectations {
                            issuer: self.config.issuer(),
                            client_id: self.config.client_id(),
                            nonce: tx.nonce.as_deref(),
                            organization: tx.organization.as_deref(),
                            now,
                            clock_tolerance: self.config.clock_tolerance(),
                        };
                        if let Err(e) = validate_id_token(&claims, &expectations) {
                            return self.fail_and_forget(key, LoginError::InvalidIdToken(e));
                        }
                        let session = session_from_login(&self.config, &tx, &response, claims, now);
                        let result = LoginResult {
                            app_state: tx.app_state.clone(),
                            authorization_details: response.authorization_details.clone(),
                        };
                        self.state =
                            CompleteState::Replacing(key, Box::new(result), Box::new(session));
                        Step::Effect(Effect::DeleteSession)
                    }
                    VerifyOutcome::Effect(e) => {
                        self.state = CompleteState::Verifying(key, tx, response, verify);
                        Step::Effect(e)
                    }
                    VerifyOutcome::Failed(VerifyFailure::Token(e)) => {
                        self.fail_and_forget(key, LoginError::InvalidIdToken(e))
                    }
                    VerifyOutcome::Failed(f) => self.finish(Err(f.into())),
                }
            }
            (CompleteState::Replacing(key, result, session), Input::Done) => {
                self.state = CompleteState::Saving(key, result);
                Step::Effect(Effect::SaveSession(session))
            }
            (CompleteState::Saving(key, result), Input::Done) => {
                self.state = CompleteState::Deleting(result);
                Step::Effect(Effect::DeleteTransaction { key })
            }
            (CompleteState::Deleting(result), Input::Done) => self.finish(Ok(*result)),
            (CompleteState::DeletingFailed(error), Input::Done) => self.finish(Err(error)),
            (state, _) => {
                let expected = match state {
                    CompleteState::Start => "Start",
                    CompleteState::LoadingTransaction(_) => "LoadTransaction",
                    CompleteState::DeletingFailed(_) | CompleteState::Deleting(_) => {
                        "DeleteTransaction"
                    }
                    CompleteState::Metadata(..) => "metadata",
                    CompleteState::Exchanging(..) => "Http (code exchange)",
                    CompleteState::Verifying(..) => "ID token verification",
                    CompleteState::Replacing(..) => "DeleteSession",
                    CompleteState::Saving(..) => "SaveSession",
                    CompleteState::Finished => "nothing (the operation has finished)",
                };
                self.finish(Err(UnexpectedInput { expected }.into()))
            }
        }
    }
}
