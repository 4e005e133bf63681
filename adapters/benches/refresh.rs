//! The refresh round trip through the blocking client, next to a bare POST of the same
//! request through the same `ureq::Agent`, both against the Auth0 emulator on loopback.
//!
//! The difference is the SDK's overhead: driving the state machine, building the form,
//! parsing the token response and the ID token's claims, updating and saving the session,
//! single-flight bookkeeping. Every iteration really refreshes: the grace window is zero and
//! each iteration starts from the same expired session (rotation is off in the emulator so the
//! refresh token stays valid).
//!
//! Run with `cargo bench -p auth0-server --bench refresh`.

use auth0_emulator::{DEFAULT_AUDIENCE, Emulator, EmulatorConfig};
use auth0_server::blocking::ServerClient;
use auth0_server::protocol::session::StateData;
use auth0_server::{Config, DEFAULT_ROTATION_GRACE};
use divan::Bencher;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

#[path = "support/in_options.rs"]
mod in_options;
use in_options::{InOptions, expired_session};

fn main() {
    divan::main();
}

struct Fixture {
    emu: Emulator,
    client: ServerClient<InOptions, InOptions>,
    session: StateData,
    /// The recorded refresh request, replayed as the bare POST.
    url: String,
    content_type: String,
    body: Vec<u8>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let emu = Emulator::start(EmulatorConfig {
        rotation: false,
        ..Default::default()
    });
    let config = Config::builder(emu.base_url(), emu.client_id())
        .client_secret(emu.client_secret())
        .secret("bench-secret-bench-secret-bench-secret")
        .audience(DEFAULT_AUDIENCE)
        .build()
        .expect("config");
    let client = ServerClient::builder(config, InOptions, InOptions)
        .rotation_grace(Duration::ZERO)
        .build();
    assert_ne!(DEFAULT_ROTATION_GRACE, Duration::ZERO);
    let session = expired_session(&emu);
    // One refresh to warm discovery and to record the exact request for the bare POST.
    client
        .get_access_token(&mut Some(Arc::new(session.clone())))
        .expect("refresh");
    let recorded = emu.token_requests().pop().expect("a token request");
    Fixture {
        url: emu.url("/oauth/token"),
        content_type: recorded
            .header("content-type")
            .unwrap_or("application/x-www-form-urlencoded")
            .to_owned(),
        body: recorded.body,
        emu,
        client,
        session,
    }
});

/// `get_access_token` on an expired session: a full refresh through the SDK.
#[divan::bench(sample_count = 200)]
fn sdk_refresh(bencher: Bencher) {
    let f = &*FIXTURE;
    bencher
        .with_inputs(|| Some(Arc::new(f.session.clone())))
        .bench_local_refs(|options| {
            f.client.get_access_token(options).expect("refresh");
        });
    f.emu.clear_requests();
}

/// The same POST (same body, same endpoint, same agent) without the SDK.
#[divan::bench(sample_count = 200)]
fn bare_post(bencher: Bencher) {
    let f = &*FIXTURE;
    let agent = f.client.agent();
    bencher.bench_local(|| {
        let mut response = agent
            .post(&f.url)
            .header("content-type", &f.content_type)
            .send(&f.body[..])
            .expect("post");
        assert!(response.status().is_success());
        response.body_mut().read_to_vec().expect("body")
    });
    f.emu.clear_requests();
}
