//! Custom Token Exchange (RFC 8693, Auth0's profile): trade a token the application already
//! trusts (a legacy system's token, a partner's assertion) for Auth0 tokens.
//!
//! Two operations share one state machine:
//!
//! * [`CustomTokenExchange`](super::CustomTokenExchange) ([`Core::custom_token_exchange`](crate::Core::custom_token_exchange))
//!   returns the tokens and touches no session;
//! * [`LoginWithTokenExchange`](super::LoginWithTokenExchange)
//!   ([`Core::login_with_token_exchange`](crate::Core::login_with_token_exchange)) asks for
//!   `openid`, verifies the ID token exactly as an interactive login does (signature, `iss`,
//!   `aud`, `azp`, expiry, organization, the IPSIE ceiling), and replaces the session with one
//!   built from the answer.
//!
//! The request is checked before anything is sent ([`TokenExchangeRequest::check`]): the
//! subject and actor tokens must be bare tokens (no `Bearer ` prefix, no surrounding
//! whitespace), the token types absolute URIs outside the namespaces Auth0 reserves, an actor
//! token comes with its type, and extra parameters may not override what the SDK sets.

use super::error::LoginError;
use crate::config::Config;
use crate::secret::Secret;
use crate::time::UnixTime;
use crate::token_endpoint::TokenResponse;
use serde_json::{Map, Value};

/// The grant type of a token exchange (RFC 8693 §2.1).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Longest subject or actor token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Most extra parameters one exchange may carry.
pub const MAX_EXTRA_PARAMS: usize = 20;

/// Token-type namespaces Auth0 reserves: a Custom Token Exchange profile's
/// `subject_token_type` may not use them.
const RESERVED_TYPE_PREFIXES: [&str; 7] = [
    "urn:ietf:",
    "urn:auth0:",
    "urn:okta:",
    "http://auth0.com",
    "https://auth0.com",
    "http://okta.com",
    "https://okta.com",
];

/// Parameters the SDK sets itself, or that have a field of their own: never accepted as extra
/// parameters.
const RESERVED_PARAMS: [&str; 17] = [
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
    "audience",
    "resource",
    "scope",
    "organization",
    "connection",
    "login_hint",
    "redirect_uri",
];

/// An actor token (RFC 8693 §2.1 `actor_token`): who acts on behalf of the subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActorToken {
    /// The token.
    pub token: Secret,
    /// Its type URI (`actor_token_type`).
    pub token_type: String,
}

/// What to exchange, and for what.
///
/// ```
/// use auth0_server_protocol::login::TokenExchangeRequest;
/// let request = TokenExchangeRequest::new("legacy-token-value", "urn:acme:legacy-token")
///     .audience("https://api.example.com/")
///     .scope("read:orders");
/// assert!(request.check().is_ok());
/// assert!(TokenExchangeRequest::new("Bearer abc", "urn:acme:legacy-token").check().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenExchangeRequest {
    /// The token being exchanged (`subject_token`).
    pub subject_token: Secret,
    /// Its type URI (`subject_token_type`), the one the tenant's Custom Token Exchange
    /// profile names, e.g. `urn:acme:legacy-token`.
    pub subject_token_type: String,
    /// The API the tokens are for; the configured audience when `None`.
    pub audience: Option<String>,
    /// The scope asked for (space-separated).
    pub scope: Option<String>,
    /// The organization (`org_…` id or name) to log in to; checked against the ID token.
    pub organization: Option<String>,
    /// An actor token, when someone acts on behalf of the subject.
    pub actor: Option<ActorToken>,
    /// Further parameters for the tenant's exchange Action, in order.
    pub extra: Vec<(String, String)>,
}

impl TokenExchangeRequest {
    /// Exchange `subject_token` of type `subject_token_type`.
    pub fn new(subject_token: impl Into<String>, subject_token_type: impl Into<String>) -> Self {
        TokenExchangeRequest {
            subject_token: Secret::new(subject_token.into()),
            subject_token_type: subject_token_type.into(),
            audience: None,
            scope: None,
            organization: None,
            actor: None,
            extra: Vec::new(),
        }
    }
    /// Sets the audience.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }
    /// Sets the scope.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
    /// Sets the organization.
    pub fn organization(mut self, organization: impl Into<String>) -> Self {
        self.organization = Some(organization.into());
        self
    }
    /// Sets the actor token and its type.
    pub fn actor(mut self, token: impl Into<String>, token_type: impl Into<String>) -> Self {
        self.actor = Some(ActorToken {
            token: Secret::new(token.into()),
            token_type: token_type.into(),
        });
        self
    }
    /// Adds an extra parameter for the tenant's exchange Action.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((name.into(), value.into()));
        self
    }

    /// Checks the request before anything is sent; the error names the offending field,
    /// never its value.
    pub fn check(&self) -> Result<(), LoginError> {
        check_token("subject_token", self.subject_token.expose())?;
        check_type("subject_token_type", &self.subject_token_type, true)?;
        if let Some(actor) = &self.actor {
            check_token("actor_token", actor.token.expose())?;
            check_type("actor_token_type", &actor.token_type, false)?;
        }
        for (name, value) in [
            ("audience", &self.audience),
            ("scope", &self.scope),
            ("organization", &self.organization),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(invalid(format!("{name} must not be blank when given")));
            }
        }
        if self.extra.len() > MAX_EXTRA_PARAMS {
            return Err(invalid(format!(
                "at most {MAX_EXTRA_PARAMS} extra parameters are accepted"
            )));
        }
        for (name, _) in &self.extra {
            if name.trim().is_empty() {
                return Err(invalid("an extra parameter has no name".into()));
            }
            if RESERVED_PARAMS.contains(&name.as_str()) {
                return Err(invalid(format!(
                    "`{}` is set by the SDK or has its own field; it cannot be an extra parameter",
                    crate::display::SafeText(name)
                )));
            }
        }
        Ok(())
    }
}

fn invalid(reason: String) -> LoginError {
    LoginError::InvalidParameter(reason)
}

/// A subject or actor token: present, bare (no scheme prefix, no surrounding whitespace),
/// bounded.
fn check_token(name: &str, token: &str) -> Result<(), LoginError> {
    if token.trim().is_empty() {
        return Err(invalid(format!("{name} must not be blank")));
    }
    if token.trim() != token {
        return Err(invalid(format!(
            "{name} must not have leading or trailing whitespace"
        )));
    }
    if token
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("bearer "))
    {
        return Err(invalid(format!(
            "{name} must be the bare token, without a `Bearer ` prefix"
        )));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(invalid(format!(
            "{name} is longer than {MAX_TOKEN_LEN} bytes"
        )));
    }
    Ok(())
}

/// A token type: an absolute URI without whitespace; a subject token type outside the
/// namespaces Auth0 reserves.
fn check_type(name: &str, token_type: &str, custom: bool) -> Result<(), LoginError> {
    if token_type.is_empty() || token_type.len() > 512 {
        return Err(invalid(format!(
            "{name} must be a URI of at most 512 bytes"
        )));
    }
    if token_type.chars().any(char::is_whitespace) || url::Url::parse(token_type).is_err() {
        return Err(invalid(format!("{name} must be an absolute URI")));
    }
    let lower = token_type.to_ascii_lowercase();
    if custom && RESERVED_TYPE_PREFIXES.iter().any(|p| lower.starts_with(p)) {
        return Err(invalid(format!(
            "{name} uses a namespace Auth0 reserves; a Custom Token Exchange profile needs a type URI of its own"
        )));
    }
    Ok(())
}

/// What a token exchange (or a CIBA login without a session) returned.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenExchangeResult {
    /// The access token.
    pub access_token: Secret,
    /// Its `token_type`, when sent.
    pub token_type: Option<String>,
    /// When the access token expires.
    pub expires_at: UnixTime,
    /// The granted scope, when sent.
    pub scope: Option<String>,
    /// A refresh token, when the exchange granted one (`offline_access`).
    pub refresh_token: Option<Secret>,
    /// The ID token, when one was returned (then verified: see `claims`).
    pub id_token: Option<Secret>,
    /// The claims of the ID token, verified like a login's (signature, issuer, audience,
    /// expiry, organization); `None` without an ID token. Read `act` here for the actor.
    pub claims: Option<Map<String, Value>>,
    /// Rich Authorization Request details granted, when any.
    pub authorization_details: Option<Value>,
}

impl TokenExchangeResult {
    pub(crate) fn new(
        response: TokenResponse,
        claims: Option<Map<String, Value>>,
        now: UnixTime,
    ) -> TokenExchangeResult {
        let expires_at = response.expires_at(now);
        TokenExchangeResult {
            access_token: response.access_token,
            token_type: response.token_type,
            expires_at,
            scope: response.scope,
            refresh_token: response.refresh_token,
            id_token: response.id_token,
            claims,
            authorization_details: response.authorization_details,
        }
    }
}

/// The form parameters of an exchange, in order; `scope` is the one to send.
pub(crate) fn exchange_params<'a>(
    config: &'a Config,
    request: &'a TokenExchangeRequest,
    scope: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![
        ("grant_type", GRANT_TYPE),
        ("subject_token", request.subject_token.expose()),
        ("subject_token_type", request.subject_token_type.as_str()),
    ];
    if let Some(audience) = request
        .audience
        .as_deref()
        .or(config.authorization_params().audience.as_deref())
    {
        params.push(("audience", audience));
    }
    if let Some(scope) = scope {
        params.push(("scope", scope));
    }
    if let Some(organization) = &request.organization {
        params.push(("organization", organization));
    }
    if let Some(actor) = &request.actor {
        params.push(("actor_token", actor.token.expose()));
        params.push(("actor_token_type", &actor.token_type));
    }
    params.extend(request.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    params
}
