//! End-to-end: passkeys through the blocking and the async client against the emulator. A
//! signup (challenge, the browser's attestation, the WebAuthn grant, a session); a returning
//! user's login (challenge, assertion, session; tokens only); and the negative cases: a
//! replayed, expired or tampered `auth_session`, a credential for another challenge, an
//! organization the ID token does not name, an ID token with a bad signature, and a
//! `private_key_jwt` client the challenge endpoints refuse. Nothing is saved on any failure,
//! and no error shows the `auth_session`.

mod adapter_support;
mod emulator_support;

use adapter_support::param;
use auth0_emulator::{
    DEFAULT_PASSKEY_REALM, Emulator, EmulatorConfig, Failure, KeyChoice, SignOptions,
    WEBAUTHN_GRANT_TYPE, passkey_credential_for,
};
use auth0_server::protocol::session::Session;
use auth0_server::store::CookieOptions;
use auth0_server::store::memory::{MemoryStateStore, MemoryTransactionStore};
use auth0_server::{
    AccessTokenRequest, Config, Error, LoginResult, PasskeyChallenge, PasskeyLogin, PasskeySignIn,
    PasskeySignup, SealedMfaToken, SealedPasskeySession, TokenExchangeResult, blocking,
    nonblocking,
};
use serde_json::{Map, Value, json};

type Blocking = blocking::ServerClient<MemoryStateStore, MemoryTransactionStore>;
type Async = nonblocking::ServerClient<
    MemoryStateStore,
    MemoryTransactionStore,
    auth0_server::http::ReqwestClient,
>;
type O = CookieOptions;

/// The operations under test, implemented by both clients so each scenario is written once.
trait Passkeys {
    fn signup(&self, s: PasskeySignup, o: &mut O) -> Result<PasskeyChallenge, Error>;
    fn challenge(&self, l: PasskeyLogin, o: &mut O) -> Result<PasskeyChallenge, Error>;
    fn login(&self, s: PasskeySignIn, o: &mut O) -> Result<LoginResult, Error>;
    fn tokens(&self, s: PasskeySignIn, o: &mut O) -> Result<TokenExchangeResult, Error>;
    fn session(&self, o: &mut O) -> Result<Option<Session>, Error>;
    fn seal(&self, e: &Error, r: &AccessTokenRequest) -> Result<SealedMfaToken, Error>;
}

impl Passkeys for Blocking {
    fn signup(&self, s: PasskeySignup, o: &mut O) -> Result<PasskeyChallenge, Error> {
        self.passkey_signup_challenge(s, o)
    }
    fn challenge(&self, l: PasskeyLogin, o: &mut O) -> Result<PasskeyChallenge, Error> {
        self.passkey_login_challenge(l, o)
    }
    fn login(&self, s: PasskeySignIn, o: &mut O) -> Result<LoginResult, Error> {
        self.login_with_passkey(s, o)
    }
    fn tokens(&self, s: PasskeySignIn, o: &mut O) -> Result<TokenExchangeResult, Error> {
        self.passkey_tokens(s, o)
    }
    fn session(&self, o: &mut O) -> Result<Option<Session>, Error> {
        self.get_session(o)
    }
    fn seal(&self, e: &Error, r: &AccessTokenRequest) -> Result<SealedMfaToken, Error> {
        self.seal_mfa_token(e, r)
    }
}

struct AsyncClient {
    client: Async,
    rt: tokio::runtime::Runtime,
}

impl Passkeys for AsyncClient {
    fn signup(&self, s: PasskeySignup, o: &mut O) -> Result<PasskeyChallenge, Error> {
        self.rt.block_on(self.client.passkey_signup_challenge(s, o))
    }
    fn challenge(&self, l: PasskeyLogin, o: &mut O) -> Result<PasskeyChallenge, Error> {
        self.rt.block_on(self.client.passkey_login_challenge(l, o))
    }
    fn login(&self, s: PasskeySignIn, o: &mut O) -> Result<LoginResult, Error> {
        self.rt.block_on(self.client.login_with_passkey(s, o))
    }
    fn tokens(&self, s: PasskeySignIn, o: &mut O) -> Result<TokenExchangeResult, Error> {
        self.rt.block_on(self.client.passkey_tokens(s, o))
    }
    fn session(&self, o: &mut O) -> Result<Option<Session>, Error> {
        self.rt.block_on(self.client.get_session(o))
    }
    fn seal(&self, e: &Error, r: &AccessTokenRequest) -> Result<SealedMfaToken, Error> {
        self.client.seal_mfa_token(e, r)
    }
}

fn config(emu: &Emulator) -> Config {
    adapter_support::config_builder(emu)
        .audience(auth0_emulator::DEFAULT_AUDIENCE)
        .build()
        .expect("valid config")
}

fn blocking_client(config: Config) -> Box<dyn Passkeys> {
    Box::new(adapter_support::memory_blocking(config))
}

fn async_client(config: Config) -> Box<dyn Passkeys> {
    let (client, rt) = adapter_support::memory_async(config);
    Box::new(AsyncClient { client, rt })
}

type MakeClient = fn(Config) -> Box<dyn Passkeys>;

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

/// The raw `auth_session` the emulator issued for the last challenge (from its answer).
fn raw_auth_sessions(emu: &Emulator) -> Vec<String> {
    emu.requests_to("/oauth/token")
        .iter()
        .filter_map(|r| param(r, "auth_session"))
        .collect()
}

/// Signs Ann up with passkey `cred-ann` and returns her session's cookie jar.
fn sign_up_ann(client: &dyn Passkeys, emu: &Emulator) -> Vec<(String, String)> {
    let mut jar = Vec::new();
    let mut o = O::new();
    let challenge = client
        .signup(PasskeySignup::email("ann@example.com").name("Ann"), &mut o)
        .expect("signup challenge");
    let credential = passkey_credential_for(&challenge.authn_params_public_key, "cred-ann");
    let mut o = next_request(&mut jar, &o);
    client
        .login(
            PasskeySignIn::new(challenge.auth_session, credential),
            &mut o,
        )
        .expect("signed up");
    assert_eq!(emu.passkey_credential_ids(), vec!["cred-ann".to_owned()]);
    next_request(&mut jar, &o);
    jar
}

fn signup_then_login_creates_sessions(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu));
    let mut jar = Vec::new();
    let mut o = O::new();
    let challenge = client
        .signup(
            PasskeySignup::email("ann@example.com")
                .name("Ann")
                .realm(DEFAULT_PASSKEY_REALM),
            &mut o,
        )
        .expect("signup challenge");
    let register = &emu.requests_to("/passkey/register")[0];
    let body: Value = serde_json::from_slice(&register.body).unwrap();
    assert_eq!(body["client_id"], emu.client_id());
    assert_eq!(body["client_secret"], emu.client_secret());
    assert_eq!(body["realm"], DEFAULT_PASSKEY_REALM);
    assert_eq!(
        body["user_profile"],
        json!({"email": "ann@example.com", "name": "Ann"})
    );
    let options = &challenge.authn_params_public_key;
    assert!(options["challenge"].is_string() && options["user"].is_object());
    let credential = passkey_credential_for(options, "cred-ann");
    let mut o = next_request(&mut jar, &o);
    client
        .login(
            PasskeySignIn::new(challenge.auth_session.clone(), credential.clone()),
            &mut o,
        )
        .expect("signed up");
    let grant = &emu.requests_to("/oauth/token")[0];
    assert_eq!(
        param(grant, "grant_type").as_deref(),
        Some(WEBAUTHN_GRANT_TYPE)
    );
    assert_eq!(
        param(grant, "realm").as_deref(),
        Some(DEFAULT_PASSKEY_REALM)
    );
    let sent: Value = serde_json::from_str(&param(grant, "authn_response").unwrap()).unwrap();
    assert_eq!(sent, credential);
    assert!(
        param(grant, "scope")
            .unwrap()
            .split(' ')
            .any(|s| s == "openid")
    );
    let raw = param(grant, "auth_session").unwrap();
    assert!(!challenge.auth_session.as_str().contains(&raw));
    let mut o = next_request(&mut jar, &o);
    let session = client.session(&mut o).unwrap().expect("a session");
    let user = session.user.unwrap();
    assert_eq!(user["email"], "ann@example.com");
    let sub = user["sub"].as_str().unwrap().to_owned();
    assert!(sub.starts_with("auth0|passkey-"), "{sub}");

    // Later, in another browser: a login challenge and the same passkey.
    let mut jar = Vec::new();
    let mut o = O::new();
    let challenge = client
        .challenge(PasskeyLogin::new().username("ann@example.com"), &mut o)
        .expect("login challenge");
    let body: Value =
        serde_json::from_slice(&emu.requests_to("/passkey/challenge")[0].body).unwrap();
    assert_eq!(body["username"], "ann@example.com");
    let credential = passkey_credential_for(&challenge.authn_params_public_key, "cred-ann");
    assert!(credential["response"]["signature"].is_string());
    let mut o = next_request(&mut jar, &o);
    client
        .login(
            PasskeySignIn::new(challenge.auth_session, credential),
            &mut o,
        )
        .expect("logged in");
    let mut o = next_request(&mut jar, &o);
    let session = client.session(&mut o).unwrap().expect("a session");
    assert_eq!(session.user.unwrap()["sub"], sub.as_str());
}

fn tokens_without_a_session(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu));
    sign_up_ann(client.as_ref(), &emu);
    let mut o = O::new();
    let challenge = client.challenge(PasskeyLogin::new(), &mut o).unwrap();
    let credential = passkey_credential_for(&challenge.authn_params_public_key, "cred-ann");
    let mut o = O::new();
    let tokens = client
        .tokens(
            PasskeySignIn::new(challenge.auth_session, credential).scope("read:data"),
            &mut o,
        )
        .expect("tokens");
    assert_eq!(tokens.claims.unwrap()["email"], "ann@example.com");
    assert!(!tokens.access_token.expose().is_empty());
    let scope = param(&emu.requests_to("/oauth/token")[1], "scope").unwrap();
    assert!(scope.split(' ').any(|s| s == "openid"), "{scope}");
    assert!(o.cookie_names().is_empty(), "no cookie set");
    assert!(client.session(&mut o).unwrap().is_none());
}

fn a_replayed_auth_session_is_refused_and_saves_nothing(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu));
    sign_up_ann(client.as_ref(), &emu);
    let mut o = O::new();
    let challenge = client.challenge(PasskeyLogin::new(), &mut o).unwrap();
    let credential = passkey_credential_for(&challenge.authn_params_public_key, "cred-ann");
    let mut o = O::new();
    client
        .login(
            PasskeySignIn::new(challenge.auth_session.clone(), credential.clone()),
            &mut o,
        )
        .expect("first use");
    let mut jar = Vec::new();
    let mut o = O::new();
    let e = client
        .login(
            PasskeySignIn::new(challenge.auth_session.clone(), credential),
            &mut o,
        )
        .unwrap_err();
    assert_eq!(e.code(), "passkey_token_error");
    assert_eq!(
        e.oauth_error().map(|o| o.error.as_str()),
        Some("invalid_grant")
    );
    let shown = format!("{e} {e:?}");
    for raw in raw_auth_sessions(&emu) {
        assert!(!shown.contains(&raw), "{shown}");
    }
    assert!(!shown.contains(challenge.auth_session.as_str()), "{shown}");
    let mut o = next_request(&mut jar, &o);
    assert!(client.session(&mut o).unwrap().is_none());
}

fn an_expired_or_foreign_challenge_is_refused(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu));
    sign_up_ann(client.as_ref(), &emu);
    let mut o = O::new();
    // Auth0's auth_session expired while the user hesitated.
    let challenge = client.challenge(PasskeyLogin::new(), &mut o).unwrap();
    let credential = passkey_credential_for(&challenge.authn_params_public_key, "cred-ann");
    emu.expire_passkey_sessions();
    let e = client
        .login(
            PasskeySignIn::new(challenge.auth_session, credential),
            &mut O::new(),
        )
        .unwrap_err();
    assert_eq!(e.code(), "passkey_token_error");
    // A credential made for another challenge.
    let first = client
        .challenge(PasskeyLogin::new(), &mut O::new())
        .unwrap();
    let second = client
        .challenge(PasskeyLogin::new(), &mut O::new())
        .unwrap();
    let credential = passkey_credential_for(&second.authn_params_public_key, "cred-ann");
    let e = client
        .login(
            PasskeySignIn::new(first.auth_session, credential),
            &mut O::new(),
        )
        .unwrap_err();
    assert_eq!(e.code(), "passkey_token_error");
    // An unknown passkey.
    let third = client
        .challenge(PasskeyLogin::new(), &mut O::new())
        .unwrap();
    let credential = passkey_credential_for(&third.authn_params_public_key, "cred-unknown");
    let e = client
        .login(
            PasskeySignIn::new(third.auth_session, credential),
            &mut O::new(),
        )
        .unwrap_err();
    assert_eq!(e.code(), "passkey_token_error");
    // Another user's passkey for a challenge naming Bob.
    let bob = client
        .challenge(
            PasskeyLogin::new().username("bob@example.com"),
            &mut O::new(),
        )
        .unwrap();
    let credential = passkey_credential_for(&bob.authn_params_public_key, "cred-ann");
    let e = client
        .login(
            PasskeySignIn::new(bob.auth_session, credential),
            &mut O::new(),
        )
        .unwrap_err();
    assert_eq!(e.code(), "passkey_token_error");
}

fn a_tampered_sealed_session_sends_nothing(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu));
    let challenge = client
        .signup(PasskeySignup::email("ann@example.com"), &mut O::new())
        .unwrap();
    let credential = passkey_credential_for(&challenge.authn_params_public_key, "cred-ann");
    let mut s = challenge.auth_session.as_str().to_owned();
    let last = s.pop().unwrap();
    s.push(if last == 'A' { 'B' } else { 'A' });
    let e = client
        .login(
            PasskeySignIn::new(SealedPasskeySession::new(s), credential.clone()),
            &mut O::new(),
        )
        .unwrap_err();
    assert_eq!(e.code(), "passkey_session_invalid");
    // A login assertion for a signup challenge is refused before sending.
    let mut assertion = credential;
    assertion["response"] =
        json!({"clientDataJSON": "e30", "authenticatorData": "AA", "signature": "AA"});
    let e = client
        .login(
            PasskeySignIn::new(challenge.auth_session, assertion),
            &mut O::new(),
        )
        .unwrap_err();
    assert_eq!(e.code(), "invalid_parameter");
    assert!(emu.requests_to("/oauth/token").is_empty(), "nothing sent");
}

/// Answers the next grant with these tokens (an ID token the test forged).
fn answer_next_grant(emu: &Emulator, id_token: String) {
    emu.fail_next(
        "/oauth/token",
        Failure::OAuth {
            status: 200,
            body: json!({"access_token": "at", "id_token": id_token, "expires_in": 60,
                         "token_type": "Bearer", "scope": "openid"}),
        },
        1,
    );
}

fn organization_mismatch_and_bad_id_token_save_nothing(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu));
    sign_up_ann(client.as_ref(), &emu);
    // The challenge named an organization: it is sent with the grant and checked.
    let challenge = client
        .challenge(PasskeyLogin::new().organization("org_acme"), &mut O::new())
        .unwrap();
    let credential = passkey_credential_for(&challenge.authn_params_public_key, "cred-ann");
    let mut claims = Map::new();
    claims.insert("org_id".into(), "org_other".into());
    answer_next_grant(&emu, emu.mint_id_token(claims, SignOptions::default()));
    let mut jar = Vec::new();
    let mut o = O::new();
    let e = client
        .login(
            PasskeySignIn::new(challenge.auth_session.clone(), credential.clone()),
            &mut o,
        )
        .unwrap_err();
    assert_eq!(e.code(), "invalid_id_token");
    match &e {
        Error::Login(l) => assert_eq!(
            l.id_token_error().map(|j| j.code().as_str()),
            Some("organization_mismatch")
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        param(&emu.requests_to("/oauth/token")[1], "organization").as_deref(),
        Some("org_acme")
    );
    let mut o = next_request(&mut jar, &o);
    assert!(client.session(&mut o).unwrap().is_none());
    // The emulator names the organization asked for: the real grant passes.
    client
        .login(
            PasskeySignIn::new(challenge.auth_session, credential),
            &mut o,
        )
        .expect("the organization matches");
    let mut o = next_request(&mut jar, &o);
    let user = client.session(&mut o).unwrap().unwrap().user.unwrap();
    assert_eq!(user["org_id"], "org_acme");

    // An ID token signed with a key not in the JWKS.
    let challenge = client
        .challenge(PasskeyLogin::new(), &mut O::new())
        .unwrap();
    let credential = passkey_credential_for(&challenge.authn_params_public_key, "cred-ann");
    answer_next_grant(
        &emu,
        emu.mint_id_token(
            Map::new(),
            SignOptions {
                key: KeyChoice::Unpublished,
                ..Default::default()
            },
        ),
    );
    let mut jar = Vec::new();
    let mut o = O::new();
    let e = client
        .login(
            PasskeySignIn::new(challenge.auth_session, credential),
            &mut o,
        )
        .unwrap_err();
    assert_eq!(e.code(), "invalid_id_token");
    let mut o = next_request(&mut jar, &o);
    assert!(client.session(&mut o).unwrap().is_none());
}

fn private_key_jwt_clients_are_refused_by_the_challenge_endpoints(make: MakeClient) {
    use auth0_server::protocol::client_assertion::{AssertionAlg, AssertionKey};
    const RSA_PEM: &str = include_str!("../data/client_keys/rsa.pem");
    let public = AssertionKey::parse(RSA_PEM, AssertionAlg::Rs256, None)
        .expect("fixture key")
        .public_jwk();
    let emu = Emulator::start(EmulatorConfig {
        client_public_key: Some(public),
        ..Default::default()
    });
    let config = Config::builder(emu.issuer_url(), emu.client_id())
        .private_key_jwt(RSA_PEM, AssertionAlg::Rs256)
        .secret(adapter_support::SECRET)
        .build()
        .unwrap();
    let client = make(config);
    let e = client
        .challenge(PasskeyLogin::new(), &mut O::new())
        .unwrap_err();
    assert_eq!(e.code(), "passkey_challenge_error");
    let sent = &emu.requests_to("/passkey/challenge")[0];
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body, json!({"client_id": emu.client_id()}));
}

/// With a DPoP key, the WebAuthn grant carries a proof (retried once with the server's nonce)
/// and the session's token set is DPoP-bound.
fn the_grant_is_dpop_bound_with_a_nonce_retry(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let config = adapter_support::config_builder(&emu)
        .audience(auth0_emulator::DEFAULT_AUDIENCE)
        .dpop(include_str!("../data/client_keys/ec.pem"))
        .build()
        .unwrap();
    let client = make(config);
    let challenge = client
        .signup(PasskeySignup::email("ann@example.com"), &mut O::new())
        .unwrap();
    let credential = passkey_credential_for(&challenge.authn_params_public_key, "cred-ann");
    emu.require_dpop_nonce(true);
    let mut jar = Vec::new();
    let mut o = O::new();
    client
        .login(
            PasskeySignIn::new(challenge.auth_session, credential),
            &mut o,
        )
        .expect("signed up with DPoP");
    assert_eq!(emu.dpop_nonce_challenges(), 1, "one challenge, one retry");
    let grants = emu.requests_to("/oauth/token");
    assert_eq!(grants.len(), 2);
    assert!(grants.iter().all(|g| g.header("dpop").is_some()));
    assert_eq!(
        param(&grants[0], "auth_session"),
        param(&grants[1], "auth_session"),
        "the same grant, resent"
    );
    let mut o = next_request(&mut jar, &o);
    let session = client.session(&mut o).unwrap().expect("a session");
    assert_eq!(session.token_sets[0].token_type.as_str(), "DPoP");
}

/// A tenant that asks for a second factor answers the grant `mfa_required`: a
/// `passkey_token_error` whose `mfa_token` never shows, sealed for the MFA API with
/// `seal_mfa_token`; nothing is saved.
fn mfa_required_is_sealable_and_saves_nothing(make: MakeClient) {
    const RAW: &str = "raw-mfa-token-SHOULD-NOT-LEAK";
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu));
    sign_up_ann(client.as_ref(), &emu);
    let challenge = client
        .challenge(PasskeyLogin::new(), &mut O::new())
        .unwrap();
    let credential = passkey_credential_for(&challenge.authn_params_public_key, "cred-ann");
    emu.fail_next(
        "/oauth/token",
        Failure::OAuth {
            status: 403,
            body: json!({"error": "mfa_required", "error_description": "Multifactor authentication required",
                         "mfa_token": RAW, "mfa_requirements": {"challenge": [{"type": "otp"}]}}),
        },
        1,
    );
    let mut jar = Vec::new();
    let mut o = O::new();
    let e = client
        .login(
            PasskeySignIn::new(challenge.auth_session, credential),
            &mut o,
        )
        .unwrap_err();
    assert_eq!(e.code(), "passkey_token_error");
    assert_eq!(
        e.oauth_error().map(|o| o.error.as_str()),
        Some("mfa_required")
    );
    assert!(!format!("{e} {e:?}").contains(RAW));
    let sealed = client
        .seal(
            &e,
            &AccessTokenRequest::audience(auth0_emulator::DEFAULT_AUDIENCE),
        )
        .expect("sealed");
    assert!(!sealed.as_str().contains(RAW));
    let mut o = next_request(&mut jar, &o);
    assert!(client.session(&mut o).unwrap().is_none());
}

fn bad_input_sends_nothing(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu));
    for signup in [
        PasskeySignup::default(),
        PasskeySignup::email("not-an-address"),
        PasskeySignup::phone_number("4155550100"),
        PasskeySignup::email("ann@example.com").realm("a realm"),
    ] {
        let e = client.signup(signup, &mut O::new()).unwrap_err();
        assert_eq!(e.code(), "invalid_parameter");
    }
    let e = client
        .login(
            PasskeySignIn::new("".into(), json!({"id": "x"})),
            &mut O::new(),
        )
        .unwrap_err();
    assert_eq!(e.code(), "passkey_session_invalid");
    assert!(emu.requests().is_empty(), "nothing sent");
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod blocking_client {
            $( #[test] fn $name() { super::$name(super::blocking_client) } )*
        }
        mod async_client {
            $( #[test] fn $name() { super::$name(super::async_client) } )*
        }
    };
}

both!(
    signup_then_login_creates_sessions,
    tokens_without_a_session,
    a_replayed_auth_session_is_refused_and_saves_nothing,
    an_expired_or_foreign_challenge_is_refused,
    a_tampered_sealed_session_sends_nothing,
    organization_mismatch_and_bad_id_token_save_nothing,
    private_key_jwt_clients_are_refused_by_the_challenge_endpoints,
    the_grant_is_dpop_bound_with_a_nonce_retry,
    mfa_required_is_sealable_and_saves_nothing,
    bad_input_sends_nothing,
);

/// The emulator's passkey endpoints answer malformed requests with Auth0-shaped 4xx errors
/// (never a panic or a 5xx), and a grant for an unknown `auth_session` is `invalid_grant`.
#[test]
fn the_emulator_answers_malformed_passkey_requests() {
    use emulator_support::{agent, answer};
    let emu = Emulator::start(Default::default());
    let json_post = |path: &str, body: &[u8]| {
        answer(
            agent()
                .post(emu.base_url() + path)
                .header("Content-Type", "application/json")
                .send(body),
        )
    };
    let creds = format!(
        r#""client_id":"{}","client_secret":"{}""#,
        emu.client_id(),
        emu.client_secret()
    );
    for (path, body, status) in [
        ("/passkey/register", "{}".to_owned(), 401),
        ("/passkey/register", "[1,2]".to_owned(), 401),
        ("/passkey/register", "%%%\u{ff}".to_owned(), 401),
        ("/passkey/register", format!("{{{creds}}}"), 400),
        (
            "/passkey/register",
            format!(r#"{{{creds},"user_profile":{{}}}}"#),
            400,
        ),
        (
            "/passkey/register",
            format!(r#"{{{creds},"user_profile":"x"}}"#),
            400,
        ),
        ("/passkey/challenge", "{}".to_owned(), 401),
    ] {
        let a = json_post(path, body.as_bytes());
        assert_eq!(a.status, status, "{path} {body} -> {}", a.text);
        assert!(a.json()["error"].is_string(), "{}", a.text);
    }
    // Not JSON at all.
    let a = answer(
        agent()
            .post(emu.base_url() + "/passkey/challenge")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(&b"client_id=x"[..]),
    );
    assert_eq!(a.status, 400);
    let grant = |params: &[(&str, &str)]| {
        let mut all = vec![
            ("grant_type", WEBAUTHN_GRANT_TYPE),
            ("client_id", emu.client_id()),
            ("client_secret", emu.client_secret()),
        ];
        all.extend_from_slice(params);
        answer(agent().post(emu.base_url() + "/oauth/token").send_form(all))
    };
    for (params, status, error) in [
        (vec![], 400, "invalid_request"),
        (vec![("auth_session", "x")], 400, "invalid_request"),
        (
            vec![("auth_session", "unknown"), ("authn_response", "{}")],
            403,
            "invalid_grant",
        ),
    ] {
        let a = grant(&params);
        assert_eq!(a.status, status, "{params:?} -> {}", a.text);
        assert_eq!(a.json()["error"], error);
    }
    // A live auth_session with a credential that is not JSON: refused, and spent.
    let options: Value = json_post("/passkey/challenge", format!("{{{creds}}}").as_bytes()).json();
    let session = options["auth_session"].as_str().unwrap().to_owned();
    let a = grant(&[("auth_session", &session), ("authn_response", "not json")]);
    assert_eq!(a.status, 400, "{}", a.text);
    let a = grant(&[("auth_session", &session), ("authn_response", "{}")]);
    assert_eq!(a.status, 403, "{}", a.text);
}
