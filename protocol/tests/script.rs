//! The scripted driver itself, and the read-only operations `get_user` / `get_session`.

mod common;

use auth0_server_protocol::access_token::AccessTokenRequest;
use auth0_server_protocol::effect::{Input, Operation, Step};
use auth0_server_protocol::secret::Secret;
use auth0_server_protocol::session::{Internal, StateData};
use auth0_server_protocol::time::UnixTime;
use common::*;

fn session() -> StateData {
    StateData {
        user: Some(user()),
        id_token: Some(Secret::new("id-token-SHOULD-NOT-LEAK")),
        refresh_token: Some(Secret::new(REFRESH_TOKEN)),
        internal: Internal {
            sid: "sid-xyz".into(),
            created_at: NOW - 10,
            last_active_at: Some(NOW - 5),
            extra: Default::default(),
            session_expires_at: None,
        },
        ..Default::default()
    }
}

// --- the driver --------------------------------------------------------------------------------

#[test]
#[should_panic(expected = "unscripted effect LoadSession")]
fn an_unscripted_session_load_fails_the_test_clearly() {
    let core = core(config_builder());
    let _ = Script::new().run(core.get_access_token(AccessTokenRequest::default()), NOW);
}

#[test]
#[should_panic(expected = "unscripted effect Http(POST https://tenant.auth0.com/oauth/token)")]
fn an_unscripted_http_request_fails_the_test_clearly() {
    let core = core(config_builder());
    let _ = Script::new()
        .session(Some(session()))
        .metadata(Some(cached_metadata(NOW, 0)))
        .run(core.get_access_token(AccessTokenRequest::default()), NOW);
}

#[test]
#[should_panic(expected = "scripted HTTP response(s) unused")]
fn an_unused_scripted_response_fails_the_test() {
    let core = core(config_builder());
    let _ = Script::new()
        .session(None)
        .http(json(200, "{}"))
        .run(core.get_user(), NOW);
}

#[test]
fn the_recording_exposes_method_uri_form_and_headers() {
    let core = core(config_builder());
    let (_, rec) = Script::new()
        .session(Some(session()))
        .metadata(Some(cached_metadata(NOW, 0)))
        .http(json(200, r#"{"access_token":"a","expires_in":60}"#))
        .run(core.get_access_token(AccessTokenRequest::default()), NOW);
    let req = rec.http_requests()[0];
    assert_eq!(req.method, http::Method::POST);
    assert_eq!(req.uri, TOKEN_ENDPOINT);
    assert_eq!(req.header("accept"), Some("application/json"));
    assert_eq!(req.param("grant_type"), Some("refresh_token"));
    assert_eq!(rec.saved_sessions().len(), 1);
}

// --- get_user / get_session --------------------------------------------------------------------

#[test]
fn get_user_returns_the_user_claims_or_none() {
    let core = core(config_builder());
    let (result, rec) = Script::new()
        .session(Some(session()))
        .run(core.get_user(), NOW);
    assert_eq!(result.unwrap(), Some(user()));
    assert_eq!(rec.names(), ["LoadSession"]);

    let (result, _) = Script::new().session(None).run(core.get_user(), NOW);
    assert_eq!(result.unwrap(), None);

    let (result, _) = Script::new()
        .session(Some(StateData::default()))
        .run(core.get_user(), NOW);
    assert_eq!(result.unwrap(), None, "a session without user claims");
}

#[test]
fn get_session_returns_the_session_without_internal() {
    let core = core(config_builder());
    let s = session();
    let (result, rec) = Script::new()
        .session(Some(s.clone()))
        .run(core.get_session(), NOW);
    let got = result.unwrap().expect("a session");
    assert_eq!(rec.names(), ["LoadSession"]);
    assert_eq!(got.user, s.user);
    assert_eq!(got.refresh_token, s.refresh_token);
    assert_eq!(got.id_token, s.id_token);
    let json = serde_json::to_value(&got).unwrap();
    assert!(json.get("internal").is_none(), "{json}");
    assert!(!json.to_string().contains("sid-xyz"));

    let (result, _) = Script::new().session(None).run(core.get_session(), NOW);
    assert_eq!(result.unwrap(), None);
}

#[test]
fn get_user_and_get_session_reject_wrong_input() {
    let core = core(config_builder());
    let mut op = core.get_user();
    assert!(matches!(
        op.step(Input::Done, UnixTime::from_secs(NOW)),
        Step::Done(Err(_))
    ));
    let mut op = core.get_session();
    assert!(matches!(
        op.step(Input::Start, UnixTime::from_secs(NOW)),
        Step::Effect(_)
    ));
    match op.step(Input::Http(json(200, "{}")), UnixTime::from_secs(NOW)) {
        Step::Done(Err(e)) => assert_eq!(e.expected, "LoadSession"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn get_session_debug_never_shows_tokens() {
    let core = core(config_builder());
    let (result, _) = Script::new()
        .session(Some(session()))
        .run(core.get_session(), NOW);
    let out = format!("{result:?}");
    assert!(!out.contains("SHOULD-NOT-LEAK"), "{out}");
}
