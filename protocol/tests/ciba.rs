//! CIBA (Client-Initiated Backchannel Authentication, poll mode): the polling decision
//! (`PollSchedule::next_poll`) and the request checks as properties, the start form, and the
//! operations against scripted answers (what they send, how long they wait, what they save).

mod common;

use auth0_server_protocol::discovery::{CachedMetadata, Metadata};
use auth0_server_protocol::login::ciba::{
    MAX_BINDING_MESSAGE_LEN, NextPoll, PollAnswer, PollSchedule, SLOW_DOWN_STEP,
    check_binding_message,
};
use auth0_server_protocol::login::{BackchannelLoginRequest, BackchannelPoll};
use auth0_server_protocol::time::UnixTime;
use common::*;
use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;

const BC_ENDPOINT: &str = "https://tenant.auth0.com/bc-authorize";

fn ciba_metadata() -> CachedMetadata {
    CachedMetadata {
        metadata: Arc::new(Metadata {
            backchannel_authentication_endpoint: Some(BC_ENDPOINT.into()),
            ..metadata()
        }),
        fetched_at: UnixTime::from_secs(NOW - 10),
    }
}

fn started(expires_in: u64, interval: Option<u64>) -> http::Response<Vec<u8>> {
    let mut body =
        serde_json::json!({"auth_req_id": "req-id-SHOULD-NOT-LEAK", "expires_in": expires_in});
    if let Some(i) = interval {
        body["interval"] = i.into();
    }
    json(200, &body.to_string())
}

fn oauth_error(error: &str) -> http::Response<Vec<u8>> {
    json(
        400,
        &serde_json::json!({"error": error, "error_description": "scripted"}).to_string(),
    )
}

fn approved(id_token: &str) -> http::Response<Vec<u8>> {
    json(
        200,
        &serde_json::json!({
            "access_token": "at", "token_type": "Bearer", "expires_in": 3600,
            "id_token": id_token, "scope": "openid profile",
            "authorization_details": [{"type": "payment_initiation", "amount": "10.00"}],
        })
        .to_string(),
    )
}

fn answer() -> impl Strategy<Value = PollAnswer> {
    prop_oneof![Just(PollAnswer::Pending), Just(PollAnswer::SlowDown)]
}

proptest! {
    /// Whatever the answers and however late they come: the wait is never shorter than the
    /// interval in force (never below 1 s), a `slow_down` grows it by exactly 5 s and nothing
    /// shrinks it, and no poll is ever scheduled at or past the deadline.
    #[test]
    fn polls_never_come_faster_than_the_interval_nor_past_the_deadline(
        start in 0u64..2_000_000_000,
        expires_in in 0u64..1_000,
        interval in prop::option::of(0u64..120),
        steps in prop::collection::vec((answer(), 0u64..60), 0..40),
    ) {
        let start = UnixTime::from_secs(start);
        let mut schedule = PollSchedule::new(start, Duration::from_secs(expires_in), interval.map(Duration::from_secs));
        prop_assert!(schedule.interval >= Duration::from_secs(1));
        prop_assert_eq!(schedule.interval, Duration::from_secs(interval.unwrap_or(5).max(1)));
        let mut now = start;
        let mut decision = schedule.next_poll(PollAnswer::Started, now);
        for (answer, late) in steps {
            let NextPoll::WaitThenPoll { after } = decision else { break };
            prop_assert_eq!(after, schedule.interval);
            prop_assert!(now + after < schedule.deadline);
            now = now + after + Duration::from_secs(late);
            let before = schedule.interval;
            decision = schedule.next_poll(answer, now);
            match answer {
                PollAnswer::SlowDown => prop_assert_eq!(schedule.interval, before + SLOW_DOWN_STEP),
                _ => prop_assert_eq!(schedule.interval, before),
            }
            if now + schedule.interval >= schedule.deadline {
                prop_assert_eq!(decision, NextPoll::Expired);
            }
        }
    }

    /// The binding-message check is total, and what it accepts is 1 to 64 characters of
    /// letters, digits, spaces and `+-_.,:#`, not blank; what it refuses it never quotes.
    #[test]
    fn the_binding_message_check_is_total_and_sound(message in ".{0,80}") {
        match check_binding_message(&message) {
            Ok(()) => {
                prop_assert!(!message.trim().is_empty());
                prop_assert!(message.chars().count() <= MAX_BINDING_MESSAGE_LEN);
                prop_assert!(message.chars().all(|c| c.is_alphanumeric() || " +-_.,:#".contains(c)));
            }
            Err(e) => {
                prop_assert_eq!(e.code(), "invalid_parameter");
                prop_assert!(!e.to_string().contains(&message) || message.trim().len() < 3);
            }
        }
    }
}

proptest! {
    /// Any answer of the backchannel endpoint is read without panicking; what is accepted has
    /// an `auth_req_id`, an interval of at least 1 s and a deadline after now.
    #[test]
    fn any_start_answer_is_read_without_panicking(
        status in prop::sample::select(vec![200u16, 400, 401, 500]),
        auth_req_id in prop::option::of(".{0,12}"),
        expires_in in prop::option::of(prop_oneof![
            (-5i64..1_000_000).prop_map(serde_json::Value::from),
            Just(serde_json::Value::from(1.5)),
            Just(serde_json::Value::from("60")),
        ]),
        interval in prop::option::of((-5i64..100).prop_map(serde_json::Value::from)),
        junk in prop::collection::vec(any::<u8>(), 0..32),
        use_junk in any::<bool>(),
    ) {
        let body = if use_junk {
            junk
        } else {
            let mut o = serde_json::Map::new();
            if let Some(id) = auth_req_id { o.insert("auth_req_id".into(), id.into()); }
            if let Some(e) = expires_in { o.insert("expires_in".into(), e); }
            if let Some(i) = interval { o.insert("interval".into(), i); }
            serde_json::Value::Object(o).to_string().into_bytes()
        };
        let response = raw(status, "application/json", body);
        let now = UnixTime::from_secs(NOW);
        if let Ok(handle) = auth0_server_protocol::login::ciba::parse_start_response(
            &response, now, None, "openid".into(),
        ) {
            prop_assert_eq!(status, 200);
            prop_assert!(!handle.auth_req_id.expose().is_empty());
            prop_assert!(handle.interval >= Duration::from_secs(1));
            prop_assert!(handle.expires_at > now);
        }
    }
}

#[test]
fn invalid_requests_are_refused_before_anything_is_sent() {
    for bad in [
        BackchannelLoginRequest::new(SUB, ""),
        BackchannelLoginRequest::new(SUB, "   "),
        BackchannelLoginRequest::new(SUB, "line\nbreak"),
        BackchannelLoginRequest::new(SUB, "tab\there"),
        BackchannelLoginRequest::new(SUB, "<script>"),
        BackchannelLoginRequest::new(SUB, "x".repeat(65)),
        BackchannelLoginRequest::new("", "Approve"),
        BackchannelLoginRequest::new(" auth0|x", "Approve"),
        BackchannelLoginRequest::new(SUB, "Approve").scope(" "),
        BackchannelLoginRequest::new(SUB, "Approve").requested_expiry(Duration::ZERO),
        BackchannelLoginRequest::new(SUB, "Approve").requested_expiry(Duration::from_secs(301)),
        BackchannelLoginRequest::new(SUB, "Approve")
            .authorization_details(serde_json::json!({"type": "x"})),
    ] {
        let (result, rec) =
            Script::new().run(core(config_builder()).login_backchannel(bad.clone()), NOW);
        assert_eq!(result.unwrap_err().code(), "invalid_parameter", "{bad:?}");
        assert!(rec.names().is_empty(), "{bad:?}: {:?}", rec.names());
    }
    assert!(
        BackchannelLoginRequest::new(SUB, "Transfer #42: 10.00 EUR to A-B_C+")
            .check()
            .is_ok()
    );
}

/// The start request: client authentication, scope with openid, the `iss_sub` login hint
/// naming the discovered issuer, the binding message, the configured audience, the requested
/// expiry and the RAR details; then a poll with the CIBA grant after the interval, a second
/// one 5 s later after a `slow_down`... and the session from the verified ID token.
#[test]
fn login_backchannel_starts_polls_at_the_interval_and_saves_the_verified_user() {
    let core = core(config_builder().audience("https://api.example.com/"));
    let details = serde_json::json!([{"type": "payment_initiation", "amount": "10.00"}]);
    let (result, rec) = Script::new()
        .metadata(Some(ciba_metadata()))
        .jwks(Some(cached_jwks()))
        .http(started(120, Some(5)))
        .http(oauth_error("authorization_pending"))
        .http(oauth_error("slow_down"))
        .http(oauth_error("authorization_pending"))
        .http(approved(&id_token(serde_json::json!({"sid": "sid-1"}))))
        .run(
            core.login_backchannel(
                BackchannelLoginRequest::new(SUB, "Approve login 42")
                    .requested_expiry(Duration::from_secs(120))
                    .authorization_details(details.clone()),
            ),
            NOW,
        );
    let result = result.expect("logged in");
    assert_eq!(result.authorization_details, Some(details.clone()));
    assert_eq!(
        rec.waits(),
        [5, 5, 10, 10].map(Duration::from_secs),
        "interval, interval, then interval + 5 after slow_down"
    );
    let http = rec.http_requests();
    assert_eq!(http.len(), 5);
    let start = http[0];
    assert_eq!(start.uri, BC_ENDPOINT);
    assert_eq!(
        start.param_names(),
        [
            "audience",
            "authorization_details",
            "binding_message",
            "client_id",
            "client_secret",
            "login_hint",
            "requested_expiry",
            "scope"
        ]
    );
    let hint: serde_json::Value = serde_json::from_str(start.param("login_hint").unwrap()).unwrap();
    assert_eq!(
        hint,
        serde_json::json!({"format": "iss_sub", "iss": ISSUER, "sub": SUB})
    );
    assert!(
        start
            .param("scope")
            .unwrap()
            .split(' ')
            .any(|s| s == "openid")
    );
    assert_eq!(start.param("binding_message"), Some("Approve login 42"));
    assert_eq!(start.param("requested_expiry"), Some("120"));
    assert_eq!(start.param("audience"), Some("https://api.example.com/"));
    let sent_details: serde_json::Value =
        serde_json::from_str(start.param("authorization_details").unwrap()).unwrap();
    assert_eq!(sent_details, details);
    for poll in &http[1..] {
        assert_eq!(poll.uri, TOKEN_ENDPOINT);
        assert_eq!(
            poll.param("grant_type"),
            Some("urn:openid:params:grant-type:ciba")
        );
        assert_eq!(poll.param("auth_req_id"), Some("req-id-SHOULD-NOT-LEAK"));
        assert_eq!(poll.param("client_secret"), Some(CLIENT_SECRET));
    }
    // The session replaces any other: deleted, then saved with the verified user.
    let names = rec.names();
    let delete = names.iter().position(|n| n == "DeleteSession").unwrap();
    let save = names.iter().position(|n| n == "SaveSession").unwrap();
    assert!(delete < save, "{names:?}");
    let saved = rec.saved_sessions();
    assert_eq!(saved.len(), 1);
    let user = saved[0]
        .user
        .as_ref()
        .expect("the verified user, never empty");
    assert_eq!(user.get("sub").and_then(|v| v.as_str()), Some(SUB));
    assert_eq!(user.get("name").and_then(|v| v.as_str()), Some("Jane"));
    assert_eq!(saved[0].internal.sid, "sid-1");
}

#[test]
fn denial_and_expiry_are_typed_errors_and_nothing_is_saved() {
    for (answer, code) in [
        ("access_denied", "access_denied"),
        ("expired_token", "backchannel_authentication_expired"),
        ("invalid_grant", "backchannel_authentication_failed"),
    ] {
        let (result, rec) = Script::new()
            .metadata(Some(ciba_metadata()))
            .http(started(120, None))
            .http(oauth_error("authorization_pending"))
            .http(oauth_error(answer))
            .run(
                core(config_builder()).login_backchannel(BackchannelLoginRequest::new(SUB, "Hi")),
                NOW,
            );
        let e = result.unwrap_err();
        assert_eq!(e.code(), code);
        assert!(!e.to_string().contains("req-id-SHOULD-NOT-LEAK"));
        assert_eq!(
            rec.waits(),
            [5, 5].map(Duration::from_secs),
            "the default interval"
        );
        assert!(
            !rec.names().iter().any(|n| n.contains("Session")),
            "{:?}",
            rec.names()
        );
    }
}

/// The `expires_in` deadline stops polling without another request: 12 s with a 5 s interval
/// polls at +5 and +10, and the next (+15) would be past it.
#[test]
fn polling_stops_at_the_deadline_without_sending() {
    let (result, rec) = Script::new()
        .metadata(Some(ciba_metadata()))
        .http(started(12, Some(5)))
        .http(oauth_error("authorization_pending"))
        .http(oauth_error("authorization_pending"))
        .run(
            core(config_builder()).login_backchannel(BackchannelLoginRequest::new(SUB, "Hi")),
            NOW,
        );
    assert_eq!(
        result.unwrap_err().code(),
        "backchannel_authentication_expired"
    );
    assert_eq!(rec.http_requests().len(), 3);
    assert_eq!(rec.waits(), [5, 5].map(Duration::from_secs));
}

#[test]
fn an_id_token_for_another_audience_or_issuer_is_refused() {
    for (claims, code) in [
        (
            serde_json::json!({"aud": "another-client"}),
            "invalid_id_token",
        ),
        (
            serde_json::json!({"iss": "https://evil.example/"}),
            "invalid_id_token",
        ),
        (serde_json::json!({"exp": NOW - 600}), "invalid_id_token"),
    ] {
        let (result, rec) = Script::new()
            .metadata(Some(ciba_metadata()))
            .jwks(Some(cached_jwks()))
            .http(started(120, Some(5)))
            .http(approved(&id_token(claims.clone())))
            .run(
                core(config_builder()).login_backchannel(BackchannelLoginRequest::new(SUB, "Hi")),
                NOW,
            );
        assert_eq!(result.unwrap_err().code(), code, "{claims}");
        assert!(rec.saved_sessions().is_empty());
    }
}

#[test]
fn a_tenant_without_the_endpoint_is_a_typed_error() {
    let (result, rec) = Script::new().metadata(Some(cached_metadata(NOW, 10))).run(
        core(config_builder()).login_backchannel(BackchannelLoginRequest::new(SUB, "Hi")),
        NOW,
    );
    assert_eq!(
        result.unwrap_err().code(),
        "backchannel_authentication_not_supported"
    );
    assert!(rec.http_requests().is_empty());
}

/// The two-step API: start returns the handle (nothing waits); a poll answers pending with
/// the wait (grown after slow_down), then creates the session; a handle past its expiry
/// sends nothing.
#[test]
fn start_then_poll_once() {
    let core = core(config_builder());
    let (handle, rec) = Script::new()
        .metadata(Some(ciba_metadata()))
        .http(started(60, Some(7)))
        .run(
            core.start_backchannel_login(BackchannelLoginRequest::new(SUB, "Hi")),
            NOW,
        );
    let handle = handle.expect("started");
    assert!(rec.waits().is_empty());
    assert_eq!(handle.interval, Duration::from_secs(7));
    assert_eq!(handle.expires_at, UnixTime::from_secs(NOW + 60));
    assert!(!format!("{handle:?}").contains("req-id-SHOULD-NOT-LEAK"));

    let poll = |answer, at| {
        Script::new()
            .metadata(Some(ciba_metadata()))
            .jwks(Some(cached_jwks()))
            .http(answer)
            .run(core.poll_backchannel_login(handle.clone()), at)
    };
    let (pending, _) = poll(oauth_error("authorization_pending"), NOW + 7);
    assert_eq!(
        pending.unwrap(),
        BackchannelPoll::Pending {
            retry_after: Duration::from_secs(7)
        }
    );
    let (slow, _) = poll(oauth_error("slow_down"), NOW + 14);
    assert_eq!(
        slow.unwrap(),
        BackchannelPoll::Pending {
            retry_after: Duration::from_secs(12)
        }
    );
    let (done, rec) = poll(approved(&id_token(serde_json::json!({}))), NOW + 26);
    assert!(matches!(done.unwrap(), BackchannelPoll::Done(_)));
    assert_eq!(rec.saved_sessions().len(), 1);

    let (late, rec) = Script::new().run(core.poll_backchannel_login(handle.clone()), NOW + 60);
    assert_eq!(
        late.unwrap_err().code(),
        "backchannel_authentication_expired"
    );
    assert!(rec.names().is_empty());
}

/// Without a session: the verified tokens and claims, and no store effect.
#[test]
fn backchannel_authentication_returns_verified_tokens_without_a_session() {
    let (result, rec) = Script::new()
        .metadata(Some(ciba_metadata()))
        .jwks(Some(cached_jwks()))
        .http(started(60, Some(5)))
        .http(approved(&id_token(serde_json::json!({}))))
        .run(
            core(config_builder())
                .backchannel_authentication(BackchannelLoginRequest::new(SUB, "Hi")),
            NOW,
        );
    let tokens = result.expect("tokens");
    assert_eq!(tokens.access_token.expose(), "at");
    assert_eq!(
        tokens.claims.unwrap().get("sub").and_then(|v| v.as_str()),
        Some(SUB)
    );
    assert!(!rec.names().iter().any(|n| n.contains("Session")));
}

/// An mTLS client starts at the backchannel endpoint's `mtls_endpoint_aliases` entry and polls
/// at the token endpoint's, with `client_id` and never the secret; a TLS client uses the
/// endpoints themselves.
#[test]
fn an_mtls_client_uses_the_aliases() {
    use auth0_server_protocol::config::ClientAuthMethod;
    use auth0_server_protocol::discovery::MtlsEndpointAliases;
    const MTLS: &str = "https://mtls.tenant.auth0.com";
    let metadata = CachedMetadata {
        metadata: Arc::new(Metadata {
            backchannel_authentication_endpoint: Some(BC_ENDPOINT.into()),
            mtls_endpoint_aliases: Some(MtlsEndpointAliases {
                token_endpoint: Some(format!("{MTLS}/oauth/token")),
                backchannel_authentication_endpoint: Some(format!("{MTLS}/bc-authorize")),
                ..Default::default()
            }),
            ..metadata()
        }),
        fetched_at: UnixTime::from_secs(NOW - 10),
    };
    for (method, start, poll) in [
        (
            ClientAuthMethod::TlsClientAuth,
            format!("{MTLS}/bc-authorize"),
            format!("{MTLS}/oauth/token"),
        ),
        (
            ClientAuthMethod::ClientSecretPost,
            BC_ENDPOINT.to_owned(),
            TOKEN_ENDPOINT.to_owned(),
        ),
    ] {
        let core = core(config_builder().client_auth_method(method));
        let (result, rec) = Script::new()
            .metadata(Some(metadata.clone()))
            .http(started(60, Some(5)))
            .http(oauth_error("access_denied"))
            .run(
                core.login_backchannel(BackchannelLoginRequest::new(SUB, "Hi")),
                NOW,
            );
        assert_eq!(result.unwrap_err().code(), "access_denied");
        let http = rec.http_requests();
        assert_eq!(
            (http[0].uri.as_str(), http[1].uri.as_str()),
            (start.as_str(), poll.as_str())
        );
        let mtls = method == ClientAuthMethod::TlsClientAuth;
        for request in http {
            assert_eq!(request.param("client_id"), Some(CLIENT_ID));
            assert_eq!(request.param("client_secret").is_some(), !mtls);
        }
    }
}
