//! End-to-end: Custom Token Exchange (RFC 8693, Auth0's profile) through the blocking and the
//! async client against the emulator's profile (`urn:acme:legacy-token`): tokens without a
//! session, a login that creates one, the actor and organization, and the input checks that
//! refuse a request before anything is sent.

mod adapter_support;

use adapter_support::{config, param};
use auth0_emulator::{
    DEFAULT_AUDIENCE, Emulator, LEGACY_SUBJECT_TOKEN, LEGACY_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT_TYPE,
};
use auth0_server::blocking;
use auth0_server::protocol::login::{LoginResult, TokenExchangeRequest, TokenExchangeResult};
use auth0_server::protocol::session::Session;
use auth0_server::store::CookieOptions;
use auth0_server::store::memory::{MemoryStateStore, MemoryTransactionStore};
use auth0_server::{AccessToken, Config, Error, nonblocking};

type Blocking = blocking::ServerClient<MemoryStateStore, MemoryTransactionStore>;
type Async = nonblocking::ServerClient<
    MemoryStateStore,
    MemoryTransactionStore,
    auth0_server::http::ReqwestClient,
>;

/// The operations under test, implemented by both clients so each scenario is written once.
trait Exchanging {
    fn exchange(&self, request: TokenExchangeRequest) -> Result<TokenExchangeResult, Error>;
    fn login(
        &self,
        request: TokenExchangeRequest,
        o: &mut CookieOptions,
    ) -> Result<LoginResult, Error>;
    fn session(&self, o: &mut CookieOptions) -> Result<Option<Session>, Error>;
    fn token(&self, o: &mut CookieOptions) -> Result<AccessToken, Error>;
}

impl Exchanging for Blocking {
    fn exchange(&self, request: TokenExchangeRequest) -> Result<TokenExchangeResult, Error> {
        self.custom_token_exchange(request)
    }
    fn login(
        &self,
        request: TokenExchangeRequest,
        o: &mut CookieOptions,
    ) -> Result<LoginResult, Error> {
        self.login_with_token_exchange(request, o)
    }
    fn session(&self, o: &mut CookieOptions) -> Result<Option<Session>, Error> {
        self.get_session(o)
    }
    fn token(&self, o: &mut CookieOptions) -> Result<AccessToken, Error> {
        self.get_access_token(o)
    }
}

struct AsyncClient {
    client: Async,
    rt: tokio::runtime::Runtime,
}

impl Exchanging for AsyncClient {
    fn exchange(&self, request: TokenExchangeRequest) -> Result<TokenExchangeResult, Error> {
        self.rt.block_on(self.client.custom_token_exchange(request))
    }
    fn login(
        &self,
        request: TokenExchangeRequest,
        o: &mut CookieOptions,
    ) -> Result<LoginResult, Error> {
        self.rt
            .block_on(self.client.login_with_token_exchange(request, o))
    }
    fn session(&self, o: &mut CookieOptions) -> Result<Option<Session>, Error> {
        self.rt.block_on(self.client.get_session(o))
    }
    fn token(&self, o: &mut CookieOptions) -> Result<AccessToken, Error> {
        self.rt.block_on(self.client.get_access_token(o))
    }
}

fn blocking_client(config: Config) -> Box<dyn Exchanging> {
    Box::new(adapter_support::memory_blocking(config))
}

fn async_client(config: Config) -> Box<dyn Exchanging> {
    let (client, rt) = adapter_support::memory_async(config);
    Box::new(AsyncClient { client, rt })
}

type MakeClient = fn(Config) -> Box<dyn Exchanging>;

fn legacy() -> TokenExchangeRequest {
    TokenExchangeRequest::new(LEGACY_SUBJECT_TOKEN, LEGACY_TOKEN_TYPE)
}

/// A browser's next request: the cookies the last response set.
fn next_request(o: &CookieOptions) -> CookieOptions {
    let pairs: Vec<String> = o
        .cookie_names()
        .into_iter()
        .filter_map(|n| o.cookie(n).map(|v| format!("{n}={v}")))
        .collect();
    let mut h = http::HeaderMap::new();
    if !pairs.is_empty() {
        h.insert(http::header::COOKIE, pairs.join("; ").parse().unwrap());
    }
    CookieOptions::from_request_headers(&h)
}

fn exchange_returns_verified_tokens_and_no_session(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu));
    let result = client
        .exchange(
            legacy()
                .scope("openid profile offline_access read:data")
                .actor("support-agent-7", "urn:acme:agent"),
        )
        .expect("exchanged");
    assert!(!result.access_token.expose().is_empty());
    assert!(
        result.refresh_token.is_some(),
        "offline_access was asked for"
    );
    let claims = result.claims.expect("the ID token's verified claims");
    assert_eq!(claims["sub"], emu.user_claims()["sub"]);
    assert_eq!(claims["act"]["sub"], "support-agent-7");
    assert!(result.expires_at.as_secs() > adapter_support::now());
    let sent = emu.requests_to("/oauth/token");
    assert_eq!(sent.len(), 1);
    let req = &sent[0];
    assert_eq!(
        param(req, "grant_type").as_deref(),
        Some(TOKEN_EXCHANGE_GRANT_TYPE)
    );
    assert_eq!(
        param(req, "subject_token").as_deref(),
        Some(LEGACY_SUBJECT_TOKEN)
    );
    assert_eq!(
        param(req, "subject_token_type").as_deref(),
        Some(LEGACY_TOKEN_TYPE)
    );
    assert_eq!(param(req, "audience").as_deref(), Some(DEFAULT_AUDIENCE));
    assert_eq!(
        param(req, "actor_token_type").as_deref(),
        Some("urn:acme:agent")
    );
    // No session was created: nothing for a browser to send back.
    let mut o = CookieOptions::new();
    assert!(client.session(&mut o).unwrap().is_none());
}

fn login_creates_a_session_served_from_cache(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu));
    let mut o = CookieOptions::new();
    // No scope given: the login scope is the configured default (with `openid`), so the
    // session's token set is the one a default `get_access_token` asks for.
    client.login(legacy(), &mut o).expect("logged in");
    let mut o = next_request(&o);
    let session = client.session(&mut o).unwrap().expect("a session");
    let user = session.user.expect("user claims");
    assert_eq!(user["sub"], emu.user_claims()["sub"]);
    // The exchange's access token is served from the session: no second token request.
    let token = client.token(&mut o).expect("a token");
    assert!(!token.access_token.expose().is_empty());
    assert_eq!(emu.requests_to("/oauth/token").len(), 1);
}

fn login_always_asks_for_openid(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu));
    let mut o = CookieOptions::new();
    client
        .login(legacy().scope("read:data"), &mut o)
        .expect("logged in");
    let scope = param(&emu.requests_to("/oauth/token")[0], "scope").unwrap();
    assert!(scope.split(' ').any(|s| s == "openid"), "{scope}");
    let mut o = next_request(&o);
    assert!(client.session(&mut o).unwrap().is_some());
}

fn organization_is_checked(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu));
    let result = client
        .exchange(legacy().scope("openid").organization("acme"))
        .expect("the ID token names the organization");
    assert_eq!(result.claims.unwrap()["org_name"], "acme");
    assert_eq!(
        param(&emu.requests_to("/oauth/token")[0], "organization").as_deref(),
        Some("acme")
    );
}

fn bad_input_sends_nothing(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu));
    let bad = [
        TokenExchangeRequest::new("Bearer abc", LEGACY_TOKEN_TYPE),
        TokenExchangeRequest::new(" abc", LEGACY_TOKEN_TYPE),
        TokenExchangeRequest::new("", LEGACY_TOKEN_TYPE),
        TokenExchangeRequest::new("abc", "not a uri"),
        TokenExchangeRequest::new("abc", "urn:ietf:params:oauth:token-type:access_token"),
        legacy().actor("agent", ""),
        legacy().param("scope", "admin"),
        legacy().audience("  "),
    ];
    for request in bad {
        let e = client.exchange(request.clone()).unwrap_err();
        assert_eq!(e.code(), "invalid_parameter", "{request:?}");
        assert!(!e.to_string().contains("abc"), "the token leaked: {e}");
        let mut o = CookieOptions::new();
        let e = client.login(request, &mut o).unwrap_err();
        assert_eq!(e.code(), "invalid_parameter");
    }
    assert!(emu.requests_to("/oauth/token").is_empty());
}

fn a_refused_exchange_is_typed_and_saves_nothing(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu));
    let mut o = CookieOptions::new();
    let e = client
        .login(
            TokenExchangeRequest::new("not-a-known-legacy-session", LEGACY_TOKEN_TYPE),
            &mut o,
        )
        .unwrap_err();
    assert_eq!(e.code(), "failed_to_exchange_token");
    assert!(!e.to_string().contains("not-a-known-legacy-session"));
    let mut o = next_request(&o);
    assert!(client.session(&mut o).unwrap().is_none());
    let e = client
        .exchange(TokenExchangeRequest::new("abc", "urn:acme:unknown-profile"))
        .unwrap_err();
    assert_eq!(e.code(), "failed_to_exchange_token");
}

macro_rules! both_clients {
    ($($scenario:ident),* $(,)?) => {
        mod blocking_client {
            $(#[test] fn $scenario() { super::$scenario(super::blocking_client) })*
        }
        mod async_client {
            $(#[test] fn $scenario() { super::$scenario(super::async_client) })*
        }
    };
}

both_clients!(
    exchange_returns_verified_tokens_and_no_session,
    login_creates_a_session_served_from_cache,
    login_always_asks_for_openid,
    organization_is_checked,
    bad_input_sends_nothing,
    a_refused_exchange_is_typed_and_saves_nothing,
);
