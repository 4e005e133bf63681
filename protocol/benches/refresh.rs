//! The protocol core's share of a refresh: `GetAccessToken` driven through a whole refresh
//! from memory (session, cached discovery, the token endpoint's answer, the update's outcome),
//! no driver, store or transport. Compare with `cargo bench -p auth0-server --bench
//! refresh_cpu`, which adds the driver, single flight and a store.
//!
//! The answer carries no ID token (a refreshed ID token's RS256 verification is measured
//! through the client, where the JWKS comes from the emulator). Its access token is a JWT of
//! realistic size (about 800 characters) whose `aud` the core checks.
//!
//! Run with `cargo bench -p auth0-server-protocol --bench refresh`.

use auth0_server_protocol::Core;
use auth0_server_protocol::access_token::AccessTokenRequest;
use auth0_server_protocol::config::Config;
use auth0_server_protocol::discovery::CachedMetadata;
use auth0_server_protocol::effect::{Effect, Input, Operation, Step};
use auth0_server_protocol::session::{StateData, TokenSet, Updated};
use auth0_server_protocol::time::UnixTime;
use base64::Engine as _;
use divan::{Bencher, black_box};
use std::sync::{Arc, LazyLock};

const AUDIENCE: &str = "https://api.example.com/";
const NOW: u64 = 1_760_000_000;

struct Fixture {
    core: Core,
    session: StateData,
    metadata: CachedMetadata,
    token_answer: Vec<u8>,
}

fn b64(json: serde_json::Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
}

/// Drives one `get_access_token` from memory; returns the effects it asked for.
fn refresh(f: &Fixture, session: StateData) -> usize {
    let mut op = f.core.get_access_token(AccessTokenRequest::default());
    let mut input = Input::Start;
    let mut session = Some(session);
    let now = UnixTime::from_secs(NOW);
    let mut effects = 0;
    loop {
        match op.step(input, now) {
            Step::Done(result) => {
                black_box(result.expect("a refreshed token"));
                return effects;
            }
            Step::Effect(effect) => {
                effects += 1;
                input = match effect {
                    Effect::LoadSession => Input::Session(session.take().map(Arc::new)),
                    Effect::LoadMetadata => Input::Metadata(Some(f.metadata.clone())),
                    Effect::Http(request) => {
                        black_box(request);
                        Input::Http(
                            http::Response::builder()
                                .status(200)
                                .header("content-type", "application/json")
                                .body(f.token_answer.clone())
                                .expect("response"),
                        )
                    }
                    Effect::UpdateSession(update) => {
                        black_box(update);
                        Input::Updated(Ok(Updated::Saved))
                    }
                    other => panic!("a refresh from memory needs no {other:?}"),
                };
            }
        }
    }
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let core = Core::new(
        Config::builder("bench.local", "bench-client")
            .client_secret("bench-client-secret")
            .secret("a-bench-secret-of-at-least-32-bytes!!")
            .audience(AUDIENCE)
            .build()
            .expect("valid bench config"),
    );
    // Discovery as the driver would cache it: fetched once through the operation itself.
    let discovery = serde_json::json!({
        "issuer": "https://bench.local/",
        "authorization_endpoint": "https://bench.local/authorize",
        "token_endpoint": "https://bench.local/oauth/token",
        "jwks_uri": "https://bench.local/.well-known/jwks.json",
        "revocation_endpoint": "https://bench.local/oauth/revoke",
        "end_session_endpoint": "https://bench.local/oidc/logout",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    let mut op = core.get_access_token(AccessTokenRequest::default());
    let now = UnixTime::from_secs(NOW);
    let session = StateData {
        user: Some(
            serde_json::from_value(serde_json::json!({
                "sub": "auth0|0123456789abcdef01234567", "iss": "https://bench.local/",
                "name": "Bench User", "nickname": "bench", "email": "bench@example.com",
                "email_verified": true, "picture": "https://example.com/bench.png",
                "updated_at": "2026-12-01T00:00:00.000Z", "sid": "bench-sid",
            }))
            .expect("claims"),
        ),
        refresh_token: Some(format!("v1.{}", "r".repeat(130)).into()),
        token_sets: vec![TokenSet {
            audience: AUDIENCE.into(),
            access_token: "expired".into(),
            scope: Some("openid profile email offline_access".into()),
            expires_at: NOW - 60,
            requested_scope: None,
            token_type: Default::default(),
        }],
        ..Default::default()
    };
    let mut input = Input::Start;
    let mut metadata = None;
    loop {
        match op.step(input, now) {
            Step::Effect(Effect::LoadSession) => {
                input = Input::Session(Some(Arc::new(session.clone())))
            }
            Step::Effect(Effect::LoadMetadata) => input = Input::Metadata(None),
            Step::Effect(Effect::Http(_)) if metadata.is_none() => {
                input = Input::Http(
                    http::Response::builder()
                        .status(200)
                        .body(discovery.to_string().into_bytes())
                        .expect("response"),
                )
            }
            Step::Effect(Effect::StoreMetadata(cached)) => {
                metadata = Some(cached);
                input = Input::Done;
            }
            // The refresh itself is not needed here: discovery is cached.
            Step::Effect(_) | Step::Done(_) => break,
        }
    }
    let header = b64(serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "bench-key"}));
    let payload = b64(serde_json::json!({
        "iss": "https://bench.local/", "sub": "auth0|0123456789abcdef01234567",
        "aud": [AUDIENCE, "https://bench.local/userinfo"], "iat": NOW, "exp": NOW + 86_400,
        "scope": "openid profile email offline_access", "azp": "bench-client",
        "permissions": ["read:orders", "write:orders", "read:invoices"],
    }));
    let access_token = format!("{header}.{payload}.{}", "s".repeat(342));
    let token_answer = serde_json::json!({
        "access_token": access_token,
        "expires_in": 86_400,
        "scope": "openid profile email offline_access",
        "token_type": "Bearer",
    })
    .to_string()
    .into_bytes();
    Fixture {
        core,
        session,
        metadata: metadata.expect("discovery cached"),
        token_answer,
    }
});

fn main() {
    let f = &*FIXTURE;
    // LoadSession, LoadMetadata, the token request, UpdateSession.
    assert_eq!(refresh(f, f.session.clone()), 4, "a full refresh");
    divan::main();
}

/// One refresh through the core, the session handed in as a store would.
#[divan::bench]
fn refresh_operation(bencher: Bencher) {
    let f = &*FIXTURE;
    bencher
        .with_inputs(|| f.session.clone())
        .bench_local_values(|session| refresh(f, session));
}
