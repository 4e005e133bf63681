//! The pushed authorization request answer, read by `StartInteractiveLogin`: the status from
//! the first two bytes, the rest as the body of the PAR endpoint's answer. The machine is
//! driven from the start (fixed random bytes, cached metadata with a PAR endpoint) to the
//! PAR request, then handed the fuzzer's answer.
//!
//! Invariants: no panic; the login finishes, or saves its transaction once and then
//! finishes with an authorization URL on the tenant's `/authorize` carrying `client_id` and
//! `request_uri` only; a non-2xx answer is always an error; no error message quotes the body.
#![no_main]

use std::sync::Arc;

use auth0_server_fuzz::{ISSUER, NOW, config};
use auth0_server_protocol::Core;
use auth0_server_protocol::discovery::{CachedMetadata, Metadata};
use auth0_server_protocol::effect::{Effect, Input, Operation, Step};
use auth0_server_protocol::login::StartLoginOptions;
use auth0_server_protocol::time::UnixTime;
use libfuzzer_sys::fuzz_target;

const AUTHORIZE: &str = "https://tenant.auth0.com/authorize";

fn metadata() -> Arc<Metadata> {
    Arc::new(Metadata {
        issuer: ISSUER.into(),
        authorization_endpoint: AUTHORIZE.into(),
        token_endpoint: "https://tenant.auth0.com/oauth/token".into(),
        jwks_uri: Some("https://tenant.auth0.com/.well-known/jwks.json".into()),
        pushed_authorization_request_endpoint: Some("https://tenant.auth0.com/oauth/par".into()),
        end_session_endpoint: None,
        revocation_endpoint: None,
        ..Default::default()
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = 100 + u16::from_be_bytes([data[0], data[1]]) % 900;
    let body = data[2..].to_vec();
    let core = Core::new(config().clone());
    let mut options = StartLoginOptions::new();
    options.pushed_authorization_requests = true;
    options.params.push((
        "redirect_uri".into(),
        "https://app.example.com/callback".into(),
    ));
    let mut login = core.start_interactive_login(options);
    let now = UnixTime::from_secs(NOW);
    let mut input = Input::Start;
    let mut pushed = false;
    let mut saved = false;
    for _ in 0..8 {
        let effect = match login.step(input, now) {
            Step::Done(Ok(url)) => {
                assert!(
                    pushed && saved,
                    "a URL without a PAR answer or a saved transaction"
                );
                assert!((200..300).contains(&status), "success from HTTP {status}");
                assert!(url.as_str().starts_with(AUTHORIZE));
                let names: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
                assert_eq!(names, ["client_id", "request_uri"]);
                return;
            }
            Step::Done(Err(e)) => {
                assert!(pushed, "failed before the PAR answer: {e:?}");
                assert!(!saved, "failed after saving the transaction");
                let text = format!("{e} {e:?}");
                if body.len() >= 16 {
                    let quoted = String::from_utf8_lossy(&body);
                    assert!(!text.contains(quoted.as_ref()), "error quotes the body");
                }
                return;
            }
            Step::Effect(effect) => effect,
        };
        input = match effect {
            Effect::Random { len } => Input::Random((0..len).map(|i| i as u8).collect()),
            Effect::LoadMetadata => Input::Metadata(Some(CachedMetadata {
                metadata: metadata(),
                fetched_at: now,
            })),
            Effect::Http(_) => {
                assert!(!pushed, "a second HTTP request");
                pushed = true;
                Input::Http(
                    http::Response::builder()
                        .status(status)
                        .body(body.clone())
                        .expect("status in range"),
                )
            }
            Effect::SaveTransaction { .. } => {
                assert!(pushed && !saved);
                saved = true;
                Input::Done
            }
            other => panic!("unexpected effect {other:?}"),
        };
    }
    panic!("the login did not finish");
});
