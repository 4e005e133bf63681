//! Connected accounts and the My Account API: the API's address from the domain (a
//! property), the requests each operation sends (token from the session for the `/me/`
//! audience and the call's scope, Bearer or DPoP, ids checked and escaped), the connect flow's
//! transaction (saved at the start, consumed once at completion, `state` and
//! `connect_code` checked), and what errors show (the API's problem fields, never a token or
//! a code).

mod common;

use auth0_server_protocol::ErrorCode;
use auth0_server_protocol::effect::{AtSend, Effect, HttpRequest, Input, Operation, Step};
use auth0_server_protocol::login::code_challenge;
use auth0_server_protocol::my_account::{
    ConnectAccountOptions, MyAccountError, check_id, my_account_api, parse_problem, path_segment,
};
use auth0_server_protocol::session::{StateData, TokenSet};
use auth0_server_protocol::time::UnixTime;
use auth0_server_protocol::token_response::TokenType;
use auth0_server_protocol::transaction::{TransactionData, transaction_key};
use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};

const ME: &str = "https://tenant.auth0.com/me/";
const ME_TOKEN: &str = "me-access-token-SHOULD-NOT-LEAK";
const CONNECT_CODE: &str = "connect-code-SHOULD-NOT-LEAK";
const AUTH_SESSION: &str = "auth-session-SHOULD-NOT-LEAK";

/// A session holding a valid My Account token with `scope`.
fn session(scope: &str, token_type: TokenType) -> StateData {
    StateData {
        user: Some(user()),
        refresh_token: Some(REFRESH_TOKEN.into()),
        token_sets: vec![TokenSet {
            audience: ME.into(),
            access_token: ME_TOKEN.into(),
            scope: Some(format!("openid profile email offline_access {scope}")),
            expires_at: NOW + 3600,
            requested_scope: None,
            token_type,
        }],
        ..Default::default()
    }
}

/// Steps `op` from the start, answering `LoadSession` with `session`, until it asks for
/// something else; returns that step.
fn run_to_effect<O: Operation>(
    op: &mut O,
    mut input: Input,
    session: &Option<StateData>,
) -> Step<O::Output, O::Error> {
    loop {
        match op.step(input, UnixTime::from_secs(NOW)) {
            Step::Effect(Effect::LoadSession) => {
                input = Input::Session(session.clone().map(std::sync::Arc::new))
            }
            other => return other,
        }
    }
}

fn expect_http<T: std::fmt::Debug, E: std::fmt::Debug>(step: Step<T, E>) -> Box<HttpRequest> {
    match step {
        Step::Effect(Effect::Http(r)) => r,
        other => panic!("expected an HTTP request, got {other:?}"),
    }
}

fn response(status: u16, body: Value) -> http::Response<Vec<u8>> {
    json(status, &body.to_string())
}

fn header<'a>(r: &'a HttpRequest, name: &str) -> Option<&'a str> {
    r.request.headers().get(name).and_then(|v| v.to_str().ok())
}

fn body_json(r: &HttpRequest) -> Value {
    serde_json::from_slice(r.request.body()).expect("a JSON body")
}

fn done<T, E: std::fmt::Debug>(step: Step<T, E>) -> Result<T, E> {
    match step {
        Step::Done(r) => r,
        Step::Effect(e) => panic!("expected the end, got {e:?}"),
    }
}

proptest! {
    /// The API's audience is `https://{host[:port]}/me/` and its base that plus `v1`, for
    /// any host given bare or as an origin (with or without a trailing slash).
    #[test]
    fn the_api_address_derives_from_the_domain_alone(
        labels in proptest::collection::vec("[a-z][a-z0-9-]{0,10}[a-z0-9]", 1..4),
        port in proptest::option::of(1u16..),
        form in 0u8..3,
    ) {
        let host = labels.join(".");
        let authority = match port {
            Some(p) if p != 443 => format!("{host}:{p}"),
            _ => host.clone(),
        };
        let domain = match form {
            0 => authority.clone(),
            1 => format!("https://{authority}"),
            _ => format!("https://{authority}/"),
        };
        // The expected origin as the URL standard renders it (a default port is dropped).
        let expected = url::Url::parse(&format!("https://{authority}/")).unwrap();
        let origin = expected.origin().ascii_serialization();
        let api = my_account_api(&domain).unwrap();
        prop_assert_eq!(api.audience(), format!("{origin}/me/"));
        prop_assert_eq!(api.base(), format!("{origin}/me/v1"));
        prop_assert_eq!(api.endpoint("factors"), format!("{origin}/me/v1/factors"));
    }

    /// Nothing given as a domain panics; what is accepted is always an https origin (or http
    /// on loopback) whose audience ends with `/me/`.
    #[test]
    fn any_domain_is_refused_or_yields_an_origin(domain in "\\PC{0,60}") {
        if let Ok(api) = my_account_api(&domain) {
            prop_assert!(api.audience().ends_with("/me/"));
            let url = url::Url::parse(api.audience()).unwrap();
            prop_assert!(url.scheme() == "https" || url.scheme() == "http");
            prop_assert_eq!(url.path(), "/me/");
            prop_assert!(url.query().is_none());
        }
    }

    /// An accepted id is escaped into exactly one path segment.
    #[test]
    fn accepted_ids_stay_in_their_segment(id in "[A-Za-z0-9_.:|-]{1,64}") {
        prop_assert!(check_id("id", &id).is_ok());
        let seg = path_segment(&id);
        prop_assert!(!seg.contains('/') && !seg.contains('?') && !seg.contains('#'));
        prop_assert_ne!(seg.as_str(), "..");
    }
}

#[test]
fn domains_with_paths_queries_credentials_or_plain_http_are_refused() {
    for bad in [
        "",
        "https://tenant.auth0.com/realms/x",
        "https://tenant.auth0.com/?a=b",
        "https://user:pw@tenant.auth0.com",
        "http://tenant.auth0.com",
        "ftp://tenant.auth0.com",
    ] {
        let e = my_account_api(bad).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest, "{bad}");
    }
    assert_eq!(
        my_account_api("http://127.0.0.1:3000").unwrap().audience(),
        "http://127.0.0.1:3000/me/"
    );
}

#[test]
fn ids_that_could_leave_the_path_are_refused_before_anything_is_sent() {
    let core = core(config_builder());
    for bad in [
        "",
        "../accounts",
        "a/b",
        "a?b",
        "a b",
        "%2e%2e",
        &"x".repeat(300),
    ] {
        let mut op = core.delete_connected_account(bad);
        let e = done(op.step(Input::Start, UnixTime::from_secs(NOW))).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidParameter, "{bad}");
        let mut op = core.get_authentication_method(bad);
        let e = done(op.step(Input::Start, UnixTime::from_secs(NOW))).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidParameter, "{bad}");
    }
    let mut op = core.list_connected_accounts(None, None, Some(0));
    assert!(done(op.step(Input::Start, UnixTime::from_secs(NOW))).is_err());
}

#[test]
fn list_sends_the_session_token_for_the_me_audience_and_parses_the_page() {
    let core = core(config_builder());
    let mut op = core.list_connected_accounts(Some("google-oauth2"), Some("abc"), Some(5));
    let s = Some(session("read:me:connected_accounts", TokenType::Bearer));
    let req = expect_http(run_to_effect(&mut op, Input::Start, &s));
    assert_eq!(req.request.method(), http::Method::GET);
    assert_eq!(
        req.request.uri().to_string(),
        "https://tenant.auth0.com/me/v1/connected-accounts/accounts?connection=google-oauth2&from=abc&take=5"
    );
    assert_eq!(
        header(&req, "authorization"),
        Some(format!("Bearer {ME_TOKEN}").as_str())
    );
    assert!(req.at_send.is_empty());
    assert!(!format!("{req:?}").contains(ME_TOKEN));
    let page = done(op.step(
        Input::Http(response(
            200,
            json!({"accounts": [{"id": "cac_1", "connection": "google-oauth2", "access_type": "offline",
                "scopes": ["openid"], "created_at": "2026-01-01T00:00:00Z"}], "next": "n2"}),
        )),
        UnixTime::from_secs(NOW),
    ))
    .unwrap();
    assert_eq!(page.accounts[0].id, "cac_1");
    assert_eq!(page.next.as_deref(), Some("n2"));
}

#[test]
fn without_a_stored_token_the_session_refresh_token_is_spent_for_the_me_audience() {
    let core = core(config_builder());
    let mut op = core.list_connected_accounts(None, None, None);
    // A session with only a token for another audience.
    let mut s = session("read:me:connected_accounts", TokenType::Bearer);
    s.token_sets[0].audience = "https://api.example.com".into();
    let mut input = Input::Start;
    let refresh = loop {
        match op.step(input, UnixTime::from_secs(NOW)) {
            Step::Effect(Effect::LoadSession) => {
                input = Input::Session(Some(std::sync::Arc::new(s.clone())))
            }
            Step::Effect(Effect::LoadMetadata) => {
                input = Input::Metadata(Some(cached_metadata(NOW, 0)))
            }
            Step::Effect(Effect::Http(r)) => break r,
            other => panic!("unexpected {other:?}"),
        }
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(refresh.request.body())
        .into_owned()
        .collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("grant_type"), Some("refresh_token"));
    assert_eq!(get("audience"), Some(ME));
    assert_eq!(
        get("scope"),
        Some("openid profile email offline_access read:me:connected_accounts")
    );
}

#[test]
fn no_session_is_missing_session_and_nothing_is_sent() {
    let core = core(config_builder());
    let mut op = core.get_factors();
    let e = done(run_to_effect(&mut op, Input::Start, &None)).unwrap_err();
    assert_eq!(e.code(), ErrorCode::MissingSession);
}

#[test]
fn a_dpop_bound_token_goes_as_dpop_with_a_proof_made_at_sending() {
    let core = core(config_builder());
    let mut op = core.list_authentication_methods();
    let s = Some(session("read:me:authentication_methods", TokenType::Dpop));
    let req = expect_http(run_to_effect(&mut op, Input::Start, &s));
    assert_eq!(
        header(&req, "authorization"),
        Some(format!("DPoP {ME_TOKEN}").as_str())
    );
    assert_eq!(req.at_send, vec![AtSend::DpopProof { nonce: None }]);
    let methods = done(op.step(
        Input::Http(response(
            200,
            json!({"authentication_methods": [{"id": "totp|1", "type": "totp", "name": "app"}]}),
        )),
        UnixTime::from_secs(NOW),
    ))
    .unwrap();
    assert_eq!(methods[0].kind, "totp");
    assert_eq!(methods[0].details["name"], "app");
}

#[test]
fn delete_escapes_the_id_and_accepts_no_content() {
    let core = core(config_builder());
    let mut op = core.delete_connected_account("cac_1|x");
    let s = Some(session("delete:me:connected_accounts", TokenType::Bearer));
    let req = expect_http(run_to_effect(&mut op, Input::Start, &s));
    assert_eq!(req.request.method(), http::Method::DELETE);
    assert_eq!(
        req.request.uri().path(),
        "/me/v1/connected-accounts/accounts/cac_1%7Cx"
    );
    let empty = http::Response::builder()
        .status(204)
        .body(Vec::new())
        .unwrap();
    done(op.step(Input::Http(empty), UnixTime::from_secs(NOW))).unwrap();
}

#[test]
fn a_problem_answer_is_kept_as_data_without_what_was_sent() {
    let core = core(config_builder());
    let mut op = core.delete_connected_account("cac_1");
    let s = Some(session("delete:me:connected_accounts", TokenType::Bearer));
    expect_http(run_to_effect(&mut op, Input::Start, &s));
    let e = done(op.step(
        Input::Http(response(
            403,
            json!({"type": "https://auth0.com/api-errors/A0E-403-0002", "status": 403,
                "title": "Forbidden", "detail": "Insufficient scope"}),
        )),
        UnixTime::from_secs(NOW),
    ))
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::MyAccountApiError);
    assert_eq!(e.code(), "my_account_api_error");
    let p = e.problem().unwrap();
    assert_eq!(p.status, 403);
    assert_eq!(
        p.kind.as_deref(),
        Some("https://auth0.com/api-errors/A0E-403-0002")
    );
    assert_eq!(p.title.as_deref(), Some("Forbidden"));
    assert_eq!(p.detail.as_deref(), Some("Insufficient scope"));
    for shown in [format!("{e}"), format!("{e:?}")] {
        assert!(!shown.contains(ME_TOKEN), "{shown}");
    }
    // An HTML error page or an OAuth-style error still gives the status.
    assert_eq!(parse_problem(502, b"<html>").status, 502);
    let oauth = parse_problem(
        401,
        br#"{"error":"invalid_token","error_description":"bad"}"#,
    );
    assert_eq!(oauth.title.as_deref(), Some("invalid_token"));
}

fn start_connect(app_state: Option<Value>) -> (TransactionData, url::Url, Box<HttpRequest>) {
    let core = core(config_builder().redirect_uri("https://app.example.com/callback"));
    let mut options = ConnectAccountOptions::new("google-oauth2")
        .scope("https://www.googleapis.com/auth/calendar.readonly")
        .authorization_param("access_type", "offline");
    options.app_state = app_state;
    let mut op = core.start_connect_account(options);
    let Step::Effect(Effect::Random { len }) = op.step(Input::Start, UnixTime::from_secs(NOW))
    else {
        panic!("randomness first")
    };
    let s = Some(session("create:me:connected_accounts", TokenType::Bearer));
    let req = expect_http(run_to_effect(&mut op, Input::Random(vec![7; len]), &s));
    let step = op.step(
        Input::Http(response(
            201,
            json!({"auth_session": AUTH_SESSION, "connect_uri": "https://tenant.auth0.com/connect",
                "connect_params": {"ticket": "tkt-1"}, "expires_in": 300}),
        )),
        UnixTime::from_secs(NOW),
    );
    let Step::Effect(Effect::SaveTransaction { key, transaction }) = step else {
        panic!("the transaction is saved, got {step:?}")
    };
    assert_eq!(key, transaction_key(transaction.state.as_deref().unwrap()));
    let url = done(op.step(Input::Done, UnixTime::from_secs(NOW))).unwrap();
    (*transaction, url, req)
}

#[test]
fn connect_start_sends_state_and_an_s256_challenge_and_saves_the_transaction() {
    let (tx, url, req) = start_connect(Some(json!({"return_to": "/settings"})));
    assert_eq!(req.request.method(), http::Method::POST);
    assert_eq!(
        req.request.uri().to_string(),
        "https://tenant.auth0.com/me/v1/connected-accounts/connect"
    );
    assert_eq!(header(&req, "content-type"), Some("application/json"));
    let body = body_json(&req);
    let verifier = tx.code_verifier.as_ref().unwrap().expose().to_owned();
    assert_eq!(body["connection"], "google-oauth2");
    assert_eq!(body["redirect_uri"], "https://app.example.com/callback");
    assert_eq!(body["state"], tx.state.clone().unwrap());
    assert_eq!(body["code_challenge"], code_challenge(&verifier));
    assert_eq!(body["code_challenge_method"], "S256");
    assert_eq!(
        body["scopes"],
        json!(["https://www.googleapis.com/auth/calendar.readonly"])
    );
    assert_eq!(
        body["authorization_params"],
        json!({"access_type": "offline"})
    );
    assert!(
        !req.request
            .body()
            .windows(verifier.len())
            .any(|w| w == verifier.as_bytes())
    );
    let pending = tx.connect.as_ref().unwrap();
    assert_eq!(pending.auth_session.expose(), AUTH_SESSION);
    assert_eq!(pending.connection, "google-oauth2");
    assert_eq!(
        tx.redirect_uri.as_deref(),
        Some("https://app.example.com/callback")
    );
    assert_eq!(tx.app_state, Some(json!({"return_to": "/settings"})));
    assert_eq!(
        url.as_str(),
        "https://tenant.auth0.com/connect?ticket=tkt-1"
    );
    assert!(!format!("{tx:?}").contains(AUTH_SESSION));
}

#[test]
fn connect_start_needs_a_redirect_uri_and_a_connection() {
    let core_without = core(config_builder());
    let mut op = core_without.start_connect_account(ConnectAccountOptions::new("google-oauth2"));
    let e = done(op.step(Input::Start, UnixTime::from_secs(NOW))).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidParameter);
    let mut op = core_without.start_connect_account(
        ConnectAccountOptions::new("").redirect_uri("https://app.example.com/cb"),
    );
    let e = done(op.step(Input::Start, UnixTime::from_secs(NOW))).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidParameter);
}

/// Completes a connect flow for `callback` with `stored` as the transaction; returns the
/// effects' outcome: the request sent (if any) and the result.
fn complete(
    stored: Option<TransactionData>,
    callback: &str,
) -> (
    Option<Box<HttpRequest>>,
    Result<auth0_server_protocol::my_account::ConnectedAccountResult, MyAccountError>,
    bool,
) {
    let core = core(config_builder());
    let mut op = core.complete_connect_account(callback);
    let s = Some(session("create:me:connected_accounts", TokenType::Bearer));
    let mut input = Input::Start;
    let mut sent = None;
    let mut deleted = false;
    loop {
        match op.step(input, UnixTime::from_secs(NOW)) {
            Step::Done(r) => return (sent, r, deleted),
            Step::Effect(Effect::LoadSession) => {
                input = Input::Session(s.clone().map(std::sync::Arc::new))
            }
            Step::Effect(Effect::LoadTransaction { key }) => {
                let tx = stored
                    .clone()
                    .filter(|t| transaction_key(t.state.as_deref().unwrap_or("")) == key);
                input = Input::Transaction(tx);
            }
            Step::Effect(Effect::DeleteTransaction { .. }) => {
                deleted = true;
                input = Input::Done;
            }
            Step::Effect(Effect::Http(r)) => {
                sent = Some(r);
                input = Input::Http(response(
                    201,
                    json!({"id": "cac_9", "connection": "google-oauth2", "access_type": "offline",
                        "scopes": ["a"], "created_at": "2026-01-01T00:00:00Z"}),
                ));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn connect_completion_consumes_the_transaction_and_sends_the_verifier() {
    let (tx, _, _) = start_connect(Some(json!(42)));
    let state = tx.state.clone().unwrap();
    let callback =
        format!("https://app.example.com/callback?connect_code={CONNECT_CODE}&state={state}");
    let (sent, result, deleted) = complete(Some(tx.clone()), &callback);
    let result = result.unwrap();
    assert!(deleted);
    assert_eq!(result.account.id, "cac_9");
    assert_eq!(result.app_state, Some(json!(42)));
    let req = sent.unwrap();
    assert_eq!(
        req.request.uri().to_string(),
        "https://tenant.auth0.com/me/v1/connected-accounts/complete"
    );
    let body = body_json(&req);
    assert_eq!(body["auth_session"], AUTH_SESSION);
    assert_eq!(body["connect_code"], CONNECT_CODE);
    assert_eq!(body["redirect_uri"], "https://app.example.com/callback");
    assert_eq!(
        body["code_verifier"],
        tx.code_verifier.as_ref().unwrap().expose()
    );
}

#[test]
fn connect_callbacks_that_do_not_match_are_typed_errors_without_the_code() {
    let (tx, _, _) = start_connect(None);
    let state = tx.state.clone().unwrap();
    // Unknown state: no transaction, nothing sent.
    let (sent, r, _) = complete(
        Some(tx.clone()),
        &format!("/callback?connect_code={CONNECT_CODE}&state=other"),
    );
    let e = r.unwrap_err();
    assert_eq!(e.code(), ErrorCode::MissingTransaction);
    assert!(sent.is_none());
    assert!(!format!("{e:?}").contains(CONNECT_CODE));
    // No state at all.
    let (_, r, _) = complete(
        Some(tx.clone()),
        &format!("/callback?connect_code={CONNECT_CODE}"),
    );
    assert_eq!(r.unwrap_err().code(), ErrorCode::InvalidState);
    // A login transaction (no pending connection) is not a connect transaction.
    let mut login_tx = tx.clone();
    login_tx.connect = None;
    let (_, r, _) = complete(
        Some(login_tx),
        &format!("/callback?connect_code={CONNECT_CODE}&state={state}"),
    );
    assert_eq!(r.unwrap_err().code(), ErrorCode::MissingTransaction);
    // The provider refused: consumed, nothing sent, connect_account_error.
    let (sent, r, deleted) = complete(
        Some(tx.clone()),
        &format!("/callback?error=access_denied&error_description=no&state={state}"),
    );
    let e = r.unwrap_err();
    assert_eq!(e.code(), ErrorCode::ConnectAccountError);
    assert_eq!(e.code(), "connect_account_error");
    assert!(deleted && sent.is_none());
    // No connect_code.
    let (_, r, _) = complete(Some(tx.clone()), &format!("/callback?state={state}"));
    assert_eq!(r.unwrap_err().code(), ErrorCode::ConnectAccountError);
    // A repeated parameter.
    let (_, r, _) = complete(
        Some(tx),
        &format!("/callback?state={state}&state={state}&connect_code=x"),
    );
    assert_eq!(r.unwrap_err().code(), ErrorCode::InvalidCallback);
}

#[test]
fn a_pending_connection_is_never_completed_as_a_login() {
    let (tx, _, _) = start_connect(None);
    let state = tx.state.clone().unwrap();
    let core = core(config_builder().redirect_uri("https://app.example.com/callback"));
    let mut op =
        core.complete_interactive_login(&format!("/callback?code=some-code&state={state}"));
    let mut input = Input::Start;
    let result = loop {
        match op.step(input, UnixTime::from_secs(NOW)) {
            Step::Done(r) => break r,
            Step::Effect(Effect::LoadTransaction { .. }) => {
                input = Input::Transaction(Some(tx.clone()))
            }
            Step::Effect(Effect::LoadMetadata) => {
                input = Input::Metadata(Some(cached_metadata(NOW, 0)))
            }
            Step::Effect(Effect::DeleteTransaction { .. }) => input = Input::Done,
            Step::Effect(Effect::LoadSession) => input = Input::Session(None),
            Step::Effect(other) => panic!("nothing is sent for a connect transaction: {other:?}"),
        }
    };
    assert_eq!(result.unwrap_err().code(), ErrorCode::MissingTransaction);
}

#[test]
fn an_update_sends_only_what_changes_and_needs_something_to_change() {
    use auth0_server_protocol::my_account::{AuthenticationMethodUpdate, update_method_call};
    let call = update_method_call("phone|1", &AuthenticationMethodUpdate::name("Work")).unwrap();
    assert_eq!(call.method, http::Method::PATCH);
    assert_eq!(call.path, "authentication-methods/phone%7C1");
    assert_eq!(call.scope, "update:me:authentication_methods");
    assert_eq!(call.body, Some(json!({"name": "Work"})));
    for bad in [
        AuthenticationMethodUpdate::default(),
        AuthenticationMethodUpdate::name(" "),
        AuthenticationMethodUpdate::name("a\nb"),
        AuthenticationMethodUpdate::name("x".repeat(201)),
    ] {
        let e = update_method_call("phone|1", &bad).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidParameter, "{bad:?}");
    }
}
