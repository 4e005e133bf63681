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
//! `/oauth/token` (authorization code + PKCE, refresh token with MRRT policies and rotation with
//! reuse detection, federated connection token exchange), `/oauth/revoke`, `/v2/logout`,
//! `/oidc/logout` (both deliver a back-channel logout token when a URI is configured),
//! `/userinfo` and a protected API at `/api/data`. The crate's `README.md` lists which Auth0
//! behaviours are emulated, which are not, and the Auth0 documentation each follows.
//!
//! Every request is recorded (before it is answered, injected failures included) so tests
//! can assert what went over the wire, and failures can be injected per path.

mod admin;
mod config;
mod jwt;
mod server;
mod state;
pub mod tls;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

pub use admin::{CibaStep, KeyChoice, RefreshGrant, SignAlg, SignOptions};
pub use config::{
    ANALYTICS_API_SCOPES, DEFAULT_API_SCOPES, EmulatorConfig, FederatedConnection,
    MY_ACCOUNT_SCOPES, MfaPolicy, MfaRequirements, MfaTarget, ProviderAlg, ProviderShape,
    RefreshTokenPolicy, TlsClientAuth, TokenExchangeProfile,
};
pub use jwt::{decode_header, decode_payload};
pub use server::backchannel::{BackchannelDelivery, DeliveryOutcome, LogoutTrigger};
/// A passwordless message the emulator "sent" through `/passwordless/start`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordlessMessage {
    /// `email` or `sms`.
    pub connection: String,
    /// The email address or phone number.
    pub recipient: String,
    /// `code` or `link`.
    pub send: String,
    /// The `x-request-language` header, when sent.
    pub language: Option<String>,
    /// The one-time code, for `send=code`.
    pub code: Option<String>,
    /// The magic link (the application's callback with `code` and `state`), for `send=link`.
    pub link: Option<String>,
}

/// An account linking (or unlinking) request `/authorize` accepted: the session's ID token
/// named the user in `id_token_hint`, and the identity of `connection` was (un)linked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountLinkRequest {
    /// `link_account` or `unlink_account`.
    pub action: String,
    /// The user whose account changed (`sub` of the `id_token_hint`).
    pub sub: String,
    /// `requested_connection`.
    pub connection: String,
    /// `requested_connection_scope`, when sent.
    pub connection_scope: Option<String>,
}

pub(crate) use state::{CibaEntry, CodeEntry, RefreshEntry, Shared, State};

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
/// The CIBA grant type (OpenID CIBA Core 1.0 §10.1): a poll of a backchannel authentication.
pub const CIBA_GRANT_TYPE: &str = "urn:openid:params:grant-type:ciba";
/// The token exchange grant type (RFC 8693), used by Custom Token Exchange.
pub const TOKEN_EXCHANGE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The passwordless one-time-code grant type.
/// The MFA one-time-password grant.
pub const MFA_OTP_GRANT_TYPE: &str = "http://auth0.com/oauth/grant-type/mfa-otp";
/// The MFA out-of-band grant.
pub const MFA_OOB_GRANT_TYPE: &str = "http://auth0.com/oauth/grant-type/mfa-oob";
/// The MFA recovery-code grant.
pub const MFA_RECOVERY_CODE_GRANT_TYPE: &str =
    "http://auth0.com/oauth/grant-type/mfa-recovery-code";
pub const PASSWORDLESS_OTP_GRANT_TYPE: &str = "http://auth0.com/oauth/grant-type/passwordless/otp";
/// The WebAuthn (passkey) grant type.
pub const WEBAUTHN_GRANT_TYPE: &str = "urn:okta:params:oauth:grant-type:webauthn";
pub use server::passkey::{DEFAULT_PASSKEY_REALM, credential_for as passkey_credential_for};
/// The subject token type of the default Custom Token Exchange profile.
pub const LEGACY_TOKEN_TYPE: &str = "urn:acme:legacy-token";
/// The subject token the default Custom Token Exchange profile accepts (for the default user).
pub const LEGACY_SUBJECT_TOKEN: &str = "legacy-session-of-emulator-user";

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
    /// Set when the request came through the TLS listener (the mTLS endpoint aliases), with
    /// the client certificate it presented.
    pub tls: Option<tls::TlsPeer>,
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
    /// Run this, then answer normally: something that happens while the request is in
    /// flight, deterministically (the user logs out while their refresh is being answered,
    /// the store goes down, …).
    Before(Hook),
    /// 502 with a `text/html` error page (a proxy in the way).
    Html,
    /// 200 `application/json` with a truncated JSON body.
    MalformedJson,
    /// 200 with an empty body.
    Empty,
    /// This status and JSON body, verbatim (for `mfa_required` by configuration see
    /// [`MfaPolicy`]).
    OAuth {
        /// HTTP status.
        status: u16,
        /// JSON body.
        body: Value,
    },
}

/// A callback for [`Failure::Before`]; runs on the emulator's thread, outside its lock.
#[derive(Clone)]
pub struct Hook(pub Arc<dyn Fn() + Send + Sync>);

impl Hook {
    /// A hook running `f`.
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> Self {
        Hook(Arc::new(f))
    }
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hook(..)")
    }
}

/// A running emulator. The server stops when this is dropped.
pub struct Emulator {
    /// The TLS listener in front of the HTTP one, when an mTLS client is registered.
    tls_front: Option<tls::TlsFront>,
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
        // With an mTLS client registered, a TLS listener in front of this one (src/tls.rs).
        let tls_peers = tls::Peers::default();
        let tls_front = config.tls_client_auth.as_ref().map(|_| {
            tls::TlsFront::start(
                std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                tls_peers.clone(),
            )
        });
        let shared = Arc::new(Shared {
            tls_base_url: tls_front.as_ref().map(tls::TlsFront::base_url),
            tls_peers,
            base_url: format!("http://127.0.0.1:{port}"),
            state: Arc::new(Mutex::new(State {
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
                sessions: HashMap::new(),
                backchannel_logout_uri: config.backchannel_logout_uri.clone(),
                deliveries: Vec::new(),
                mfa_policies: config.mfa_policies.clone(),
                mfa: server::mfa::MfaState::new(),
                assertion_jtis: HashMap::new(),
                accepted_assertions: Vec::new(),
                ciba: HashMap::new(),
                ciba_script: vec![CibaStep::Approve],
                account_links: Vec::new(),
                passwordless_codes: HashMap::new(),
                passwordless_messages: Vec::new(),
                dpop: Default::default(),
                my_account: Default::default(),
                passkey: Default::default(),
            })),
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
            tls_front,
            shared,
            server,
            stop,
            thread: Some(thread),
        }
    }

    /// Another custom domain of this emulator's tenant (Auth0's multiple custom domains): a
    /// listener on its own port whose issuer, discovery document and endpoints name that
    /// port, sharing everything else with this one — configuration, user, signing keys,
    /// codes, refresh tokens, sessions and the request log (tell the domains' requests
    /// apart with [`Emulator::requests_on_domain`]). No TLS listener. Stops when dropped.
    pub fn custom_domain(&self) -> Emulator {
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
        let shared = Arc::new(Shared {
            config: self.shared.config.clone(),
            base_url: format!("http://127.0.0.1:{port}"),
            tls_base_url: None,
            tls_peers: tls::Peers::default(),
            state: self.shared.state.clone(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (server, shared, stop) = (server.clone(), shared.clone(), stop.clone());
            std::thread::Builder::new()
                .name("auth0-emulator-domain".into())
                .spawn(move || server::accept_loop(&server, &shared, &stop))
                .expect("spawn emulator thread")
        };
        Emulator {
            tls_front: None,
            shared,
            server,
            stop,
            thread: Some(thread),
        }
    }

    /// The requests on `path` (as [`Emulator::requests_to`]) that reached this domain:
    /// whose `Host` header names this listener (the tenant's other custom domains share the
    /// request log).
    pub fn requests_on_domain(&self, path: &str) -> Vec<RecordedRequest> {
        let host = self
            .shared
            .base_url
            .trim_start_matches("http://")
            .to_owned();
        self.requests_to(path)
            .into_iter()
            .filter(|r| {
                r.headers
                    .iter()
                    .any(|(n, v)| n.eq_ignore_ascii_case("host") && *v == host)
            })
            .collect()
    }

    /// `http://127.0.0.1:PORT`: also the SDK's `domain`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// `https://127.0.0.1:PORT`: the TLS listener the mTLS endpoint aliases point at, when a
    /// [`tls_client_auth`](EmulatorConfig::tls_client_auth) client is registered. Its server
    /// certificate is issued by [`tls::TEST_CA_PEM`] for `127.0.0.1` and `localhost`.
    pub fn tls_base_url(&self) -> Option<String> {
        self.shared.tls_base_url.clone()
    }

    /// The issuer: `base_url + "/"` for the Auth0 shape; `base_url + issuer_path` (no
    /// trailing slash) for a generic provider.
    pub fn issuer(&self) -> String {
        self.shared.issuer()
    }

    /// The issuer URL without trailing slash: what the SDK is configured with (its `domain`).
    pub fn issuer_url(&self) -> String {
        self.shared.issuer_base()
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

    /// The `POST /oauth/token` requests (below the issuer path too, for a path issuer).
    pub fn token_requests(&self) -> Vec<RecordedRequest> {
        let below_issuer = format!("{}/oauth/token", self.shared.config.provider.issuer_path);
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| (r.path == "/oauth/token" || r.path == below_issuer) && r.method == "POST")
            .cloned()
            .collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // The TLS listener first: it forwards to the HTTP one.
        drop(self.tls_front.take());
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
