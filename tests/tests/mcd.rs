//! End-to-end: multiple custom domains through the blocking and the async client.
//!
//! The emulator serves two custom domains of one tenant (`Emulator::custom_domain`): two
//! listeners, each its own issuer and endpoints, sharing the client, user, signing keys,
//! refresh tokens and request log — as Auth0's custom domains do (a refresh token sent to
//! the wrong domain would even work there: the tests tell the domains' requests apart by
//! their `Host`). The application is served on two hosts, `app-a.test` and
//! `app-b.test`; its resolver maps the request's host to the custom domain, and one browser
//! (one cookie jar) visits both.

mod adapter_support;

use adapter_support::param;
use auth0_emulator::{ANALYTICS_AUDIENCE, DEFAULT_AUDIENCE, Emulator, EmulatorConfig};
use auth0_server::mcd::DomainAllowlist;
use auth0_server::protocol::ErrorCode;
use auth0_server::protocol::session::{Session, UserClaims};
use auth0_server::store::CookieOptions;
use auth0_server::store::memory::{MemoryStateStore, MemoryTransactionStore};
use auth0_server::{
    AccessToken, AccessTokenRequest, Config, Error, LinkUserOptions, LoginResult, LogoutOptions,
    StartLoginOptions, blocking, nonblocking,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

const CALLBACK: &str = "http://127.0.0.1:3000/callback";
const HOST_A: &str = "app-a.test";
const HOST_B: &str = "app-b.test";
/// A host whose resolver answer is not a custom domain (a URL with a path).
const HOST_BAD: &str = "app-bad.test";
const DISCOVERY: &str = "/.well-known/openid-configuration";

/// The operations under test, implemented by both clients so each scenario is written once.
trait Mcd {
    fn start(&self, o: &mut CookieOptions) -> Result<url::Url, Error>;
    fn complete(&self, callback: &str, o: &mut CookieOptions) -> Result<LoginResult, Error>;
    fn session(&self, o: &mut CookieOptions) -> Result<Option<Session>, Error>;
    fn user(&self, o: &mut CookieOptions) -> Result<Option<UserClaims>, Error>;
    fn token(&self, r: AccessTokenRequest, o: &mut CookieOptions) -> Result<AccessToken, Error>;
    fn logout(&self, o: &mut CookieOptions) -> Result<url::Url, Error>;
    fn backchannel(&self, token: &str, o: &mut CookieOptions) -> Result<(), Error>;
    fn link(&self, o: &mut CookieOptions) -> Result<url::Url, Error>;
    fn accounts(&self, o: &mut CookieOptions) -> Result<(), Error>;
}

type Blocking = blocking::ServerClient<MemoryStateStore, MemoryTransactionStore>;
type Async = nonblocking::ServerClient<
    MemoryStateStore,
    MemoryTransactionStore,
    auth0_server::http::ReqwestClient,
>;

impl Mcd for Blocking {
    fn start(&self, o: &mut CookieOptions) -> Result<url::Url, Error> {
        self.start_interactive_login(StartLoginOptions::default(), o)
    }
    fn complete(&self, callback: &str, o: &mut CookieOptions) -> Result<LoginResult, Error> {
        self.complete_interactive_login(callback, o)
    }
    fn session(&self, o: &mut CookieOptions) -> Result<Option<Session>, Error> {
        self.get_session(o)
    }
    fn user(&self, o: &mut CookieOptions) -> Result<Option<UserClaims>, Error> {
        self.get_user(o)
    }
    fn token(&self, r: AccessTokenRequest, o: &mut CookieOptions) -> Result<AccessToken, Error> {
        self.get_access_token_with(r, o)
    }
    fn logout(&self, o: &mut CookieOptions) -> Result<url::Url, Error> {
        ServerClient::logout(self, LogoutOptions::default(), o)
    }
    fn backchannel(&self, token: &str, o: &mut CookieOptions) -> Result<(), Error> {
        self.handle_backchannel_logout(token, o).map(|_| ())
    }
    fn link(&self, o: &mut CookieOptions) -> Result<url::Url, Error> {
        self.start_link_user(LinkUserOptions::new("google-oauth2"), o)
    }
    fn accounts(&self, o: &mut CookieOptions) -> Result<(), Error> {
        self.list_connected_accounts(None, None, None, o)
            .map(|_| ())
    }
}

use blocking::ServerClient;

struct AsyncClient {
    client: Async,
    rt: tokio::runtime::Runtime,
}

impl Mcd for AsyncClient {
    fn start(&self, o: &mut CookieOptions) -> Result<url::Url, Error> {
        self.rt.block_on(
            self.client
                .start_interactive_login(StartLoginOptions::default(), o),
        )
    }
    fn complete(&self, callback: &str, o: &mut CookieOptions) -> Result<LoginResult, Error> {
        self.rt
            .block_on(self.client.complete_interactive_login(callback, o))
    }
    fn session(&self, o: &mut CookieOptions) -> Result<Option<Session>, Error> {
        self.rt.block_on(self.client.get_session(o))
    }
    fn user(&self, o: &mut CookieOptions) -> Result<Option<UserClaims>, Error> {
        self.rt.block_on(self.client.get_user(o))
    }
    fn token(&self, r: AccessTokenRequest, o: &mut CookieOptions) -> Result<AccessToken, Error> {
        self.rt.block_on(self.client.get_access_token_with(r, o))
    }
    fn logout(&self, o: &mut CookieOptions) -> Result<url::Url, Error> {
        self.rt
            .block_on(self.client.logout(LogoutOptions::default(), o))
    }
    fn backchannel(&self, token: &str, o: &mut CookieOptions) -> Result<(), Error> {
        self.rt
            .block_on(self.client.handle_backchannel_logout(token, o))
            .map(|_| ())
    }
    fn link(&self, o: &mut CookieOptions) -> Result<url::Url, Error> {
        self.rt.block_on(
            self.client
                .start_link_user(LinkUserOptions::new("google-oauth2"), o),
        )
    }
    fn accounts(&self, o: &mut CookieOptions) -> Result<(), Error> {
        self.rt
            .block_on(self.client.list_connected_accounts(None, None, None, o))
            .map(|_| ())
    }
}

/// Two custom domains of the tenant.
struct Domains {
    a: Emulator,
    b: Emulator,
}

impl Domains {
    fn start() -> Self {
        let a = Emulator::start(EmulatorConfig::default());
        let b = a.custom_domain();
        Domains { a, b }
    }

    /// The configuration: domain A as the configured one (the template of every domain).
    fn config(&self) -> Config {
        adapter_support::config_builder(&self.a)
            .redirect_uri(CALLBACK)
            .audience(DEFAULT_AUDIENCE)
            .build()
            .expect("valid config")
    }

    /// The application's resolver: request host → custom domain; other hosts refused.
    fn resolver(
        &self,
    ) -> impl Fn(&CookieOptions) -> Result<String, String> + Send + Sync + 'static {
        let map: HashMap<&'static str, String> = HashMap::from([
            (HOST_A, self.a.base_url()),
            (HOST_B, self.b.base_url()),
            (HOST_BAD, format!("{}/some/path", self.a.base_url())),
        ]);
        move |o: &CookieOptions| {
            o.request_host()
                .and_then(|h| map.get(h).cloned())
                .ok_or_else(|| "not one of our hosts".to_owned())
        }
    }
}

fn blocking_client(d: &Domains) -> Box<dyn Mcd> {
    Box::new(
        blocking::ServerClient::builder(
            d.config(),
            MemoryStateStore::new().secure(false),
            MemoryTransactionStore::new().secure(false),
        )
        .domain_resolver(d.resolver())
        .build(),
    )
}

fn runtime_and_http() -> (tokio::runtime::Runtime, auth0_server::http::ReqwestClient) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let http = rt.block_on(async { adapter_support::reqwest_client(Duration::from_secs(10)) });
    (rt, http)
}

fn async_client(d: &Domains) -> Box<dyn Mcd> {
    let (rt, http) = runtime_and_http();
    let client = nonblocking::ServerClient::builder(
        d.config(),
        MemoryStateStore::new().secure(false),
        MemoryTransactionStore::new().secure(false),
        http,
    )
    .domain_resolver(d.resolver())
    .build();
    Box::new(AsyncClient { client, rt })
}

/// The async client with an async resolver (it reads the host, then "looks it up").
fn async_client_async_resolver(d: &Domains) -> Box<dyn Mcd> {
    let (rt, http) = runtime_and_http();
    let resolve = Arc::new(d.resolver());
    let client = nonblocking::ServerClient::builder(
        d.config(),
        MemoryStateStore::new().secure(false),
        MemoryTransactionStore::new().secure(false),
        http,
    )
    .domain_resolver_async(move |o: &CookieOptions| {
        let answer = resolve(o);
        async move {
            tokio::task::yield_now().await;
            answer
        }
    })
    .build();
    Box::new(AsyncClient { client, rt })
}

/// Builds a client under test.
type MakeClient = fn(&Domains) -> Box<dyn Mcd>;

const CLIENTS: [(&str, MakeClient); 3] = [
    ("blocking", blocking_client),
    ("async", async_client),
    ("async resolver", async_client_async_resolver),
];

/// One browser: a cookie jar, visiting the application on any host.
#[derive(Default)]
struct Browser {
    jar: BTreeMap<String, String>,
}

impl Browser {
    /// One request to the application on `host`: cookies in, `Set-Cookie` applied after.
    fn on<R>(&mut self, host: &str, f: impl FnOnce(&mut CookieOptions) -> R) -> R {
        let mut headers = http::HeaderMap::new();
        if !self.jar.is_empty() {
            let line: Vec<String> = self.jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
            headers.insert(http::header::COOKIE, line.join("; ").parse().unwrap());
        }
        headers.insert(http::header::HOST, host.parse().unwrap());
        let mut options = CookieOptions::from_request_headers(&headers);
        let result = f(&mut options);
        for header in options.set_cookie_headers() {
            let text = header.to_str().expect("ASCII Set-Cookie");
            let (pair, attrs) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if attrs.split(';').any(|a| a.trim() == "Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        result
    }

    /// Logs in on `host`: start, the emulator's redirect, the callback on `callback_host`.
    fn login(
        &mut self,
        client: &dyn Mcd,
        host: &str,
        callback_host: &str,
    ) -> Result<LoginResult, Error> {
        let url = self.on(host, |o| client.start(o)).expect("start login");
        let callback = follow(&url);
        self.on(callback_host, |o| client.complete(&callback, o))
    }
}

/// The browser at `/authorize`: the emulator's redirect to the callback.
fn follow(authorize_url: &url::Url) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .get(authorize_url.as_str())
        .call()
        .expect("GET /authorize");
    assert_eq!(response.status().as_u16(), 302);
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("Location")
        .to_owned()
}

/// The token requests that reached this custom domain.
fn token_requests(emu: &Emulator) -> Vec<auth0_emulator::RecordedRequest> {
    emu.requests_on_domain("/oauth/token")
}

#[test]
fn a_login_on_one_domain_is_no_session_on_another() {
    for (name, make) in CLIENTS {
        let d = Domains::start();
        let client = make(&d);
        let mut browser = Browser::default();

        let url = browser.on(HOST_A, |o| client.start(o)).unwrap();
        assert!(
            url.as_str().starts_with(&d.a.base_url()),
            "{name}: the login goes to domain A"
        );
        let callback = follow(&url);
        browser
            .on(HOST_A, |o| client.complete(&callback, o))
            .unwrap_or_else(|e| panic!("{name}: login on A: {e}"));

        let on_a = browser.on(HOST_A, |o| client.session(o)).unwrap();
        assert!(on_a.is_some(), "{name}: A's session on A");
        assert!(browser.on(HOST_A, |o| client.user(o)).unwrap().is_some());

        // The same cookie on B: no session, no user, no token — and nothing sent to B.
        assert_eq!(
            browser.on(HOST_B, |o| client.session(o)).unwrap(),
            None,
            "{name}"
        );
        assert_eq!(
            browser.on(HOST_B, |o| client.user(o)).unwrap(),
            None,
            "{name}"
        );
        let e = browser
            .on(HOST_B, |o| client.token(AccessTokenRequest::default(), o))
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::MissingSession, "{name}: {e}");
        let e = browser.on(HOST_B, |o| client.link(o)).unwrap_err();
        assert_eq!(
            e.code(),
            ErrorCode::MissingSession,
            "{name}: linking on B: {e}"
        );
        let link = browser.on(HOST_A, |o| client.link(o)).unwrap();
        assert!(
            link.as_str().starts_with(&d.a.base_url()),
            "{name}: linking on A"
        );
        // Logging out on B leaves A's session alone.
        let logout = browser.on(HOST_B, |o| client.logout(o)).unwrap();
        assert!(
            logout.as_str().starts_with(&d.b.base_url()),
            "{name}: B's logout URL"
        );
        assert!(token_requests(&d.b).is_empty(), "{name}: nothing sent to B");
        assert!(
            browser.on(HOST_A, |o| client.session(o)).unwrap().is_some(),
            "{name}: A's session survives B"
        );

        // A login on B replaces it (the browser's session is now B's, and not A's).
        browser.login(&*client, HOST_B, HOST_B).unwrap();
        assert!(browser.on(HOST_B, |o| client.session(o)).unwrap().is_some());
        assert_eq!(
            browser.on(HOST_A, |o| client.session(o)).unwrap(),
            None,
            "{name}"
        );
    }
}

#[test]
fn a_callback_on_another_domain_is_refused_and_consumes_nothing() {
    for (name, make) in CLIENTS {
        let d = Domains::start();
        let client = make(&d);
        let mut browser = Browser::default();
        let url = browser.on(HOST_A, |o| client.start(o)).unwrap();
        let callback = follow(&url);

        let e = browser
            .on(HOST_B, |o| client.complete(&callback, o))
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::DomainMismatch, "{name}: {e}");
        assert!(
            token_requests(&d.a).is_empty() && token_requests(&d.b).is_empty(),
            "{name}: no code exchanged"
        );
        assert_eq!(browser.on(HOST_B, |o| client.session(o)).unwrap(), None);

        // The transaction is still there: the callback on A completes the login.
        browser
            .on(HOST_A, |o| client.complete(&callback, o))
            .unwrap_or_else(|e| panic!("{name}: callback on A: {e}"));
        assert!(browser.on(HOST_A, |o| client.session(o)).unwrap().is_some());
    }
}

#[test]
fn refreshes_go_to_the_sessions_domain_and_discovery_is_fetched_once_per_domain() {
    for (name, make) in CLIENTS {
        let d = Domains::start();
        let client = make(&d);
        let mut browser = Browser::default();
        browser.login(&*client, HOST_A, HOST_A).unwrap();

        // Another audience: a refresh (MRRT), at A's token endpoint.
        let token = browser
            .on(HOST_A, |o| {
                client.token(AccessTokenRequest::audience(ANALYTICS_AUDIENCE), o)
            })
            .unwrap_or_else(|e| panic!("{name}: refresh on A: {e}"));
        assert!(!token.access_token.expose().is_empty());
        let grants: Vec<Option<String>> = token_requests(&d.a)
            .iter()
            .map(|r| param(r, "grant_type"))
            .collect();
        assert_eq!(
            grants,
            [
                Some("authorization_code".into()),
                Some("refresh_token".into())
            ],
            "{name}"
        );
        // Asked on B: no session there; B's token endpoint never sees the refresh token.
        let e = browser
            .on(HOST_B, |o| {
                client.token(AccessTokenRequest::audience(ANALYTICS_AUDIENCE), o)
            })
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::MissingSession, "{name}");
        assert!(token_requests(&d.b).is_empty(), "{name}");

        // Many calls, one discovery per domain.
        for _ in 0..3 {
            browser.on(HOST_A, |o| client.session(o)).unwrap();
            browser
                .on(HOST_A, |o| {
                    client.token(AccessTokenRequest::audience(ANALYTICS_AUDIENCE), o)
                })
                .unwrap();
            browser.on(HOST_B, |o| client.logout(o)).unwrap();
        }
        assert_eq!(
            d.a.requests_on_domain(DISCOVERY).len(),
            1,
            "{name}: A's discovery"
        );
        assert_eq!(
            d.b.requests_on_domain(DISCOVERY).len(),
            1,
            "{name}: B's discovery"
        );
    }
}

#[test]
fn a_back_channel_logout_ends_only_its_domains_sessions() {
    for (name, make) in CLIENTS {
        let d = Domains::start();
        let client = make(&d);
        let mut browser = Browser::default();
        browser.login(&*client, HOST_A, HOST_A).unwrap();
        let sub = browser
            .on(HOST_A, |o| client.user(o))
            .unwrap()
            .and_then(|u| u.get("sub").and_then(|s| s.as_str()).map(str::to_owned))
            .expect("a user");

        // B's logout token for the same user, delivered to B: valid, but A's session stays.
        let from_b = d.b.mint_logout_token(Some(&sub), None, Default::default());
        browser
            .on(HOST_B, |o| client.backchannel(&from_b, o))
            .unwrap_or_else(|e| panic!("{name}: B's token on B: {e}"));
        assert!(
            browser.on(HOST_A, |o| client.session(o)).unwrap().is_some(),
            "{name}"
        );

        // A's logout token delivered to B: refused before any key is fetched from B.
        let jwks_before = d.b.requests_on_domain("/.well-known/jwks.json").len();
        let from_a = d.a.mint_logout_token(Some(&sub), None, Default::default());
        let e = browser
            .on(HOST_B, |o| client.backchannel(&from_a, o))
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::DomainMismatch, "{name}: {e}");
        assert_eq!(
            d.b.requests_on_domain("/.well-known/jwks.json").len(),
            jwks_before
        );
        assert!(
            browser.on(HOST_A, |o| client.session(o)).unwrap().is_some(),
            "{name}"
        );

        // Delivered to A: A's session ends.
        browser
            .on(HOST_A, |o| client.backchannel(&from_a, o))
            .unwrap();
        assert_eq!(
            browser.on(HOST_A, |o| client.session(o)).unwrap(),
            None,
            "{name}"
        );
    }
}

#[test]
fn a_bad_resolver_answer_is_a_typed_error_and_sends_nothing() {
    for (name, make) in CLIENTS {
        let d = Domains::start();
        let client = make(&d);
        let mut browser = Browser::default();
        for host in [HOST_BAD, "unknown.test"] {
            let e = browser.on(host, |o| client.start(o)).unwrap_err();
            assert_eq!(
                e.code(),
                ErrorCode::DomainResolverError,
                "{name} {host}: {e}"
            );
            assert!(!e.to_string().contains("some/path"), "{name}: {e}");
            let e = browser.on(host, |o| client.session(o)).unwrap_err();
            assert_eq!(e.code(), ErrorCode::DomainResolverError, "{name} {host}");
        }
        assert!(
            d.a.requests().is_empty() && d.b.requests().is_empty(),
            "{name}"
        );
    }
}

#[test]
fn an_allowlist_resolver_maps_only_the_allowed_hosts() {
    let d = Domains::start();
    let allowed = DomainAllowlist::new([d.a.base_url(), d.b.base_url()]).unwrap();
    let client = blocking::ServerClient::builder(
        d.config(),
        MemoryStateStore::new().secure(false),
        MemoryTransactionStore::new().secure(false),
    )
    .domain_resolver(move |o: &CookieOptions| {
        allowed
            .resolve(o.request_host())
            .map(|domain| domain.origin().to_owned())
    })
    .build();
    let mut browser = Browser::default();
    let host_b = d.b.base_url().trim_start_matches("http://").to_owned();
    let url = browser.on(&host_b, |o| client.start(o)).unwrap();
    assert!(url.as_str().starts_with(&d.b.base_url()));
    let e = browser.on("evil.example", |o| client.start(o)).unwrap_err();
    assert_eq!(e.code(), ErrorCode::DomainResolverError);
}

#[test]
fn the_emulators_custom_domains_share_the_tenant_under_their_own_issuers() {
    let d = Domains::start();
    let get = |url: String| -> serde_json::Value {
        let body = ureq::get(&url)
            .call()
            .expect("GET")
            .into_body()
            .read_to_string()
            .expect("body");
        serde_json::from_str(&body).expect("JSON")
    };
    let a = get(d.a.url(DISCOVERY));
    let b = get(d.b.url(DISCOVERY));
    assert_eq!(a["issuer"], d.a.issuer());
    assert_eq!(b["issuer"], d.b.issuer());
    assert_ne!(d.a.issuer(), d.b.issuer());
    assert_eq!(
        b["token_endpoint"],
        format!("{}/oauth/token", d.b.base_url())
    );
    // One tenant: the same signing keys, one request log, told apart by host.
    assert_eq!(
        get(d.a.url("/.well-known/jwks.json")),
        get(d.b.url("/.well-known/jwks.json"))
    );
    assert_eq!(d.a.requests_on_domain(DISCOVERY).len(), 1);
    assert_eq!(d.b.requests_on_domain(DISCOVERY).len(), 1);
    assert_eq!(d.a.requests_to(DISCOVERY).len(), 2);
}

#[test]
fn the_my_account_api_is_the_sessions_domains() {
    for (name, make) in CLIENTS {
        let d = Domains::start();
        let client = make(&d);
        let mut browser = Browser::default();
        browser.login(&*client, HOST_A, HOST_A).unwrap();
        const ACCOUNTS: &str = "/me/v1/connected-accounts/accounts";

        browser
            .on(HOST_A, |o| client.accounts(o))
            .unwrap_or_else(|e| panic!("{name}: My Account on A: {e}"));
        let on_a = d.a.requests_on_domain(ACCOUNTS);
        assert_eq!(on_a.len(), 1, "{name}");
        // The token was asked for A's `/me/` audience, at A.
        let audiences: Vec<Option<String>> = token_requests(&d.a)
            .iter()
            .filter_map(|r| param(r, "audience"))
            .map(Some)
            .collect();
        assert!(
            audiences.contains(&Some(format!("{}/me/", d.a.base_url()))),
            "{name}: {audiences:?}"
        );

        let e = browser.on(HOST_B, |o| client.accounts(o)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::MissingSession, "{name}: {e}");
        assert!(d.b.requests_on_domain(ACCOUNTS).is_empty(), "{name}");
        assert!(token_requests(&d.b).is_empty(), "{name}");
    }
}
