//! The HTTP side: accept loop, request recording, failure injection and the endpoints.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::jwt;
use crate::{
    CodeEntry, FEDERATED_GRANT_TYPE, FEDERATED_TOKEN_TYPE, Failure, REFRESH_TOKEN_TYPE,
    RecordedRequest, RefreshEntry, Shared, State,
};

/// Largest request body read (bigger bodies are truncated and answered 413).
const MAX_BODY: u64 = 1 << 20;
/// PAR `request_uri` lifetime.
const PAR_LIFETIME: u64 = 60;
/// Authorization code lifetime.
const CODE_LIFETIME: u64 = 300;
const OIDC_SCOPES: [&str; 5] = ["openid", "profile", "email", "offline_access", "address"];

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

/// An answer before it is written out.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, value: &Value) -> Reply {
        Reply {
            status,
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Cache-Control".into(), "no-store".into()),
            ],
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    fn oauth_error(status: u16, error: &str, description: &str) -> Reply {
        Reply::json(
            status,
            &json!({"error": error, "error_description": description}),
        )
    }

    fn text(status: u16, text: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: text.as_bytes().to_vec(),
        }
    }

    fn redirect(location: String) -> Reply {
        Reply {
            status: 302,
            headers: vec![("Location".into(), location)],
            body: Vec::new(),
        }
    }
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
    let recorded = record(&request, body);
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
    }
}

fn route(shared: &Shared, req: &RecordedRequest) -> Reply {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/.well-known/openid-configuration") => discovery(shared),
        ("GET", "/.well-known/jwks.json") => jwks(shared),
        ("POST", "/oauth/token") => token(shared, req),
        ("GET", "/authorize") => authorize(shared, req),
        ("POST", "/oauth/par") => par(shared, req),
        ("GET", "/v2/logout") => logout(req, "returnTo"),
        ("GET", "/oidc/logout") => logout(req, "post_logout_redirect_uri"),
        ("POST", "/oauth/revoke") => revoke(shared, req),
        ("GET", "/userinfo") => userinfo(shared, req),
        ("GET", "/api/data") => api_data(shared, req),
        (
            _,
            "/.well-known/openid-configuration"
            | "/.well-known/jwks.json"
            | "/oauth/token"
            | "/authorize"
            | "/oauth/par"
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

fn discovery(shared: &Shared) -> Reply {
    let base = &shared.base_url;
    Reply::json(
        200,
        &json!({
            "issuer": shared.issuer(),
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/oauth/token"),
            "device_authorization_endpoint": format!("{base}/oauth/device/code"),
            "userinfo_endpoint": format!("{base}/userinfo"),
            "mfa_challenge_endpoint": format!("{base}/mfa/challenge"),
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "registration_endpoint": format!("{base}/oidc/register"),
            "revocation_endpoint": format!("{base}/oauth/revoke"),
            "end_session_endpoint": format!("{base}/oidc/logout"),
            "pushed_authorization_request_endpoint": format!("{base}/oauth/par"),
            "require_pushed_authorization_requests": false,
            "scopes_supported": ["openid", "profile", "offline_access", "name", "given_name", "family_name",
                "nickname", "email", "email_verified", "picture", "created_at", "identities", "phone", "address"],
            "response_types_supported": ["code", "token", "id_token", "code token", "code id_token",
                "token id_token", "code token id_token"],
            "code_challenge_methods_supported": ["S256", "plain"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["aud", "auth_time", "created_at", "email", "email_verified", "exp",
                "family_name", "given_name", "iat", "identities", "iss", "name", "nickname", "phone_number",
                "picture", "sub"],
            "request_uri_parameter_supported": false,
            "request_parameter_supported": false,
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
            "authorization_details_types_supported": [],
        }),
    )
}

fn jwks(shared: &Shared) -> Reply {
    let keys = jwt::keys();
    let (current, previous) = {
        let s = shared.lock();
        (s.current_key, s.previous_key)
    };
    let mut list = vec![keys[current].jwk.clone()];
    if let Some(p) = previous.filter(|p| *p != current) {
        list.push(keys[p].jwk.clone());
    }
    Reply::json(200, &json!({ "keys": list }))
}

/// Client authentication (client_secret_post or client_secret_basic). `Err` is the answer.
fn authenticate_client(shared: &Shared, req: &RecordedRequest) -> Result<(), Reply> {
    let cfg = &shared.config;
    let form_id = req
        .form
        .iter()
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.as_str());
    let form_secret = req
        .form
        .iter()
        .find(|(k, _)| k == "client_secret")
        .map(|(_, v)| v.as_str());
    let basic = req.header("authorization").and_then(|h| {
        let (scheme, rest) = h.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = String::from_utf8(jwt::std_b64_decode(rest)?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        let dec = |s: &str| -> String {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        Some((dec(id), dec(secret)))
    });
    let unauthorized = || Reply::oauth_error(401, "access_denied", "Unauthorized");
    let (id, secret) = match (&basic, form_secret) {
        (Some(_), Some(_)) => {
            return Err(Reply::oauth_error(
                400,
                "invalid_request",
                "Multiple client authentication methods are not allowed",
            ));
        }
        (Some((id, secret)), None) => {
            if form_id.is_some_and(|f| f != id) {
                return Err(Reply::oauth_error(
                    401,
                    "invalid_client",
                    "client_id mismatch",
                ));
            }
            (id.as_str(), secret.as_str())
        }
        (None, Some(secret)) => match form_id {
            Some(id) => (id, secret),
            None => {
                return Err(Reply::oauth_error(
                    401,
                    "invalid_client",
                    "Missing client_id",
                ));
            }
        },
        (None, None) => {
            return Err(Reply::oauth_error(
                401,
                "invalid_client",
                "Client authentication is required",
            ));
        }
    };
    if id != cfg.client_id {
        return Err(Reply::oauth_error(401, "invalid_client", "Unknown client"));
    }
    if !constant_time_eq(secret.as_bytes(), cfg.client_secret.as_bytes()) {
        return Err(unauthorized());
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn form<'a>(req: &'a RecordedRequest, name: &str) -> Option<&'a str> {
    req.form
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn token(shared: &Shared, req: &RecordedRequest) -> Reply {
    if let Err(reply) = authenticate_client(shared, req) {
        return reply;
    }
    match form(req, "grant_type") {
        Some("refresh_token") => refresh_grant(shared, req),
        Some("authorization_code") => code_grant(shared, req),
        Some(FEDERATED_GRANT_TYPE) => federated_grant(shared, req),
        Some(other) => Reply::oauth_error(
            400,
            "unsupported_grant_type",
            &format!("Unsupported grant type: {other}"),
        ),
        None => Reply::oauth_error(
            400,
            "invalid_request",
            "Missing required parameter: grant_type",
        ),
    }
}

fn split_scope(scope: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for s in scope.split_whitespace() {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// The granted scope for a refresh: the requested scopes minus denied ones, where OIDC scopes
/// are only granted if the original grant had them; the grant's scope when none is requested.
fn granted_scope(shared: &Shared, grant_scope: &str, requested: Option<&str>) -> String {
    let grant = split_scope(grant_scope);
    let denied = &shared.config.denied_scopes;
    match requested {
        None => grant
            .into_iter()
            .filter(|s| !denied.iter().any(|d| d == s))
            .collect::<Vec<_>>()
            .join(" "),
        Some(requested) => split_scope(requested)
            .into_iter()
            .filter(|s| !denied.iter().any(|d| d == s))
            .filter(|s| !OIDC_SCOPES.contains(s) || grant.contains(s))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn invalid_refresh_token() -> Reply {
    Reply::oauth_error(403, "invalid_grant", "Unknown or invalid refresh token.")
}

fn refresh_grant(shared: &Shared, req: &RecordedRequest) -> Reply {
    let cfg = &shared.config;
    let Some(presented) = form(req, "refresh_token") else {
        return Reply::oauth_error(
            400,
            "invalid_request",
            "Missing required parameter: refresh_token",
        );
    };
    let (entry, new_refresh, user) = {
        let mut state = shared.lock();
        let Some(entry) = state.refresh_tokens.get(presented).cloned() else {
            return invalid_refresh_token();
        };
        if state.revoked_families.contains(&entry.family) {
            return invalid_refresh_token();
        }
        if entry.rotated {
            // Reuse of a rotated refresh token: revoke the whole family.
            state.revoked_families.insert(entry.family);
            state.reuse_detections += 1;
            return invalid_refresh_token();
        }
        let new_refresh = if cfg.rotation {
            let token = random_token();
            if let Some(e) = state.refresh_tokens.get_mut(presented) {
                e.rotated = true;
            }
            state.refresh_tokens.insert(
                token.clone(),
                RefreshEntry {
                    rotated: false,
                    ..entry.clone()
                },
            );
            Some(token)
        } else {
            None
        };
        (entry, new_refresh, state.user.clone())
    };
    // MRRT: an audience outside the policy gets a token for the default audience, as Auth0 does.
    let requested_audience = form(req, "audience").map(str::to_string);
    let audience = match requested_audience {
        None => entry
            .audience
            .clone()
            .or_else(|| cfg.default_audience.clone()),
        Some(a) if cfg.refresh_token_policy.contains(&a) || entry.audience.as_ref() == Some(&a) => {
            Some(a)
        }
        Some(_) => cfg.default_audience.clone(),
    };
    let scope = granted_scope(shared, &entry.scope, form(req, "scope"));
    let mut body = Map::new();
    body.insert(
        "access_token".into(),
        access_token(
            shared,
            &entry.sub,
            audience.as_deref(),
            &scope,
            cfg.access_token_lifetime,
        )
        .into(),
    );
    if split_scope(&scope).contains(&"openid") {
        let mut user = user;
        user.insert("sub".into(), entry.sub.clone().into());
        let claims = id_token_claims(shared, &user, None, &entry.sid, entry.org.as_ref());
        body.insert("id_token".into(), sign_current(shared, &claims).into());
    }
    if let Some(rt) = new_refresh {
        body.insert("refresh_token".into(), rt.into());
    }
    body.insert("scope".into(), scope.into());
    body.insert("expires_in".into(), cfg.access_token_lifetime.into());
    body.insert("token_type".into(), "Bearer".into());
    Reply::json(200, &Value::Object(body))
}

fn pkce_ok(entry: &CodeEntry, verifier: Option<&str>) -> bool {
    match (&entry.code_challenge, verifier) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(challenge), Some(verifier)) => {
            if !(43..=128).contains(&verifier.len()) {
                return false;
            }
            let computed = if entry.code_challenge_method.eq_ignore_ascii_case("plain") {
                verifier.to_string()
            } else {
                jwt::b64(&Sha256::digest(verifier.as_bytes()))
            };
            constant_time_eq(computed.as_bytes(), challenge.as_bytes())
        }
    }
}

fn code_grant(shared: &Shared, req: &RecordedRequest) -> Reply {
    let cfg = &shared.config;
    let Some(code) = form(req, "code") else {
        return Reply::oauth_error(400, "invalid_request", "Missing required parameter: code");
    };
    let (entry, user, refresh) = {
        let mut state = shared.lock();
        // Single use: the code is gone whatever happens next.
        let Some(entry) = state.codes.remove(code) else {
            return Reply::oauth_error(403, "invalid_grant", "Invalid authorization code");
        };
        if entry.expires_at < now() {
            return Reply::oauth_error(403, "invalid_grant", "Invalid authorization code");
        }
        if entry.redirect_uri.as_deref() != form(req, "redirect_uri") {
            return Reply::oauth_error(
                403,
                "invalid_grant",
                "The redirect_uri MUST match the registered callback URL for this application.",
            );
        }
        if !pkce_ok(&entry, form(req, "code_verifier")) {
            return Reply::oauth_error(403, "invalid_grant", "Failed to verify code verifier");
        }
        let user = state.user.clone();
        let refresh = if split_scope(&entry.scope).contains(&"offline_access") {
            let family = state.next_family;
            state.next_family += 1;
            let token = random_token();
            state.refresh_tokens.insert(
                token.clone(),
                RefreshEntry {
                    family,
                    sub: user_sub(&user),
                    scope: entry.scope.clone(),
                    audience: entry.audience.clone(),
                    sid: entry.sid.clone(),
                    org: entry.org.clone(),
                    rotated: false,
                },
            );
            Some(token)
        } else {
            None
        };
        (entry, user, refresh)
    };
    let sub = user_sub(&user);
    let audience = entry
        .audience
        .clone()
        .or_else(|| cfg.default_audience.clone());
    let mut body = Map::new();
    body.insert(
        "access_token".into(),
        access_token(
            shared,
            &sub,
            audience.as_deref(),
            &entry.scope,
            cfg.access_token_lifetime,
        )
        .into(),
    );
    if split_scope(&entry.scope).contains(&"openid") {
        let claims = id_token_claims(
            shared,
            &user,
            entry.nonce.as_deref(),
            &entry.sid,
            entry.org.as_ref(),
        );
        body.insert("id_token".into(), sign_current(shared, &claims).into());
    }
    if let Some(rt) = refresh {
        body.insert("refresh_token".into(), rt.into());
    }
    body.insert("scope".into(), entry.scope.clone().into());
    body.insert("expires_in".into(), cfg.access_token_lifetime.into());
    body.insert("token_type".into(), "Bearer".into());
    if let Some(details) = &entry.authorization_details {
        let value = serde_json::from_str::<Value>(details)
            .unwrap_or_else(|_| Value::String(details.clone()));
        body.insert("authorization_details".into(), value);
    }
    Reply::json(200, &Value::Object(body))
}

fn federated_grant(shared: &Shared, req: &RecordedRequest) -> Reply {
    if form(req, "subject_token_type") != Some(REFRESH_TOKEN_TYPE) {
        return Reply::oauth_error(
            400,
            "invalid_request",
            "Invalid or missing subject_token_type",
        );
    }
    if form(req, "requested_token_type") != Some(FEDERATED_TOKEN_TYPE) {
        return Reply::oauth_error(
            400,
            "invalid_request",
            "Invalid or missing requested_token_type",
        );
    }
    let Some(subject) = form(req, "subject_token") else {
        return Reply::oauth_error(
            400,
            "invalid_request",
            "Missing required parameter: subject_token",
        );
    };
    let Some(connection) = form(req, "connection") else {
        return Reply::oauth_error(
            400,
            "invalid_request",
            "Missing required parameter: connection",
        );
    };
    {
        let state = shared.lock();
        let live = state
            .refresh_tokens
            .get(subject)
            .is_some_and(|e| !e.rotated && !state.revoked_families.contains(&e.family));
        if !live {
            return invalid_refresh_token();
        }
    }
    let Some(conn) = shared
        .config
        .connections
        .iter()
        .find(|c| c.name == connection)
    else {
        return Reply::oauth_error(
            400,
            "federated_connection_refresh_token_not_found",
            "Federated connection Refresh Token not found.",
        );
    };
    Reply::json(
        200,
        &json!({
            "access_token": conn.access_token,
            "expires_in": conn.expires_in,
            "scope": conn.scope,
            "issued_token_type": FEDERATED_TOKEN_TYPE,
            "token_type": "Bearer",
        }),
    )
}

/// Maps an `organization` parameter (an `org_…` id or a name) to `(org_id, org_name)`.
fn organization(param: &str) -> (String, String) {
    if param.starts_with("org_") {
        let name = format!(
            "organization-{}",
            param.trim_start_matches("org_").to_ascii_lowercase()
        );
        (param.to_string(), name)
    } else {
        let name = param.to_ascii_lowercase();
        let digest = Sha256::digest(name.as_bytes());
        let id: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        (format!("org_{id}"), name)
    }
}

fn with_query(base: &str, params: &[(&str, &str)]) -> Option<String> {
    let mut url = url::Url::parse(base).ok()?;
    {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in params {
            pairs.append_pair(k, v);
        }
    }
    Some(url.into())
}

fn authorize(shared: &Shared, req: &RecordedRequest) -> Reply {
    let cfg = &shared.config;
    let mut params: Vec<(String, String)> = req.query.clone();
    let query_client = req
        .query
        .iter()
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.clone());
    if let Some(request_uri) = req.param("request_uri") {
        let pushed = shared.lock().par.remove(request_uri);
        match pushed {
            Some((pushed, expires_at)) if expires_at >= now() => {
                if query_client.as_deref().is_some_and(|c| c != cfg.client_id) {
                    return Reply::text(
                        400,
                        "client_id does not match the pushed authorization request",
                    );
                }
                params = pushed;
            }
            _ => return Reply::text(400, "invalid_request_uri: unknown or expired request_uri"),
        }
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    if get("client_id") != Some(cfg.client_id.as_str()) {
        return Reply::text(400, "invalid_request: unknown or missing client_id");
    }
    let Some(redirect_uri) = get("redirect_uri") else {
        return Reply::text(400, "invalid_request: missing redirect_uri");
    };
    if url::Url::parse(redirect_uri).is_err() {
        return Reply::text(400, "invalid_request: redirect_uri is not an absolute URL");
    }
    let state_param = get("state");
    let redirect_error = |error: &str, description: &str| {
        let mut q = vec![("error", error), ("error_description", description)];
        if let Some(s) = state_param {
            q.push(("state", s));
        }
        match with_query(redirect_uri, &q) {
            Some(location) => Reply::redirect(location),
            None => Reply::text(400, "invalid redirect_uri"),
        }
    };
    if let Some((error, description)) = shared.lock().authorize_error.clone() {
        return redirect_error(&error, &description);
    }
    if get("response_type") != Some("code") {
        return redirect_error("unsupported_response_type", "Unsupported response type");
    }
    let method = get("code_challenge_method").unwrap_or("plain");
    if !method.eq_ignore_ascii_case("S256") && !method.eq_ignore_ascii_case("plain") {
        return redirect_error("invalid_request", "Unsupported code_challenge_method");
    }
    if let Some(details) = get("authorization_details")
        && !matches!(serde_json::from_str::<Value>(details), Ok(Value::Array(_)))
    {
        return redirect_error(
            "invalid_request",
            "authorization_details must be a JSON array",
        );
    }
    if get("invitation").is_some() && get("organization").is_none() {
        return redirect_error("invalid_request", "invitation requires organization");
    }
    let entry = CodeEntry {
        redirect_uri: Some(redirect_uri.to_string()),
        code_challenge: get("code_challenge").map(str::to_string),
        code_challenge_method: method.to_string(),
        scope: split_scope(get("scope").unwrap_or("openid")).join(" "),
        audience: get("audience").map(str::to_string),
        nonce: get("nonce").map(str::to_string),
        org: get("organization").map(organization),
        authorization_details: get("authorization_details").map(str::to_string),
        sid: random_token(),
        expires_at: now() + CODE_LIFETIME,
    };
    let code = random_token();
    shared.lock().codes.insert(code.clone(), entry);
    let mut q = vec![("code", code.as_str())];
    if let Some(s) = state_param {
        q.push(("state", s));
    }
    match with_query(redirect_uri, &q) {
        Some(location) => Reply::redirect(location),
        None => Reply::text(400, "invalid redirect_uri"),
    }
}

fn par(shared: &Shared, req: &RecordedRequest) -> Reply {
    if let Err(reply) = authenticate_client(shared, req) {
        return reply;
    }
    if form(req, "request_uri").is_some() {
        return Reply::oauth_error(
            400,
            "invalid_request",
            "request_uri is not allowed in a pushed request",
        );
    }
    if form(req, "redirect_uri").is_none() {
        return Reply::oauth_error(
            400,
            "invalid_request",
            "Missing required parameter: redirect_uri",
        );
    }
    if form(req, "response_type").is_none() {
        return Reply::oauth_error(
            400,
            "invalid_request",
            "Missing required parameter: response_type",
        );
    }
    let mut params: Vec<(String, String)> = req
        .form
        .iter()
        .filter(|(k, _)| k != "client_secret")
        .cloned()
        .collect();
    if !params.iter().any(|(k, _)| k == "client_id") {
        params.push(("client_id".into(), shared.config.client_id.clone()));
    }
    let request_uri = format!("urn:ietf:params:oauth:request_uri:{}", random_token());
    shared
        .lock()
        .par
        .insert(request_uri.clone(), (params, now() + PAR_LIFETIME));
    Reply::json(
        201,
        &json!({"request_uri": request_uri, "expires_in": PAR_LIFETIME}),
    )
}

fn logout(req: &RecordedRequest, redirect_param: &str) -> Reply {
    match req
        .query
        .iter()
        .find(|(k, _)| k == redirect_param)
        .map(|(_, v)| v.as_str())
    {
        Some(target) if url::Url::parse(target).is_ok() => {
            let location = match req.query.iter().find(|(k, _)| k == "state") {
                Some((_, state)) if redirect_param == "post_logout_redirect_uri" => {
                    with_query(target, &[("state", state)]).unwrap_or_else(|| target.to_string())
                }
                _ => target.to_string(),
            };
            Reply::redirect(location)
        }
        Some(_) => Reply::text(400, "invalid redirect target"),
        None => Reply::text(200, "You have been logged out."),
    }
}

fn revoke(shared: &Shared, req: &RecordedRequest) -> Reply {
    if let Err(reply) = authenticate_client(shared, req) {
        return reply;
    }
    let Some(token) = form(req, "token") else {
        return Reply::oauth_error(400, "invalid_request", "Missing required parameter: token");
    };
    let mut state = shared.lock();
    if let Some(family) = state.refresh_tokens.get(token).map(|e| e.family) {
        state.revoked_families.insert(family);
    }
    Reply {
        status: 200,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// Verifies a bearer access token against the published keys; returns its claims.
fn bearer_claims(shared: &Shared, req: &RecordedRequest) -> Option<Map<String, Value>> {
    let header = req.header("authorization")?;
    let (scheme, token) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let (current, previous) = {
        let s = shared.lock();
        (s.current_key, s.previous_key)
    };
    let keys = jwt::keys();
    let candidates = std::iter::once(&keys[current]).chain(previous.map(|p| &keys[p]));
    let claims = jwt::verify_rs256(token.trim(), candidates)?;
    if claims.get("iss").and_then(Value::as_str) != Some(shared.issuer().as_str()) {
        return None;
    }
    let exp = claims.get("exp").and_then(Value::as_u64)?;
    if exp <= now() {
        return None;
    }
    Some(claims)
}

fn aud_contains(claims: &Map<String, Value>, audience: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(s)) => s == audience,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(audience)),
        _ => false,
    }
}

fn unauthorized_bearer(description: &str) -> Reply {
    let mut reply = Reply::json(
        401,
        &json!({"error": "invalid_token", "error_description": description}),
    );
    reply.headers.push((
        "WWW-Authenticate".into(),
        format!("Bearer error=\"invalid_token\", error_description=\"{description}\""),
    ));
    reply
}

fn userinfo(shared: &Shared, req: &RecordedRequest) -> Reply {
    let Some(claims) = bearer_claims(shared, req) else {
        return unauthorized_bearer("Invalid or missing access token");
    };
    let mut user = shared.lock().user.clone();
    if let Some(sub) = claims.get("sub") {
        user.insert("sub".into(), sub.clone());
    }
    Reply::json(200, &Value::Object(user))
}

fn api_data(shared: &Shared, req: &RecordedRequest) -> Reply {
    let Some(claims) = bearer_claims(shared, req) else {
        return unauthorized_bearer("Invalid or missing access token");
    };
    let audience = shared.config.default_audience.clone().unwrap_or_default();
    if !aud_contains(&claims, &audience) {
        return unauthorized_bearer("Token audience is not this API");
    }
    Reply::json(
        200,
        &json!({
            "message": "Hello from the emulator's protected API",
            "sub": claims.get("sub").cloned().unwrap_or(Value::Null),
            "scope": claims.get("scope").cloned().unwrap_or(Value::Null),
        }),
    )
}

/// Signs `claims` with the current key.
pub(crate) fn sign_current(shared: &Shared, claims: &Map<String, Value>) -> String {
    let current = shared.lock().current_key;
    jwt::sign_rs256(&jwt::keys()[current], claims, &Map::new())
}

/// An RS256 access token. With an audience its `aud` is `[audience, {issuer}userinfo]` when the
/// scope includes `openid` (as Auth0 does), else the audience string; without one, the
/// userinfo audience.
pub(crate) fn access_token(
    shared: &Shared,
    sub: &str,
    audience: Option<&str>,
    scope: &str,
    lifetime: u64,
) -> String {
    let issuer = shared.issuer();
    let userinfo = format!("{issuer}userinfo");
    let aud = match audience {
        Some(a) if split_scope(scope).contains(&"openid") && a != userinfo => json!([a, userinfo]),
        Some(a) => json!(a),
        None => json!(userinfo),
    };
    let now = now();
    let mut claims = Map::new();
    claims.insert("iss".into(), issuer.into());
    claims.insert("sub".into(), sub.into());
    claims.insert("aud".into(), aud);
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + lifetime).into());
    claims.insert("scope".into(), scope.into());
    claims.insert("azp".into(), shared.config.client_id.clone().into());
    claims.insert("jti".into(), random_token().into());
    sign_current(shared, &claims)
}

/// Valid ID token claims for `user`.
pub(crate) fn id_token_claims(
    shared: &Shared,
    user: &Map<String, Value>,
    nonce: Option<&str>,
    sid: &str,
    org: Option<&(String, String)>,
) -> Map<String, Value> {
    let now = now();
    let mut claims = user.clone();
    claims.insert("iss".into(), shared.issuer().into());
    claims.insert("aud".into(), shared.config.client_id.clone().into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + shared.config.id_token_lifetime).into());
    claims.insert("sid".into(), sid.into());
    claims.insert("updated_at".into(), "2024-01-01T00:00:00.000Z".into());
    if let Some(nonce) = nonce {
        claims.insert("nonce".into(), nonce.into());
    }
    if let Some((id, name)) = org {
        claims.insert("org_id".into(), id.clone().into());
        claims.insert("org_name".into(), name.clone().into());
    }
    claims
}
