//! Regression tests for defects found by the adversarial review of the code that reads
//! attacker-controlled input (login, logout, JOSE). Each test names the defect it pins down.

use auth0_server_protocol::Core;
use auth0_server_protocol::config::Config;
use auth0_server_protocol::effect::{Effect, Input, Operation, Step};
use auth0_server_protocol::login::{
    LoginSecrets, StartLoginOptions, authorization_params, parse_callback,
};
use auth0_server_protocol::time::UnixTime;
use auth0_server_protocol::transaction::TransactionData;
use std::collections::BTreeMap;

const CODE: &str = "authorization-code-SHOULD-NOT-LEAK";

fn config() -> Config {
    Config::builder("tenant.auth0.com", "client-1")
        .client_secret("s")
        .secret("0123456789abcdef0123456789abcdef")
        .redirect_uri("https://app.example.com/callback")
        .build()
        .unwrap()
}

fn secrets() -> LoginSecrets {
    LoginSecrets::from_random(&[7u8; 64]).unwrap()
}

/// Defect: an organization passed as a plain authorization parameter
/// (`.param("organization", …)`) was sent to `/authorize` but not recorded in the
/// transaction, so the ID token's `org_id` was never checked: a user who removed the
/// parameter from the authorization URL logged in outside the organization.
#[test]
fn organization_given_as_a_plain_param_is_validated_in_the_id_token() {
    let options = StartLoginOptions::new().param("organization", "org_abc");
    let req =
        authorization_params(&config(), &options, &secrets(), UnixTime::from_secs(100)).unwrap();
    let sent: BTreeMap<_, _> = req.params.iter().cloned().collect();
    assert_eq!(sent["organization"], "org_abc");
    assert_eq!(req.transaction.organization.as_deref(), Some("org_abc"));
}

/// Same defect, other shape: a per-call `organization` parameter overrides the configured one
/// on the wire, so it is the one the ID token must be checked against.
#[test]
fn per_call_organization_param_is_the_one_validated_not_the_configured_one() {
    let config = Config::builder("tenant.auth0.com", "client-1")
        .client_secret("s")
        .secret("0123456789abcdef0123456789abcdef")
        .redirect_uri("https://app.example.com/callback")
        .authorization_param("organization", "org_configured")
        .build()
        .unwrap();
    let options = StartLoginOptions::new().param("organization", "org_call");
    let req =
        authorization_params(&config, &options, &secrets(), UnixTime::from_secs(100)).unwrap();
    let sent: BTreeMap<_, _> = req.params.iter().cloned().collect();
    assert_eq!(sent["organization"], "org_call");
    assert_eq!(req.transaction.organization.as_deref(), Some("org_call"));
}

/// Defect: the authorization code (a credential: whoever holds it with the verifier gets the
/// user's tokens) appeared in the `Debug` output of the parsed callback and of the
/// `complete_interactive_login` operation, though no log or error may show a credential.
#[test]
fn callback_and_login_operation_debug_never_show_the_authorization_code() {
    let callback_url = format!("/callback?code={CODE}&state=st4te");
    let callback = parse_callback(&callback_url).unwrap();
    assert_eq!(callback.code.as_deref(), Some(CODE));
    let shown = format!("{callback:?}");
    assert!(!shown.contains(CODE), "{shown}");

    let core = Core::new(config());
    let mut op = core.complete_interactive_login(&callback_url);
    let shown = format!("{op:?}");
    assert!(!shown.contains(CODE), "{shown}");
    let Step::Effect(Effect::LoadTransaction { .. }) =
        op.step(Input::Start, UnixTime::from_secs(1_000))
    else {
        panic!("expected LoadTransaction");
    };
    let tx = TransactionData {
        state: Some("st4te".into()),
        nonce: Some("n".into()),
        redirect_uri: Some("https://app.example.com/callback".into()),
        created_at: 1_000,
        ..Default::default()
    };
    let Step::Effect(Effect::LoadMetadata) =
        op.step(Input::Transaction(Some(tx)), UnixTime::from_secs(1_000))
    else {
        panic!("expected LoadMetadata");
    };
    let shown = format!("{op:?}");
    assert!(!shown.contains(CODE), "{shown}");
}
