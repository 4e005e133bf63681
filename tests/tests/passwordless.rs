//! End-to-end: passwordless login through the blocking and the async client against the
//! emulator: a one-time code by email or SMS (start, then log in with the code), a magic link
//! (start, then the link's callback completed like a login), and the checks that refuse bad
//! input before anything is sent.

mod adapter_support;

use adapter_support::param;
use auth0_emulator::{Emulator, PASSWORDLESS_OTP_GRANT_TYPE};
use auth0_server::protocol::session::Session;
use auth0_server::store::CookieOptions;
use auth0_server::store::memory::{MemoryStateStore, MemoryTransactionStore};
use auth0_server::{
    Config, Error, LoginResult, PasswordlessOtp, PasswordlessStart, blocking, nonblocking,
};

const CALLBACK: &str = "http://127.0.0.1:3000/callback";

type Blocking = blocking::ServerClient<MemoryStateStore, MemoryTransactionStore>;
type Async = nonblocking::ServerClient<
    MemoryStateStore,
    MemoryTransactionStore,
    auth0_server::http::ReqwestClient,
>;

/// The operations under test, implemented by both clients so each scenario is written once.
trait Passwordless {
    fn start(&self, s: PasswordlessStart, o: &mut CookieOptions) -> Result<(), Error>;
    fn login(&self, otp: PasswordlessOtp, o: &mut CookieOptions) -> Result<LoginResult, Error>;
    fn complete(&self, callback: &str, o: &mut CookieOptions) -> Result<LoginResult, Error>;
    fn session(&self, o: &mut CookieOptions) -> Result<Option<Session>, Error>;
}

impl Passwordless for Blocking {
    fn start(&self, s: PasswordlessStart, o: &mut CookieOptions) -> Result<(), Error> {
        self.start_passwordless(s, o)
    }
    fn login(&self, otp: PasswordlessOtp, o: &mut CookieOptions) -> Result<LoginResult, Error> {
        self.login_with_passwordless(otp, o)
    }
    fn complete(&self, callback: &str, o: &mut CookieOptions) -> Result<LoginResult, Error> {
        self.complete_interactive_login(callback, o)
    }
    fn session(&self, o: &mut CookieOptions) -> Result<Option<Session>, Error> {
        self.get_session(o)
    }
}

struct AsyncClient {
    client: Async,
    rt: tokio::runtime::Runtime,
}

impl Passwordless for AsyncClient {
    fn start(&self, s: PasswordlessStart, o: &mut CookieOptions) -> Result<(), Error> {
        self.rt.block_on(self.client.start_passwordless(s, o))
    }
    fn login(&self, otp: PasswordlessOtp, o: &mut CookieOptions) -> Result<LoginResult, Error> {
        self.rt
            .block_on(self.client.login_with_passwordless(otp, o))
    }
    fn complete(&self, callback: &str, o: &mut CookieOptions) -> Result<LoginResult, Error> {
        self.rt
            .block_on(self.client.complete_interactive_login(callback, o))
    }
    fn session(&self, o: &mut CookieOptions) -> Result<Option<Session>, Error> {
        self.rt.block_on(self.client.get_session(o))
    }
}

fn config(emu: &Emulator) -> Config {
    adapter_support::config_builder(emu)
        .redirect_uri(CALLBACK)
        .audience(auth0_emulator::DEFAULT_AUDIENCE)
        .build()
        .expect("valid config")
}

fn blocking_client(config: Config) -> Box<dyn Passwordless> {
    Box::new(adapter_support::memory_blocking(config))
}

fn async_client(config: Config) -> Box<dyn Passwordless> {
    let (client, rt) = adapter_support::memory_async(config);
    Box::new(AsyncClient { client, rt })
}

type MakeClient = fn(Config) -> Box<dyn Passwordless>;

/// A browser's next request: the cookies the last response set (and the earlier ones).
fn next_request(jar: &mut Vec<(String, String)>, o: &CookieOptions) -> CookieOptions {
    for name in o.cookie_names() {
        jar.retain(|(n, _)| n != name);
        if let Some(v) = o.cookie(name) {
            jar.push((name.to_owned(), v.to_owned()));
        }
    }
    let pairs: Vec<String> = jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let mut h = http::HeaderMap::new();
    if !pairs.is_empty() {
        h.insert(http::header::COOKIE, pairs.join("; ").parse().unwrap());
    }
    CookieOptions::from_request_headers(&h)
}

fn email_code_logs_the_user_in(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu));
    let mut jar = Vec::new();
    let mut o = CookieOptions::new();
    client
        .start(PasswordlessStart::email("ann@example.com"), &mut o)
        .expect("code sent");
    let start = &emu.requests_to("/passwordless/start")[0];
    assert_eq!(param(start, "client_id").as_deref(), Some(emu.client_id()));
    assert_eq!(
        param(start, "client_secret").as_deref(),
        Some(emu.client_secret())
    );
    assert_eq!(param(start, "connection").as_deref(), Some("email"));
    assert_eq!(param(start, "send").as_deref(), Some("code"));
    let message = emu.passwordless_messages().pop().expect("a message");
    let code = message.code.expect("a code");
    let mut o = next_request(&mut jar, &o);
    client
        .login(
            PasswordlessOtp::email("ann@example.com", code.clone()),
            &mut o,
        )
        .expect("logged in");
    let token = &emu.requests_to("/oauth/token")[0];
    assert_eq!(
        param(token, "grant_type").as_deref(),
        Some(PASSWORDLESS_OTP_GRANT_TYPE)
    );
    assert_eq!(param(token, "realm").as_deref(), Some("email"));
    assert_eq!(param(token, "username").as_deref(), Some("ann@example.com"));
    assert!(
        param(token, "scope")
            .unwrap()
            .split(' ')
            .any(|s| s == "openid")
    );
    let mut o = next_request(&mut jar, &o);
    let session = client.session(&mut o).unwrap().expect("a session");
    assert_eq!(session.user.unwrap()["email"], "ann@example.com");
    // A code is single use.
    let mut o = CookieOptions::new();
    let e = client
        .login(PasswordlessOtp::email("ann@example.com", code), &mut o)
        .unwrap_err();
    assert_eq!(e.code(), "passwordless_failed");
}

fn sms_code_in_the_users_language(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu));
    let mut o = CookieOptions::new();
    client
        .start(
            PasswordlessStart::sms("+14155550100").language("pt-BR"),
            &mut o,
        )
        .expect("code sent");
    let message = emu.passwordless_messages().pop().unwrap();
    assert_eq!(message.connection, "sms");
    assert_eq!(message.language.as_deref(), Some("pt-BR"));
    let mut o = CookieOptions::new();
    client
        .login(
            PasswordlessOtp::sms("+14155550100", message.code.unwrap()),
            &mut o,
        )
        .expect("logged in");
    assert_eq!(
        param(&emu.requests_to("/oauth/token")[0], "realm").as_deref(),
        Some("sms")
    );
}

fn a_wrong_code_saves_nothing_and_does_not_leak(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu));
    let mut jar = Vec::new();
    let mut o = CookieOptions::new();
    client
        .start(PasswordlessStart::email("ann@example.com"), &mut o)
        .unwrap();
    let mut o = next_request(&mut jar, &o);
    let e = client
        .login(PasswordlessOtp::email("ann@example.com", "999999x"), &mut o)
        .unwrap_err();
    assert_eq!(e.code(), "passwordless_failed");
    assert!(!e.to_string().contains("999999x"), "{e}");
    let mut o = next_request(&mut jar, &o);
    assert!(client.session(&mut o).unwrap().is_none());
}

fn magic_link_completes_like_a_login(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu));
    let mut jar = Vec::new();
    let mut o = CookieOptions::new();
    client
        .start(
            PasswordlessStart::email("ann@example.com")
                .magic_link()
                .app_state(serde_json::json!({"return_to": "/inbox"})),
            &mut o,
        )
        .expect("link sent");
    let link = emu
        .passwordless_messages()
        .pop()
        .and_then(|m| m.link)
        .expect("a link");
    assert!(link.starts_with(CALLBACK), "{link}");
    // The user clicks the link in the same browser.
    let mut o = next_request(&mut jar, &o);
    let result = client
        .complete(&link, &mut o)
        .expect("logged in by the link");
    assert_eq!(result.app_state.unwrap()["return_to"], "/inbox");
    let exchange = &emu.requests_to("/oauth/token")[0];
    assert_eq!(
        param(exchange, "code_verifier"),
        None,
        "no PKCE on a magic link"
    );
    let mut o = next_request(&mut jar, &o);
    assert!(client.session(&mut o).unwrap().is_some());
}

fn bad_input_sends_nothing(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu));
    for start in [
        PasswordlessStart::email("not-an-address"),
        PasswordlessStart::email("two@@example.com"),
        PasswordlessStart::email("a b@example.com"),
        PasswordlessStart::sms("4155550100"),
        PasswordlessStart::sms("+0155550100"),
        PasswordlessStart::sms("+14155550100").magic_link(),
        PasswordlessStart::email("ann@example.com").language("fr; drop"),
        PasswordlessStart::email("ann@example.com")
            .magic_link()
            .auth_param("state", "mine"),
        PasswordlessStart::email("ann@example.com").scope("openid"),
    ] {
        let mut o = CookieOptions::new();
        let e = client.start(start.clone(), &mut o).unwrap_err();
        assert_eq!(e.code(), "invalid_parameter", "{start:?}");
    }
    for otp in [
        PasswordlessOtp::email("ann@example.com", ""),
        PasswordlessOtp::email("ann@example.com", "12 34"),
        PasswordlessOtp::sms("555", "1234"),
    ] {
        let mut o = CookieOptions::new();
        let e = client.login(otp, &mut o).unwrap_err();
        assert_eq!(e.code(), "invalid_parameter");
    }
    assert!(emu.requests_to("/passwordless/start").is_empty());
    assert!(emu.requests_to("/oauth/token").is_empty());
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
    email_code_logs_the_user_in,
    sms_code_in_the_users_language,
    a_wrong_code_saves_nothing_and_does_not_leak,
    magic_link_completes_like_a_login,
    bad_input_sends_nothing,
);
