//! End-to-end: connected accounts and the My Account API through the blocking and the async
//! client against the emulator. A user logs in (passwordless); the application connects an
//! account (start → the browser visits the connect page → complete), lists and deletes
//! connected accounts, lists connections, factors and authentication methods. The token for
//! the `/me/` audience comes from the session's refresh token (MRRT), once per scope. The
//! negative cases: a scope the refresh-token policy does not grant (the API's 403 as
//! `my_account_api_error`), a callback with another `state` or used twice
//! (`missing_transaction`), no session (`missing_session`, nothing sent to the API).

mod adapter_support;

use auth0_emulator::{Emulator, EmulatorConfig, MY_ACCOUNT_SCOPES};
use auth0_server::store::CookieOptions;
use auth0_server::store::memory::{MemoryStateStore, MemoryTransactionStore};
use auth0_server::{
    AuthenticationMethod, AuthenticationMethodUpdate, Config, ConnectAccountOptions,
    ConnectedAccountConnections, ConnectedAccountResult, ConnectedAccounts, Error, Factor,
    PasswordlessOtp, PasswordlessStart, blocking, nonblocking,
};

type Blocking = blocking::ServerClient<MemoryStateStore, MemoryTransactionStore>;
type Async = nonblocking::ServerClient<
    MemoryStateStore,
    MemoryTransactionStore,
    auth0_server::http::ReqwestClient,
>;
type O = CookieOptions;

const REDIRECT_URI: &str = "https://app.example.com/connect/callback";

/// The operations under test, implemented by both clients so each scenario is written once.
trait MyAccount {
    fn start_login(&self, s: PasswordlessStart, o: &mut O) -> Result<(), Error>;
    fn login(&self, otp: PasswordlessOtp, o: &mut O) -> Result<(), Error>;
    fn connect(&self, c: ConnectAccountOptions, o: &mut O) -> Result<url::Url, Error>;
    fn complete(&self, callback: &str, o: &mut O) -> Result<ConnectedAccountResult, Error>;
    fn accounts(&self, connection: Option<&str>, o: &mut O) -> Result<ConnectedAccounts, Error>;
    fn delete(&self, id: &str, o: &mut O) -> Result<(), Error>;
    fn connections(&self, o: &mut O) -> Result<ConnectedAccountConnections, Error>;
    fn factors(&self, o: &mut O) -> Result<Vec<Factor>, Error>;
    fn methods(&self, o: &mut O) -> Result<Vec<AuthenticationMethod>, Error>;
    fn method(&self, id: &str, o: &mut O) -> Result<AuthenticationMethod, Error>;
    fn delete_method(&self, id: &str, o: &mut O) -> Result<(), Error>;
    fn rename(&self, id: &str, name: &str, o: &mut O) -> Result<AuthenticationMethod, Error>;
}

impl MyAccount for Blocking {
    fn start_login(&self, s: PasswordlessStart, o: &mut O) -> Result<(), Error> {
        self.start_passwordless(s, o)
    }
    fn login(&self, otp: PasswordlessOtp, o: &mut O) -> Result<(), Error> {
        self.login_with_passwordless(otp, o).map(|_| ())
    }
    fn connect(&self, c: ConnectAccountOptions, o: &mut O) -> Result<url::Url, Error> {
        self.start_connect_account(c, o)
    }
    fn complete(&self, callback: &str, o: &mut O) -> Result<ConnectedAccountResult, Error> {
        self.complete_connect_account(callback, o)
    }
    fn accounts(&self, connection: Option<&str>, o: &mut O) -> Result<ConnectedAccounts, Error> {
        self.list_connected_accounts(connection, None, None, o)
    }
    fn delete(&self, id: &str, o: &mut O) -> Result<(), Error> {
        self.delete_connected_account(id, o)
    }
    fn connections(&self, o: &mut O) -> Result<ConnectedAccountConnections, Error> {
        self.list_connected_account_connections(None, Some(10), o)
    }
    fn factors(&self, o: &mut O) -> Result<Vec<Factor>, Error> {
        self.get_factors(o)
    }
    fn methods(&self, o: &mut O) -> Result<Vec<AuthenticationMethod>, Error> {
        self.list_authentication_methods(o)
    }
    fn method(&self, id: &str, o: &mut O) -> Result<AuthenticationMethod, Error> {
        self.get_authentication_method(id, o)
    }
    fn delete_method(&self, id: &str, o: &mut O) -> Result<(), Error> {
        self.delete_authentication_method(id, o)
    }
    fn rename(&self, id: &str, name: &str, o: &mut O) -> Result<AuthenticationMethod, Error> {
        self.update_authentication_method(id, &AuthenticationMethodUpdate::name(name), o)
    }
}

struct AsyncClient {
    client: Async,
    rt: tokio::runtime::Runtime,
}

impl MyAccount for AsyncClient {
    fn start_login(&self, s: PasswordlessStart, o: &mut O) -> Result<(), Error> {
        self.rt.block_on(self.client.start_passwordless(s, o))
    }
    fn login(&self, otp: PasswordlessOtp, o: &mut O) -> Result<(), Error> {
        self.rt
            .block_on(self.client.login_with_passwordless(otp, o))
            .map(|_| ())
    }
    fn connect(&self, c: ConnectAccountOptions, o: &mut O) -> Result<url::Url, Error> {
        self.rt.block_on(self.client.start_connect_account(c, o))
    }
    fn complete(&self, callback: &str, o: &mut O) -> Result<ConnectedAccountResult, Error> {
        self.rt
            .block_on(self.client.complete_connect_account(callback, o))
    }
    fn accounts(&self, connection: Option<&str>, o: &mut O) -> Result<ConnectedAccounts, Error> {
        self.rt.block_on(
            self.client
                .list_connected_accounts(connection, None, None, o),
        )
    }
    fn delete(&self, id: &str, o: &mut O) -> Result<(), Error> {
        self.rt
            .block_on(self.client.delete_connected_account(id, o))
    }
    fn connections(&self, o: &mut O) -> Result<ConnectedAccountConnections, Error> {
        self.rt.block_on(
            self.client
                .list_connected_account_connections(None, Some(10), o),
        )
    }
    fn factors(&self, o: &mut O) -> Result<Vec<Factor>, Error> {
        self.rt.block_on(self.client.get_factors(o))
    }
    fn methods(&self, o: &mut O) -> Result<Vec<AuthenticationMethod>, Error> {
        self.rt.block_on(self.client.list_authentication_methods(o))
    }
    fn method(&self, id: &str, o: &mut O) -> Result<AuthenticationMethod, Error> {
        self.rt
            .block_on(self.client.get_authentication_method(id, o))
    }
    fn delete_method(&self, id: &str, o: &mut O) -> Result<(), Error> {
        self.rt
            .block_on(self.client.delete_authentication_method(id, o))
    }
    fn rename(&self, id: &str, name: &str, o: &mut O) -> Result<AuthenticationMethod, Error> {
        self.rt.block_on(self.client.update_authentication_method(
            id,
            &AuthenticationMethodUpdate::name(name),
            o,
        ))
    }
}

fn config(emu: &Emulator) -> Config {
    adapter_support::config_builder(emu)
        .audience(auth0_emulator::DEFAULT_AUDIENCE)
        .redirect_uri(REDIRECT_URI)
        .build()
        .expect("valid config")
}

fn blocking_client(config: Config) -> Box<dyn MyAccount> {
    Box::new(
        blocking::ServerClient::builder(
            config,
            MemoryStateStore::new().secure(false),
            MemoryTransactionStore::new().secure(false),
        )
        .build(),
    )
}

fn async_client(config: Config) -> Box<dyn MyAccount> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let http =
        rt.block_on(async { adapter_support::reqwest_client(std::time::Duration::from_secs(10)) });
    let client = nonblocking::ServerClient::builder(
        config,
        MemoryStateStore::new().secure(false),
        MemoryTransactionStore::new().secure(false),
        http,
    )
    .build();
    Box::new(AsyncClient { client, rt })
}

type MakeClient = fn(Config) -> Box<dyn MyAccount>;

/// The cookies of the last response, as the browser's next request carries them.
fn next_request(o: &O) -> O {
    let pairs: Vec<String> = o
        .cookie_names()
        .iter()
        .filter_map(|n| o.cookie(n).map(|v| format!("{n}={v}")))
        .collect();
    let mut h = http::HeaderMap::new();
    if !pairs.is_empty() {
        h.insert(http::header::COOKIE, pairs.join("; ").parse().unwrap());
    }
    CookieOptions::from_request_headers(&h)
}

/// The browser visits the connect URL (the provider's consent): `GET` without following
/// redirects; the `Location` the emulator sends it back to.
fn visit(connect_url: &url::Url) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent.get(connect_url.as_str()).call().expect("GET connect");
    assert_eq!(
        response.status().as_u16(),
        302,
        "the connect page redirects"
    );
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
        .to_owned()
}

/// A logged-in user (passwordless) with a refresh token; the request options after login.
fn logged_in(make: MakeClient, emu_config: EmulatorConfig) -> (Emulator, Box<dyn MyAccount>, O) {
    let emu = Emulator::start(emu_config);
    let client = make(config(&emu));
    let mut o = O::new();
    client
        .start_login(PasswordlessStart::email("ann@example.com"), &mut o)
        .expect("code sent");
    let code = emu.passwordless_messages().pop().unwrap().code.unwrap();
    let mut o = next_request(&o);
    client
        .login(PasswordlessOtp::email("ann@example.com", code), &mut o)
        .expect("logged in");
    let o = next_request(&o);
    (emu, client, o)
}

fn me_audience(emu: &Emulator) -> String {
    format!("{}/me/", emu.base_url())
}

/// The refreshes the emulator answered for the My Account audience.
fn me_refreshes(emu: &Emulator) -> Vec<auth0_emulator::RecordedRequest> {
    let aud = me_audience(emu);
    emu.token_requests()
        .into_iter()
        .filter(|r| {
            r.param("grant_type") == Some("refresh_token") && r.param("audience") == Some(&aud)
        })
        .collect()
}

fn connect_one(client: &dyn MyAccount, o: &mut O) -> (ConnectedAccountResult, String) {
    let url = client
        .connect(
            ConnectAccountOptions::new("google-oauth2")
                .scope("https://www.googleapis.com/auth/calendar.readonly")
                .app_state(serde_json::json!({"return_to": "/settings"})),
            o,
        )
        .expect("connect started");
    let callback = visit(&url);
    let mut o2 = next_request(o);
    let result = client.complete(&callback, &mut o2).expect("connected");
    *o = next_request(&o2);
    (result, callback)
}

fn connect_list_delete(make: MakeClient) {
    let (emu, client, mut o) = logged_in(make, EmulatorConfig::default());
    let url = client
        .connect(ConnectAccountOptions::new("google-oauth2"), &mut o)
        .expect("connect started");
    assert!(
        url.as_str().starts_with(&format!(
            "{}/connected-accounts/connect?ticket=",
            emu.base_url()
        )),
        "{url}"
    );
    let sent = emu
        .requests_to("/me/v1/connected-accounts/connect")
        .pop()
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body["connection"], "google-oauth2");
    assert_eq!(body["redirect_uri"], REDIRECT_URI);
    assert_eq!(body["code_challenge_method"], "S256");
    assert!(
        sent.header("authorization")
            .is_some_and(|h| h.starts_with("Bearer ")),
        "a bearer token"
    );
    let callback = visit(&url);
    assert!(callback.starts_with(REDIRECT_URI), "{callback}");
    let mut o = next_request(&o);
    let done = client.complete(&callback, &mut o).expect("connected");
    assert_eq!(done.account.connection, "google-oauth2");
    assert_eq!(done.account.access_type.as_deref(), Some("offline"));
    let sent = emu
        .requests_to("/me/v1/connected-accounts/complete")
        .pop()
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body["redirect_uri"], REDIRECT_URI);
    assert!(
        body["code_verifier"]
            .as_str()
            .is_some_and(|v| v.len() >= 43)
    );
    // The same callback again: the transaction was consumed.
    let mut o = next_request(&o);
    let e = client.complete(&callback, &mut o).unwrap_err();
    assert_eq!(e.code(), "missing_transaction", "{e}");
    // Connect and complete spent one refresh (create scope); listing spends one more.
    assert_eq!(me_refreshes(&emu).len(), 1);
    let page = client.accounts(None, &mut o).expect("listed");
    assert_eq!(page.accounts, vec![done.account.clone()]);
    let page = client
        .accounts(Some("google-oauth2"), &mut o)
        .expect("listed");
    assert_eq!(page.accounts.len(), 1);
    assert_eq!(me_refreshes(&emu).len(), 2, "the read token is cached");
    let connections = client.connections(&mut o).expect("connections");
    assert!(
        connections
            .connections
            .iter()
            .any(|c| c.name == "google-oauth2")
    );
    client.delete(&done.account.id, &mut o).expect("deleted");
    assert!(client.accounts(None, &mut o).unwrap().accounts.is_empty());
    let e = client.delete(&done.account.id, &mut o).unwrap_err();
    assert_eq!(e.code(), "my_account_api_error");
    let problem = match &e {
        Error::MyAccount(m) => m.problem().cloned().unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(problem.status, 404);
    assert_eq!(me_refreshes(&emu).len(), 3, "one refresh per scope");
}

fn app_state_round_trips(make: MakeClient) {
    let (emu, client, mut o) = logged_in(make, EmulatorConfig::default());
    let (result, _) = connect_one(&*client, &mut o);
    assert_eq!(
        result.app_state,
        Some(serde_json::json!({"return_to": "/settings"}))
    );
    assert_eq!(
        result.account.scopes,
        vec!["https://www.googleapis.com/auth/calendar.readonly".to_owned()]
    );
    // The token for the API has the `/me/` audience and was minted by one refresh.
    let refresh = me_refreshes(&emu).pop().unwrap();
    let scope = refresh.param("scope").unwrap_or_default();
    assert!(
        scope
            .split(' ')
            .any(|s| s == "create:me:connected_accounts"),
        "{scope}"
    );
}

/// With DPoP configured, the `/me/` token is DPoP-bound and goes as `DPoP` with a proof whose
/// `ath` binds it (the emulator checks `htm`, `htu`, `ath` and the bound key).
fn dpop_client_presents_a_bound_token(make: MakeClient) {
    let emu = Emulator::start(EmulatorConfig::default());
    let config = adapter_support::config_builder(&emu)
        .audience(auth0_emulator::DEFAULT_AUDIENCE)
        .redirect_uri(REDIRECT_URI)
        .dpop(include_str!("../data/client_keys/ec.pem"))
        .build()
        .expect("valid config");
    let client = make(config);
    let mut o = O::new();
    client
        .start_login(PasswordlessStart::email("ann@example.com"), &mut o)
        .expect("code sent");
    let code = emu.passwordless_messages().pop().unwrap().code.unwrap();
    let mut o = next_request(&o);
    client
        .login(PasswordlessOtp::email("ann@example.com", code), &mut o)
        .expect("logged in");
    let mut o = next_request(&o);
    let methods = client.methods(&mut o).expect("listed with DPoP");
    assert!(!methods.is_empty());
    let sent = emu
        .requests_to("/me/v1/authentication-methods")
        .pop()
        .unwrap();
    assert!(
        sent.header("authorization")
            .is_some_and(|h| h.starts_with("DPoP ")),
        "a DPoP-bound token"
    );
    assert!(sent.header("dpop").is_some(), "with a proof");
}

fn wrong_state_is_missing_transaction(make: MakeClient) {
    let (emu, client, mut o) = logged_in(make, EmulatorConfig::default());
    let url = client
        .connect(ConnectAccountOptions::new("google-oauth2"), &mut o)
        .expect("connect started");
    let callback = visit(&url);
    let mut forged = url::Url::parse(&callback).unwrap();
    let code = forged
        .query_pairs()
        .find(|(k, _)| k == "connect_code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    forged
        .query_pairs_mut()
        .clear()
        .append_pair("connect_code", &code)
        .append_pair("state", "forged-state");
    let mut o = next_request(&o);
    let e = client.complete(forged.as_str(), &mut o).unwrap_err();
    assert_eq!(e.code(), "missing_transaction", "{e}");
    assert!(
        !format!("{e} {e:?}").contains(&code),
        "no code in the error"
    );
    assert!(
        emu.requests_to("/me/v1/connected-accounts/complete")
            .is_empty()
    );
    // A refused connection.
    let e = client
        .complete(
            &format!("{REDIRECT_URI}?error=access_denied&state=x"),
            &mut o,
        )
        .unwrap_err();
    assert_eq!(e.code(), "missing_transaction");
}

fn missing_scope_is_the_apis_403(make: MakeClient) {
    let scopes: Vec<String> = MY_ACCOUNT_SCOPES
        .iter()
        .filter(|s| **s != "delete:me:connected_accounts")
        .map(|s| s.to_string())
        .collect();
    let (emu, client, mut o) = logged_in(
        make,
        EmulatorConfig {
            my_account_scopes: scopes,
            ..Default::default()
        },
    );
    let (result, _) = connect_one(&*client, &mut o);
    let e = client.delete(&result.account.id, &mut o).unwrap_err();
    assert_eq!(e.code(), "my_account_api_error", "{e}");
    let Error::MyAccount(m) = &e else {
        panic!("{e:?}")
    };
    let problem = m.problem().unwrap();
    assert_eq!(problem.status, 403);
    assert_eq!(problem.title.as_deref(), Some("Forbidden"));
    assert!(problem.detail.as_deref().unwrap().contains("scope"));
    let shown = format!("{e} {e:?}");
    for r in emu.requests_to(&format!(
        "/me/v1/connected-accounts/accounts/{}",
        result.account.id
    )) {
        let token = r
            .header("authorization")
            .unwrap()
            .trim_start_matches("Bearer ");
        assert!(!shown.contains(token), "no token in the error");
    }
    // The account is still there.
    assert_eq!(client.accounts(None, &mut o).unwrap().accounts.len(), 1);
}

fn no_session_is_missing_session(make: MakeClient) {
    let emu = Emulator::start(EmulatorConfig::default());
    let client = make(config(&emu));
    let mut o = O::new();
    for e in [
        client
            .connect(ConnectAccountOptions::new("google-oauth2"), &mut o)
            .unwrap_err(),
        client.accounts(None, &mut o).unwrap_err(),
        client.factors(&mut o).unwrap_err(),
    ] {
        assert_eq!(e.code(), "missing_session", "{e}");
    }
    assert!(
        emu.requests().iter().all(|r| !r.path.starts_with("/me/")),
        "nothing sent to the API"
    );
}

fn factors_and_authentication_methods(make: MakeClient) {
    let (emu, client, mut o) = logged_in(make, EmulatorConfig::default());
    let factors = client.factors(&mut o).expect("factors");
    assert!(factors.iter().any(|f| f.kind == "passkey"));
    let methods = client.methods(&mut o).expect("methods");
    let totp = methods.iter().find(|m| m.kind == "totp").expect("a totp");
    let one = client.method(&totp.id, &mut o).expect("one method");
    assert_eq!(&one, totp);
    assert_eq!(
        emu.requests_to("/me/v1/authentication-methods/totp%7Cdev_emulator")
            .len(),
        1,
        "the id is escaped into its segment"
    );
    let renamed = client
        .rename(&totp.id, "Phone app", &mut o)
        .expect("renamed");
    assert_eq!(renamed.details["name"], "Phone app");
    let sent = emu
        .requests_to("/me/v1/authentication-methods/totp%7Cdev_emulator")
        .pop()
        .unwrap();
    assert_eq!(sent.method, "PATCH");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&sent.body).unwrap(),
        serde_json::json!({"name": "Phone app"})
    );
    client.delete_method(&totp.id, &mut o).expect("deleted");
    assert!(
        client
            .methods(&mut o)
            .unwrap()
            .iter()
            .all(|m| m.kind != "totp")
    );
    let e = client.method(&totp.id, &mut o).unwrap_err();
    assert_eq!(e.code(), "my_account_api_error");
    let e = client.method("../../oauth/token", &mut o).unwrap_err();
    assert_eq!(e.code(), "invalid_parameter");
}

macro_rules! both_clients {
    ($($name:ident),* $(,)?) => {
        mod blocking_client {
            $(#[test] fn $name() { super::$name(super::blocking_client); })*
        }
        mod async_client {
            $(#[test] fn $name() { super::$name(super::async_client); })*
        }
    };
}

both_clients!(
    connect_list_delete,
    app_state_round_trips,
    wrong_state_is_missing_transaction,
    missing_scope_is_the_apis_403,
    no_session_is_missing_session,
    factors_and_authentication_methods,
    dpop_client_presents_a_bound_token,
);
