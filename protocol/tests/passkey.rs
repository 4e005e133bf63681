//! Passkeys: the challenge requests (endpoint, JSON body, the client's credential), the
//! sealed `auth_session` (round trip and tampering as properties; expiry; the raw handle never
//! shown), the WebAuthn grant's form (every member, `openid` always asked, the challenge's
//! realm and organization), the input checks (as properties where they decide), the ID token
//! and organization checks, and what an error may show.

mod common;

use auth0_server_protocol::effect::{Effect, Input, Operation, Step};
use auth0_server_protocol::login::passkey::{
    PASSKEY_SESSION_TTL, PasskeySession, check_credential, open_passkey_session,
    seal_passkey_session,
};
use auth0_server_protocol::login::{
    LoginError, PasskeyCeremony, PasskeyLogin, PasskeySignIn, PasskeySignup, SealedPasskeySession,
};
use auth0_server_protocol::secret::Secret;
use auth0_server_protocol::session::StateData;
use auth0_server_protocol::time::UnixTime;
use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::time::Duration;

const AUTH_SESSION: &str = "auth-session-SHOULD-NOT-LEAK";

fn secrets(list: &[&str]) -> Vec<Secret> {
    list.iter().map(|s| Secret::new(*s)).collect()
}

fn session(ceremony: PasskeyCeremony, organization: Option<&str>) -> PasskeySession {
    PasskeySession {
        auth_session: Secret::new(AUTH_SESSION),
        ceremony,
        realm: Some("Username-Password-Authentication".into()),
        organization: organization.map(str::to_owned),
    }
}

fn sealed(ceremony: PasskeyCeremony, organization: Option<&str>) -> SealedPasskeySession {
    seal_passkey_session(
        &secrets(&[COOKIE_SECRET]),
        &session(ceremony, organization),
        UnixTime::from_secs(NOW),
        PASSKEY_SESSION_TTL,
        [7; 16],
    )
    .unwrap()
}

fn assertion() -> Value {
    json!({
        "id": "cred-1", "rawId": "cred-1", "type": "public-key",
        "authenticatorAttachment": "platform",
        "response": {"clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uZ2V0In0", "authenticatorData": "AAAA",
                     "signature": "MEUC", "userHandle": "dXNlcg"}
    })
}

fn attestation() -> Value {
    json!({
        "id": "cred-1", "rawId": "cred-1", "type": "public-key",
        "response": {"clientDataJSON": "eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIn0", "attestationObject": "o2Nm"}
    })
}

/// What an operation did: the request sent, the sessions saved, the result.
struct Ran<T> {
    request: Option<http::Request<Vec<u8>>>,
    saved: Vec<StateData>,
    deleted: bool,
    result: Result<T, LoginError>,
}

/// Runs an operation against a tenant answering `answer` at `now`.
fn run<O>(mut op: O, answer: http::Response<Vec<u8>>, now: u64) -> Ran<O::Output>
where
    O: Operation<Error = LoginError>,
    O::Output: std::fmt::Debug,
{
    let mut input = Input::Start;
    let mut ran = Ran {
        request: None,
        saved: Vec::new(),
        deleted: false,
        result: Err(LoginError::MissingSession),
    };
    let mut answer = Some(answer);
    loop {
        match op.step(input, UnixTime::from_secs(now)) {
            Step::Effect(Effect::Random { len }) => input = Input::Random(vec![9; len]),
            Step::Effect(Effect::LoadMetadata) => {
                input = Input::Metadata(Some(cached_metadata(NOW, 10)))
            }
            Step::Effect(Effect::LoadJwks) => input = Input::Jwks(Some(cached_jwks())),
            Step::Effect(Effect::Http(request)) => {
                assert!(ran.request.is_none(), "one request");
                ran.request = Some(request.request);
                input = Input::Http(answer.take().expect("one answer"));
            }
            Step::Effect(Effect::DeleteSession) => {
                ran.deleted = true;
                input = Input::Done;
            }
            Step::Effect(Effect::SaveSession(s)) => {
                ran.saved.push(*s);
                input = Input::Done;
            }
            Step::Done(r) => {
                ran.result = r;
                return ran;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn answer(status: u16, body: Value) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .body(body.to_string().into_bytes())
        .unwrap()
}

fn form(request: &http::Request<Vec<u8>>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(request.body())
        .into_owned()
        .collect()
}

fn get<'a>(form: &'a [(String, String)], k: &str) -> Option<&'a str> {
    form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn challenge_answer() -> http::Response<Vec<u8>> {
    answer(
        200,
        json!({"authn_params_public_key": {"challenge": "Y2hhbA", "rpId": "tenant.auth0.com"},
               "auth_session": AUTH_SESSION}),
    )
}

fn token_answer(id_token: String) -> http::Response<Vec<u8>> {
    answer(
        200,
        json!({"access_token": "at", "id_token": id_token, "expires_in": 60,
               "token_type": "Bearer", "scope": "openid profile"}),
    )
}

proptest! {
    /// A sealed session opens unchanged before its expiry and never shows the raw handle.
    #[test]
    fn seal_then_open_round_trips(
        handle in "[ -~]{1,300}",
        organization in proptest::option::of("[a-z_0-9]{1,40}"),
        signup in any::<bool>(),
        iv in proptest::array::uniform16(any::<u8>()),
        ttl in 1u64..100_000,
        elapsed in 0u64..100_000,
    ) {
        let s = PasskeySession {
            auth_session: Secret::new(handle.clone()),
            ceremony: if signup { PasskeyCeremony::Signup } else { PasskeyCeremony::Login },
            realm: None,
            organization,
        };
        let keys = secrets(&[COOKIE_SECRET]);
        let sealed = seal_passkey_session(&keys, &s, UnixTime::from_secs(NOW), Duration::from_secs(ttl), iv).unwrap();
        prop_assert!(handle.len() < 8 || !sealed.as_str().contains(&handle));
        let opened = open_passkey_session(&keys, &sealed, UnixTime::from_secs(NOW + elapsed));
        if elapsed < ttl {
            prop_assert_eq!(opened.unwrap(), s);
        } else {
            prop_assert_eq!(opened.unwrap_err(), LoginError::PasskeySessionExpired);
        }
    }

    /// Any change to a sealed session is refused as invalid (never opened, never a panic).
    #[test]
    fn any_tampering_is_refused(i in 0usize..400, c in "[A-Za-z0-9_.-]") {
        let sealed = sealed(PasskeyCeremony::Login, None);
        let mut s = sealed.as_str().to_owned();
        let i = i % s.len();
        if s[i..].starts_with(c.as_str()) {
            return Ok(());
        }
        s.replace_range(i..=i, &c);
        let r = open_passkey_session(&secrets(&[COOKIE_SECRET]), &SealedPasskeySession::new(s), UnixTime::from_secs(NOW));
        prop_assert_eq!(r.unwrap_err(), LoginError::PasskeySessionInvalid);
    }

    /// The credential check is total, and what it accepts is an object with a string `id`,
    /// `type` `public-key` and the ceremony's response members.
    #[test]
    fn credential_check_decides(
        id in proptest::option::of("[ -~]{0,20}"),
        kind in proptest::option::of(prop_oneof![Just("public-key"), Just("password"), Just("")]),
        members in proptest::collection::btree_set(
            prop_oneof![Just("clientDataJSON"), Just("attestationObject"), Just("authenticatorData"), Just("signature")],
            0..4,
        ),
        signup in any::<bool>(),
    ) {
        let mut response = serde_json::Map::new();
        for m in &members {
            response.insert((*m).into(), "eA".into());
        }
        let mut c = serde_json::Map::new();
        if let Some(id) = &id { c.insert("id".into(), id.clone().into()); }
        if let Some(kind) = kind { c.insert("type".into(), kind.into()); }
        c.insert("response".into(), Value::Object(response));
        let ceremony = if signup { PasskeyCeremony::Signup } else { PasskeyCeremony::Login };
        let ok = check_credential(&Value::Object(c), Some(ceremony)).is_ok();
        let needed: &[&str] = if signup {
            &["clientDataJSON", "attestationObject"]
        } else {
            &["clientDataJSON", "authenticatorData", "signature"]
        };
        let expected = id.is_some_and(|i| !i.is_empty())
            && kind == Some("public-key")
            && needed.iter().all(|m| members.contains(m));
        prop_assert_eq!(ok, expected);
    }

    /// Signup checks are total; an accepted signup has an identifier, and its email (when
    /// given) has one `@` and no whitespace.
    #[test]
    fn signup_checks_decide(email in ".{0,40}", realm in ".{0,20}") {
        let signup = PasskeySignup::email(email.clone()).realm(realm.clone());
        if signup.check().is_ok() {
            prop_assert_eq!(email.matches('@').count(), 1);
            prop_assert!(!email.chars().any(char::is_whitespace));
            prop_assert!(!realm.is_empty() && !realm.chars().any(char::is_whitespace));
        }
        let login = PasskeyLogin::new().username(email.clone()).realm(realm);
        if login.check().is_ok() {
            prop_assert!(!email.trim().is_empty() && !email.chars().any(char::is_control));
        }
    }
}

#[test]
fn signup_challenge_posts_json_with_the_secret_and_seals_the_session() {
    let core = core(config_builder());
    let mut metadata = serde_json::Map::new();
    metadata.insert("plan".into(), "gold".into());
    let ran = run(
        core.passkey_signup_challenge(
            PasskeySignup::email("ann@example.com")
                .name("Ann")
                .realm("Username-Password-Authentication")
                .organization("org_abc")
                .user_metadata(metadata),
        ),
        challenge_answer(),
        NOW,
    );
    let request = ran.request.unwrap();
    assert_eq!(request.method(), "POST");
    assert_eq!(request.uri(), "https://tenant.auth0.com/passkey/register");
    assert_eq!(request.headers()["content-type"], "application/json");
    assert!(request.headers().get("authorization").is_none());
    let body: Value = serde_json::from_slice(request.body()).unwrap();
    assert_eq!(
        body,
        json!({
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "realm": "Username-Password-Authentication", "organization": "org_abc",
            "user_profile": {"email": "ann@example.com", "name": "Ann"},
            "user_metadata": {"plan": "gold"}
        })
    );
    let challenge = ran.result.unwrap();
    assert_eq!(challenge.ceremony, PasskeyCeremony::Signup);
    assert_eq!(challenge.authn_params_public_key["challenge"], "Y2hhbA");
    assert!(!challenge.auth_session.as_str().contains(AUTH_SESSION));
    assert!(!format!("{challenge:?}").contains(AUTH_SESSION));
    let opened = open_passkey_session(
        &secrets(&[COOKIE_SECRET]),
        &challenge.auth_session,
        UnixTime::from_secs(NOW),
    )
    .unwrap();
    assert_eq!(opened.auth_session.expose(), AUTH_SESSION);
    assert_eq!(opened.organization.as_deref(), Some("org_abc"));
    assert_eq!(opened.ceremony, PasskeyCeremony::Signup);
}

#[test]
fn login_challenge_sends_the_secret_in_the_body_even_for_basic_and_nothing_for_mtls() {
    use auth0_server_protocol::config::ClientAuthMethod;
    let core_basic = core(config_builder().client_auth_method(ClientAuthMethod::ClientSecretBasic));
    let ran = run(
        core_basic.passkey_login_challenge(PasskeyLogin::new().username("ann@example.com")),
        challenge_answer(),
        NOW,
    );
    let request = ran.request.unwrap();
    assert_eq!(request.uri(), "https://tenant.auth0.com/passkey/challenge");
    let body: Value = serde_json::from_slice(request.body()).unwrap();
    assert_eq!(
        body,
        json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "username": "ann@example.com"})
    );
    assert_eq!(ran.result.unwrap().ceremony, PasskeyCeremony::Login);
    // Mutual TLS: the certificate authenticates; a configured secret is never sent.
    let core_mtls = core(config_builder().client_auth_method(ClientAuthMethod::TlsClientAuth));
    let ran = run(
        core_mtls.passkey_login_challenge(PasskeyLogin::new()),
        challenge_answer(),
        NOW,
    );
    let body: Value = serde_json::from_slice(ran.request.unwrap().body()).unwrap();
    assert_eq!(body, json!({"client_id": CLIENT_ID}));
}

#[test]
fn challenge_refusals_and_unusable_answers_are_typed_and_redacted() {
    let core = core(config_builder());
    let echo = format!("bad client {CLIENT_SECRET}");
    let ran = run(
        core.passkey_login_challenge(PasskeyLogin::new()),
        answer(
            400,
            json!({"error": "invalid_request", "error_description": echo}),
        ),
        NOW,
    );
    let e = ran.result.unwrap_err();
    assert_eq!(e.code(), "passkey_challenge_error");
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(CLIENT_SECRET), "{shown}");
    assert!(shown.contains("invalid_request"), "{shown}");
    for body in [
        json!({"auth_session": AUTH_SESSION}),
        json!({"authn_params_public_key": {}, "auth_session": ""}),
        json!({"authn_params_public_key": "x", "auth_session": AUTH_SESSION}),
        json!([1, 2]),
    ] {
        let ran = run(
            core.passkey_login_challenge(PasskeyLogin::new()),
            answer(200, body),
            NOW,
        );
        let e = ran.result.unwrap_err();
        assert_eq!(e.code(), "passkey_challenge_error");
        assert!(!format!("{e} {e:?}").contains(AUTH_SESSION));
    }
}

#[test]
fn login_sends_the_webauthn_grant_and_replaces_the_session() {
    let core = core(
        config_builder()
            .audience("https://api.example.com")
            .scope("profile"),
    );
    let ran = run(
        core.login_with_passkey(PasskeySignIn::new(
            sealed(PasskeyCeremony::Login, Some("org_abc")),
            assertion(),
        )),
        token_answer(id_token(
            json!({"iss": ISSUER, "org_id": "org_abc", "sub": SUB}),
        )),
        NOW + 1,
    );
    let request = ran.request.unwrap();
    assert_eq!(request.uri(), TOKEN_ENDPOINT);
    let form = form(&request);
    assert_eq!(
        get(&form, "grant_type"),
        Some("urn:okta:params:oauth:grant-type:webauthn")
    );
    assert_eq!(get(&form, "auth_session"), Some(AUTH_SESSION));
    let sent: Value = serde_json::from_str(get(&form, "authn_response").unwrap()).unwrap();
    assert_eq!(sent, assertion());
    assert_eq!(
        get(&form, "realm"),
        Some("Username-Password-Authentication")
    );
    assert_eq!(get(&form, "organization"), Some("org_abc"));
    assert_eq!(get(&form, "audience"), Some("https://api.example.com"));
    let scope = get(&form, "scope").unwrap();
    assert!(scope.split(' ').any(|s| s == "openid"), "{scope}");
    assert!(scope.split(' ').any(|s| s == "profile"), "{scope}");
    assert_eq!(get(&form, "client_secret"), Some(CLIENT_SECRET));
    ran.result.unwrap();
    assert!(ran.deleted, "a new session id");
    assert_eq!(ran.saved.len(), 1);
    assert_eq!(
        ran.saved[0]
            .user
            .as_ref()
            .and_then(|u| u.get("sub"))
            .and_then(Value::as_str),
        Some(SUB)
    );
}

#[test]
fn tokens_only_asks_openid_and_saves_nothing() {
    let core = core(config_builder());
    let ran = run(
        core.passkey_tokens(
            PasskeySignIn::new(sealed(PasskeyCeremony::Signup, None), attestation())
                .scope("read:data"),
        ),
        token_answer(id_token(json!({"iss": ISSUER}))),
        NOW + 1,
    );
    let form = form(&ran.request.unwrap());
    let scope = get(&form, "scope").unwrap();
    assert!(scope.split(' ').any(|s| s == "openid"), "{scope}");
    assert!(scope.split(' ').any(|s| s == "read:data"), "{scope}");
    assert_eq!(get(&form, "organization"), None);
    let tokens = ran.result.unwrap();
    assert_eq!(tokens.access_token.expose(), "at");
    assert_eq!(tokens.claims.unwrap()["sub"], SUB);
    assert!(!ran.deleted && ran.saved.is_empty());
}

#[test]
fn organization_mismatch_and_bad_id_tokens_save_nothing() {
    let core = core(config_builder());
    for (org, id_token, code) in [
        (
            Some("org_abc"),
            id_token(json!({"iss": ISSUER, "org_id": "org_other"})),
            "organization_mismatch",
        ),
        (
            Some("org_abc"),
            id_token(json!({"iss": ISSUER})),
            "organization_mismatch",
        ),
        (
            None,
            id_token(json!({"iss": "https://evil.example.com/"})),
            "invalid_issuer",
        ),
        (
            None,
            id_token(json!({"iss": ISSUER, "aud": "someone-else"})),
            "invalid_audience",
        ),
        (
            None,
            jwt(json!({"iss": ISSUER, "aud": CLIENT_ID})),
            "invalid_signature",
        ),
    ] {
        let ran = run(
            core.login_with_passkey(PasskeySignIn::new(
                sealed(PasskeyCeremony::Login, org),
                assertion(),
            )),
            token_answer(id_token),
            NOW + 1,
        );
        let e = ran.result.unwrap_err();
        assert_eq!(e.code(), "invalid_id_token");
        assert_eq!(e.id_token_error().unwrap().code(), code);
        assert!(!ran.deleted && ran.saved.is_empty(), "nothing saved");
    }
}

#[test]
fn token_refusals_are_typed_and_redact_the_auth_session() {
    let core = core(config_builder());
    let sealed = sealed(PasskeyCeremony::Login, None);
    let echo = format!(
        "bad session {AUTH_SESSION} {} {CLIENT_SECRET}",
        sealed.as_str()
    );
    let ran = run(
        core.login_with_passkey(PasskeySignIn::new(sealed.clone(), assertion())),
        answer(
            403,
            json!({"error": "invalid_grant", "error_description": echo}),
        ),
        NOW + 1,
    );
    let e = ran.result.unwrap_err();
    assert_eq!(e.code(), "passkey_token_error");
    let shown = format!("{e} {e:?}");
    for secret in [AUTH_SESSION, sealed.as_str(), CLIENT_SECRET] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(!ran.deleted && ran.saved.is_empty());
}

#[test]
fn bad_input_sends_nothing() {
    let core = core(config_builder());
    let now = UnixTime::from_secs(NOW + 1);
    let login = |sign_in: PasskeySignIn, at: UnixTime| {
        let mut op = core.login_with_passkey(sign_in);
        match op.step(Input::Start, at) {
            Step::Done(Err(e)) => e,
            other => panic!("{other:?}"),
        }
    };
    let mut no_response = assertion();
    no_response["response"] = json!("x");
    let mut wrong_type = assertion();
    wrong_type["type"] = json!("password");
    let mut big = assertion();
    big["response"]["userHandle"] = json!("x".repeat(70 * 1024));
    for (credential, sealed_session) in [
        (json!("not an object"), sealed(PasskeyCeremony::Login, None)),
        (no_response, sealed(PasskeyCeremony::Login, None)),
        (wrong_type, sealed(PasskeyCeremony::Login, None)),
        (big, sealed(PasskeyCeremony::Login, None)),
        // A login's assertion for a signup's session: no attestationObject.
        (assertion(), sealed(PasskeyCeremony::Signup, None)),
    ] {
        let e = login(PasskeySignIn::new(sealed_session, credential), now);
        assert_eq!(e.code(), "invalid_parameter", "{e}");
    }
    let e = login(PasskeySignIn::new("".into(), assertion()), now);
    assert_eq!(e.code(), "passkey_session_invalid");
    let e = login(PasskeySignIn::new("abc.def".into(), assertion()), now);
    assert_eq!(e.code(), "passkey_session_invalid");
    let e = login(
        PasskeySignIn::new(sealed(PasskeyCeremony::Login, None), assertion()),
        UnixTime::from_secs(NOW).saturating_add(PASSKEY_SESSION_TTL),
    );
    assert_eq!(e.code(), "passkey_session_expired");
    // Another secret does not open it.
    let other = core_with_secret("another-secret-of-at-least-32-bytes!!");
    let mut op = other.login_with_passkey(PasskeySignIn::new(
        sealed(PasskeyCeremony::Login, None),
        assertion(),
    ));
    assert!(matches!(
        op.step(Input::Start, now),
        Step::Done(Err(LoginError::PasskeySessionInvalid))
    ));
    for signup in [
        PasskeySignup::default(),
        PasskeySignup::email("a b@example.com"),
        PasskeySignup::phone_number("4155550100"),
        PasskeySignup::username("ann").name("x\u{0}y"),
        PasskeySignup::username("ann").realm("two words"),
        PasskeySignup::username("ann").organization(""),
        PasskeySignup::username("x".repeat(300)),
    ] {
        let mut op = core.passkey_signup_challenge(signup);
        match op.step(Input::Start, now) {
            Step::Done(Err(e)) => assert_eq!(e.code(), "invalid_parameter"),
            other => panic!("{other:?}"),
        }
    }
    let mut big = serde_json::Map::new();
    big.insert("blob".into(), "x".repeat(17 * 1024).into());
    assert!(
        PasskeySignup::username("ann")
            .user_metadata(big)
            .check()
            .is_err()
    );
}

fn core_with_secret(secret: &str) -> auth0_server_protocol::Core {
    core(
        auth0_server_protocol::config::Config::builder(DOMAIN, CLIENT_ID)
            .client_secret(CLIENT_SECRET)
            .secret(secret),
    )
}

#[test]
fn the_grant_carries_an_assertion_and_a_dpop_proof_at_sending_and_no_secret() {
    use auth0_server_protocol::client_assertion::AssertionAlg;
    use auth0_server_protocol::effect::AtSend;
    let core = core(
        auth0_server_protocol::config::Config::builder(DOMAIN, CLIENT_ID)
            .private_key_jwt(include_str!("data/rs256-a.pem"), AssertionAlg::Rs256)
            .dpop(include_str!("../../tests/data/client_keys/ec.pem"))
            .secret(COOKIE_SECRET),
    );
    let mut op = core.login_with_passkey(PasskeySignIn::new(
        sealed(PasskeyCeremony::Login, None),
        assertion(),
    ));
    let now = UnixTime::from_secs(NOW + 1);
    assert!(matches!(
        op.step(Input::Start, now),
        Step::Effect(Effect::LoadMetadata)
    ));
    let Step::Effect(Effect::Http(request)) =
        op.step(Input::Metadata(Some(cached_metadata(NOW, 10))), now)
    else {
        panic!("the grant");
    };
    assert!(
        request
            .at_send
            .iter()
            .any(|a| matches!(a, AtSend::ClientAssertion { .. }))
    );
    assert!(request.wants_dpop_proof());
    let form = form(&request.request);
    assert_eq!(get(&form, "client_secret"), None);
    assert_eq!(get(&form, "client_id"), Some(CLIENT_ID));
    assert_eq!(get(&form, "auth_session"), Some(AUTH_SESSION));
}

proptest! {
    /// Any challenge answer (status, bytes) is read without a panic: a non-2xx one is always an
    /// error, a success has an object of options and a non-empty handle, and no error quotes
    /// the body.
    #[test]
    fn any_challenge_answer_is_read_safely(
        status in 100u16..600,
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            "[ -~]{0,200}".prop_map(String::into_bytes),
            Just(br#"{"authn_params_public_key":{"challenge":"c"},"auth_session":"h-SHOULD-NOT-LEAK"}"#.to_vec()),
        ],
    ) {
        use auth0_server_protocol::login::passkey::parse_challenge_answer;
        let response = http::Response::builder().status(status).body(body.clone()).unwrap();
        match parse_challenge_answer(&response) {
            Ok((options, handle)) => {
                prop_assert!((200..300).contains(&status));
                prop_assert!(options.is_object());
                prop_assert!(!handle.expose().is_empty());
                let shown = format!("{:?}", handle);
                prop_assert!(!shown.contains(handle.expose()));
            }
            Err(e) => {
                if body.len() >= 16 {
                    let quoted = String::from_utf8_lossy(&body);
                    let shown = format!("{} {:?}", e, e);
                    prop_assert!(!shown.contains(quoted.as_ref()));
                }
            }
        }
    }

    /// Any string handed back as a sealed session opens to an error (never a panic) unless it
    /// is one this application sealed.
    #[test]
    fn any_string_is_not_a_sealed_session(s in "[ -~]{0,300}") {
        let r = open_passkey_session(&secrets(&[COOKIE_SECRET]), &SealedPasskeySession::new(s), UnixTime::from_secs(NOW));
        prop_assert_eq!(r.unwrap_err(), LoginError::PasskeySessionInvalid);
    }
}
