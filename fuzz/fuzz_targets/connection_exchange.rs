//! The Token Vault exchange, read by `GetConnectionToken`: the status from the first two
//! bytes, the rest as the body of the token endpoint's answer. The machine starts from a
//! session with a refresh token and no cached connection token, metadata cached.
//!
//! Invariants: no panic; exactly one exchange request (a `token-exchange` grant spending the
//! session's refresh token for the asked connection); success only on a 2xx answer with an
//! access token, and then the token returned is the one received and the update stores it
//! for the connection and login hint asked; nothing is saved on failure; no error message
//! quotes the body.
#![no_main]

use std::sync::Arc;

use auth0_server_fuzz::{ISSUER, NOW, config};
use auth0_server_protocol::Core;
use auth0_server_protocol::connection_token::ConnectionTokenRequest;
use auth0_server_protocol::discovery::{CachedMetadata, Metadata};
use auth0_server_protocol::effect::{Effect, Input, Operation, Step};
use auth0_server_protocol::secret::Secret;
use auth0_server_protocol::session::{Merged, StateData, Updated};
use auth0_server_protocol::time::UnixTime;
use auth0_server_protocol::token_endpoint::parse_token_response_expecting;
use libfuzzer_sys::fuzz_target;

const MAX_STEPS: usize = 10;

fn metadata() -> Arc<Metadata> {
    Arc::new(Metadata {
        issuer: ISSUER.into(),
        authorization_endpoint: "https://tenant.auth0.com/authorize".into(),
        token_endpoint: "https://tenant.auth0.com/oauth/token".into(),
        jwks_uri: Some("https://tenant.auth0.com/.well-known/jwks.json".into()),
        pushed_authorization_request_endpoint: None,
        end_session_endpoint: None,
        revocation_endpoint: None,
        ..Default::default()
    })
}

fn session() -> StateData {
    let mut s = StateData {
        user: serde_json::json!({"sub": "auth0|1", "iss": ISSUER})
            .as_object()
            .cloned(),
        refresh_token: Some(Secret::new("v1.session-refresh-token")),
        ..Default::default()
    };
    s.internal.sid = "sid-1".into();
    s.internal.created_at = NOW - 100;
    s
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let status = 100 + u16::from_be_bytes([data[0], data[1]]) % 900;
    let hinted = data[2] & 1 == 1;
    let body = data[3..].to_vec();
    let mut request = ConnectionTokenRequest::new("google-oauth2");
    if hinted {
        request = request.login_hint("user@example.com");
    }
    let core = Core::new(config().clone());
    let mut op = core.get_access_token_for_connection(request.clone());
    let now = UnixTime::from_secs(NOW);
    let mut input = Input::Start;
    let mut answer = None;
    let mut saved = None;
    for _ in 0..MAX_STEPS {
        let effect = match op.step(input, now) {
            Step::Done(Ok(token)) => {
                let answer: &http::Response<Vec<u8>> = answer.as_ref().expect("a token unasked");
                assert!((200..300).contains(&status), "success from HTTP {status}");
                // The federated token is the provider's: Bearer or DPoP are both accepted.
                let parsed = parse_token_response_expecting(answer, None)
                    .expect("success from a bad answer");
                assert_eq!(token.access_token, parsed.access_token);
                let stored: &StateData = saved.as_ref().expect("a token that was not saved");
                assert!(
                    stored.connection_token_sets.iter().any(|s| {
                        s.connection == request.connection
                            && s.login_hint == request.login_hint
                            && s.access_token == token.access_token
                    }),
                    "the token is not stored for its connection and hint"
                );
                assert_eq!(stored.refresh_token, session().refresh_token);
                return;
            }
            Step::Done(Err(e)) => {
                assert!(saved.is_none(), "an error after saving");
                let text = format!("{e} {e:?}");
                if body.len() >= 16 {
                    let quoted = String::from_utf8_lossy(&body);
                    assert!(!text.contains(quoted.as_ref()), "error quotes the body");
                }
                let _ = (e.code(), e.oauth_error());
                return;
            }
            Step::Effect(effect) => effect,
        };
        input = match effect {
            Effect::LoadSession => Input::Session(Some(std::sync::Arc::new(session()))),
            Effect::LoadMetadata => Input::Metadata(Some(CachedMetadata {
                metadata: metadata(),
                fetched_at: now,
            })),
            Effect::Http(req) => {
                assert!(answer.is_none(), "a second exchange request");
                let form: Vec<(String, String)> = url::form_urlencoded::parse(req.request.body())
                    .into_owned()
                    .collect();
                let param = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
                assert_eq!(
                    param("subject_token"),
                    Some("v1.session-refresh-token"),
                    "not the session's refresh token"
                );
                assert_eq!(param("connection"), Some("google-oauth2"));
                let response = http::Response::builder()
                    .status(status)
                    .body(body.clone())
                    .expect("status in range");
                answer = Some(
                    http::Response::builder()
                        .status(status)
                        .body(body.clone())
                        .expect("status in range"),
                );
                Input::Http(response)
            }
            Effect::UpdateSession(update) => {
                assert!(saved.is_none(), "saved twice");
                let Merged::Updated(stored) = update.apply(session()) else {
                    panic!("the update is for another session");
                };
                saved = Some(stored);
                Input::Updated(Ok(Updated::Saved))
            }
            other => panic!("unexpected effect {other:?}"),
        };
    }
    panic!("the exchange did not finish in {MAX_STEPS} steps");
});
