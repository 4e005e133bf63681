//! Shared by the emulator's own tests (`emulator.rs`, `emulator_auth0.rs`): a plain HTTP
//! client that returns every status, and the parts of an answer the tests read.
#![allow(dead_code)]

use serde_json::Value;
use std::time::Duration;

/// An agent that follows no redirect and treats every status as an answer.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// Status, `Location`, `Content-Type` and `Set-Cookie` headers, and the body of an answer.
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub content_type: Option<String>,
    pub set_cookie: Vec<String>,
    pub text: String,
}

impl Answer {
    /// The body as JSON; fails the test when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

/// Reads an answer; fails the test on a transport error.
pub fn answer(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut resp = resp.expect("transport ok");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (location, content_type) = (header("location"), header("content-type"));
    let set_cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect();
    Answer {
        status: resp.status().as_u16(),
        location,
        content_type,
        set_cookie,
        text: resp.body_mut().read_to_string().unwrap_or_default(),
    }
}
