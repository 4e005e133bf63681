//! Passwordless: the input checks as properties, and what `start_passwordless` sends (JSON,
//! client credentials in the body: the secret, or a `private_key_jwt` assertion and never the
//! secret), driven by a script.

mod common;

use auth0_server_protocol::config::AssertionAlg;
use auth0_server_protocol::effect::{Effect, Input, Operation, Step};
use auth0_server_protocol::login::{PasswordlessOtp, PasswordlessStart};
use auth0_server_protocol::time::UnixTime;
use common::*;
use proptest::prelude::*;
use serde_json::Value;

proptest! {
    /// An SMS recipient is accepted exactly in E.164 form: `+`, 7 to 15 digits, not starting
    /// with 0.
    #[test]
    fn phone_numbers_are_e164(number in "\\+?[0-9]{0,18}") {
        let digits = number.strip_prefix('+');
        let e164 = digits.is_some_and(|d| (7..=15).contains(&d.len()) && !d.starts_with('0'));
        prop_assert_eq!(PasswordlessStart::sms(number.clone()).check().is_ok(), e164);
        prop_assert_eq!(PasswordlessOtp::sms(number, "1234").check().is_ok(), e164);
    }

    /// No input makes the checks panic, and an accepted code has no whitespace.
    #[test]
    fn the_checks_are_total(recipient in ".{0,40}", code in ".{0,70}") {
        let _ = PasswordlessStart::email(recipient.clone()).check();
        if PasswordlessOtp::email(recipient, code.clone()).check().is_ok() {
            prop_assert!(!code.is_empty() && code.len() <= 64);
            prop_assert!(!code.chars().any(char::is_whitespace));
        }
    }
}

/// Runs `start_passwordless` up to the request it sends, and returns that request's JSON body.
fn start_body(
    builder: auth0_server_protocol::config::ConfigBuilder,
    start: PasswordlessStart,
) -> (http::Request<Vec<u8>>, serde_json::Map<String, Value>) {
    let core = core(builder);
    let mut op = core.start_passwordless(start);
    let mut input = Input::Start;
    loop {
        match op.step(input, UnixTime::from_secs(NOW)) {
            Step::Effect(Effect::Random { len }) => input = Input::Random(vec![7; len]),
            Step::Effect(Effect::LoadMetadata) => {
                input = Input::Metadata(Some(cached_metadata(NOW, 10)))
            }
            Step::Effect(Effect::Http(request)) => {
                let body = serde_json::from_slice(request.request.body()).expect("JSON");
                return (request.request, body);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn the_start_request_is_json_with_the_client_secret() {
    let (request, body) = start_body(config_builder(), PasswordlessStart::email("a@example.com"));
    assert!(request.uri().to_string().ends_with("/passwordless/start"));
    assert_eq!(
        request.headers()[http::header::CONTENT_TYPE],
        "application/json"
    );
    assert_eq!(body["connection"], "email");
    assert_eq!(body["email"], "a@example.com");
    assert_eq!(body["send"], "code");
    assert!(body["client_secret"].is_string());
    assert!(!body.contains_key("authParams"));
}

#[test]
fn with_private_key_jwt_the_start_request_carries_an_assertion_and_no_secret() {
    let key = include_str!("data/rs256-a.pem");
    let (_, body) = start_body(
        config_builder().private_key_jwt(key, AssertionAlg::Rs256),
        PasswordlessStart::sms("+14155550100"),
    );
    assert!(!body.contains_key("client_secret"));
    assert_eq!(
        body["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert_eq!(
        body["client_assertion"]
            .as_str()
            .unwrap()
            .split('.')
            .count(),
        3
    );
    assert_eq!(body["phone_number"], "+14155550100");
}

#[test]
fn a_magic_link_carries_the_login_parameters_and_saves_a_transaction_without_pkce() {
    let core = core(config_builder().redirect_uri("https://app.example.com/callback"));
    let mut op = core.start_passwordless(PasswordlessStart::email("a@example.com").magic_link());
    let mut input = Input::Start;
    let mut body: Option<serde_json::Map<String, Value>> = None;
    let saved = loop {
        match op.step(input, UnixTime::from_secs(NOW)) {
            Step::Effect(Effect::Random { len }) => input = Input::Random(vec![7; len]),
            Step::Effect(Effect::LoadMetadata) => {
                input = Input::Metadata(Some(cached_metadata(NOW, 10)))
            }
            Step::Effect(Effect::Http(request)) => {
                body = Some(serde_json::from_slice(request.request.body()).unwrap());
                input = Input::Http(json(200, r#"{"_id":"x","email":"a@example.com"}"#));
            }
            Step::Effect(Effect::SaveTransaction { transaction, .. }) => break transaction,
            other => panic!("unexpected {other:?}"),
        }
    };
    let body = body.expect("sent");
    assert_eq!(body["send"], "link");
    let params = &body["authParams"];
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["redirect_uri"], "https://app.example.com/callback");
    assert_eq!(params["state"].as_str(), saved.state.as_deref());
    assert_eq!(params["nonce"].as_str(), saved.nonce.as_deref());
    assert!(params["scope"].as_str().unwrap().contains("openid"));
    assert!(saved.code_verifier.is_none());
}
