//! `GET /authorize` (no login form: the configured user is authenticated at once and sent
//! back with a code) and `POST /oauth/par` (pushed authorization requests).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::client_auth::authenticate_client;
use super::reply::Reply;
use super::{SESSION_COOKIE, form, now, random_token, split_scope, user_sub, with_query};
use crate::{CodeEntry, RecordedRequest, Shared};

/// PAR `request_uri` lifetime.
const PAR_LIFETIME: u64 = 60;
/// Authorization code lifetime.
const CODE_LIFETIME: u64 = 300;

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

/// `GET /authorize` (directly or through a pushed request's `request_uri`).
pub(crate) fn authorize(shared: &Shared, req: &RecordedRequest) -> Reply {
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
    // RFC 9207: a provider that advertises it names itself on every authorization response.
    let iss = shared
        .config
        .provider
        .iss_in_callback
        .then(|| shared.issuer());
    let redirect_error = |error: &str, description: &str| {
        let mut q = vec![("error", error), ("error_description", description)];
        if let Some(s) = state_param {
            q.push(("state", s));
        }
        if let Some(iss) = &iss {
            q.push(("iss", iss));
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
    // Account linking: the session's ID token names the user whose account changes, and the
    // connection to (un)link is required.
    let scopes = split_scope(get("scope").unwrap_or(""));
    let action = ["link_account", "unlink_account"]
        .into_iter()
        .find(|a| scopes.contains(a));
    if let Some(action) = action {
        let hinted = get("id_token_hint").and_then(|hint| super::mint::verify_issued(shared, hint));
        let current = user_sub(&shared.lock().user);
        let hinted_sub = hinted
            .as_ref()
            .and_then(|c| c.get("sub"))
            .and_then(Value::as_str);
        if hinted_sub != Some(current.as_str()) {
            return redirect_error(
                "invalid_request",
                "Account linking requires an id_token_hint issued to the logged-in user",
            );
        }
        let Some(connection) = get("requested_connection") else {
            return redirect_error("invalid_request", "requested_connection is required");
        };
        shared.lock().account_links.push(crate::AccountLinkRequest {
            action: action.to_owned(),
            sub: current,
            connection: connection.to_owned(),
            connection_scope: get("requested_connection_scope").map(str::to_owned),
        });
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
    let sid = entry.sid.clone();
    {
        // The login starts an Auth0 session, which `/v2/logout` finds through its cookie.
        let mut state = shared.lock();
        let sub = user_sub(&state.user);
        state.sessions.insert(sid.clone(), sub);
        state.codes.insert(code.clone(), entry);
    }
    let mut q = vec![("code", code.as_str())];
    if let Some(s) = state_param {
        q.push(("state", s));
    }
    if let Some(iss) = &iss {
        q.push(("iss", iss));
    }
    match with_query(redirect_uri, &q) {
        Some(location) => {
            let mut reply = Reply::redirect(location);
            reply.headers.push((
                "Set-Cookie".into(),
                format!("{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax"),
            ));
            reply
        }
        None => Reply::text(400, "invalid redirect_uri"),
    }
}

/// `POST /oauth/par`: stores the pushed parameters under a single-use `request_uri`.
pub(crate) fn par(shared: &Shared, req: &RecordedRequest) -> Reply {
    if let Err(reply) = authenticate_client(shared, req) {
        return reply;
    }
    if let Err(reply) = super::dpop::check_proof(
        shared,
        req,
        "/oauth/par",
        super::dpop::At::AuthorizationServer,
        None,
    ) {
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
