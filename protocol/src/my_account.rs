//! Connected accounts and Auth0's My Account API (`https://{domain}/me/v1/…`), on behalf of
//! the logged-in user.
//!
//! Every call first gets an access token for the My Account API from the session through
//! [`get_access_token`](crate::Core::get_access_token), with the audience
//! `https://{domain}/me/` and the scope the call needs (`read:me:connected_accounts`, …):
//! a Multi-Resource Refresh Token refresh when no stored token fits, a cache hit otherwise.
//! The audience and the API's base URL come from one pure function of the tenant's domain,
//! [`my_account_api`], so a per-request domain needs no other change.
//!
//! - **Connect an account** (Token Vault's connected accounts):
//!   [`StartConnectAccount`] draws `state` and a PKCE verifier, asks
//!   `POST /me/v1/connected-accounts/connect` for a connect ticket, stores a transaction
//!   ([`PendingConnect`] in [`TransactionData::connect`]) under the `state`, and returns
//!   the URL to redirect the browser to (`connect_uri?ticket=…`). [`CompleteConnectAccount`]
//!   reads the callback (`state`, `connect_code`), consumes the transaction and sends
//!   `POST /me/v1/connected-accounts/complete` with the verifier.
//! - **Manage** them: [`MyAccountCall`]s listing accounts, deleting one, listing the
//!   connections that can be connected.
//! - **Authentication methods**: the factors the tenant offers, the user's authentication
//!   methods (list, get, delete).
//!
//! A request presents the token as `Authorization: Bearer …`, or as `DPoP …` with a proof
//! (whose `ath` binds it to the token) when the token is DPoP-bound. Auth0's
//! `application/problem+json` error answers become [`MyAccountError::Api`] with their
//! `type`, `title`, `detail` and `status` kept as data; no error carries a token or a code.

use crate::access_token::{AccessToken, AccessTokenError, AccessTokenRequest, GetAccessToken};
use crate::config::Config;
use crate::effect::{AtSend, Effect, HttpRequest, Input, Operation, Step, UnexpectedInput};
use crate::error_code::ErrorCode;
use crate::jose::b64;
use crate::login::code_challenge;
use crate::secret::Secret;
use crate::time::UnixTime;
use crate::token_response::TokenType;
pub use crate::transaction::PendingConnect;
use crate::transaction::{TransactionData, transaction_key};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Scope to start and complete a connection (`POST …/connect`, `POST …/complete`).
pub const CREATE_CONNECTED_ACCOUNTS: &str = "create:me:connected_accounts";
/// Scope to list connected accounts and connections.
pub const READ_CONNECTED_ACCOUNTS: &str = "read:me:connected_accounts";
/// Scope to delete a connected account.
pub const DELETE_CONNECTED_ACCOUNTS: &str = "delete:me:connected_accounts";
/// Scope to list the tenant's factors.
pub const READ_FACTORS: &str = "read:me:factors";
/// Scope to list and read authentication methods.
pub const READ_AUTHENTICATION_METHODS: &str = "read:me:authentication_methods";
/// Scope to delete an authentication method.
pub const DELETE_AUTHENTICATION_METHODS: &str = "delete:me:authentication_methods";
/// Scope to update an authentication method.
pub const UPDATE_AUTHENTICATION_METHODS: &str = "update:me:authentication_methods";

/// Random bytes a connect start draws: 32 for the PKCE verifier, 16 for `state`.
pub const CONNECT_RANDOM_BYTES: usize = 48;
/// Longest identifier (account or authentication-method id, connection name) accepted.
const MAX_ID_LEN: usize = 256;
/// Largest page size asked for.
pub const MAX_TAKE: u32 = 100;

/// Where the My Account API of a tenant is: its audience (`https://{domain}/me/`) and the
/// base of its endpoints (`https://{domain}/me/v1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MyAccountApi {
    audience: String,
    base: String,
}

impl MyAccountApi {
    /// The audience of access tokens for the API: `https://{domain}/me/`.
    pub fn audience(&self) -> &str {
        &self.audience
    }
    /// The base of the API's endpoints, without trailing slash: `https://{domain}/me/v1`.
    pub fn base(&self) -> &str {
        &self.base
    }
    /// The URL of endpoint `path` (segments already escaped), below [`base`](Self::base).
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }
}

/// The My Account API of the tenant at `domain`: a host (`tenant.auth0.com`, `https://`
/// assumed) or an origin (`https://login.example.com`, `http://127.0.0.1:3000`); a path other
/// than `/`, a query, a fragment or credentials are refused, as is plain `http` off loopback.
/// The one place the API's address is derived: given a per-request domain it serves that
/// domain's API, and never another's.
pub fn my_account_api(domain: &str) -> Result<MyAccountApi, MyAccountError> {
    let domain = domain.trim();
    if domain.is_empty() {
        return Err(MyAccountError::InvalidDomain("empty"));
    }
    let with_scheme = if domain.contains("://") {
        domain.to_owned()
    } else {
        format!("https://{domain}")
    };
    let url =
        url::Url::parse(&with_scheme).map_err(|_| MyAccountError::InvalidDomain("not a URL"))?;
    let host = match url.host() {
        Some(h) => h,
        None => return Err(MyAccountError::InvalidDomain("no host")),
    };
    let loopback = match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return Err(MyAccountError::InvalidDomain("not https")),
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(MyAccountError::InvalidDomain(
            "has a path, query or fragment",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(MyAccountError::InvalidDomain("has credentials"));
    }
    let origin = url.origin().ascii_serialization();
    Ok(MyAccountApi {
        audience: format!("{origin}/me/"),
        base: format!("{origin}/me/v1"),
    })
}

/// The domain whose My Account API a client's calls go to. Today the configured tenant's
/// origin; with several custom domains, the domain the session belongs to goes here.
fn session_domain(config: &Config) -> &str {
    config.origin()
}

/// An error answer of the My Account API (`application/problem+json`, RFC 9457), kept as
/// data. Its text is the server's; it never contains what was sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiProblem {
    /// The HTTP status of the answer.
    #[serde(default)]
    pub status: u16,
    /// `type`: a URI naming the kind of problem.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// `title`: a short summary.
    #[serde(default)]
    pub title: Option<String>,
    /// `detail`: what went wrong in this request.
    #[serde(default)]
    pub detail: Option<String>,
    /// `validation_errors`, when the request's body was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_errors: Option<Value>,
}

impl std::fmt::Display for ApiProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::display::SafeText;
        write!(f, "HTTP {}", self.status)?;
        if let Some(t) = &self.title {
            write!(f, " {}", SafeText(t))?;
        }
        if let Some(d) = &self.detail {
            write!(f, ": {}", SafeText(d))?;
        }
        Ok(())
    }
}

/// The problem an error answer (any non-2xx status) describes: the JSON body's fields when it
/// has them, else only the status. Strings are bounded; nothing is echoed from the request.
pub fn parse_problem(status: u16, body: &[u8]) -> ApiProblem {
    const MAX_TEXT: usize = 512;
    let clip = |s: Option<String>| {
        s.map(|mut s| {
            if s.len() > MAX_TEXT {
                let mut end = MAX_TEXT;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
            }
            s
        })
    };
    let mut problem = if body.len() <= crate::token_response::MAX_RESPONSE_BODY {
        serde_json::from_slice::<ApiProblem>(body).unwrap_or_default()
    } else {
        ApiProblem::default()
    };
    // OAuth-style answers (`error`, `error_description`) fill title and detail.
    if problem.title.is_none() && problem.detail.is_none() {
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
            problem.title = map.get("error").and_then(Value::as_str).map(str::to_owned);
            problem.detail = map
                .get("error_description")
                .or_else(|| map.get("message"))
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
    }
    problem.status = status;
    problem.kind = clip(problem.kind);
    problem.title = clip(problem.title);
    problem.detail = clip(problem.detail);
    problem
}

/// Why a connected-account or My Account operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MyAccountError {
    /// An argument is unusable (nothing was sent).
    #[error("invalid My Account parameter: {0}")]
    InvalidParameter(String),
    /// The domain cannot be a My Account API's.
    #[error("the domain cannot serve the My Account API: {0}")]
    InvalidDomain(&'static str),
    /// No access token for the API could be had from the session (no session, no refresh
    /// token, the refresh refused, `mfa_required`, …): the access token error's code.
    #[error("no access token for the My Account API: {0}")]
    AccessToken(Box<AccessTokenError>),
    /// The API refused the request (a missing scope, an unknown id, an expired ticket, …).
    #[error("the My Account API refused the request: {0}")]
    Api(ApiProblem),
    /// The API's success answer is not what was expected.
    #[error("the My Account API's answer is unusable (HTTP {status}): {reason}")]
    InvalidResponse {
        /// The HTTP status.
        status: u16,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The connect callback URL cannot be read.
    #[error("the connect callback URL is invalid: {0}")]
    InvalidCallback(&'static str),
    /// The connect callback has no `state`.
    #[error("the connect callback has no state")]
    MissingState,
    /// No pending connection matches the callback's `state` (unknown, already used, or not a
    /// connect transaction).
    #[error("no pending account connection matches the callback")]
    MissingTransaction,
    /// The connection was refused (the callback carried an `error`), or the callback has no
    /// `connect_code`.
    #[error("connecting the account failed: {}{}", crate::display::SafeText(.error), .error_description.as_deref().map(|d| format!(": {}", crate::display::SafeText(d))).unwrap_or_default())]
    Connect {
        /// The callback's `error` (`missing_connect_code` when it had neither).
        error: String,
        /// The callback's `error_description`.
        error_description: Option<String>,
    },
    /// The driver broke the protocol.
    #[error(transparent)]
    UnexpectedInput(#[from] UnexpectedInput),
}

impl MyAccountError {
    /// The stable code: `invalid_parameter`, `invalid_request` (domain), the access token
    /// error's own code, `my_account_api_error`, `invalid_callback`, `invalid_state`,
    /// `missing_transaction`, `connect_account_error`, `unexpected_input`.
    pub fn code(&self) -> ErrorCode {
        match self {
            MyAccountError::InvalidParameter(_) => ErrorCode::InvalidParameter,
            MyAccountError::InvalidDomain(_) => ErrorCode::InvalidRequest,
            MyAccountError::AccessToken(e) => e.code(),
            MyAccountError::Api(_) | MyAccountError::InvalidResponse { .. } => {
                ErrorCode::MyAccountApiError
            }
            MyAccountError::InvalidCallback(_) => ErrorCode::InvalidCallback,
            MyAccountError::MissingState => ErrorCode::InvalidState,
            MyAccountError::MissingTransaction => ErrorCode::MissingTransaction,
            MyAccountError::Connect { .. } => ErrorCode::ConnectAccountError,
            MyAccountError::UnexpectedInput(_) => ErrorCode::UnexpectedInput,
        }
    }

    /// The API's problem answer, when it refused the request.
    pub fn problem(&self) -> Option<&ApiProblem> {
        match self {
            MyAccountError::Api(p) => Some(p),
            _ => None,
        }
    }

    /// The OAuth error of a refused refresh, when getting the token failed so.
    pub fn oauth_error(&self) -> Option<&crate::token_endpoint::OAuthError> {
        match self {
            MyAccountError::AccessToken(e) => e.oauth_error(),
            _ => None,
        }
    }
}

impl From<AccessTokenError> for MyAccountError {
    fn from(e: AccessTokenError) -> Self {
        MyAccountError::AccessToken(Box::new(e))
    }
}

/// An account connected to the user (a Token Vault connection's grant).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectedAccount {
    /// The connected account's id (`cac_…`).
    pub id: String,
    /// The connection (`google-oauth2`, …).
    pub connection: String,
    /// `offline` (a refresh token is held) or `online`.
    #[serde(default)]
    pub access_type: Option<String>,
    /// The scopes granted by the provider.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// When it was connected (RFC 3339).
    #[serde(default)]
    pub created_at: Option<String>,
    /// When the grant expires (RFC 3339), when it does.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// A page of connected accounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectedAccounts {
    /// The accounts.
    pub accounts: Vec<ConnectedAccount>,
    /// The cursor of the next page (`from`), when there is one.
    #[serde(default)]
    pub next: Option<String>,
}

/// A connection the user can connect an account with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectedAccountConnection {
    /// Its name.
    pub name: String,
    /// Its strategy (`google-oauth2`, `oauth2`, …).
    #[serde(default)]
    pub strategy: Option<String>,
    /// The scopes it may be asked for.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// A page of connections.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectedAccountConnections {
    /// The connections.
    pub connections: Vec<ConnectedAccountConnection>,
    /// The cursor of the next page, when there is one.
    #[serde(default)]
    pub next: Option<String>,
}

/// The answer of `POST /me/v1/connected-accounts/connect`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ConnectTicket {
    /// The connect session to name at completion.
    pub auth_session: String,
    /// Where to send the browser.
    pub connect_uri: String,
    /// The parameters to add to `connect_uri` (`ticket`).
    pub connect_params: ConnectParams,
    /// How long the ticket is valid, seconds.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// The query parameters of a connect URL.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ConnectParams {
    /// The connect ticket.
    pub ticket: String,
}

/// The URL to send the browser to for a connect ticket: `connect_uri` with `ticket` added;
/// `None` when `connect_uri` is not an absolute https URL (http only on loopback).
pub fn connect_url(ticket: &ConnectTicket) -> Option<url::Url> {
    let mut url = url::Url::parse(&ticket.connect_uri).ok()?;
    let loopback = matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Domain("localhost")));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => return None,
    }
    url.query_pairs_mut()
        .append_pair("ticket", &ticket.connect_params.ticket);
    Some(url)
}

/// A factor the tenant offers for My Account enrolment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Factor {
    /// The factor's type (`passkey`, `phone`, `totp`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// What it may be used for (`primary`, `secondary`).
    #[serde(default)]
    pub usage: Vec<String>,
}

/// One of the user's authentication methods.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticationMethod {
    /// Its id.
    pub id: String,
    /// Its type (`password`, `passkey`, `phone`, `totp`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// When it was created (RFC 3339).
    #[serde(default)]
    pub created_at: Option<String>,
    /// Every other field Auth0 sent (`name`, `phone_number`, `usage`, …).
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

/// What `connect_account` is asked for.
///
/// ```
/// use auth0_server_protocol::my_account::ConnectAccountOptions;
/// let options = ConnectAccountOptions::new("google-oauth2")
///     .scope("https://www.googleapis.com/auth/calendar.readonly");
/// assert_eq!(options.connection, "google-oauth2");
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConnectAccountOptions {
    /// The connection to connect an account with.
    pub connection: String,
    /// Where the connect flow returns to; default the configured `redirect_uri`.
    pub redirect_uri: Option<String>,
    /// Scopes to ask the provider for.
    pub scopes: Vec<String>,
    /// Application state returned by completion.
    pub app_state: Option<Value>,
    /// Parameters for the provider's authorization request (`authorization_params`).
    pub authorization_params: Vec<(String, String)>,
}

impl ConnectAccountOptions {
    /// Connect an account of `connection`.
    pub fn new(connection: impl Into<String>) -> Self {
        ConnectAccountOptions {
            connection: connection.into(),
            ..Default::default()
        }
    }
    /// Adds a scope to ask the provider for.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }
    /// Sets where the flow returns to.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }
    /// Sets the application state.
    pub fn app_state(mut self, state: Value) -> Self {
        self.app_state = Some(state);
        self
    }
    /// Adds a parameter for the provider's authorization request.
    pub fn authorization_param(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.authorization_params.push((name.into(), value.into()));
        self
    }
}

/// What a completed connection returns.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectedAccountResult {
    /// The account now connected.
    pub account: ConnectedAccount,
    /// The application state given at the start.
    pub app_state: Option<Value>,
}

/// The per-connect secrets derived from [`CONNECT_RANDOM_BYTES`] random bytes: the PKCE
/// verifier (43 base64url characters) and `state`; `None` for too few bytes.
pub fn connect_secrets(bytes: &[u8]) -> Option<(Secret, String)> {
    if bytes.len() < CONNECT_RANDOM_BYTES {
        return None;
    }
    Some((
        Secret::new(b64::encode(&bytes[..32])),
        b64::encode(&bytes[32..48]),
    ))
}

fn bad_id(id: &str) -> bool {
    id.is_empty()
        || id.len() > MAX_ID_LEN
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'.' | b':'))
}

/// Checks an id used as a path segment (account or authentication-method id): 1 to 256
/// characters of `[A-Za-z0-9_.:|-]`, so it can never leave its segment.
pub fn check_id(what: &str, id: &str) -> Result<(), MyAccountError> {
    if bad_id(id) {
        return Err(MyAccountError::InvalidParameter(format!(
            "the {what} must be 1 to {MAX_ID_LEN} characters of letters, digits and _.:|-"
        )));
    }
    Ok(())
}

/// A path segment, percent-escaped (every byte outside the unreserved set).
pub fn path_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One call to the My Account API: method, path below `/me/v1`, query, JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiCall {
    /// The HTTP method.
    pub method: http::Method,
    /// The path below `/me/v1` (segments escaped).
    pub path: String,
    /// Query parameters.
    pub query: Vec<(String, String)>,
    /// The JSON body, for a POST.
    pub body: Option<Value>,
    /// The scope the access token needs.
    pub scope: &'static str,
}

impl ApiCall {
    fn get(path: impl Into<String>, scope: &'static str) -> Self {
        ApiCall {
            method: http::Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: None,
            scope,
        }
    }
}

/// The request of `call` to `api`, presenting `token`: `Authorization: Bearer …`, or for a
/// DPoP-bound token `Authorization: DPoP …` with a proof made at sending (its `ath` is the
/// token's hash).
pub fn api_request(api: &MyAccountApi, token: &AccessToken, call: &ApiCall) -> HttpRequest {
    let mut url = api.endpoint(&call.path);
    if !call.query.is_empty() {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(call.query.iter())
            .finish();
        url.push('?');
        url.push_str(&query);
    }
    let dpop = token.token_type == TokenType::Dpop;
    let scheme = if dpop { "DPoP" } else { "Bearer" };
    let mut authorization =
        http::HeaderValue::from_str(&format!("{scheme} {}", token.access_token.expose()))
            .unwrap_or_else(|_| http::HeaderValue::from_static(""));
    authorization.set_sensitive(true);
    let mut builder = http::Request::builder()
        .method(call.method.clone())
        .uri(url)
        .header(http::header::AUTHORIZATION, authorization)
        .header(http::header::ACCEPT, "application/json");
    let body = match &call.body {
        Some(b) => {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
            b.to_string().into_bytes()
        }
        None => Vec::new(),
    };
    HttpRequest {
        // The base comes from a validated origin and the path from checked segments.
        request: builder.body(body).unwrap_or_default(),
        coalesce: None,
        at_send: if dpop {
            vec![AtSend::DpopProof { nonce: None }]
        } else {
            Vec::new()
        },
    }
}

/// The body of `POST /me/v1/connected-accounts/connect`.
pub fn connect_body(
    options: &ConnectAccountOptions,
    redirect_uri: &str,
    state: &str,
    verifier: &Secret,
) -> Value {
    let mut body = json!({
        "connection": options.connection,
        "redirect_uri": redirect_uri,
        "state": state,
        "code_challenge": code_challenge(verifier.expose()),
        "code_challenge_method": "S256",
    });
    if !options.scopes.is_empty() {
        body["scopes"] = json!(options.scopes);
    }
    if !options.authorization_params.is_empty() {
        let params: Map<String, Value> = options
            .authorization_params
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        body["authorization_params"] = Value::Object(params);
    }
    body
}

/// Checks the options of a connect start, and picks its redirect URI.
pub fn check_connect(
    config: &Config,
    options: &ConnectAccountOptions,
) -> Result<String, MyAccountError> {
    if bad_id(&options.connection) {
        return Err(MyAccountError::InvalidParameter(
            "the connection must be a name of letters, digits and _.:|-".into(),
        ));
    }
    if options
        .scopes
        .iter()
        .any(|s| s.is_empty() || s.contains(char::is_whitespace))
    {
        return Err(MyAccountError::InvalidParameter(
            "each scope must be one non-empty scope value".into(),
        ));
    }
    let redirect_uri = options
        .redirect_uri
        .clone()
        .or_else(|| config.authorization_params().redirect_uri.clone())
        .ok_or_else(|| {
            MyAccountError::InvalidParameter(
                "a redirect_uri must be configured or given to connect an account".into(),
            )
        })?;
    if url::Url::parse(&redirect_uri).is_err() {
        return Err(MyAccountError::InvalidParameter(
            "the redirect_uri must be an absolute URL".into(),
        ));
    }
    Ok(redirect_uri)
}

/// The query parameters of a connect callback that matter. `Debug` hides the code.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConnectCallback {
    /// `state`.
    pub state: Option<String>,
    /// `connect_code`.
    pub connect_code: Option<Secret>,
    /// `error`.
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
}

impl std::fmt::Debug for ConnectCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectCallback")
            .field("state", &self.state)
            .field(
                "connect_code",
                &self.connect_code.as_ref().map(|_| "<redacted>"),
            )
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .finish()
    }
}

/// Reads a connect callback URL (absolute, or path and query). A parameter given twice is
/// refused.
pub fn parse_connect_callback(callback_url: &str) -> Result<ConnectCallback, MyAccountError> {
    if callback_url.len() > crate::login::MAX_CALLBACK_URL {
        return Err(MyAccountError::InvalidCallback("too long"));
    }
    let url = match url::Url::parse(callback_url) {
        Ok(u) => u,
        Err(url::ParseError::RelativeUrlWithoutBase) => url::Url::parse("http://callback.invalid/")
            .and_then(|base| base.join(callback_url))
            .map_err(|_| MyAccountError::InvalidCallback("not a URL"))?,
        Err(_) => return Err(MyAccountError::InvalidCallback("not a URL")),
    };
    let mut cb = ConnectCallback::default();
    let mut code: Option<String> = None;
    for (k, v) in url.query_pairs() {
        let slot = match k.as_ref() {
            "state" => &mut cb.state,
            "connect_code" => &mut code,
            "error" => &mut cb.error,
            "error_description" => &mut cb.error_description,
            _ => continue,
        };
        if slot.is_some() {
            return Err(MyAccountError::InvalidCallback("a parameter is repeated"));
        }
        *slot = Some(v.into_owned());
    }
    cb.connect_code = code.filter(|c| !c.is_empty()).map(Secret::new);
    cb.state = cb.state.filter(|s| !s.is_empty());
    Ok(cb)
}

/// Parses a success answer as `T`: a JSON object (or, for a list call, also a bare array
/// under `list_key`). `None` when it is not.
fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<T> {
    serde_json::from_slice(body).ok()
}

fn parse_list<T: serde::de::DeserializeOwned>(body: &[u8], key: &str) -> Option<Vec<T>> {
    match serde_json::from_slice::<Value>(body).ok()? {
        Value::Array(items) => serde_json::from_value(Value::Array(items)).ok(),
        Value::Object(mut map) => serde_json::from_value(map.remove(key)?).ok(),
        _ => None,
    }
}

fn parse_nothing(_: &[u8]) -> Option<()> {
    Some(())
}

fn parse_factors(body: &[u8]) -> Option<Vec<Factor>> {
    parse_list(body, "factors")
}

fn parse_methods(body: &[u8]) -> Option<Vec<AuthenticationMethod>> {
    parse_list(body, "authentication_methods")
}

#[derive(Debug)]
enum CallState {
    Start,
    Token(Box<GetAccessToken>),
    Sending,
    Finished,
}

/// One My Account API call for the session's user: gets the access token (the API's
/// audience, the call's scope), sends the request, parses the answer.
#[derive(Debug)]
pub struct MyAccountCall<T> {
    config: Arc<Config>,
    call: Result<ApiCall, MyAccountError>,
    parse: fn(&[u8]) -> Option<T>,
    api: Option<MyAccountApi>,
    state: CallState,
}

/// `list_connected_accounts`.
pub type ListConnectedAccounts = MyAccountCall<ConnectedAccounts>;
/// `delete_connected_account`.
pub type DeleteConnectedAccount = MyAccountCall<()>;
/// `list_connected_account_connections`.
pub type ListConnectedAccountConnections = MyAccountCall<ConnectedAccountConnections>;
/// `get_factors`.
pub type GetFactors = MyAccountCall<Vec<Factor>>;
/// `list_authentication_methods`.
pub type ListAuthenticationMethods = MyAccountCall<Vec<AuthenticationMethod>>;
/// `get_authentication_method`.
pub type GetAuthenticationMethod = MyAccountCall<AuthenticationMethod>;
/// `delete_authentication_method`.
pub type DeleteAuthenticationMethod = MyAccountCall<()>;
/// `update_authentication_method`.
pub type UpdateAuthenticationMethod = MyAccountCall<AuthenticationMethod>;

/// What to change on an authentication method (`PATCH`): its display name, or which method
/// of a factor is preferred. At least one must be set.
///
/// ```
/// use auth0_server_protocol::my_account::AuthenticationMethodUpdate;
/// let update = AuthenticationMethodUpdate::name("Work phone");
/// assert_eq!(update.name.as_deref(), Some("Work phone"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthenticationMethodUpdate {
    /// The new display name (1 to 200 characters).
    pub name: Option<String>,
    /// The preferred method of the factor (`sms`, `voice`, …).
    pub preferred_authentication_method: Option<String>,
}

impl AuthenticationMethodUpdate {
    /// Renames the method.
    pub fn name(name: impl Into<String>) -> Self {
        AuthenticationMethodUpdate {
            name: Some(name.into()),
            ..Default::default()
        }
    }
}

/// The call updating authentication method `id`.
pub fn update_method_call(
    id: &str,
    update: &AuthenticationMethodUpdate,
) -> Result<ApiCall, MyAccountError> {
    let mut call = authentication_method_call(http::Method::PATCH, id)?;
    let mut body = Map::new();
    if let Some(name) = &update.name {
        if name.trim().is_empty()
            || name.chars().count() > 200
            || name.chars().any(char::is_control)
        {
            return Err(MyAccountError::InvalidParameter(
                "the name must be 1 to 200 printable characters".into(),
            ));
        }
        body.insert("name".into(), Value::String(name.clone()));
    }
    if let Some(p) = &update.preferred_authentication_method {
        if bad_id(p) {
            return Err(MyAccountError::InvalidParameter(
                "the preferred authentication method must be a method name".into(),
            ));
        }
        body.insert(
            "preferred_authentication_method".into(),
            Value::String(p.clone()),
        );
    }
    if body.is_empty() {
        return Err(MyAccountError::InvalidParameter(
            "an update must change the name or the preferred method".into(),
        ));
    }
    call.body = Some(Value::Object(body));
    Ok(call)
}

fn paging(
    mut call: ApiCall,
    from: Option<&str>,
    take: Option<u32>,
) -> Result<ApiCall, MyAccountError> {
    if let Some(from) = from {
        if from.is_empty() || from.len() > 1024 {
            return Err(MyAccountError::InvalidParameter(
                "the `from` cursor must be 1 to 1024 characters".into(),
            ));
        }
        call.query.push(("from".into(), from.into()));
    }
    if let Some(take) = take {
        if take == 0 || take > MAX_TAKE {
            return Err(MyAccountError::InvalidParameter(format!(
                "`take` must be 1 to {MAX_TAKE}"
            )));
        }
        call.query.push(("take".into(), take.to_string()));
    }
    Ok(call)
}

/// The call listing connected accounts, of one connection or all.
pub fn list_accounts_call(
    connection: Option<&str>,
    from: Option<&str>,
    take: Option<u32>,
) -> Result<ApiCall, MyAccountError> {
    let mut call = ApiCall::get("connected-accounts/accounts", READ_CONNECTED_ACCOUNTS);
    if let Some(c) = connection {
        if bad_id(c) {
            return Err(MyAccountError::InvalidParameter(
                "the connection must be a name of letters, digits and _.:|-".into(),
            ));
        }
        call.query.push(("connection".into(), c.into()));
    }
    paging(call, from, take)
}

/// The call deleting connected account `id`.
pub fn delete_account_call(id: &str) -> Result<ApiCall, MyAccountError> {
    check_id("connected account id", id)?;
    Ok(ApiCall {
        method: http::Method::DELETE,
        ..ApiCall::get(
            format!("connected-accounts/accounts/{}", path_segment(id)),
            DELETE_CONNECTED_ACCOUNTS,
        )
    })
}

/// The call reading or deleting authentication method `id`.
pub fn authentication_method_call(
    method: http::Method,
    id: &str,
) -> Result<ApiCall, MyAccountError> {
    check_id("authentication method id", id)?;
    let scope = if method == http::Method::DELETE {
        DELETE_AUTHENTICATION_METHODS
    } else if method == http::Method::PATCH {
        UPDATE_AUTHENTICATION_METHODS
    } else {
        READ_AUTHENTICATION_METHODS
    };
    Ok(ApiCall {
        method,
        ..ApiCall::get(
            format!("authentication-methods/{}", path_segment(id)),
            scope,
        )
    })
}

impl<T> MyAccountCall<T> {
    fn with(
        config: Arc<Config>,
        call: Result<ApiCall, MyAccountError>,
        parse: fn(&[u8]) -> Option<T>,
    ) -> Self {
        MyAccountCall {
            config,
            call,
            parse,
            api: None,
            state: CallState::Start,
        }
    }

    fn finish(&mut self, r: Result<T, MyAccountError>) -> Step<T, MyAccountError> {
        self.state = CallState::Finished;
        Step::Done(r)
    }

    fn forward(
        &mut self,
        mut inner: Box<GetAccessToken>,
        input: Input,
        now: UnixTime,
    ) -> Step<T, MyAccountError> {
        match inner.step(input, now) {
            Step::Effect(e) => {
                self.state = CallState::Token(inner);
                Step::Effect(e)
            }
            Step::Done(Err(e)) => self.finish(Err(e.into())),
            Step::Done(Ok(token)) => {
                let request = match (&self.api, &self.call) {
                    (Some(api), Ok(call)) => Some(api_request(api, &token, call)),
                    _ => None,
                };
                let Some(request) = request else {
                    return self.finish(Err(UnexpectedInput {
                        expected: "a checked call",
                    }
                    .into()));
                };
                self.state = CallState::Sending;
                Step::Effect(Effect::Http(Box::new(request)))
            }
        }
    }
}

impl<T> Operation for MyAccountCall<T> {
    type Output = T;
    type Error = MyAccountError;

    fn step(&mut self, input: Input, now: UnixTime) -> Step<T, MyAccountError> {
        match (
            std::mem::replace(&mut self.state, CallState::Finished),
            input,
        ) {
            (CallState::Start, Input::Start) => {
                let scope = match &self.call {
                    Ok(call) => call.scope,
                    Err(e) => {
                        let e = e.clone();
                        return self.finish(Err(e));
                    }
                };
                let api = match my_account_api(session_domain(&self.config)) {
                    Ok(api) => api,
                    Err(e) => return self.finish(Err(e)),
                };
                let request = AccessTokenRequest::audience(api.audience()).scope(scope);
                self.api = Some(api);
                let inner = Box::new(GetAccessToken::new(self.config.clone(), request));
                self.forward(inner, Input::Start, now)
            }
            (CallState::Token(inner), input) => self.forward(inner, input, now),
            (CallState::Sending, Input::Http(response)) => {
                let status = response.status();
                if !status.is_success() {
                    let problem = parse_problem(status.as_u16(), response.body());
                    return self.finish(Err(MyAccountError::Api(problem)));
                }
                if response.body().len() > crate::token_response::MAX_RESPONSE_BODY {
                    return self.finish(Err(MyAccountError::InvalidResponse {
                        status: status.as_u16(),
                        reason: "the answer is too large",
                    }));
                }
                match (self.parse)(response.body()) {
                    Some(out) => self.finish(Ok(out)),
                    None => self.finish(Err(MyAccountError::InvalidResponse {
                        status: status.as_u16(),
                        reason: "not the expected JSON",
                    })),
                }
            }
            (state, _) => {
                let expected = match state {
                    CallState::Start => "Start",
                    CallState::Token(_) => "the access token's effects",
                    CallState::Sending => "Http (My Account API)",
                    CallState::Finished => "nothing (the operation has finished)",
                };
                self.finish(Err(UnexpectedInput { expected }.into()))
            }
        }
    }
}

impl ListConnectedAccounts {
    pub(crate) fn list(
        config: Arc<Config>,
        connection: Option<&str>,
        from: Option<&str>,
        take: Option<u32>,
    ) -> Self {
        MyAccountCall::with(
            config,
            list_accounts_call(connection, from, take),
            parse_json,
        )
    }
}

impl DeleteConnectedAccount {
    pub(crate) fn delete_account(config: Arc<Config>, id: &str) -> Self {
        MyAccountCall::with(config, delete_account_call(id), parse_nothing)
    }

    pub(crate) fn delete_method(config: Arc<Config>, id: &str) -> Self {
        MyAccountCall::with(
            config,
            authentication_method_call(http::Method::DELETE, id),
            parse_nothing,
        )
    }
}

impl ListConnectedAccountConnections {
    pub(crate) fn list(config: Arc<Config>, from: Option<&str>, take: Option<u32>) -> Self {
        let call = paging(
            ApiCall::get("connected-accounts/connections", READ_CONNECTED_ACCOUNTS),
            from,
            take,
        );
        MyAccountCall::with(config, call, parse_json)
    }
}

impl GetFactors {
    pub(crate) fn factors(config: Arc<Config>) -> Self {
        MyAccountCall::with(
            config,
            Ok(ApiCall::get("factors", READ_FACTORS)),
            parse_factors,
        )
    }
}

impl ListAuthenticationMethods {
    pub(crate) fn list(config: Arc<Config>) -> Self {
        MyAccountCall::with(
            config,
            Ok(ApiCall::get(
                "authentication-methods",
                READ_AUTHENTICATION_METHODS,
            )),
            parse_methods,
        )
    }
}

impl GetAuthenticationMethod {
    pub(crate) fn update(
        config: Arc<Config>,
        id: &str,
        update: &AuthenticationMethodUpdate,
    ) -> Self {
        MyAccountCall::with(config, update_method_call(id, update), parse_json)
    }

    pub(crate) fn get(config: Arc<Config>, id: &str) -> Self {
        MyAccountCall::with(
            config,
            authentication_method_call(http::Method::GET, id),
            parse_json,
        )
    }
}

#[derive(Debug)]
enum StartState {
    Start,
    Random,
    Calling {
        inner: Box<MyAccountCall<ConnectTicket>>,
        pending: Box<TransactionData>,
    },
    Saving(url::Url),
    Finished,
}

/// The `start_connect_account` operation: the URL to send the browser to.
#[derive(Debug)]
pub struct StartConnectAccount {
    config: Arc<Config>,
    options: ConnectAccountOptions,
    state: StartState,
}

impl StartConnectAccount {
    pub(crate) fn new(config: Arc<Config>, options: ConnectAccountOptions) -> Self {
        StartConnectAccount {
            config,
            options,
            state: StartState::Start,
        }
    }

    fn finish(&mut self, r: Result<url::Url, MyAccountError>) -> Step<url::Url, MyAccountError> {
        self.state = StartState::Finished;
        Step::Done(r)
    }

    fn forward(
        &mut self,
        mut inner: Box<MyAccountCall<ConnectTicket>>,
        mut pending: Box<TransactionData>,
        input: Input,
        now: UnixTime,
    ) -> Step<url::Url, MyAccountError> {
        match inner.step(input, now) {
            Step::Effect(e) => {
                self.state = StartState::Calling { inner, pending };
                Step::Effect(e)
            }
            Step::Done(Err(e)) => self.finish(Err(e)),
            Step::Done(Ok(ticket)) => {
                let Some(url) = connect_url(&ticket) else {
                    return self.finish(Err(MyAccountError::InvalidResponse {
                        status: 201,
                        reason: "connect_uri is not an absolute https URL",
                    }));
                };
                pending.connect = Some(PendingConnect {
                    auth_session: Secret::new(ticket.auth_session),
                    connection: self.options.connection.clone(),
                });
                let key = transaction_key(pending.state.as_deref().unwrap_or_default());
                self.state = StartState::Saving(url);
                Step::Effect(Effect::SaveTransaction {
                    key,
                    transaction: pending,
                })
            }
        }
    }
}

impl Operation for StartConnectAccount {
    type Output = url::Url;
    type Error = MyAccountError;

    fn step(&mut self, input: Input, now: UnixTime) -> Step<url::Url, MyAccountError> {
        match (
            std::mem::replace(&mut self.state, StartState::Finished),
            input,
        ) {
            (StartState::Start, Input::Start) => {
                if let Err(e) = check_connect(&self.config, &self.options) {
                    return self.finish(Err(e));
                }
                self.state = StartState::Random;
                Step::Effect(Effect::Random {
                    len: CONNECT_RANDOM_BYTES,
                })
            }
            (StartState::Random, Input::Random(bytes)) => {
                let Some((verifier, state)) = connect_secrets(&bytes) else {
                    return self.finish(Err(UnexpectedInput {
                        expected: "Random (48 bytes)",
                    }
                    .into()));
                };
                let redirect_uri = match check_connect(&self.config, &self.options) {
                    Ok(r) => r,
                    Err(e) => return self.finish(Err(e)),
                };
                let body = connect_body(&self.options, &redirect_uri, &state, &verifier);
                let call = ApiCall {
                    method: http::Method::POST,
                    body: Some(body),
                    ..ApiCall::get("connected-accounts/connect", CREATE_CONNECTED_ACCOUNTS)
                };
                let pending = Box::new(TransactionData {
                    code_verifier: Some(verifier),
                    state: Some(state),
                    app_state: self.options.app_state.clone(),
                    redirect_uri: Some(redirect_uri),
                    created_at: now.as_secs(),
                    ..Default::default()
                });
                let inner = Box::new(MyAccountCall::with(
                    self.config.clone(),
                    Ok(call),
                    parse_json,
                ));
                self.forward(inner, pending, Input::Start, now)
            }
            (StartState::Calling { inner, pending }, input) => {
                self.forward(inner, pending, input, now)
            }
            (StartState::Saving(url), Input::Done) => self.finish(Ok(url)),
            (state, _) => {
                let expected = match state {
                    StartState::Start => "Start",
                    StartState::Random => "Random",
                    StartState::Calling { .. } => "the connect request's effects",
                    StartState::Saving(_) => "Done (SaveTransaction)",
                    StartState::Finished => "nothing (the operation has finished)",
                };
                self.finish(Err(UnexpectedInput { expected }.into()))
            }
        }
    }
}

#[derive(Debug)]
enum CompleteState {
    Start,
    Loading(String),
    Deleting(Box<TransactionData>),
    Calling {
        inner: Box<MyAccountCall<ConnectedAccount>>,
        app_state: Option<Value>,
    },
    Finished,
}

/// The `complete_connect_account` operation: handles the connect callback.
#[derive(Debug)]
pub struct CompleteConnectAccount {
    config: Arc<Config>,
    callback: Result<ConnectCallback, MyAccountError>,
    state: CompleteState,
}

impl CompleteConnectAccount {
    pub(crate) fn new(config: Arc<Config>, callback_url: &str) -> Self {
        CompleteConnectAccount {
            config,
            callback: parse_connect_callback(callback_url),
            state: CompleteState::Start,
        }
    }

    fn finish(
        &mut self,
        r: Result<ConnectedAccountResult, MyAccountError>,
    ) -> Step<ConnectedAccountResult, MyAccountError> {
        self.state = CompleteState::Finished;
        Step::Done(r)
    }

    fn forward(
        &mut self,
        mut inner: Box<MyAccountCall<ConnectedAccount>>,
        app_state: Option<Value>,
        input: Input,
        now: UnixTime,
    ) -> Step<ConnectedAccountResult, MyAccountError> {
        match inner.step(input, now) {
            Step::Effect(e) => {
                self.state = CompleteState::Calling { inner, app_state };
                Step::Effect(e)
            }
            Step::Done(r) => {
                self.finish(r.map(|account| ConnectedAccountResult { account, app_state }))
            }
        }
    }
}

/// The body of `POST /me/v1/connected-accounts/complete` for a pending connection; `None`
/// when the transaction is not a connect transaction.
pub fn complete_body(tx: &TransactionData, connect_code: &Secret) -> Option<Value> {
    let pending = tx.connect.as_ref()?;
    let mut body = json!({
        "auth_session": pending.auth_session.expose(),
        "connect_code": connect_code.expose(),
        "redirect_uri": tx.redirect_uri.as_deref()?,
    });
    if let Some(v) = &tx.code_verifier {
        body["code_verifier"] = Value::String(v.expose().to_owned());
    }
    Some(body)
}

impl Operation for CompleteConnectAccount {
    type Output = ConnectedAccountResult;
    type Error = MyAccountError;

    fn step(
        &mut self,
        input: Input,
        now: UnixTime,
    ) -> Step<ConnectedAccountResult, MyAccountError> {
        match (
            std::mem::replace(&mut self.state, CompleteState::Finished),
            input,
        ) {
            (CompleteState::Start, Input::Start) => {
                let state = match &self.callback {
                    Err(e) => {
                        let e = e.clone();
                        return self.finish(Err(e));
                    }
                    Ok(cb) => match &cb.state {
                        Some(s) => s.clone(),
                        None => return self.finish(Err(MyAccountError::MissingState)),
                    },
                };
                let key = transaction_key(&state);
                self.state = CompleteState::Loading(key.clone());
                Step::Effect(Effect::LoadTransaction { key })
            }
            (CompleteState::Loading(key), Input::Transaction(tx)) => {
                // Only a connect transaction whose `state` is the callback's.
                let Some(tx) = tx.filter(|tx| {
                    tx.connect.is_some()
                        && tx.state.as_deref()
                            == self.callback.as_ref().ok().and_then(|c| c.state.as_deref())
                }) else {
                    return self.finish(Err(MyAccountError::MissingTransaction));
                };
                // Consumed before anything else: a callback is used once.
                self.state = CompleteState::Deleting(Box::new(tx));
                Step::Effect(Effect::DeleteTransaction { key })
            }
            (CompleteState::Deleting(tx), Input::Done) => {
                let cb = match &self.callback {
                    Ok(cb) => cb.clone(),
                    Err(e) => {
                        let e = e.clone();
                        return self.finish(Err(e));
                    }
                };
                if let Some(error) = cb.error {
                    return self.finish(Err(MyAccountError::Connect {
                        error,
                        error_description: cb.error_description,
                    }));
                }
                let Some(code) = cb.connect_code else {
                    return self.finish(Err(MyAccountError::Connect {
                        error: "missing_connect_code".into(),
                        error_description: Some("the callback has no connect_code".into()),
                    }));
                };
                let Some(body) = complete_body(&tx, &code) else {
                    return self.finish(Err(MyAccountError::MissingTransaction));
                };
                let call = ApiCall {
                    method: http::Method::POST,
                    body: Some(body),
                    ..ApiCall::get("connected-accounts/complete", CREATE_CONNECTED_ACCOUNTS)
                };
                let inner = Box::new(MyAccountCall::with(
                    self.config.clone(),
                    Ok(call),
                    parse_json,
                ));
                self.forward(inner, tx.app_state.clone(), Input::Start, now)
            }
            (CompleteState::Calling { inner, app_state }, input) => {
                self.forward(inner, app_state, input, now)
            }
            (state, _) => {
                let expected = match state {
                    CompleteState::Start => "Start",
                    CompleteState::Loading(_) => "Transaction",
                    CompleteState::Deleting(_) => "Done (DeleteTransaction)",
                    CompleteState::Calling { .. } => "the complete request's effects",
                    CompleteState::Finished => "nothing (the operation has finished)",
                };
                self.finish(Err(UnexpectedInput { expected }.into()))
            }
        }
    }
}
