//! `get_access_token_for_connection` (Token Vault) through the operation, driven by a script.

mod common;

use auth0_server_protocol::config::ClientAuthMethod;
use auth0_server_protocol::connection_token::{
    ConnectionToken, ConnectionTokenError, ConnectionTokenRequest,
};
use auth0_server_protocol::effect::{Effect, Input, Operation, Step};
use auth0_server_protocol::secret::Secret;
use auth0_server_protocol::session::{ConnectionTokenSet, StateData, TokenSet};
use auth0_server_protocol::time::UnixTime;
use common::*;
use serde_json::json;

const GRANT: &str =
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token";
const GOOGLE: &str = "google-oauth2";
const CONN_TOKEN: &str = "google-access-token-SHOULD-NOT-LEAK";

fn session() -> StateData {
    StateData {
        user: Some(user()),
        refresh_token: Some(Secret::new(REFRESH_TOKEN)),
        token_sets: vec![TokenSet {
            audience: "default".into(),
            access_token: Secret::new("api-token"),
            scope: Some("openid".into()),
            expires_at: NOW + 3600,
            requested_scope: None,
            token_type: Default::default(),
        }],
        ..Default::default()
    }
}

fn conn_set(login_hint: Option<&str>, token: &str, expires_at: u64) -> ConnectionTokenSet {
    ConnectionTokenSet {
        connection: GOOGLE.into(),
        login_hint: login_hint.map(str::to_owned),
        access_token: Secret::new(token),
        scope: Some("https://www.googleapis.com/auth/calendar".into()),
        expires_at,
    }
}

fn exchange_response(token: &str) -> http::Response<Vec<u8>> {
    json(
        200,
        &json!({
            "access_token": token,
            "expires_in": 3599,
            "scope": "https://www.googleapis.com/auth/calendar",
            "token_type": "Bearer",
            "issued_token_type": "http://auth0.com/oauth/token-type/federated-connection-access-token"
        })
        .to_string(),
    )
}

fn exchange(
    core: &auth0_server_protocol::Core,
    req: ConnectionTokenRequest,
    s: StateData,
    response: http::Response<Vec<u8>>,
) -> (Result<ConnectionToken, ConnectionTokenError>, Recording) {
    Script::new()
        .session(Some(s))
        .metadata(Some(cached_metadata(NOW, 10)))
        .http(response)
        .run(core.get_access_token_for_connection(req), NOW)
}

#[test]
fn the_exchange_request_has_exactly_the_token_vault_params() {
    let core = core(config_builder().audience("https://api.example.com/"));
    let (result, rec) = exchange(
        &core,
        ConnectionTokenRequest::new(GOOGLE),
        session(),
        exchange_response(CONN_TOKEN),
    );
    result.unwrap();
    let req = rec.token_requests()[0];
    assert_eq!(req.method, http::Method::POST);
    assert_eq!(req.uri, TOKEN_ENDPOINT);
    assert_eq!(
        req.param_names(),
        [
            "client_id",
            "client_secret",
            "connection",
            "grant_type",
            "requested_token_type",
            "subject_token",
            "subject_token_type"
        ]
    );
    assert_eq!(req.param("grant_type"), Some(GRANT));
    assert_eq!(
        req.param("subject_token_type"),
        Some("urn:ietf:params:oauth:token-type:refresh_token")
    );
    assert_eq!(req.param("subject_token"), Some(REFRESH_TOKEN));
    assert_eq!(
        req.param("requested_token_type"),
        Some("http://auth0.com/oauth/token-type/federated-connection-access-token")
    );
    assert_eq!(req.param("connection"), Some(GOOGLE));
    assert_eq!(req.param("client_id"), Some(CLIENT_ID));
    assert_eq!(req.param("client_secret"), Some(CLIENT_SECRET));
    assert_eq!(req.param("audience"), None);
    assert_eq!(req.param("login_hint"), None);
}

#[test]
fn the_login_hint_is_sent_when_given_and_basic_auth_uses_the_header() {
    let core = core(config_builder().client_auth_method(ClientAuthMethod::ClientSecretBasic));
    let (result, rec) = exchange(
        &core,
        ConnectionTokenRequest::new(GOOGLE).login_hint("jane@example.com"),
        session(),
        exchange_response(CONN_TOKEN),
    );
    result.unwrap();
    let req = rec.token_requests()[0];
    assert_eq!(req.param("login_hint"), Some("jane@example.com"));
    assert_eq!(req.param("client_secret"), None);
    assert_eq!(req.param("client_id"), Some(CLIENT_ID));
    assert!(req.header("authorization").unwrap().starts_with("Basic "));
}

#[test]
fn the_first_call_exchanges_and_saves_and_the_second_is_served_from_the_session() {
    let core = core(config_builder());
    let before = session();
    let (result, rec) = exchange(
        &core,
        ConnectionTokenRequest::new(GOOGLE),
        before.clone(),
        exchange_response(CONN_TOKEN),
    );
    let token = result.unwrap();
    assert_eq!(token.access_token.expose(), CONN_TOKEN);
    assert_eq!(token.connection, GOOGLE);
    assert_eq!(token.expires_at, NOW + 3599);
    assert_eq!(
        rec.names(),
        [
            "LoadSession",
            "LoadMetadata",
            "POST /oauth/token",
            "SaveSession"
        ]
    );
    let saved = rec.saved().clone();
    assert_eq!(
        saved.connection_token_sets,
        vec![conn_set(None, CONN_TOKEN, NOW + 3599)]
    );
    assert_eq!(saved.token_sets, before.token_sets, "API tokens untouched");
    assert_eq!(saved.refresh_token, before.refresh_token);

    let (result, rec) = Script::new().session(Some(saved)).run(
        core.get_access_token_for_connection(ConnectionTokenRequest::new(GOOGLE)),
        NOW + 60,
    );
    assert_eq!(result.unwrap(), token);
    assert_eq!(rec.names(), ["LoadSession"]);
}

#[test]
fn an_expired_connection_token_is_replaced() {
    let core = core(config_builder());
    let mut s = session();
    s.connection_token_sets = vec![
        conn_set(None, "old", NOW + 10), // within the 30 s leeway
        ConnectionTokenSet {
            connection: "github".into(),
            ..conn_set(None, "github-token", NOW + 3600)
        },
    ];
    let (result, rec) = exchange(
        &core,
        ConnectionTokenRequest::new(GOOGLE),
        s,
        exchange_response("new"),
    );
    assert_eq!(result.unwrap().access_token.expose(), "new");
    let saved = rec.saved();
    assert_eq!(saved.connection_token_sets.len(), 2);
    assert_eq!(
        saved.connection_token_sets[0],
        conn_set(None, "new", NOW + 3599)
    );
    assert_eq!(
        saved.connection_token_sets[1].access_token.expose(),
        "github-token"
    );
}

#[test]
fn a_token_for_another_login_hint_is_not_served_and_the_new_one_is_appended() {
    let core = core(config_builder());
    let mut s = session();
    s.connection_token_sets = vec![conn_set(Some("work@example.com"), "work", NOW + 3600)];
    let (result, rec) = exchange(
        &core,
        ConnectionTokenRequest::new(GOOGLE).login_hint("home@example.com"),
        s,
        exchange_response("home"),
    );
    assert_eq!(result.unwrap().access_token.expose(), "home");
    let saved = rec.saved();
    assert_eq!(
        saved.connection_token_sets,
        vec![
            conn_set(Some("work@example.com"), "work", NOW + 3600),
            conn_set(Some("home@example.com"), "home", NOW + 3599)
        ]
    );
    // The same hint is a cache hit.
    let (result, rec) = Script::new().session(Some(saved.clone())).run(
        core.get_access_token_for_connection(
            ConnectionTokenRequest::new(GOOGLE).login_hint("work@example.com"),
        ),
        NOW,
    );
    assert_eq!(result.unwrap().access_token.expose(), "work");
    assert_eq!(rec.names(), ["LoadSession"]);
}

#[test]
fn missing_session_missing_refresh_token_and_empty_connection() {
    let core = core(config_builder());
    let (result, rec) = Script::new().session(None).run(
        core.get_access_token_for_connection(ConnectionTokenRequest::new(GOOGLE)),
        NOW,
    );
    assert_eq!(result.unwrap_err().code(), "missing_session");
    assert_eq!(rec.names(), ["LoadSession"]);

    let mut s = session();
    s.refresh_token = None;
    s.connection_token_sets = vec![conn_set(None, "expired", NOW - 1)];
    let (result, rec) = Script::new().session(Some(s)).run(
        core.get_access_token_for_connection(ConnectionTokenRequest::new(GOOGLE)),
        NOW,
    );
    assert_eq!(result.unwrap_err().code(), "missing_refresh_token");
    assert_eq!(rec.names(), ["LoadSession"]);

    let (result, rec) = Script::new().run(
        core.get_access_token_for_connection(ConnectionTokenRequest::new("  ")),
        NOW,
    );
    assert_eq!(result.unwrap_err().code(), "invalid_request");
    assert!(rec.0.is_empty());
}

#[test]
fn refused_exchanges_are_typed_errors_and_save_nothing() {
    let core = core(config_builder());
    let (result, rec) = exchange(
        &core,
        ConnectionTokenRequest::new(GOOGLE),
        session(),
        json(
            401,
            r#"{"error":"federated_connection_refresh_token_not_found","error_description":"Federated connection Refresh Token not found."}"#,
        ),
    );
    let err = result.unwrap_err();
    assert_eq!(err.code(), "failed_to_exchange_token");
    let oauth = err.oauth_error().unwrap();
    assert_eq!(oauth.error, "federated_connection_refresh_token_not_found");
    assert_eq!(
        oauth.error_description.as_deref(),
        Some("Federated connection Refresh Token not found.")
    );
    assert!(rec.saved_sessions().is_empty());

    let (result, _) = exchange(
        &core,
        ConnectionTokenRequest::new(GOOGLE),
        session(),
        json(
            403,
            r#"{"error":"mfa_required","mfa_token":"mfa-SHOULD-NOT-LEAK","mfa_requirements":{"challenge":[{"type":"otp"}]}}"#,
        ),
    );
    match result.unwrap_err() {
        ConnectionTokenError::MfaRequired {
            mfa_token,
            mfa_requirements,
        } => {
            assert_eq!(mfa_token.expose(), "mfa-SHOULD-NOT-LEAK");
            assert!(mfa_requirements.is_some());
        }
        other => panic!("{other:?}"),
    }

    let (result, _) = exchange(
        &core,
        ConnectionTokenRequest::new(GOOGLE),
        session(),
        raw(200, "text/html", b"<html>proxy login</html>".to_vec()),
    );
    assert_eq!(result.unwrap_err().code(), "failed_to_exchange_token");
}

#[test]
fn discovery_failure_is_discovery_failed() {
    let core = core(config_builder());
    let (result, rec) = Script::new()
        .session(Some(session()))
        .metadata(None)
        .http(raw(503, "text/plain", b"unavailable".to_vec()))
        .run(
            core.get_access_token_for_connection(ConnectionTokenRequest::new(GOOGLE)),
            NOW,
        );
    assert_eq!(result.unwrap_err().code(), "discovery_failed");
    assert!(rec.token_requests().is_empty());
}

#[test]
fn wrong_input_is_unexpected_input() {
    let core = core(config_builder());
    let unexpected = |step: Step<ConnectionToken, ConnectionTokenError>| match step {
        Step::Done(Err(e)) => assert_eq!(e.code(), "unexpected_input"),
        other => panic!("{other:?}"),
    };
    let mut op = core.get_access_token_for_connection(ConnectionTokenRequest::new(GOOGLE));
    unexpected(op.step(Input::Session(None), UnixTime::from_secs(NOW)));
    let mut op = core.get_access_token_for_connection(ConnectionTokenRequest::new(GOOGLE));
    op.step(Input::Start, UnixTime::from_secs(NOW));
    unexpected(op.step(Input::Done, UnixTime::from_secs(NOW)));
    let mut op = core.get_access_token_for_connection(ConnectionTokenRequest::new(GOOGLE));
    op.step(Input::Start, UnixTime::from_secs(NOW));
    op.step(
        Input::Session(Some(std::sync::Arc::new(session()))),
        UnixTime::from_secs(NOW),
    );
    assert!(matches!(
        op.step(
            Input::Metadata(Some(cached_metadata(NOW, 1))),
            UnixTime::from_secs(NOW)
        ),
        Step::Effect(Effect::Http(_))
    ));
    unexpected(op.step(Input::Metadata(None), UnixTime::from_secs(NOW)));
    unexpected(op.step(Input::Start, UnixTime::from_secs(NOW)));
}

#[test]
fn debug_output_never_shows_the_tokens() {
    let core = core(config_builder());
    let (result, rec) = exchange(
        &core,
        ConnectionTokenRequest::new(GOOGLE),
        session(),
        exchange_response(CONN_TOKEN),
    );
    let token = result.unwrap();
    let out = format!("{token:?} {:?}", rec.saved());
    for secret in [CONN_TOKEN, REFRESH_TOKEN, CLIENT_SECRET] {
        assert!(!out.contains(secret), "{secret} leaked: {out}");
    }
    let mut op = core.get_access_token_for_connection(ConnectionTokenRequest::new(GOOGLE));
    op.step(Input::Start, UnixTime::from_secs(NOW));
    op.step(
        Input::Session(Some(std::sync::Arc::new(session()))),
        UnixTime::from_secs(NOW),
    );
    let Step::Effect(effect) = op.step(
        Input::Metadata(Some(cached_metadata(NOW, 1))),
        UnixTime::from_secs(NOW),
    ) else {
        panic!("expected the exchange request");
    };
    let out = format!("{effect:?} {op:?}");
    for secret in [REFRESH_TOKEN, CLIENT_SECRET] {
        assert!(!out.contains(secret), "{secret} leaked: {out}");
    }
}
