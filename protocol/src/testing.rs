//! A scripted driver for testing code that uses the SDK, offline (feature `test-util`).
//!
//! "Given this session and these responses, the SDK sends exactly this and saves exactly
//! that": a [`Script`] answers an operation's effects from what the test scripted — the
//! session, the cached discovery metadata, HTTP responses in order — records every effect in
//! a [`Recording`], and fails the test (panics, with the effects so far) on any effect it has
//! no answer for. Saves and deletes are answered `Done` and recorded. The SDK's own tests use
//! it; an application uses it to test its auth handling the way tokio's `test-util` lets it
//! test timers.
//!
//! ```
//! use auth0_server_protocol::{Core, config::Config, access_token::AccessTokenRequest};
//! use auth0_server_protocol::session::{StateData, TokenSet};
//! use auth0_server_protocol::testing::Script;
//!
//! let core = Core::new(
//!     Config::builder("tenant.auth0.com", "client-id")
//!         .client_secret("client-secret")
//!         .secret("a-secret-of-at-least-32-bytes-long!!")
//!         .build()?,
//! );
//! let session = StateData {
//!     refresh_token: None,
//!     token_sets: vec![TokenSet {
//!         audience: "default".into(),
//!         access_token: "cached".into(),
//!         scope: Some("openid profile email offline_access".into()),
//!         expires_at: 1_700_003_600,
//!         requested_scope: None,
//!         token_type: Default::default(),
//!     }],
//!     ..Default::default()
//! };
//! let (token, recording) = Script::new()
//!     .session(Some(session))
//!     .run(core.get_access_token(AccessTokenRequest::default()), 1_700_000_000);
//! assert_eq!(token?.access_token.expose(), "cached");
//! assert_eq!(recording.names(), ["LoadSession"]); // a cache hit: no HTTP
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::discovery::CachedMetadata;
use crate::effect::{CachedJwks, Coalesce, Effect, Input, Operation, Step};
use crate::session::StateData;
use crate::time::UnixTime;
use std::collections::VecDeque;

/// One effect the operation emitted, with what the driver could observe of it.
// A test recording: a few dozen values per test, so variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Recorded {
    /// `LoadSession`.
    LoadSession,
    /// `SaveSession`, with the session saved; also an `UpdateSession` that the scripted
    /// store applied, with the session it then held.
    SaveSession(Box<StateData>),
    /// `DeleteSession`.
    DeleteSession,
    /// `LoadMetadata`.
    LoadMetadata,
    /// `StoreMetadata`, with the metadata stored.
    StoreMetadata(CachedMetadata),
    /// `Http`, with the request.
    Http(RecordedRequest),
    /// `Wait`, with how long: the script's clock moves on by that much.
    Wait(std::time::Duration),
    /// Any other effect (transactions, JWKS, randomness), by its `Debug` name.
    Other(String),
}

/// An HTTP request the operation asked to be sent.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The method.
    pub method: http::Method,
    /// The URI, whole.
    pub uri: String,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Vec<u8>,
    /// The body parsed as `application/x-www-form-urlencoded`, in order.
    pub form: Vec<(String, String)>,
    /// How the operation allowed the request to be shared.
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
pub struct Recording(
    /// The effects, in order.
    pub Vec<Recorded>,
);

impl Recording {
    /// Every HTTP request, in order.
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

    /// Every session saved, in order.
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

    /// How many effects match `pred`.
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
                Recorded::Wait(d) => format!("Wait({}s)", d.as_secs()),
                Recorded::Other(s) => s.clone(),
            })
            .collect()
    }

    /// Every `Wait`, in order: how long the operation asked to wait each time.
    pub fn waits(&self) -> Vec<std::time::Duration> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Recorded::Wait(d) => Some(*d),
                _ => None,
            })
            .collect()
    }
}

/// Scripted answers to an operation's effects.
#[derive(Default)]
pub struct Script {
    session: Option<Option<StateData>>,
    metadata: Option<Option<CachedMetadata>>,
    jwks: Option<Option<CachedJwks>>,
    http: VecDeque<http::Response<Vec<u8>>>,
    max_steps: Option<usize>,
    /// What the store holds when an update-only save arrives, when it differs from what
    /// `LoadSession` answered (`Some(None)`: the session was deleted meanwhile).
    stored: Option<Option<StateData>>,
    save_failure: Option<String>,
}

impl Script {
    /// A script with no answers yet.
    pub fn new() -> Self {
        Script::default()
    }

    /// The answer to every `LoadSession`.
    pub fn session(mut self, session: Option<StateData>) -> Self {
        self.session = Some(session);
        self
    }

    /// What the store holds by the time an update-only save arrives, when it is not the
    /// session `LoadSession` answered: another request's save, or `None` after a logout.
    pub fn stored_meanwhile(mut self, session: Option<StateData>) -> Self {
        self.stored = Some(session);
        self
    }

    /// Every update-only save fails in the store with this message.
    pub fn failing_saves(mut self, message: impl Into<String>) -> Self {
        self.save_failure = Some(message.into());
        self
    }

    /// The answer to every `LoadMetadata`.
    pub fn metadata(mut self, metadata: Option<CachedMetadata>) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// The answer to every `LoadJwks` (the provider's keys, for verifying an ID token).
    pub fn jwks(mut self, jwks: Option<CachedJwks>) -> Self {
        self.jwks = Some(jwks);
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
        now: impl Into<UnixTime>,
    ) -> (Result<O::Output, O::Error>, Recording) {
        let mut now = now.into();
        let mut rec = Recording::default();
        let mut input = Input::Start;
        let max = self.max_steps.unwrap_or(32);
        for _ in 0..max {
            let effect = match op.step(input, now) {
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
            if let Effect::Wait(d) = effect {
                // Waiting takes time: the next step sees the clock moved on.
                rec.0.push(Recorded::Wait(d));
                now = now + d;
                input = Input::Done;
                continue;
            }
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
                Input::Session(session.clone().map(std::sync::Arc::new))
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
            Effect::UpdateSession(update) => {
                if let Some(message) = &self.save_failure {
                    rec.0.push(Recorded::Other("UpdateSession (failed)".into()));
                    return Input::Updated(Err(crate::session::SaveFailed {
                        message: message.clone(),
                    }));
                }
                let current = match &self.stored {
                    Some(stored) => stored.clone(),
                    None => self.session.clone().flatten(),
                };
                match current.map(|c| update.apply(c)) {
                    Some(crate::session::Merged::Updated(merged)) => {
                        rec.0.push(Recorded::SaveSession(Box::new(merged)));
                        Input::Updated(Ok(crate::session::Updated::Saved))
                    }
                    _ => {
                        rec.0.push(Recorded::Other("UpdateSession (gone)".into()));
                        Input::Updated(Ok(crate::session::Updated::Gone))
                    }
                }
            }
            Effect::KeepRotation { .. } => {
                rec.0.push(Recorded::Other("KeepRotation".into()));
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
            Effect::LoadJwks if self.jwks.is_some() => {
                rec.0.push(Recorded::Other("LoadJwks".into()));
                Input::Jwks(self.jwks.clone().flatten())
            }
            Effect::StoreJwks(_) if self.jwks.is_some() => {
                rec.0.push(Recorded::Other("StoreJwks".into()));
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

/// An HTTP response with a JSON content type.
pub fn json(status: u16, body: &str) -> http::Response<Vec<u8>> {
    raw(status, "application/json", body.as_bytes().to_vec())
}

/// An HTTP response with this status, content type and body.
pub fn raw(status: u16, content_type: &str, body: Vec<u8>) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(body)
        .expect("valid response")
}
