//! The HTTP side: the accept loop, request recording, failure injection and routing. Each
//! endpoint lives in its own module:
//!
//! | Module | Endpoints |
//! |---|---|
//! | [`discovery`] | `GET /.well-known/openid-configuration`, `GET /.well-known/jwks.json` |
//! | [`authorize`] | `GET /authorize`, `POST /oauth/par` |
//! | [`token`] | `POST /oauth/token` (one submodule per grant type) |
//! | [`ciba`] | `POST /bc-authorize` (CIBA; its polls are a grant of [`token`]) |
//! | [`logout`] | `GET /v2/logout`, `GET /oidc/logout`, `POST /oauth/revoke` |
//! | [`resource`] | `GET /userinfo`, `GET /api/data` (bearer-protected) |
//! | [`my_account`] | `/me/v1/…` (My Account API: connected accounts, factors, authentication methods), `GET /connected-accounts/connect` |
//! | [`dpop`] | DPoP proofs at the token endpoint and PAR; `GET`/`POST /api/dpop` (DPoP-bound tokens only) |
//! | [`passkey`] | `POST /passkey/register`, `POST /passkey/challenge` (the WebAuthn grant is in [`token`]) |
//!
//! Shared pieces: [`client_auth`] (client authentication at the token, PAR and revocation
//! endpoints), [`mint`] (token claims, signing and verification), [`backchannel`] (logout
//! token delivery to the application) and [`reply`] (the answer type). The test hooks that change the emulator's state from a test live on `Emulator`
//! (`crate::admin`).

mod authorize;
pub(crate) mod backchannel;
mod ciba;
mod client_auth;
mod discovery;
pub(crate) mod dpop;
mod logout;
pub(crate) mod mfa;
pub(crate) mod mint;
pub(crate) mod my_account;
pub(crate) mod passkey;
mod passwordless;
mod reply;
mod resource;
mod token;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::jwt;
use crate::{Failure, RecordedRequest, Shared, State};
use reply::Reply;

/// The cookie naming the browser's Auth0 session (its `sid`), set by `/authorize` and read by
/// `/v2/logout`, like Auth0's own session cookie.
const SESSION_COOKIE: &str = "auth0";

/// Largest request body read (bigger bodies are truncated and answered 413).
const MAX_BODY: u64 = 1 << 20;

/// Receives requests until stopped; each request is handled on its own thread so slow
/// (injected-latency) answers never hold up others. tiny_http keeps connections alive.
pub(crate) fn accept_loop(server: &tiny_http::Server, shared: &Arc<Shared>, stop: &AtomicBool) {
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match server.recv() {
            Ok(request) => {
                let shared = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name("auth0-emulator-request".into())
                    .spawn(move || handle(&shared, request));
                if spawned.is_err() {
                    // Out of threads: the request is dropped (the client sees a closed connection).
                    continue;
                }
            }
            Err(_) => {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
            }
        }
    }
}

/// Unix seconds from the real clock.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// 32 random bytes, base64url.
pub(crate) fn random_token() -> String {
    let mut buf = [0u8; 32];
    if getrandom::fill(&mut buf).is_err() {
        // Fall back to something unique; this is a test server.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        buf = Sha256::digest(format!("{n}:{t}").as_bytes()).into();
    }
    jwt::b64(&buf)
}

pub(crate) fn user_sub(user: &Map<String, Value>) -> String {
    user.get("sub")
        .and_then(Value::as_str)
        .unwrap_or("auth0|emulator-user")
        .to_string()
}

/// Handles one request: record, inject failures, route, answer.
fn handle(shared: &Shared, mut request: tiny_http::Request) {
    let mut body = Vec::new();
    let too_large = request
        .as_reader()
        .take(MAX_BODY + 1)
        .read_to_end(&mut body)
        .map(|n| n as u64 > MAX_BODY)
        .unwrap_or(false);
    let mut recorded = record(&request, body);
    recorded.tls = recorded.peer.and_then(|peer| {
        shared
            .tls_peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&peer.port())
            .cloned()
    });
    let failure = {
        let mut state = shared.lock();
        state.requests.push(recorded.clone());
        take_failure(&mut state, &recorded.path)
    };
    let reply = match failure {
        Some(Failure::Slow(delay)) => {
            std::thread::sleep(delay);
            None
        }
        Some(Failure::Before(hook)) => {
            (hook.0)();
            None
        }
        Some(Failure::Status(status)) => Some(Reply::json(
            status,
            &json!({"error": "server_error", "error_description": format!("injected failure (HTTP {status})")}),
        )),
        Some(Failure::Html) => Some(Reply {
            status: 502,
            headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
            body: b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
                .to_vec(),
        }),
        Some(Failure::MalformedJson) => Some(Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: br#"{"access_token": "abc", "#.to_vec(),
        }),
        Some(Failure::Empty) => Some(Reply {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
        }),
        Some(Failure::OAuth { status, body }) => Some(Reply::json(status, &body)),
        None => None,
    };
    let reply = match reply {
        Some(reply) => reply,
        None if too_large => Reply::oauth_error(413, "invalid_request", "Request body too large"),
        None => route(shared, &recorded),
    };
    let mut response = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    for (name, value) in reply.headers {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    }
    let _ = request.respond(response);
}

fn take_failure(state: &mut State, path: &str) -> Option<Failure> {
    let index = state
        .failures
        .iter()
        .position(|(p, _, n)| p == path && *n > 0)?;
    let entry = &mut state.failures[index];
    entry.2 -= 1;
    let failure = entry.1.clone();
    if entry.2 == 0 {
        state.failures.remove(index);
    }
    Some(failure)
}

fn record(request: &tiny_http::Request, body: Vec<u8>) -> RecordedRequest {
    let url = request.url();
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_string(),
                h.value.as_str().to_string(),
            )
        })
        .collect();
    let content_type = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap_or_default();
    let form = if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => map
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect(),
            _ => Vec::new(),
        }
    } else if content_type.is_empty()
        || content_type.starts_with("application/x-www-form-urlencoded")
    {
        url::form_urlencoded::parse(&body).into_owned().collect()
    } else {
        Vec::new()
    };
    RecordedRequest {
        method: request.method().as_str().to_string(),
        path: path.to_string(),
        query: url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
        headers,
        form,
        body,
        peer: request.remote_addr().copied(),
        tls: None,
    }
}

fn route(shared: &Shared, req: &RecordedRequest) -> Reply {
    // A path issuer serves every endpoint below its path too (as Keycloak's realms do).
    let prefix = shared.config.provider.issuer_path.as_str();
    let path = match req.path.strip_prefix(prefix) {
        Some(rest) if !prefix.is_empty() && rest.starts_with('/') => rest,
        _ => req.path.as_str(),
    };
    if let Some(reply) = my_account::route(shared, req) {
        return reply;
    }
    match (req.method.as_str(), path) {
        ("GET", "/.well-known/openid-configuration") => discovery::discovery(shared),
        ("GET", "/.well-known/jwks.json") => discovery::jwks(shared),
        ("POST", "/oauth/token") => token::token(shared, req),
        ("GET", "/authorize") => authorize::authorize(shared, req),
        ("POST", "/oauth/par") => authorize::par(shared, req),
        ("POST", "/bc-authorize") => ciba::bc_authorize(shared, req),
        ("GET", "/v2/logout") => logout::v2_logout(shared, req),
        ("GET", "/oidc/logout") => logout::oidc_logout(shared, req),
        ("POST", "/oauth/revoke") => logout::revoke(shared, req),
        ("POST", "/passwordless/start") => passwordless::start(shared, req),
        ("GET", "/mfa/authenticators") => mfa::authenticators(shared, req),
        ("POST", "/mfa/associate") => mfa::associate(shared, req),
        ("POST", "/mfa/challenge") => mfa::challenge(shared, req),
        ("DELETE", p) if p.starts_with("/mfa/authenticators/") => {
            mfa::delete_authenticator(shared, req, &p["/mfa/authenticators/".len()..])
        }
        ("POST", "/passkey/register") => passkey::register(shared, req),
        ("POST", "/passkey/challenge") => passkey::challenge(shared, req),
        ("GET", "/userinfo") => resource::userinfo(shared, req),
        ("GET", "/api/data") => resource::api_data(shared, req),
        ("GET" | "POST", "/api/dpop") => dpop::api_dpop(shared, req),
        (
            _,
            "/.well-known/openid-configuration"
            | "/.well-known/jwks.json"
            | "/oauth/token"
            | "/authorize"
            | "/oauth/par"
            | "/bc-authorize"
            | "/v2/logout"
            | "/oidc/logout"
            | "/oauth/revoke"
            | "/userinfo"
            | "/api/data",
        ) => Reply::json(405, &json!({"error": "method_not_allowed"})),
        _ => Reply::json(
            404,
            &json!({"error": "not_found", "error_description": "Not found"}),
        ),
    }
}

/// The first non-empty value of form parameter `name`.
pub(crate) fn form<'a>(req: &'a RecordedRequest, name: &str) -> Option<&'a str> {
    req.form
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The scope values of a space-separated scope string, duplicates removed, in order.
pub(crate) fn split_scope(scope: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for s in scope.split_whitespace() {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// `base` with `params` appended to its query; `None` if `base` is not an absolute URL.
pub(crate) fn with_query(base: &str, params: &[(&str, &str)]) -> Option<String> {
    let mut url = url::Url::parse(base).ok()?;
    {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in params {
            pairs.append_pair(k, v);
        }
    }
    Some(url.into())
}

/// The value of cookie `name` in the request's `Cookie` header(s).
pub(crate) fn cookie<'a>(req: &'a RecordedRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}
