//! Step 1 of a login: `start_interactive_login` builds the authorization URL and saves the
//! transaction the callback will be checked against.

use super::error::LoginError;
use crate::config::Config;
use crate::discovery::Metadata;
use crate::effect::{Effect, Input, Operation, Step, UnexpectedInput};
use crate::jose::b64;
use crate::metadata_step::{MetadataOutcome, MetadataStep};
use crate::params::RESERVED_PARAMS;
use crate::scope;
use crate::secret::Secret;
use crate::time::UnixTime;
use crate::token_endpoint::{ResponseError, form_post, parse_error_body};
use crate::transaction::{TransactionData, transaction_key};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

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
/// assert_eq!(options.params, [("prompt".to_owned(), "login".to_owned())]);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StartLoginOptions {
    /// Application state kept in the transaction and returned by the callback.
    pub app_state: Option<Value>,
    /// Authorization parameters for this call (`audience`, `scope`, `redirect_uri`,
    /// `prompt`, `resource`, …), in order; a name may repeat. A name set here replaces every
    /// configured value of that name.
    pub params: Vec<(String, String)>,
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
    /// Adds an authorization parameter for this call. Adding a name twice sends it twice
    /// (several `resource` values); use [`StartLoginOptions::set_param`] to replace.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }
    /// Sets an authorization parameter for this call, replacing any value added before.
    pub fn set_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.params.retain(|(k, _)| *k != name);
        self.params.push((name, value.into()));
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
pub(crate) fn login_scope(config: &Config, audience_key: &str, call: Option<&str>) -> String {
    let configured = call.or_else(|| {
        config
            .authorization_params()
            .scope
            .for_audience(audience_key)
    });
    let base = configured.unwrap_or(crate::config::DEFAULT_SCOPE);
    scope::merge_scopes(Some("openid"), Some(base)).unwrap_or_else(|| "openid".to_owned())
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
    now: UnixTime,
) -> Result<AuthorizationRequest, LoginError> {
    if let Some((reserved, _)) = options
        .params
        .iter()
        .find(|(k, _)| RESERVED_PARAMS.contains(&k.as_str()))
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
    // Configured parameters first (the typed ones, then the extra list in order), then the
    // call's: a name the call sets replaces every configured value of that name, and a name
    // given several times in one source (`resource`, RFC 8707) keeps all its values.
    let mut params: Vec<(String, String)> = Vec::new();
    if let Some(uri) = &configured.redirect_uri {
        params.push(("redirect_uri".into(), uri.clone()));
    }
    if let Some(aud) = &configured.audience {
        params.push(("audience".into(), aud.clone()));
    }
    params.extend(configured.extra.iter().cloned());
    params.retain(|(k, _)| !options.params.iter().any(|(c, _)| c == k));
    params.extend(options.params.iter().cloned());
    let first = |params: &[(String, String)], name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let set = |params: &mut Vec<(String, String)>, name: &str, value: String| {
        params.retain(|(k, _)| k != name);
        params.push((name.to_owned(), value));
    };
    let redirect_uri = first(&params, "redirect_uri").ok_or(LoginError::MissingRedirectUri)?;
    if url::Url::parse(&redirect_uri).is_err() {
        return Err(LoginError::InvalidParameter(
            "`redirect_uri` is not an absolute URL".into(),
        ));
    }
    let max_age = match first(&params, "max_age") {
        None => None,
        Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
            LoginError::InvalidParameter("`max_age` is not a whole number of seconds".into())
        })?),
    };
    let audience = first(&params, "audience");
    let audience_key = config.audience_key(audience.as_deref()).to_owned();
    let call_scope = first(&options.params, "scope");
    let scope = login_scope(config, &audience_key, call_scope.as_deref());
    set(&mut params, "scope", scope.clone());
    if let Some(org) = &options.organization {
        set(&mut params, "organization", org.clone());
    }
    if let Some(inv) = &options.invitation {
        set(&mut params, "invitation", inv.clone());
    }
    if let Some(details) = &options.authorization_details {
        set(&mut params, "authorization_details", details.to_string());
    }
    // Whatever `organization` goes on the wire (typed option, per-call or configured
    // parameter) is the one the ID token must carry.
    let organization = first(&params, "organization").filter(|org| !org.trim().is_empty());
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
            max_age,
            created_at: now.as_secs(),
            link: None,
            domain: None,
            connect: None,
        },
    })
}

/// `{endpoint}?{params}`, form-encoded.
pub fn authorization_url(
    endpoint: &str,
    params: &[(String, String)],
) -> Result<url::Url, LoginError> {
    let mut url = url::Url::parse(endpoint).map_err(|_| {
        LoginError::InvalidMetadata("the authorization endpoint is not a valid URL")
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
    /// `Random` was emitted: the bytes for verifier, state and nonce.
    Random,
    /// Fetching the tenant's metadata (for the authorization endpoint).
    Metadata {
        secrets: LoginSecrets,
        meta: MetadataStep,
    },
    /// The parameters were pushed to the PAR endpoint.
    Pushing {
        request: Box<AuthorizationRequest>,
        metadata: Arc<Metadata>,
    },
    /// The transaction is being saved; then `url` is the result.
    Saving {
        url: url::Url,
    },
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
        self.state = StartState::Saving { url };
        Step::Effect(Effect::SaveTransaction {
            key,
            transaction: Box::new(request.transaction),
        })
    }

    fn with_metadata(
        &mut self,
        secrets: LoginSecrets,
        metadata: Arc<Metadata>,
        now: UnixTime,
    ) -> Step<url::Url, LoginError> {
        let request = match authorization_params(&self.config, &self.options, &secrets, now) {
            Ok(r) => r,
            Err(e) => return self.finish(Err(e)),
        };
        if self.options.pushed_authorization_requests {
            let Some(endpoint) = metadata
                .endpoint(
                    crate::discovery::Endpoint::PushedAuthorizationRequest,
                    self.config.client_auth_method().transport(),
                )
                .map(str::to_owned)
            else {
                return self.finish(Err(LoginError::ParNotSupported));
            };
            // client_id is added by client authentication.
            let params: Vec<(&str, &str)> = request
                .params
                .iter()
                .filter(|(k, _)| k != "client_id")
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let http = form_post(&self.config, &metadata, &endpoint, &params);
            self.state = StartState::Pushing {
                request: Box::new(request),
                metadata,
            };
            return Step::Effect(Effect::Http(Box::new(http)));
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

    fn step(&mut self, input: Input, now: UnixTime) -> Step<url::Url, LoginError> {
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
                    self.state = StartState::Metadata { secrets, meta };
                    Step::Effect(effect)
                }
                None => self.finish(Err(UnexpectedInput {
                    expected: "Random (64 bytes)",
                }
                .into())),
            },
            (StartState::Metadata { secrets, mut meta }, input) => {
                match meta.handle(&self.config, input, now) {
                    MetadataOutcome::Ready(m) => self.with_metadata(secrets, m, now),
                    MetadataOutcome::Effect(e) => {
                        self.state = StartState::Metadata { secrets, meta };
                        Step::Effect(e)
                    }
                    MetadataOutcome::Failed(e) => self.finish(Err(LoginError::Discovery(e))),
                    MetadataOutcome::Unexpected(e) => self.finish(Err(e.into())),
                }
            }
            (StartState::Pushing { request, metadata }, Input::Http(response)) => {
                let status = response.status().as_u16();
                if !response.status().is_success() {
                    let secret = [self.config.client_secret().map_or("", Secret::expose)];
                    return self.finish(Err(LoginError::ParFailed(
                        parse_error_body(status, response.body()).redact(&secret),
                    )));
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
            (StartState::Saving { url }, Input::Done) => self.finish(Ok(url)),
            (state, _) => {
                let expected = match state {
                    StartState::Start => "Start",
                    StartState::Random => "Random",
                    StartState::Metadata { .. } => "metadata",
                    StartState::Pushing { .. } => "Http (PAR)",
                    StartState::Saving { .. } => "SaveTransaction",
                    StartState::Finished => "nothing (the operation has finished)",
                };
                self.finish(Err(UnexpectedInput { expected }.into()))
            }
        }
    }
}
