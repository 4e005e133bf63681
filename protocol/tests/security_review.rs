//! Regression tests for defects found by the adversarial review of the code that reads
//! attacker-controlled input (login, logout, JOSE). Each test names the defect it pins down.

use auth0_server_protocol::config::Config;
use auth0_server_protocol::login::{LoginSecrets, StartLoginOptions, authorization_params};
use std::collections::BTreeMap;

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
    let req = authorization_params(&config(), &options, &secrets(), 100).unwrap();
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
    let req = authorization_params(&config, &options, &secrets(), 100).unwrap();
    let sent: BTreeMap<_, _> = req.params.iter().cloned().collect();
    assert_eq!(sent["organization"], "org_call");
    assert_eq!(req.transaction.organization.as_deref(), Some("org_call"));
}
