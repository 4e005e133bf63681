//! `HandleBackchannelLogout` driven with the fuzzer's bytes as the logout token (the body of
//! the back-channel logout POST), the tenant's metadata and keys cached (and, when asked,
//! fetched again from a fixed JWKS document).
//!
//! Invariants: no panic; the operation finishes within a few steps; sessions are deleted
//! only for a token that verified (at most once, with a `sid` or a `sub`, for this tenant's
//! issuer), and the claims returned are the ones the sessions were deleted by; no error
//! message quotes the token.
#![no_main]

use std::sync::Arc;

use auth0_server_fuzz::{ISSUER, NOW, config, jwks, jwks_document};
use auth0_server_protocol::Core;
use auth0_server_protocol::discovery::{CachedMetadata, Metadata};
use auth0_server_protocol::effect::{CachedJwks, Effect, Input, Operation, Step};
use auth0_server_protocol::time::UnixTime;
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

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    let core = Core::new(config().clone());
    let mut logout = core.handle_backchannel_logout(&token);
    let now = UnixTime::from_secs(NOW);
    let mut input = Input::Start;
    let mut deleted = None;
    for _ in 0..MAX_STEPS {
        let effect = match logout.step(input, now) {
            Step::Done(Ok(claims)) => {
                assert_eq!(deleted.as_ref(), Some(&claims), "claims without a deletion");
                return;
            }
            Step::Done(Err(e)) => {
                assert!(deleted.is_none(), "an error after deleting sessions");
                let text = format!("{e} {e:?}");
                if token.len() >= 16 {
                    assert!(!text.contains(token.as_ref()), "error quotes the token");
                }
                let _ = (e.code(), e.token_error());
                return;
            }
            Step::Effect(effect) => effect,
        };
        input = match effect {
            Effect::LoadMetadata => Input::Metadata(Some(CachedMetadata {
                metadata: metadata(),
                fetched_at: now,
            })),
            Effect::LoadJwks => Input::Jwks(Some(CachedJwks {
                jwks: jwks().clone(),
                fetched_at: now,
            })),
            Effect::StoreMetadata(_) | Effect::StoreJwks(_) => Input::Done,
            Effect::Http(_) => Input::Http(
                http::Response::builder()
                    .status(200)
                    .body(jwks_document())
                    .expect("valid"),
            ),
            Effect::RecordLogoutTokenId { key, .. } => {
                assert!(
                    key.starts_with(ISSUER),
                    "a replay record outside the issuer"
                );
                Input::LogoutTokenId(auth0_server_protocol::effect::JtiRecord::FirstSeen)
            }
            Effect::DeleteSessionsByLogoutToken(claims) => {
                assert!(deleted.is_none(), "sessions deleted twice");
                assert_eq!(claims.iss, ISSUER);
                assert!(
                    claims.sid.as_deref().is_some_and(|s| !s.is_empty())
                        || claims.sub.as_deref().is_some_and(|s| !s.is_empty()),
                    "a deletion by neither sid nor sub"
                );
                deleted = Some(claims);
                Input::Done
            }
            other => panic!("unexpected effect {other:?}"),
        };
    }
    panic!("the back-channel logout did not finish in {MAX_STEPS} steps");
});
