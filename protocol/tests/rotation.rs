//! Refresh-token lanes: a request whose refresh token an earlier request rotated is answered
//! `Input::Rotated(new token)` by the driver, and the operation spends the new token instead
//! of replaying the old one (which, with rotation and reuse detection, would revoke the user's
//! token family).

mod common;

use auth0_server_protocol::access_token::{AccessTokenRequest, refresh_token_hash};
use auth0_server_protocol::connection_token::ConnectionTokenRequest;
use auth0_server_protocol::effect::{
    Effect, HttpRequest, Input, MAX_ROTATIONS_FOLLOWED, Operation, Step,
};
use auth0_server_protocol::secret::Secret;
use auth0_server_protocol::session::{Merged, SessionUpdate, StateData, TokenSet, Updated};
use auth0_server_protocol::time::UnixTime;
use common::{cached_metadata, config_builder, core, json};

const NOW: u64 = 1_800_000_000;
const AUDIENCE: &str = "https://api.example.com";

fn expired_session() -> StateData {
    StateData {
        refresh_token: Some(Secret::new("rt-old")),
        token_sets: vec![TokenSet {
            audience: AUDIENCE.into(),
            access_token: Secret::new("at-old"),
            scope: None,
            expires_at: NOW - 10,
            requested_scope: None,
            token_type: Default::default(),
        }],
        ..Default::default()
    }
}

fn form(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.request.body())
        .into_owned()
        .collect()
}

fn param(req: &HttpRequest, name: &str) -> Option<String> {
    form(req)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The session the store holds after applying `update` to the session the operation read.
fn saved(update: &SessionUpdate) -> StateData {
    match update.apply(expired_session()) {
        Merged::Updated(s) => s,
        Merged::OtherSession => panic!("the update is for another session"),
    }
}

/// Steps `op` to its first HTTP request.
fn first_request<O: Operation>(op: &mut O) -> HttpRequest {
    let mut input = Input::Start;
    loop {
        match op.step(input, UnixTime::from_secs(NOW)) {
            Step::Effect(Effect::LoadSession) => {
                input = Input::Session(Some(std::sync::Arc::new(expired_session())))
            }
            Step::Effect(Effect::LoadMetadata) => {
                input = Input::Metadata(Some(cached_metadata(NOW, 1)))
            }
            Step::Effect(Effect::Http(req)) => return *req,
            Step::Effect(other) => panic!("unexpected {other:?}"),
            Step::Done(_) => panic!("finished before sending"),
        }
    }
}

#[test]
fn refresh_requests_run_on_the_lane_of_their_refresh_token() {
    let mut op =
        core(config_builder().audience(AUDIENCE)).get_access_token(AccessTokenRequest::default());
    let req = first_request(&mut op);
    let coalesce = req.coalesce.expect("coalesced");
    assert_eq!(
        coalesce.lane,
        Some(refresh_token_hash(&Secret::new("rt-old")))
    );
    assert!(!coalesce.key.contains("rt-old") && !coalesce.lane.unwrap().contains("rt-old"));
}

#[test]
fn a_rotated_refresh_token_is_spent_instead_of_the_old_one() {
    let mut op =
        core(config_builder().audience(AUDIENCE)).get_access_token(AccessTokenRequest::default());
    let first = first_request(&mut op);
    let key = first.coalesce.as_ref().unwrap().key.clone();
    let Step::Effect(Effect::Http(second)) = op.step(
        Input::Rotated(Secret::new("rt-new")),
        UnixTime::from_secs(NOW),
    ) else {
        panic!("expected the request again")
    };
    assert_eq!(param(&second, "refresh_token").as_deref(), Some("rt-new"));
    let c = second.coalesce.as_ref().unwrap();
    assert_eq!(
        c.key, key,
        "the key stays the session's, so its peers find the answer"
    );
    assert_eq!(c.lane, Some(refresh_token_hash(&Secret::new("rt-new"))));
    // The answer does not rotate again: the session keeps the token it spent.
    let Step::Effect(Effect::UpdateSession(update)) = op.step(
        Input::Http(json(200, r#"{"access_token":"at-new","expires_in":60}"#)),
        UnixTime::from_secs(NOW),
    ) else {
        panic!("expected a save")
    };
    let saved = saved(&update);
    assert_eq!(
        saved.refresh_token.as_ref().map(Secret::expose),
        Some("rt-new")
    );
    assert!(
        saved
            .token_sets
            .iter()
            .any(|t| t.access_token.expose() == "at-new")
    );
    let Step::Done(Ok(token)) =
        op.step(Input::Updated(Ok(Updated::Saved)), UnixTime::from_secs(NOW))
    else {
        panic!("expected the token")
    };
    assert_eq!(token.access_token.expose(), "at-new");
}

#[test]
fn a_token_that_keeps_rotating_is_an_error_not_a_loop() {
    let mut op =
        core(config_builder().audience(AUDIENCE)).get_access_token(AccessTokenRequest::default());
    first_request(&mut op);
    for i in 0..MAX_ROTATIONS_FOLLOWED {
        assert!(matches!(
            op.step(
                Input::Rotated(Secret::new(format!("rt-{i}"))),
                UnixTime::from_secs(NOW)
            ),
            Step::Effect(Effect::Http(_))
        ));
    }
    let Step::Done(Err(e)) = op.step(
        Input::Rotated(Secret::new("rt-last")),
        UnixTime::from_secs(NOW),
    ) else {
        panic!("expected an error")
    };
    assert_eq!(e.code(), "unexpected_input");
}

#[test]
fn the_connection_exchange_also_spends_the_rotated_token() {
    let mut op = core(config_builder())
        .get_access_token_for_connection(ConnectionTokenRequest::new("google-oauth2"));
    let first = first_request(&mut op);
    assert_eq!(param(&first, "subject_token").as_deref(), Some("rt-old"));
    assert!(first.coalesce.as_ref().unwrap().lane.is_some());
    let Step::Effect(Effect::Http(second)) = op.step(
        Input::Rotated(Secret::new("rt-new")),
        UnixTime::from_secs(NOW),
    ) else {
        panic!("expected the exchange again")
    };
    assert_eq!(param(&second, "subject_token").as_deref(), Some("rt-new"));
    let Step::Effect(Effect::UpdateSession(update)) = op.step(
        Input::Http(json(200, r#"{"access_token":"ya29","expires_in":60}"#)),
        UnixTime::from_secs(NOW),
    ) else {
        panic!("expected a save")
    };
    let saved = saved(&update);
    assert_eq!(
        saved.refresh_token.as_ref().map(Secret::expose),
        Some("rt-new")
    );
}
