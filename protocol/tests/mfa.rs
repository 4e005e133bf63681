//! MFA: sealing the `mfa_token` (round trip as a property; tampering, another secret and
//! expiry refused; rotation), the input checks, the requests the operations send (list and
//! enroll with the bearer `mfa_token`, challenge and the three grants with client
//! authentication), and what an error answer may show (never a code or the token).

mod common;

use auth0_server_protocol::effect::{Effect, Input, Operation, Step};
use auth0_server_protocol::mfa::{
    ChallengeType, MfaContext, MfaError, MfaFactor, MfaProof, MfaVerify, SealedMfaToken,
    open_mfa_token, seal_mfa_token,
};
use auth0_server_protocol::secret::Secret;
use auth0_server_protocol::time::UnixTime;
use common::*;
use proptest::prelude::*;
use std::time::Duration;

const MFA_TOKEN: &str = "mfa-token-SHOULD-NOT-LEAK";

fn secrets(list: &[&str]) -> Vec<Secret> {
    list.iter().map(|s| Secret::new(*s)).collect()
}

fn context() -> MfaContext {
    MfaContext {
        mfa_token: Secret::new(MFA_TOKEN),
        mfa_requirements: Some(serde_json::json!({"challenge": [{"type": "otp"}]})),
        audience: Some("https://api.example.com".into()),
        scope: Some("read:data".into()),
    }
}

fn sealed_now() -> SealedMfaToken {
    seal_mfa_token(
        &secrets(&[COOKIE_SECRET]),
        &context(),
        UnixTime::from_secs(NOW),
        Duration::from_secs(300),
        [3; 16],
    )
    .unwrap()
}

proptest! {
    /// What is sealed opens unchanged with the same secret before its expiry, and the sealed
    /// token never shows the raw one.
    #[test]
    fn seal_then_open_round_trips(
        token in "[ -~]{1,200}",
        audience in proptest::option::of("[a-z:/.]{1,40}"),
        scope in proptest::option::of("[a-z: ]{1,40}"),
        iv in proptest::array::uniform16(any::<u8>()),
        ttl in 1u64..100_000,
        elapsed in 0u64..100_000,
    ) {
        let context = MfaContext {
            mfa_token: Secret::new(token.clone()),
            mfa_requirements: None,
            audience,
            scope,
        };
        let keys = secrets(&[COOKIE_SECRET]);
        let now = UnixTime::from_secs(NOW);
        let sealed = seal_mfa_token(&keys, &context, now, Duration::from_secs(ttl), iv).unwrap();
        prop_assert!(token.len() < 8 || !sealed.as_str().contains(&token));
        let later = UnixTime::from_secs(NOW + elapsed);
        let opened = open_mfa_token(&keys, &sealed, later);
        if elapsed < ttl {
            prop_assert_eq!(opened.unwrap(), context);
        } else {
            prop_assert_eq!(opened.unwrap_err(), MfaError::TokenExpired);
        }
    }

    /// Any change to a sealed token is refused as invalid (never opened, never a panic).
    #[test]
    fn any_tampering_is_refused(i in 0usize..400, c in "[A-Za-z0-9_.-]") {
        let sealed = sealed_now();
        let mut s = sealed.as_str().to_owned();
        let i = i % s.len();
        if s[i..].starts_with(c.as_str()) {
            return Ok(());
        }
        s.replace_range(i..=i, &c);
        let r = open_mfa_token(&secrets(&[COOKIE_SECRET]), &SealedMfaToken::new(s), UnixTime::from_secs(NOW));
        prop_assert_eq!(r.unwrap_err(), MfaError::TokenInvalid);
    }

    /// The proof checks are total; an accepted OTP is 4 to 10 digits.
    #[test]
    fn proof_checks_are_total(code in ".{0,80}") {
        if MfaProof::otp(code.clone()).check().is_ok() {
            prop_assert!((4..=10).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit()));
        }
        if MfaProof::recovery_code(code.clone()).check().is_ok() {
            prop_assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        if MfaProof::oob(code.clone(), Some(code.clone())).check().is_ok() {
            prop_assert!(!code.chars().any(char::is_whitespace));
        }
    }
}

#[test]
fn another_secret_is_refused_and_rotation_opens() {
    let sealed = sealed_now();
    let now = UnixTime::from_secs(NOW);
    let other = "another-secret-of-at-least-32-bytes!!";
    assert_eq!(
        open_mfa_token(&secrets(&[other]), &sealed, now).unwrap_err(),
        MfaError::TokenInvalid
    );
    assert_eq!(
        open_mfa_token(&secrets(&[other, COOKIE_SECRET]), &sealed, now).unwrap(),
        context()
    );
    // A session cookie's key is another key: the salt is MFA's own.
    let cookie_key =
        auth0_server_protocol::jose::jwe::JweKey::derive(COOKIE_SECRET.as_bytes(), b"_a0_session");
    assert!(auth0_server_protocol::jose::jwe::decrypt(&[cookie_key], sealed.as_str()).is_err());
    assert!(!format!("{sealed:?}").contains(sealed.as_str()));
}

#[test]
fn expiry_is_exact() {
    let sealed = sealed_now();
    let keys = secrets(&[COOKIE_SECRET]);
    assert!(open_mfa_token(&keys, &sealed, UnixTime::from_secs(NOW + 299)).is_ok());
    assert_eq!(
        open_mfa_token(&keys, &sealed, UnixTime::from_secs(NOW + 300)).unwrap_err(),
        MfaError::TokenExpired
    );
    assert_eq!(MfaError::TokenExpired.code(), "mfa_token_expired");
    assert_eq!(MfaError::TokenInvalid.code(), "mfa_token_invalid");
}

/// The request an operation sent and how it ended.
type Ran<O> = (
    http::Request<Vec<u8>>,
    Result<<O as Operation>::Output, <O as Operation>::Error>,
);

/// Runs an operation up to its HTTP request, then answers `answer` and returns the request
/// and the result.
fn run<O: Operation>(mut op: O, answer: http::Response<Vec<u8>>) -> Ran<O>
where
    O::Output: std::fmt::Debug,
    O::Error: std::fmt::Debug,
{
    let mut input = Input::Start;
    let mut sent = None;
    let mut answer = Some(answer);
    loop {
        match op.step(input, UnixTime::from_secs(NOW + 1)) {
            Step::Effect(Effect::LoadMetadata) => {
                input = Input::Metadata(Some(cached_metadata(NOW, 10)))
            }
            Step::Effect(Effect::LoadJwks) => input = Input::Jwks(Some(cached_jwks())),
            Step::Effect(Effect::Http(request)) => {
                sent = Some(request.request);
                input = Input::Http(answer.take().expect("one request"));
            }
            Step::Done(r) => return (sent.expect("a request"), r),
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn json(status: u16, body: serde_json::Value) -> http::Response<Vec<u8>> {
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

#[test]
fn list_and_enroll_send_the_mfa_token_as_bearer() {
    let core = core(config_builder());
    let (request, r) = run(
        core.list_authenticators(sealed_now()),
        json(
            200,
            serde_json::json!([{"id": "totp|1", "authenticator_type": "otp", "active": true}]),
        ),
    );
    assert_eq!(request.method(), "GET");
    assert_eq!(request.uri(), "https://tenant.auth0.com/mfa/authenticators");
    assert_eq!(
        request.headers()[http::header::AUTHORIZATION],
        format!("Bearer {MFA_TOKEN}").as_str()
    );
    assert_eq!(r.unwrap()[0].id, "totp|1");
    let (request, r) = run(
        core.enroll_authenticator(sealed_now(), MfaFactor::Email("a@example.com".into())),
        json(
            200,
            serde_json::json!({"authenticator_type": "oob", "oob_code": "oob-1", "binding_method": "prompt"}),
        ),
    );
    assert_eq!(request.uri(), "https://tenant.auth0.com/mfa/associate");
    let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"authenticator_types": ["oob"], "oob_channels": ["email"], "email": "a@example.com"})
    );
    assert_eq!(r.unwrap().oob_code.unwrap().expose(), "oob-1");
}

#[test]
fn challenge_authenticates_the_client() {
    let core = core(config_builder());
    let (request, r) = run(
        core.challenge_authenticator(sealed_now(), ChallengeType::Oob, Some("sms|1".into())),
        json(
            200,
            serde_json::json!({"challenge_type": "oob", "oob_code": "oob-2", "binding_method": "prompt"}),
        ),
    );
    assert_eq!(request.uri(), "https://tenant.auth0.com/mfa/challenge");
    let form = form(&request);
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("mfa_token"), Some(MFA_TOKEN));
    assert_eq!(get("challenge_type"), Some("oob"));
    assert_eq!(get("authenticator_id"), Some("sms|1"));
    assert_eq!(get("client_id"), Some(CLIENT_ID));
    assert_eq!(r.unwrap().binding_method.as_deref(), Some("prompt"));
}

#[test]
fn the_grants_and_their_redacted_refusals() {
    let core = core(config_builder());
    for (proof, grant, member, code) in [
        (MfaProof::otp("123456"), "mfa-otp", "otp", "123456"),
        (
            MfaProof::oob("oob-SHOULD-NOT-LEAK", Some("BIND77".into())),
            "mfa-oob",
            "binding_code",
            "BIND77",
        ),
        (
            MfaProof::recovery_code("RECOVERY0123456789ABCDEF"),
            "mfa-recovery-code",
            "recovery_code",
            "RECOVERY0123456789ABCDEF",
        ),
    ] {
        // Auth0 echoing what it was sent into the description: nothing of it shows.
        let echo = format!("bad {code} {MFA_TOKEN} oob-SHOULD-NOT-LEAK {CLIENT_SECRET}");
        let (request, r) = run(
            core.verify_mfa(MfaVerify::new(sealed_now(), proof)),
            json(
                403,
                serde_json::json!({"error": "invalid_grant", "error_description": echo}),
            ),
        );
        assert_eq!(request.uri(), TOKEN_ENDPOINT);
        let form = form(&request);
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(
            get("grant_type"),
            Some(format!("http://auth0.com/oauth/grant-type/{grant}").as_str())
        );
        assert_eq!(get("mfa_token"), Some(MFA_TOKEN));
        assert_eq!(get(member), Some(code));
        let e = r.unwrap_err();
        assert_eq!(e.code(), "mfa_failed");
        let shown = format!("{e} {e:?}");
        for secret in [code, MFA_TOKEN, CLIENT_SECRET] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        if grant == "mfa-oob" {
            assert!(!shown.contains("oob-SHOULD-NOT-LEAK"), "{shown}");
        }
    }
}

#[test]
fn auth0_expired_token_is_typed() {
    let core = core(config_builder());
    let (_, r) = run(
        core.verify_mfa(MfaVerify::new(sealed_now(), MfaProof::otp("123456"))),
        json(
            403,
            serde_json::json!({"error": "expired_token", "error_description": "mfa_token is expired"}),
        ),
    );
    assert_eq!(r.unwrap_err(), MfaError::TokenExpired);
}

#[test]
fn the_tokens_come_back_with_a_new_recovery_code() {
    let core = core(config_builder());
    let (_, r) = run(
        core.verify_mfa(MfaVerify::new(
            sealed_now(),
            MfaProof::recovery_code("ABC123"),
        )),
        json(
            200,
            serde_json::json!({"access_token": "at", "expires_in": 60, "token_type": "Bearer", "recovery_code": "NEXT456"}),
        ),
    );
    let verified = r.unwrap();
    assert_eq!(verified.tokens.access_token.expose(), "at");
    assert_eq!(verified.recovery_code.unwrap().expose(), "NEXT456");
    assert!(!verified.persisted);
}

#[test]
fn bad_input_sends_nothing() {
    let core = core(config_builder());
    let sealed = sealed_now();
    for op in [
        core.verify_mfa(MfaVerify::new(sealed.clone(), MfaProof::otp("12 34"))),
        core.verify_mfa(MfaVerify::new(
            sealed.clone(),
            MfaProof::recovery_code("a b"),
        )),
        core.verify_mfa(MfaVerify::new(sealed.clone(), MfaProof::oob("", None))),
    ] {
        let mut op = op;
        match op.step(Input::Start, UnixTime::from_secs(NOW)) {
            Step::Done(Err(e)) => assert_eq!(e.code(), "invalid_parameter"),
            other => panic!("{other:?}"),
        }
    }
    let mut op = core.enroll_authenticator(sealed.clone(), MfaFactor::Voice("+0123".into()));
    assert!(matches!(
        op.step(Input::Start, UnixTime::from_secs(NOW)),
        Step::Done(Err(MfaError::InvalidParameter(_)))
    ));
    let mut op = core.verify_mfa(MfaVerify::new(sealed, MfaProof::otp("123456")));
    assert!(matches!(
        op.step(Input::Start, UnixTime::from_secs(NOW + 300)),
        Step::Done(Err(MfaError::TokenExpired))
    ));
}

#[test]
fn persist_without_a_session_sends_nothing() {
    let core = core(config_builder());
    let mut op = core.verify_mfa(MfaVerify::new(sealed_now(), MfaProof::otp("123456")).persist());
    let now = UnixTime::from_secs(NOW);
    assert!(matches!(
        op.step(Input::Start, now),
        Step::Effect(Effect::LoadSession)
    ));
    match op.step(Input::Session(None), now) {
        Step::Done(Err(e)) => assert_eq!(e.code(), "missing_session"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn delete_sends_the_id_as_one_path_segment_with_the_bearer_token() {
    let core = core(config_builder());
    let answer = http::Response::builder()
        .status(204)
        .body(Vec::new())
        .unwrap();
    let (request, r) = run(
        core.delete_authenticator(sealed_now(), "totp|dev/1".into()),
        answer,
    );
    assert_eq!(request.method(), "DELETE");
    assert_eq!(
        request.uri(),
        "https://tenant.auth0.com/mfa/authenticators/totp%7Cdev%2F1"
    );
    assert_eq!(
        request.headers()[http::header::AUTHORIZATION],
        format!("Bearer {MFA_TOKEN}").as_str()
    );
    assert!(request.body().is_empty());
    r.unwrap();
    let (_, r) = run(
        core.delete_authenticator(sealed_now(), "totp|1".into()),
        json(
            404,
            serde_json::json!({"error": "not_found", "error_description": format!("no {MFA_TOKEN}")}),
        ),
    );
    let e = r.unwrap_err();
    assert_eq!(e.code(), "mfa_failed");
    assert!(!format!("{e} {e:?}").contains(MFA_TOKEN));
    for bad in ["", "a b", "x\u{0}"] {
        let mut op = core.delete_authenticator(sealed_now(), bad.into());
        assert!(matches!(
            op.step(Input::Start, UnixTime::from_secs(NOW)),
            Step::Done(Err(MfaError::InvalidParameter(_)))
        ));
    }
}
