//! A tiny scripted driver for the protocol core's operations, and fixtures.
//!
//! A test reads like "given this session and this response, the core sends exactly this and
//! saves exactly that":
//!
//! ```text
//! let (result, rec) = Script::new()
//!     .session(Some(session))
//!     .metadata(Some(cached))
//!     .http(json(200, r#"{"access_token":"..."}"#))
//!     .run(core.get_access_token(req), NOW);
//! assert_eq!(rec.http_requests()[0].param("grant_type"), Some("refresh_token"));
//! ```
//!
//! Every effect the script has no answer for fails the test with a message naming the effect.
//! Saves and deletes are answered `Done` and recorded.
#![allow(dead_code)]

use auth0_server_protocol::Core;
use auth0_server_protocol::config::Config;
use auth0_server_protocol::discovery::{CachedMetadata, Metadata};
use auth0_server_protocol::effect::{Coalesce, Effect, Input, Operation, Step};
use auth0_server_protocol::session::StateData;
use auth0_server_protocol::time::UnixTime;
use base64::Engine;
use std::collections::VecDeque;
use std::sync::Arc;

/// The time every test runs at, unless it says otherwise.
pub const NOW: u64 = 1_700_000_000;
pub const DOMAIN: &str = "tenant.auth0.com";
pub const ISSUER: &str = "https://tenant.auth0.com/";
pub const TOKEN_ENDPOINT: &str = "https://tenant.auth0.com/oauth/token";
pub const CLIENT_ID: &str = "client-id-123";
pub const CLIENT_SECRET: &str = "client-secret-SHOULD-NOT-LEAK";
pub const COOKIE_SECRET: &str = "cookie-secret-of-at-least-32-bytes-SHOULD-NOT-LEAK";
pub const REFRESH_TOKEN: &str = "refresh-token-SHOULD-NOT-LEAK";
pub const ROTATED_REFRESH_TOKEN: &str = "rotated-refresh-token-SHOULD-NOT-LEAK";
pub const SUB: &str = "auth0|user-1";

/// One effect the operation emitted, with what the driver could observe of it.
// A test recording: a few dozen values per test, so variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Recorded {
    LoadSession,
    SaveSession(Box<StateData>),
    DeleteSession,
    LoadMetadata,
    StoreMetadata(CachedMetadata),
    Http(RecordedRequest),
    /// Any other effect (transactions, JWKS, randomness), by its `Debug` name.
    Other(String),
}

/// An HTTP request the operation asked to be sent.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: http::Method,
    pub uri: String,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
    /// The body parsed as `application/x-www-form-urlencoded`, in order.
    pub form: Vec<(String, String)>,
    pub coalesce: Option<Coalesce>,
}

impl RecordedRequest {
    /// The single value of a form parameter; fails the test when it is repeated.
    pub fn param(&self, name: &str) -> Option<&str> {
        let mut values = self.form.iter().filter(|(k, _)| k == name);
        let first = values.next().map(|(_, v)| v.as_str());
        assert!(
            values.next().is_none(),
            "form parameter `{name}` is repeated"
        );
        first
    }

    /// The form parameter names, sorted, to compare a request's exact parameter set.
    pub fn param_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.form.iter().map(|(k, _)| k.as_str()).collect();
        names.sort_unstable();
        names
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Everything an operation did, in order.
#[derive(Debug, Clone, Default)]
pub struct Recording(pub Vec<Recorded>);

impl Recording {
    pub fn http_requests(&self) -> Vec<&RecordedRequest> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Recorded::Http(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    /// HTTP requests to the token endpoint (POSTs), leaving out discovery.
    pub fn token_requests(&self) -> Vec<&RecordedRequest> {
        self.http_requests()
            .into_iter()
            .filter(|r| r.method == http::Method::POST)
            .collect()
    }

    pub fn saved_sessions(&self) -> Vec<&StateData> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Recorded::SaveSession(s) => Some(&**s),
                _ => None,
            })
            .collect()
    }

    /// The only session saved; fails the test unless exactly one was.
    pub fn saved(&self) -> &StateData {
        let saved = self.saved_sessions();
        assert_eq!(saved.len(), 1, "expected exactly one SaveSession: {self:?}");
        saved[0]
    }

    pub fn count(&self, pred: impl Fn(&Recorded) -> bool) -> usize {
        self.0.iter().filter(|e| pred(e)).count()
    }

    /// The effects as short names, e.g. `["LoadSession", "LoadMetadata", "POST /oauth/token"]`.
    pub fn names(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|e| match e {
                Recorded::LoadSession => "LoadSession".into(),
                Recorded::SaveSession(_) => "SaveSession".into(),
                Recorded::DeleteSession => "DeleteSession".into(),
                Recorded::LoadMetadata => "LoadMetadata".into(),
                Recorded::StoreMetadata(_) => "StoreMetadata".into(),
                Recorded::Http(r) => {
                    let path = r.uri.parse::<http::Uri>().map(|u| u.path().to_owned());
                    format!("{} {}", r.method, path.unwrap_or_default())
                }
                Recorded::Other(s) => s.clone(),
            })
            .collect()
    }
}

/// Scripted answers to an operation's effects.
#[derive(Default)]
pub struct Script {
    session: Option<Option<StateData>>,
    metadata: Option<Option<CachedMetadata>>,
    http: VecDeque<http::Response<Vec<u8>>>,
    max_steps: Option<usize>,
}

impl Script {
    pub fn new() -> Self {
        Script::default()
    }

    /// The answer to every `LoadSession`.
    pub fn session(mut self, session: Option<StateData>) -> Self {
        self.session = Some(session);
        self
    }

    /// The answer to every `LoadMetadata`.
    pub fn metadata(mut self, metadata: Option<CachedMetadata>) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// The answer to the next `Http` effect (queued in order).
    pub fn http(mut self, response: http::Response<Vec<u8>>) -> Self {
        self.http.push_back(response);
        self
    }

    /// Runs `op` to completion at `now`, answering from the script.
    pub fn run<O: Operation>(
        mut self,
        mut op: O,
        now: u64,
    ) -> (Result<O::Output, O::Error>, Recording) {
        let mut rec = Recording::default();
        let mut input = Input::Start;
        let max = self.max_steps.unwrap_or(32);
        for _ in 0..max {
            let effect = match op.step(input, UnixTime::from_secs(now)) {
                Step::Done(result) => {
                    assert!(
                        self.http.is_empty(),
                        "the operation finished with {} scripted HTTP response(s) unused; effects: {:?}",
                        self.http.len(),
                        rec.names()
                    );
                    return (result, rec);
                }
                Step::Effect(effect) => effect,
            };
            input = self.answer(effect, &mut rec);
        }
        panic!(
            "the operation did not finish within {max} steps; effects: {:?}",
            rec.names()
        );
    }

    fn answer(&mut self, effect: Effect, rec: &mut Recording) -> Input {
        match effect {
            Effect::LoadSession => {
                rec.0.push(Recorded::LoadSession);
                let Some(session) = &self.session else {
                    panic!(
                        "unscripted effect LoadSession (script a session with .session(..)); effects so far: {:?}",
                        rec.names()
                    );
                };
                Input::Session(session.clone())
            }
            Effect::LoadMetadata => {
                rec.0.push(Recorded::LoadMetadata);
                let Some(metadata) = &self.metadata else {
                    panic!(
                        "unscripted effect LoadMetadata (script it with .metadata(..)); effects so far: {:?}",
                        rec.names()
                    );
                };
                Input::Metadata(metadata.clone())
            }
            Effect::Http(req) => {
                let recorded = record_request(&req.request, req.coalesce.clone());
                let what = format!("{} {}", recorded.method, recorded.uri);
                rec.0.push(Recorded::Http(recorded));
                let Some(response) = self.http.pop_front() else {
                    panic!(
                        "unscripted effect Http({what}) (script a response with .http(..)); effects so far: {:?}",
                        rec.names()
                    );
                };
                Input::Http(response)
            }
            Effect::SaveSession(s) => {
                rec.0.push(Recorded::SaveSession(s));
                Input::Done
            }
            Effect::DeleteSession => {
                rec.0.push(Recorded::DeleteSession);
                Input::Done
            }
            Effect::StoreMetadata(m) => {
                rec.0.push(Recorded::StoreMetadata(m));
                Input::Done
            }
            other => panic!(
                "unscripted effect {other:?}; effects so far: {:?}",
                rec.names()
            ),
        }
    }
}

fn record_request(req: &http::Request<Vec<u8>>, coalesce: Option<Coalesce>) -> RecordedRequest {
    let body = req.body().clone();
    let form = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    RecordedRequest {
        method: req.method().clone(),
        uri: req.uri().to_string(),
        headers: req.headers().clone(),
        body,
        form,
        coalesce,
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/// A builder with the test tenant, client and secrets; add audience / scope as needed.
pub fn config_builder() -> auth0_server_protocol::config::ConfigBuilder {
    Config::builder(DOMAIN, CLIENT_ID)
        .client_secret(CLIENT_SECRET)
        .secret(COOKIE_SECRET)
}

pub fn core(builder: auth0_server_protocol::config::ConfigBuilder) -> Core {
    Core::new(builder.build().expect("valid test configuration"))
}

pub fn metadata() -> Metadata {
    Metadata {
        issuer: ISSUER.into(),
        authorization_endpoint: format!("{ISSUER}authorize"),
        token_endpoint: TOKEN_ENDPOINT.into(),
        jwks_uri: Some(format!("{ISSUER}.well-known/jwks.json")),
        pushed_authorization_request_endpoint: None,
        end_session_endpoint: None,
        revocation_endpoint: None,
    }
}

/// Metadata fetched `age` seconds before `now`.
pub fn cached_metadata(now: u64, age: u64) -> CachedMetadata {
    CachedMetadata {
        metadata: Arc::new(metadata()),
        fetched_at: UnixTime::from_secs(now - age),
    }
}

/// The discovery document the tenant serves, with the token endpoint at `token_endpoint`.
pub fn discovery_document(token_endpoint: &str) -> http::Response<Vec<u8>> {
    json(
        200,
        &serde_json::json!({
            "issuer": ISSUER,
            "authorization_endpoint": format!("{ISSUER}authorize"),
            "token_endpoint": token_endpoint,
            "jwks_uri": format!("{ISSUER}.well-known/jwks.json"),
        })
        .to_string(),
    )
}

/// An HTTP response with a JSON content type.
pub fn json(status: u16, body: &str) -> http::Response<Vec<u8>> {
    raw(status, "application/json", body.as_bytes().to_vec())
}

pub fn raw(status: u16, content_type: &str, body: Vec<u8>) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(body)
        .expect("valid response")
}

/// An unsigned compact JWT with these claims (the core only reads claims of tokens it got
/// straight from the token endpoint).
pub fn jwt(claims: serde_json::Value) -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    )
}

/// The user claims of the test user.
pub fn user() -> serde_json::Map<String, serde_json::Value> {
    serde_json::json!({"sub": SUB, "iss": ISSUER, "name": "Jane", "email": "jane@example.com"})
        .as_object()
        .cloned()
        .expect("object")
}

/// An ID token for the test user with extra claims merged in.
pub fn id_token(extra: serde_json::Value) -> String {
    let mut claims = serde_json::Value::Object(user());
    if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    jwt(claims)
}
