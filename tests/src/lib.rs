#![forbid(unsafe_code)]
//! A local Auth0 emulator: a real HTTP server on `127.0.0.1` (ephemeral port) that speaks
//! the Auth0 endpoints the SDK uses, for end-to-end tests and the offline quickstart.
//!
//! ```no_run
//! use auth0_emulator::{Emulator, EmulatorConfig};
//! let emu = Emulator::start(EmulatorConfig::default());
//! let domain = emu.base_url(); // "http://127.0.0.1:PORT", the SDK's `domain`
//! # let _ = domain;
//! ```
//!
//! Endpoints: OIDC discovery, JWKS (current and previous key), `/authorize` (no login form:
//! the configured test user is authenticated and redirected with a code), `/oauth/par`,
//! `/oauth/token` (authorization code + PKCE, refresh token with MRRT policy and rotation with
//! reuse detection, federated connection token exchange), `/oauth/revoke`, `/v2/logout`,
//! `/oidc/logout`, `/userinfo` and a protected API at `/api/data`.
//!
//! Every request is recorded (before it is answered, injected failures included) so tests
//! can assert what went over the wire, and failures can be injected per path.

mod jwt;
mod server;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Map, Value, json};

pub use jwt::{decode_header, decode_payload};

/// The audience of the emulator's protected API (`/api/data`) and the default audience.
pub const DEFAULT_AUDIENCE: &str = "https://api.example.com";
/// A second API allowed by the default refresh-token policy (for MRRT tests).
pub const ANALYTICS_AUDIENCE: &str = "https://analytics.example.com";
/// The `events` key of an OIDC back-channel logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// The federated connection token exchange grant type.
pub const FEDERATED_GRANT_TYPE: &str =
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token";
/// The `subject_token_type` of a federated connection token exchange.
pub const REFRESH_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:refresh_token";
/// The `requested_token_type` (and answered `issued_token_type`) of a federated exchange.
pub const FEDERATED_TOKEN_TYPE: &str =
    "http://auth0.com/oauth/token-type/federated-connection-access-token";

/// A federated connection whose access token the emulator hands out through the
/// token-exchange grant (Auth0 "token vault").
#[derive(Clone, Debug)]
pub struct FederatedConnection {
    /// Connection name, e.g. `google-oauth2`.
    pub name: String,
    /// The access token returned for this connection.
    pub access_token: String,
    /// The scope returned with it.
    pub scope: String,
    /// `expires_in` of the returned token, in seconds.
    pub expires_in: u64,
}

/// How the emulator behaves. Build with struct update syntax:
/// `EmulatorConfig { rotation: false, ..Default::default() }`.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// The one registered client (default `emulator-client`).
    pub client_id: String,
    /// Its secret (default: 48 characters).
    pub client_secret: String,
    /// The tenant's default audience (default [`DEFAULT_AUDIENCE`]). Requests for an audience
    /// outside the refresh-token policy get a token for this audience, as Auth0 does.
    pub default_audience: Option<String>,
    /// Audiences a refresh token may be exchanged for (MRRT). Default: the default audience
    /// and [`ANALYTICS_AUDIENCE`].
    pub refresh_token_policy: Vec<String>,
    /// Refresh-token rotation with reuse detection (default `true`).
    pub rotation: bool,
    /// Access token lifetime in seconds (default 3600).
    pub access_token_lifetime: u64,
    /// ID token lifetime in seconds (default 36000).
    pub id_token_lifetime: u64,
    /// The test user's claims (must include `sub`).
    pub user: Map<String, Value>,
    /// Federated connections available to the token exchange (default: `google-oauth2`).
    pub connections: Vec<FederatedConnection>,
    /// Scopes never granted (removed from requested scopes). Default empty.
    pub denied_scopes: Vec<String>,
}

impl EmulatorConfig {
    /// The default test user: `auth0|emulator-user` with name, email, nickname and picture.
    pub fn default_user() -> Map<String, Value> {
        let Value::Object(map) = json!({
            "sub": "auth0|emulator-user",
            "name": "Emulator User",
            "nickname": "emulator-user",
            "email": "emulator-user@example.com",
            "email_verified": true,
            "picture": "https://example.com/emulator-user.png",
        }) else {
            unreachable!("object literal")
        };
        map
    }
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            client_id: "emulator-client".into(),
            client_secret: "emulator-client-secret-0123456789abcdefghijklmno".into(),
            default_audience: Some(DEFAULT_AUDIENCE.into()),
            refresh_token_policy: vec![DEFAULT_AUDIENCE.into(), ANALYTICS_AUDIENCE.into()],
            rotation: true,
            access_token_lifetime: 3600,
            id_token_lifetime: 36000,
            user: Self::default_user(),
            connections: vec![FederatedConnection {
                name: "google-oauth2".into(),
                access_token: "ya29.emulator-google-access-token".into(),
                scope: "https://www.googleapis.com/auth/calendar.readonly".into(),
                expires_in: 3600,
            }],
            denied_scopes: Vec::new(),
        }
    }
}

/// One HTTP request as the emulator received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path without the query string (not percent-decoded).
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Headers as received (names as sent by the client).
    pub headers: Vec<(String, String)>,
    /// Decoded `application/x-www-form-urlencoded` (or JSON object) body parameters.
    pub form: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The client's address (one per TCP connection: equal addresses mean a reused
    /// keep-alive connection).
    pub peer: Option<std::net::SocketAddr>,
}

impl RecordedRequest {
    /// The first value of parameter `name`, from the form body, else from the query.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .chain(self.query.iter())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A failure to inject with [`Emulator::fail_next`].
#[derive(Clone, Debug)]
pub enum Failure {
    /// Answer with this status and a small JSON body.
    Status(u16),
    /// Sleep, then answer normally (simulated server latency).
    Slow(Duration),
    /// 502 with a `text/html` error page (a proxy in the way).
    Html,
    /// 200 `application/json` with a truncated JSON body.
    MalformedJson,
    /// 200 with an empty body.
    Empty,
    /// This status and JSON body (e.g. `mfa_required`).
    OAuth {
        /// HTTP status.
        status: u16,
        /// JSON body.
        body: Value,
    },
}

/// A refresh-token grant minted directly with [`Emulator::issue_refresh_token`].
#[derive(Clone, Debug)]
pub struct RefreshGrant {
    /// Subject; `None` means the configured user's `sub`.
    pub sub: Option<String>,
    /// Granted scope (default `openid profile email offline_access`).
    pub scope: String,
    /// Audience of the original login; `None` means the default audience.
    pub audience: Option<String>,
}

impl Default for RefreshGrant {
    fn default() -> Self {
        RefreshGrant {
            sub: None,
            scope: "openid profile email offline_access".into(),
            audience: None,
        }
    }
}

/// Which bundled key signs a token minted with [`Emulator::mint_id_token`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyChoice {
    /// The current signing key (published in the JWKS).
    #[default]
    Current,
    /// The previous key (published after a rotation; the current key before any rotation).
    Previous,
    /// A bundled key that the JWKS does not publish right now.
    Unpublished,
    /// Bundled key number `n` (0..3, wraps).
    Bundled(usize),
}

/// The algorithm (or forgery) used by [`Emulator::mint_id_token`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignAlg {
    /// A genuine RS256 signature.
    #[default]
    Rs256,
    /// `alg: none` with an empty signature.
    None,
    /// HS256 keyed with the client secret (the classic key-confusion attack).
    Hs256,
    /// RS256 header and kid, but a corrupted signature.
    BadSignature,
}

/// Options for minting test tokens, for negative tests.
#[derive(Clone, Debug, Default)]
pub struct SignOptions {
    /// Which key signs.
    pub key: KeyChoice,
    /// Which algorithm (or forgery).
    pub alg: SignAlg,
    /// Header overrides applied last (`Value::Null` removes the parameter), e.g. `kid`.
    pub header: Map<String, Value>,
}

/// A login remembered between `/authorize` and the code exchange.
#[derive(Clone, Debug)]
pub(crate) struct CodeEntry {
    pub(crate) redirect_uri: Option<String>,
    pub(crate) code_challenge: Option<String>,
    pub(crate) code_challenge_method: String,
    pub(crate) scope: String,
    pub(crate) audience: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) org: Option<(String, String)>,
    pub(crate) authorization_details: Option<String>,
    pub(crate) sid: String,
    pub(crate) expires_at: u64,
}

/// A refresh token's server-side record.
#[derive(Clone, Debug)]
pub(crate) struct RefreshEntry {
    pub(crate) family: u64,
    pub(crate) sub: String,
    pub(crate) scope: String,
    pub(crate) audience: Option<String>,
    pub(crate) sid: String,
    pub(crate) org: Option<(String, String)>,
    pub(crate) rotated: bool,
}

/// Mutable emulator state.
pub(crate) struct State {
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) failures: Vec<(String, Failure, usize)>,
    pub(crate) current_key: usize,
    pub(crate) previous_key: Option<usize>,
    pub(crate) user: Map<String, Value>,
    pub(crate) authorize_error: Option<(String, String)>,
    pub(crate) refresh_tokens: HashMap<String, RefreshEntry>,
    pub(crate) revoked_families: HashSet<u64>,
    pub(crate) next_family: u64,
    pub(crate) reuse_detections: usize,
    pub(crate) codes: HashMap<String, CodeEntry>,
    pub(crate) par: HashMap<String, (Vec<(String, String)>, u64)>,
}

/// What the server thread and the handle share.
pub(crate) struct Shared {
    pub(crate) config: EmulatorConfig,
    pub(crate) base_url: String,
    pub(crate) state: Mutex<State>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not poison the emulator for everyone else.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn issuer(&self) -> String {
        format!("{}/", self.base_url)
    }
}

/// A running emulator. The server stops when this is dropped.
pub struct Emulator {
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Starts the emulator on `127.0.0.1` with an ephemeral port.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub fn start(config: EmulatorConfig) -> Emulator {
        // tiny_http writes the head and the body of a response separately and never sets
        // TCP_NODELAY, so Nagle's algorithm held the body until the client's delayed ACK
        // (~40 ms per request). On Linux accepted sockets inherit TCP_NODELAY from the
        // listening socket, so setting it there covers every connection.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        socket2::SockRef::from(&listener)
            .set_tcp_nodelay(true)
            .expect("set TCP_NODELAY");
        let server =
            Arc::new(tiny_http::Server::from_listener(listener, None).expect("serve 127.0.0.1:0"));
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .expect("an IP listener");
        let mut user = config.user.clone();
        if !user.contains_key("sub") {
            user.insert("sub".into(), "auth0|emulator-user".into());
        }
        let _ = jwt::keys(); // parse the keys before the first request needs them
        let shared = Arc::new(Shared {
            base_url: format!("http://127.0.0.1:{port}"),
            state: Mutex::new(State {
                requests: Vec::new(),
                failures: Vec::new(),
                current_key: 0,
                previous_key: None,
                user,
                authorize_error: None,
                refresh_tokens: HashMap::new(),
                revoked_families: HashSet::new(),
                next_family: 1,
                reuse_detections: 0,
                codes: HashMap::new(),
                par: HashMap::new(),
            }),
            config,
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (server, shared, stop) = (server.clone(), shared.clone(), stop.clone());
            std::thread::Builder::new()
                .name("auth0-emulator".into())
                .spawn(move || server::accept_loop(&server, &shared, &stop))
                .expect("spawn emulator thread")
        };
        Emulator {
            shared,
            server,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`: also the SDK's `domain`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The issuer, `base_url + "/"`.
    pub fn issuer(&self) -> String {
        self.shared.issuer()
    }

    /// `base_url + path` (path starting with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.shared.base_url)
    }

    /// The registered client's id.
    pub fn client_id(&self) -> &str {
        &self.shared.config.client_id
    }

    /// The registered client's secret.
    pub fn client_secret(&self) -> &str {
        &self.shared.config.client_secret
    }

    /// The configuration the emulator runs with.
    pub fn config(&self) -> &EmulatorConfig {
        &self.shared.config
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The requests received on `path` (exact path, query excluded).
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// The `POST /oauth/token` requests.
    pub fn token_requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.path == "/oauth/token" && r.method == "POST")
            .cloned()
            .collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Makes the next `times` requests to `path` (any method) fail with `failure`.
    /// Injections for the same path queue up in call order.
    pub fn fail_next(&self, path: &str, failure: Failure, times: usize) {
        if times > 0 {
            self.shared
                .lock()
                .failures
                .push((path.to_string(), failure, times));
        }
    }

    /// Mints a live refresh token as if a login had happened (a new token family).
    pub fn issue_refresh_token(&self, grant: RefreshGrant) -> String {
        let mut state = self.shared.lock();
        let sub = grant.sub.unwrap_or_else(|| server::user_sub(&state.user));
        let family = state.next_family;
        state.next_family += 1;
        let token = server::random_token();
        state.refresh_tokens.insert(
            token.clone(),
            RefreshEntry {
                family,
                sub,
                scope: grant.scope,
                audience: grant
                    .audience
                    .or_else(|| self.shared.config.default_audience.clone()),
                sid: server::random_token(),
                org: None,
                rotated: false,
            },
        );
        token
    }

    /// Whether `refresh_token` would currently be accepted (known, not rotated away, family
    /// not revoked).
    pub fn refresh_token_is_live(&self, refresh_token: &str) -> bool {
        let state = self.shared.lock();
        state
            .refresh_tokens
            .get(refresh_token)
            .is_some_and(|e| !e.rotated && !state.revoked_families.contains(&e.family))
    }

    /// Mints an RS256 access token (current key) for `audience` (an empty audience means the
    /// `/userinfo` audience only).
    pub fn mint_access_token(
        &self,
        sub: &str,
        audience: &str,
        scope: &str,
        lifetime_secs: u64,
    ) -> String {
        let aud = (!audience.is_empty()).then_some(audience);
        server::access_token(&self.shared, sub, aud, scope, lifetime_secs)
    }

    /// Mints an ID token. It starts from valid claims (`iss`, `aud` = client id, `iat`, `exp`,
    /// `sid` and the user's claims), then applies `claims` as overrides (`Value::Null` removes a
    /// claim), and is signed as `opts` says (key choice, `alg` forgeries, header overrides).
    pub fn mint_id_token(&self, claims: Map<String, Value>, opts: SignOptions) -> String {
        let user = self.shared.lock().user.clone();
        let mut payload =
            server::id_token_claims(&self.shared, &user, None, &server::random_token(), None);
        jwt::apply_overrides(&mut payload, &claims);
        self.sign_with(&payload, &opts)
    }

    /// Mints a valid back-channel logout token (`iss`, `aud`, `iat`, `exp`, `jti`, `events`,
    /// and `sub` / `sid` when given), then applies `extra` as overrides (`Value::Null`
    /// removes a claim). Signed with the current key.
    pub fn mint_logout_token(
        &self,
        sub: Option<&str>,
        sid: Option<&str>,
        extra: Map<String, Value>,
    ) -> String {
        let now = server::now();
        let mut payload = Map::new();
        payload.insert("iss".into(), self.issuer().into());
        payload.insert("aud".into(), self.client_id().into());
        payload.insert("iat".into(), now.into());
        payload.insert("exp".into(), (now + 120).into());
        payload.insert("jti".into(), server::random_token().into());
        payload.insert("events".into(), json!({ BACKCHANNEL_LOGOUT_EVENT: {} }));
        if let Some(sub) = sub {
            payload.insert("sub".into(), sub.into());
        }
        if let Some(sid) = sid {
            payload.insert("sid".into(), sid.into());
        }
        jwt::apply_overrides(&mut payload, &extra);
        self.sign_with(&payload, &SignOptions::default())
    }

    /// Signs an arbitrary payload as `opts` says.
    pub fn sign_claims(&self, payload: &Map<String, Value>, opts: &SignOptions) -> String {
        self.sign_with(payload, opts)
    }

    fn sign_with(&self, payload: &Map<String, Value>, opts: &SignOptions) -> String {
        let keys = jwt::keys();
        let (current, previous) = {
            let s = self.shared.lock();
            (s.current_key, s.previous_key)
        };
        let index = match opts.key {
            KeyChoice::Current => current,
            KeyChoice::Previous => previous.unwrap_or(current),
            KeyChoice::Unpublished => (0..keys.len())
                .find(|i| *i != current && Some(*i) != previous)
                .unwrap_or((current + 1) % keys.len()),
            KeyChoice::Bundled(n) => n % keys.len(),
        };
        let key = &keys[index];
        match opts.alg {
            SignAlg::Rs256 => jwt::sign_rs256(key, payload, &opts.header),
            SignAlg::BadSignature => {
                let token = jwt::sign_rs256(key, payload, &opts.header);
                let (input, sig) = token.rsplit_once('.').unwrap_or((&token, ""));
                let mut sig = jwt::b64_decode(sig).unwrap_or_default();
                if let Some(b) = sig.last_mut() {
                    *b ^= 0x01;
                }
                format!("{input}.{}", jwt::b64(&sig))
            }
            SignAlg::None | SignAlg::Hs256 => {
                let mut header = Map::new();
                let alg = if opts.alg == SignAlg::None {
                    "none"
                } else {
                    "HS256"
                };
                header.insert("alg".into(), alg.into());
                header.insert("typ".into(), "JWT".into());
                header.insert("kid".into(), key.kid.clone().into());
                jwt::apply_overrides(&mut header, &opts.header);
                let input = jwt::signing_input(&header, payload);
                if opts.alg == SignAlg::None {
                    format!("{input}.")
                } else {
                    let mac = jwt::hmac_sha256(self.client_secret().as_bytes(), input.as_bytes());
                    format!("{input}.{}", jwt::b64(&mac))
                }
            }
        }
    }

    /// Rotates the signing key: new tokens are signed with the next bundled key; the JWKS
    /// publishes the new key and the one before it.
    pub fn rotate_signing_key(&self) {
        let mut s = self.shared.lock();
        s.previous_key = Some(s.current_key);
        s.current_key = (s.current_key + 1) % jwt::keys().len();
    }

    /// The `kid` of the current signing key.
    pub fn current_kid(&self) -> String {
        jwt::keys()[self.shared.lock().current_key].kid.clone()
    }

    /// How many refresh-token families have been revoked (reuse detection or `/oauth/revoke`).
    pub fn revoked_families(&self) -> usize {
        self.shared.lock().revoked_families.len()
    }

    /// How many times refresh-token reuse was detected.
    pub fn reuse_detections(&self) -> usize {
        self.shared.lock().reuse_detections
    }

    /// Replaces the test user's claims for the next logins and refreshes (`sub` is kept from
    /// the previous claims when absent).
    pub fn set_user_claims(&self, claims: Map<String, Value>) {
        let mut s = self.shared.lock();
        let mut claims = claims;
        if !claims.contains_key("sub") {
            let sub = server::user_sub(&s.user);
            claims.insert("sub".into(), sub.into());
        }
        s.user = claims;
    }

    /// The test user's current claims.
    pub fn user_claims(&self) -> Map<String, Value> {
        self.shared.lock().user.clone()
    }

    /// When `Some((error, description))`, `/authorize` redirects back with that error
    /// instead of a code, until cleared with `None`.
    pub fn set_authorize_error(&self, error: Option<(String, String)>) {
        self.shared.lock().authorize_error = error;
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("base_url", &self.shared.base_url)
            .finish_non_exhaustive()
    }
}
