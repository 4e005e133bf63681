//! Shared by `login.rs`: the login, logout and back-channel logout scenarios written once
//! against [`LoginApi`], which both clients implement, plus the test acting as the browser
//! (a cookie jar fed by `Set-Cookie`, and `GET /authorize` with redirects disabled).
#![allow(dead_code)]

use crate::adapter_support::{self, SECRET};
use auth0_emulator::{Emulator, EmulatorConfig};
use auth0_server::protocol::dpop::DpopHeaders;
use auth0_server::protocol::effect::LogoutTokenClaims;
use auth0_server::protocol::session::StateData;
use auth0_server::protocol::transaction::TransactionData;
use auth0_server::store::memory::{MemoryStateStore, MemoryTransactionStore};
use auth0_server::store::{CookieOptions, StateStore, StoreError, TransactionStore};
use auth0_server::{
    AccessToken, Config, ConnectionToken, ConnectionTokenRequest, Error, LoginResult,
    LogoutOptions, StartLoginOptions, blocking, nonblocking,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The application's callback URL.
pub const CALLBACK: &str = "http://127.0.0.1:3000/callback";

/// The login operations of a client whose stores take [`CookieOptions`].
pub trait LoginApi {
    /// `start_interactive_login`.
    fn start(&self, o: StartLoginOptions, c: &mut CookieOptions) -> Result<url::Url, Error>;
    /// `complete_interactive_login`.
    fn complete(&self, callback: &str, c: &mut CookieOptions) -> Result<LoginResult, Error>;
    /// `logout`.
    fn logout(&self, o: LogoutOptions, c: &mut CookieOptions) -> Result<url::Url, Error>;
    /// `handle_backchannel_logout`.
    fn backchannel(&self, token: &str, c: &mut CookieOptions) -> Result<LogoutTokenClaims, Error>;
    /// `get_access_token`.
    fn token(&self, c: &mut CookieOptions) -> Result<AccessToken, Error>;
    /// The raw session the state store holds for these cookies.
    fn stored(&self, c: &mut CookieOptions) -> Option<std::sync::Arc<StateData>>;
    /// `get_access_token_for_connection`.
    fn connection(
        &self,
        r: ConnectionTokenRequest,
        c: &mut CookieOptions,
    ) -> Result<ConnectionToken, Error>;
    /// `start_link_user` (or `start_unlink_user` when `unlink`).
    fn link(
        &self,
        unlink: bool,
        o: auth0_server::LinkUserOptions,
        c: &mut CookieOptions,
    ) -> Result<url::Url, Error>;
    /// `dpop_headers`.
    fn dpop_headers(
        &self,
        token: &AccessToken,
        method: &str,
        url: &str,
        nonce: Option<&str>,
    ) -> Result<DpopHeaders, Error>;
}

impl<S, T> LoginApi for blocking::ServerClient<S, T>
where
    S: StateStore<Options = CookieOptions> + Send + Sync + 'static,
    T: TransactionStore<Options = CookieOptions> + Send + Sync + 'static,
{
    fn start(&self, o: StartLoginOptions, c: &mut CookieOptions) -> Result<url::Url, Error> {
        self.start_interactive_login(o, c)
    }
    fn complete(&self, callback: &str, c: &mut CookieOptions) -> Result<LoginResult, Error> {
        self.complete_interactive_login(callback, c)
    }
    fn logout(&self, o: LogoutOptions, c: &mut CookieOptions) -> Result<url::Url, Error> {
        blocking::ServerClient::logout(self, o, c)
    }
    fn backchannel(&self, token: &str, c: &mut CookieOptions) -> Result<LogoutTokenClaims, Error> {
        self.handle_backchannel_logout(token, c)
    }
    fn token(&self, c: &mut CookieOptions) -> Result<AccessToken, Error> {
        self.get_access_token(c)
    }
    fn stored(&self, c: &mut CookieOptions) -> Option<std::sync::Arc<StateData>> {
        self.state_store()
            .get(c, auth0_server::clock::Clock::system().now())
            .expect("state store get")
    }
    fn connection(
        &self,
        r: ConnectionTokenRequest,
        c: &mut CookieOptions,
    ) -> Result<ConnectionToken, Error> {
        self.get_access_token_for_connection(r, c)
    }
    fn link(
        &self,
        unlink: bool,
        o: auth0_server::LinkUserOptions,
        c: &mut CookieOptions,
    ) -> Result<url::Url, Error> {
        if unlink {
            self.start_unlink_user(o, c)
        } else {
            self.start_link_user(o, c)
        }
    }
    fn dpop_headers(
        &self,
        token: &AccessToken,
        method: &str,
        url: &str,
        nonce: Option<&str>,
    ) -> Result<DpopHeaders, Error> {
        blocking::ServerClient::dpop_headers(self, token, method, url, nonce)
    }
}

/// The async client on its own runtime, driven synchronously.
pub struct Async<S, T> {
    client: nonblocking::ServerClient<S, T, adapter_support::ReqwestClient>,
    rt: tokio::runtime::Runtime,
}

impl<S, T> LoginApi for Async<S, T>
where
    S: StateStore<Options = CookieOptions> + Send + Sync + 'static,
    T: TransactionStore<Options = CookieOptions> + Send + Sync + 'static,
{
    fn start(&self, o: StartLoginOptions, c: &mut CookieOptions) -> Result<url::Url, Error> {
        self.rt.block_on(self.client.start_interactive_login(o, c))
    }
    fn complete(&self, callback: &str, c: &mut CookieOptions) -> Result<LoginResult, Error> {
        self.rt
            .block_on(self.client.complete_interactive_login(callback, c))
    }
    fn logout(&self, o: LogoutOptions, c: &mut CookieOptions) -> Result<url::Url, Error> {
        self.rt.block_on(self.client.logout(o, c))
    }
    fn backchannel(&self, token: &str, c: &mut CookieOptions) -> Result<LogoutTokenClaims, Error> {
        self.rt
            .block_on(self.client.handle_backchannel_logout(token, c))
    }
    fn token(&self, c: &mut CookieOptions) -> Result<AccessToken, Error> {
        self.rt.block_on(self.client.get_access_token(c))
    }
    fn stored(&self, c: &mut CookieOptions) -> Option<std::sync::Arc<StateData>> {
        self.client
            .state_store()
            .get(c, auth0_server::clock::Clock::system().now())
            .expect("state store get")
    }
    fn connection(
        &self,
        r: ConnectionTokenRequest,
        c: &mut CookieOptions,
    ) -> Result<ConnectionToken, Error> {
        self.rt
            .block_on(self.client.get_access_token_for_connection(r, c))
    }
    fn link(
        &self,
        unlink: bool,
        o: auth0_server::LinkUserOptions,
        c: &mut CookieOptions,
    ) -> Result<url::Url, Error> {
        if unlink {
            self.rt.block_on(self.client.start_unlink_user(o, c))
        } else {
            self.rt.block_on(self.client.start_link_user(o, c))
        }
    }
    fn dpop_headers(
        &self,
        token: &AccessToken,
        method: &str,
        url: &str,
        nonce: Option<&str>,
    ) -> Result<DpopHeaders, Error> {
        self.client.dpop_headers(token, method, url, nonce)
    }
}

/// Builds either client over any pair of cookie-option stores.
pub trait Clients {
    /// A client over these stores.
    fn build<S, T>(config: Config, state: S, tx: T) -> Box<dyn LoginApi>
    where
        S: StateStore<Options = CookieOptions> + Send + Sync + 'static,
        T: TransactionStore<Options = CookieOptions> + Send + Sync + 'static;
}

/// The blocking (`ureq`) client.
pub struct Blocking;

impl Clients for Blocking {
    fn build<S, T>(config: Config, state: S, tx: T) -> Box<dyn LoginApi>
    where
        S: StateStore<Options = CookieOptions> + Send + Sync + 'static,
        T: TransactionStore<Options = CookieOptions> + Send + Sync + 'static,
    {
        Box::new(blocking::ServerClient::builder(config, state, tx).build())
    }
}

/// The async client (`reqwest` on tokio).
pub struct Nonblocking;

impl Clients for Nonblocking {
    fn build<S, T>(config: Config, state: S, tx: T) -> Box<dyn LoginApi>
    where
        S: StateStore<Options = CookieOptions> + Send + Sync + 'static,
        T: TransactionStore<Options = CookieOptions> + Send + Sync + 'static,
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        // reqwest's client must be created inside the runtime it runs on.
        let http = rt.block_on(async { adapter_support::reqwest_client(TIMEOUT) });
        Box::new(Async {
            client: nonblocking::ServerClient::builder(config, state, tx, http).build(),
            rt,
        })
    }
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// Either client with a client certificate and extra trusted roots (the mTLS tests).
pub trait TlsClients {
    /// A client over these stores whose HTTP client presents `certificate` and trusts `roots`
    /// too.
    fn build_tls<S, T>(
        config: Config,
        state: S,
        tx: T,
        certificate: auth0_server::http::ClientCertificate,
        roots: auth0_server::http::RootCertificates,
    ) -> Box<dyn LoginApi>
    where
        S: StateStore<Options = CookieOptions> + Send + Sync + 'static,
        T: TransactionStore<Options = CookieOptions> + Send + Sync + 'static;
}

impl TlsClients for Blocking {
    fn build_tls<S, T>(
        config: Config,
        state: S,
        tx: T,
        certificate: auth0_server::http::ClientCertificate,
        roots: auth0_server::http::RootCertificates,
    ) -> Box<dyn LoginApi>
    where
        S: StateStore<Options = CookieOptions> + Send + Sync + 'static,
        T: TransactionStore<Options = CookieOptions> + Send + Sync + 'static,
    {
        Box::new(
            blocking::ServerClient::builder(config, state, tx)
                .client_certificate(certificate)
                .add_root_certificates(roots)
                .build(),
        )
    }
}

impl TlsClients for Nonblocking {
    fn build_tls<S, T>(
        config: Config,
        state: S,
        tx: T,
        certificate: auth0_server::http::ClientCertificate,
        roots: auth0_server::http::RootCertificates,
    ) -> Box<dyn LoginApi>
    where
        S: StateStore<Options = CookieOptions> + Send + Sync + 'static,
        T: TransactionStore<Options = CookieOptions> + Send + Sync + 'static,
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let http = rt.block_on(async {
            adapter_support::ReqwestClient::builder()
                .timeout(TIMEOUT)
                .client_certificate(certificate)
                .add_root_certificates(roots)
                .build()
                .expect("reqwest client with a client certificate")
        });
        Box::new(Async {
            client: nonblocking::ServerClient::builder(config, state, tx, http).build(),
            rt,
        })
    }
}

/// A [`MemoryStateStore`] the test can also inspect (how many sessions it holds).
#[derive(Clone, Default)]
pub struct Sessions(pub Arc<MemoryStateStore>);

impl Sessions {
    /// How many sessions are stored.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no session is stored.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl StateStore for Sessions {
    type Options = CookieOptions;
    fn get(
        &self,
        o: &mut CookieOptions,
        now: auth0_server::protocol::time::UnixTime,
    ) -> Result<Option<std::sync::Arc<StateData>>, StoreError> {
        self.0.get(o, now)
    }
    fn set(
        &self,
        s: &StateData,
        o: &mut CookieOptions,
        now: auth0_server::protocol::time::UnixTime,
    ) -> Result<(), StoreError> {
        self.0.set(s, o, now)
    }
    fn delete(
        &self,
        o: &mut CookieOptions,
        now: auth0_server::protocol::time::UnixTime,
    ) -> Result<(), StoreError> {
        self.0.delete(o, now)
    }
    fn delete_by_logout_token(
        &self,
        claims: &LogoutTokenClaims,
        o: &mut CookieOptions,
        now: auth0_server::protocol::time::UnixTime,
    ) -> Result<(), StoreError> {
        self.0.delete_by_logout_token(claims, o, now)
    }
}

/// A [`MemoryTransactionStore`] shared with the test.
#[derive(Clone, Default)]
pub struct Transactions(pub Arc<MemoryTransactionStore>);

impl TransactionStore for Transactions {
    type Options = CookieOptions;
    fn get(
        &self,
        k: &str,
        o: &mut CookieOptions,
        now: auth0_server::protocol::time::UnixTime,
    ) -> Result<Option<TransactionData>, StoreError> {
        self.0.get(k, o, now)
    }
    fn set(
        &self,
        k: &str,
        t: &TransactionData,
        o: &mut CookieOptions,
        now: auth0_server::protocol::time::UnixTime,
    ) -> Result<(), StoreError> {
        self.0.set(k, t, o, now)
    }
    fn delete(
        &self,
        k: &str,
        o: &mut CookieOptions,
        now: auth0_server::protocol::time::UnixTime,
    ) -> Result<(), StoreError> {
        self.0.delete(k, o, now)
    }
}

/// A browser's cookie jar, fed only by `Set-Cookie` headers.
#[derive(Clone, Debug, Default)]
pub struct Jar(pub BTreeMap<String, String>);

impl Jar {
    /// Applies a response's `Set-Cookie` headers: `Max-Age=0` deletes, anything else stores.
    pub fn apply(&mut self, response: &CookieOptions) {
        for header in response.set_cookie_headers() {
            let text = header.to_str().expect("ASCII Set-Cookie");
            let (pair, attrs) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if attrs.split(';').any(|a| a.trim() == "Max-Age=0") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    /// The next request as the browser sends it: one `Cookie` header.
    pub fn request(&self) -> CookieOptions {
        let mut headers = http::HeaderMap::new();
        if !self.0.is_empty() {
            let line: Vec<String> = self.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
            headers.insert(http::header::COOKIE, line.join("; ").parse().unwrap());
        }
        CookieOptions::from_request_headers(&headers)
    }

    /// The cookie names held.
    pub fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
}

/// The first value of query parameter `name` in `url`.
pub fn query(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Every query parameter name of `url`, in order.
pub fn query_names(url: &url::Url) -> Vec<String> {
    url.query_pairs().map(|(k, _)| k.into_owned()).collect()
}

/// The browser follows the authorization URL: `GET` without following redirects; returns the
/// `Location` of the emulator's 302.
pub fn follow(authorize_url: &url::Url) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .get(authorize_url.as_str())
        .call()
        .expect("GET /authorize");
    assert_eq!(response.status().as_u16(), 302, "authorize redirects");
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
        .to_owned()
}

/// One browser's view of the application: its cookies and the client it talks to.
pub struct Browser<'a> {
    /// The application's client.
    pub api: &'a dyn LoginApi,
    /// The browser's cookies.
    pub jar: Jar,
}

impl<'a> Browser<'a> {
    /// A browser without cookies.
    pub fn new(api: &'a dyn LoginApi) -> Self {
        Browser {
            api,
            jar: Jar::default(),
        }
    }

    /// Runs `f` as one request of this browser: its cookies in, `Set-Cookie` applied after.
    pub fn request<R>(&mut self, f: impl FnOnce(&dyn LoginApi, &mut CookieOptions) -> R) -> R {
        let mut options = self.jar.request();
        let r = f(self.api, &mut options);
        self.jar.apply(&options);
        r
    }

    /// `start_interactive_login`, expected to succeed.
    pub fn start(&mut self, options: StartLoginOptions) -> url::Url {
        self.request(|api, c| api.start(options, c))
            .expect("start_interactive_login")
    }

    /// `complete_interactive_login` with `callback`.
    pub fn complete(&mut self, callback: &str) -> Result<LoginResult, Error> {
        self.request(|api, c| api.complete(callback, c))
    }

    /// Starts a login and follows the authorization URL: (authorization URL, callback URL).
    pub fn authorize(&mut self, options: StartLoginOptions) -> (url::Url, String) {
        let url = self.start(options);
        let callback = follow(&url);
        (url, callback)
    }

    /// A whole login: start, `/authorize`, complete.
    pub fn login(&mut self, options: StartLoginOptions) -> (url::Url, String, LoginResult) {
        let (url, callback) = self.authorize(options);
        let result = self
            .complete(&callback)
            .expect("complete_interactive_login");
        (url, callback, result)
    }

    /// The session the store holds for this browser's cookies.
    pub fn session(&mut self) -> Option<std::sync::Arc<StateData>> {
        self.request(|api, c| api.stored(c))
    }
}

/// An emulator, and a client of kind `C` with memory stores the test can inspect.
pub struct Fixture {
    pub emu: Emulator,
    pub api: Box<dyn LoginApi>,
    pub sessions: Sessions,
    pub transactions: Transactions,
}

/// The emulator's client, redirecting to [`CALLBACK`], with the default audience.
pub fn config(emu: &Emulator) -> Config {
    adapter_support::config_builder(emu)
        .redirect_uri(CALLBACK)
        .audience(auth0_emulator::DEFAULT_AUDIENCE)
        .build()
        .expect("valid config")
}

impl Fixture {
    /// A default emulator and client.
    pub fn new<C: Clients>() -> Self {
        Self::with::<C>(EmulatorConfig::default())
    }

    /// A client of the emulator configured so.
    pub fn with<C: Clients>(emulator: EmulatorConfig) -> Self {
        let emu = Emulator::start(emulator);
        let sessions = Sessions::default();
        let transactions = Transactions::default();
        let api = C::build(config(&emu), sessions.clone(), transactions.clone());
        Fixture {
            emu,
            api,
            sessions,
            transactions,
        }
    }

    /// A new browser of this application.
    pub fn browser(&self) -> Browser<'_> {
        Browser::new(&*self.api)
    }
}

/// The session secret, for the cookie stores.
pub const COOKIE_SECRET: &str = SECRET;
