//! The SDK's own CPU on a refresh: everything but the network.
//!
//! The async client (`auth0_server::nonblocking`) refreshes an expired session through an
//! [`HttpClient`] that answers from memory with responses recorded once from the Auth0
//! emulator (discovery, JWKS, the token endpoint's answer). Every future is ready when first
//! polled, so a no-op waker drives it: what is measured is the store calls, the state
//! machine, the token request's form, parsing the answer, verifying a refreshed ID token,
//! updating the session and single-flight bookkeeping — no socket, no runtime.
//!
//! Two token answers: with an ID token (Auth0 sends one when the grant has `openid`; the SDK
//! verifies it — an RS256 signature check, which dominates) and without.
//!
//! Run with `cargo bench -p auth0-server --bench refresh_cpu`.

#[path = "support/in_options.rs"]
mod in_options;

use auth0_emulator::{DEFAULT_AUDIENCE, Emulator, EmulatorConfig};
use auth0_server::nonblocking::{HttpClient, ServerClient};
use auth0_server::protocol::session::StateData;
use auth0_server::{Config, TransportError};
use divan::Bencher;
use in_options::{InOptions, expired_session};
use std::collections::HashMap;
use std::pin::pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

fn main() {
    divan::main();
}

/// Polls a future that never waits (every answer is in memory) to completion.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

/// One recorded answer.
#[derive(Clone)]
struct Canned {
    status: http::StatusCode,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

/// Answers by request path from recorded responses.
struct CannedHttp {
    by_path: HashMap<String, Canned>,
}

impl HttpClient for CannedHttp {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let canned = self
            .by_path
            .get(request.uri().path())
            .unwrap_or_else(|| panic!("no canned answer for {}", request.uri().path()));
        let mut response = http::Response::new(canned.body.clone());
        *response.status_mut() = canned.status;
        *response.headers_mut() = canned.headers.clone();
        Ok(response)
    }
}

/// Forwards to the emulator (once, to record its answers).
struct Recorder {
    agent: ureq::Agent,
    seen: std::sync::Mutex<HashMap<String, Canned>>,
}

impl HttpClient for Recorder {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let path = request.uri().path().to_owned();
        let mut response = self.agent.run(request).expect("emulator answers");
        let body = response.body_mut().read_to_vec().expect("body");
        let canned = Canned {
            status: response.status(),
            headers: response.headers().clone(),
            body,
        };
        self.seen.lock().expect("lock").insert(path, canned.clone());
        let mut out = http::Response::new(canned.body);
        *out.status_mut() = canned.status;
        *out.headers_mut() = canned.headers;
        Ok(out)
    }
}

type Client = ServerClient<InOptions, InOptions, CannedHttp>;

struct Fixture {
    /// Token answer with an ID token.
    with_id_token: Client,
    /// The same answer without `id_token`.
    without_id_token: Client,
    session: StateData,
}

fn config(emu: &Emulator) -> Config {
    Config::builder(emu.base_url(), emu.client_id())
        .client_secret(emu.client_secret())
        .secret("bench-secret-bench-secret-bench-secret")
        .audience(DEFAULT_AUDIENCE)
        .build()
        .expect("config")
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let emu = Emulator::start(EmulatorConfig {
        rotation: false,
        ..Default::default()
    });
    let session = expired_session(&emu);
    // One real refresh against the emulator records discovery, JWKS and the token answer.
    let recorder = ServerClient::builder(
        config(&emu),
        InOptions,
        InOptions,
        Recorder {
            agent: ureq::Agent::new_with_defaults(),
            seen: Default::default(),
        },
    )
    .rotation_grace(Duration::ZERO)
    .build();
    block_on(recorder.get_access_token(&mut Some(Arc::new(session.clone())))).expect("refresh");
    let by_path = recorder.http_client().seen.lock().expect("lock").clone();
    let token = by_path.get("/oauth/token").expect("a token answer").clone();
    let mut answer: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&token.body).expect("token answer is JSON");
    assert!(
        answer.contains_key("id_token"),
        "the emulator sends an ID token"
    );
    answer.remove("id_token");
    let mut no_id = by_path.clone();
    no_id.insert(
        "/oauth/token".into(),
        Canned {
            body: serde_json::to_vec(&answer).expect("JSON"),
            ..token
        },
    );
    let client = |by_path| {
        let client =
            ServerClient::builder(config(&emu), InOptions, InOptions, CannedHttp { by_path })
                .rotation_grace(Duration::ZERO)
                .build();
        // Warm discovery and the JWKS cache: every measured call is a refresh only.
        block_on(client.get_access_token(&mut Some(Arc::new(session.clone())))).expect("refresh");
        client
    };
    Fixture {
        with_id_token: client(by_path),
        without_id_token: client(no_id),
        session,
    }
});

/// `get_access_token` through `client` on a new copy of the expired session each call.
fn refresh(bencher: Bencher, client: &Client) {
    let f = &*FIXTURE;
    bencher
        .with_inputs(|| Some(Arc::new(f.session.clone())))
        .bench_local_refs(|options| block_on(client.get_access_token(options)).expect("refresh"));
}

/// `get_access_token` on an expired session; the answer carries an ID token (verified).
#[divan::bench]
fn refresh_with_id_token(bencher: Bencher) {
    refresh(bencher, &FIXTURE.with_id_token);
}

/// The same, the answer without an ID token (access token, scope, expiry only).
#[divan::bench]
fn refresh_without_id_token(bencher: Bencher) {
    refresh(bencher, &FIXTURE.without_id_token);
}

/// What the canned transport itself costs per call (cloning the recorded answer): not SDK.
#[divan::bench]
fn canned_answer_alone(bencher: Bencher) {
    let f = &*FIXTURE;
    let http = f.without_id_token.http_client();
    let request = || {
        http::Request::post("http://bench.local/oauth/token")
            .body(Vec::new())
            .expect("request")
    };
    bencher.bench_local(|| block_on(http.send(request())).expect("answer"));
}
