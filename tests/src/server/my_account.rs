//! Auth0's My Account API (`/me/v1/…`) for the signed-in user, and its connect page:
//!
//! * every endpoint needs an access token issued by the emulator for the audience
//!   `{base_url}/me/` (got through a refresh with that audience: the client's MRRT policy for
//!   it grants [`EmulatorConfig::my_account_scopes`](crate::EmulatorConfig::my_account_scopes)),
//!   presented as `Bearer`, or as `DPoP` with a proof by its bound key (`ath`, `htm`, `htu`);
//!   a missing or invalid token is `401`, a missing scope `403`, both as
//!   `application/problem+json` (`type`, `title`, `detail`, `status`);
//! * `POST /me/v1/connected-accounts/connect` (`create:me:connected_accounts`) checks the
//!   connection (one of the configured federated connections), `redirect_uri`, `state` and
//!   an S256 `code_challenge`, and answers `201` with `auth_session`, `connect_uri` (the
//!   emulator's page `GET /connected-accounts/connect`), `connect_params.ticket` and
//!   `expires_in`;
//! * `GET /connected-accounts/connect?ticket=…` stands for the provider's consent: it
//!   redirects to the `redirect_uri` with `connect_code` and `state` (single-use ticket);
//! * `POST /me/v1/connected-accounts/complete` checks `auth_session`, `connect_code`
//!   (single use), `redirect_uri` and the PKCE `code_verifier`, and answers `201` with the
//!   connected account;
//! * `GET …/accounts` (`connection`, `from`, `take`), `DELETE …/accounts/{id}`,
//!   `GET …/connections`; `GET /me/v1/factors`, `GET`/`DELETE
//!   /me/v1/authentication-methods[/{id}]`.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::mint::verify_issued;
use super::reply::Reply;
use super::{now, random_token, split_scope, with_query};
use crate::{RecordedRequest, Shared};

/// How long a connect ticket and its connect code are valid (seconds).
const CONNECT_LIFETIME: u64 = 300;

/// A connect flow in progress.
#[derive(Clone, Debug)]
pub(crate) struct ConnectSession {
    sub: String,
    connection: String,
    redirect_uri: String,
    state: String,
    code_challenge: String,
    scopes: Vec<String>,
    ticket: Option<String>,
    connect_code: Option<String>,
    expires_at: u64,
}

/// The My Account API's state: connected accounts, connect flows, authentication methods.
#[derive(Debug, Default)]
pub(crate) struct MyAccountState {
    /// Connected accounts, with the `sub` of their user.
    pub(crate) accounts: Vec<(String, Value)>,
    /// Connect flows by `auth_session`.
    pub(crate) sessions: std::collections::HashMap<String, ConnectSession>,
    /// Authentication methods deleted, by id (each user starts with the default ones).
    pub(crate) deleted_methods: Vec<String>,
    /// Names given to authentication methods (`PATCH`), by id.
    pub(crate) method_names: std::collections::HashMap<String, String>,
    /// Ids handed out so far.
    pub(crate) next_id: u64,
}

fn problem(status: u16, title: &str, detail: &str) -> Reply {
    let mut reply = Reply::json(
        status,
        &json!({
            "type": format!("https://auth0.com/api-errors/emulator/{}", status),
            "status": status,
            "title": title,
            "detail": detail,
        }),
    );
    reply.headers[0].1 = "application/problem+json".into();
    reply
}

/// The audience of the My Account API: `{base_url}/me/`.
pub(crate) fn audience(shared: &Shared) -> String {
    format!("{}/me/", shared.base_url)
}

/// The caller's `sub` when the request presents a valid token for the API with `scope`.
fn authorize(shared: &Shared, req: &RecordedRequest, scope: &str) -> Result<String, Reply> {
    let unauthorized = |d: &str| {
        let mut r = problem(401, "Unauthorized", d);
        r.headers.push((
            "WWW-Authenticate".into(),
            "Bearer error=\"invalid_token\"".into(),
        ));
        r
    };
    let Some((scheme, token)) = req
        .header("authorization")
        .and_then(|h| h.trim().split_once(' '))
    else {
        return Err(unauthorized("Missing access token"));
    };
    let token = token.trim();
    let Some(claims) = verify_issued(shared, token) else {
        return Err(unauthorized("Invalid access token"));
    };
    if claims
        .get("exp")
        .and_then(Value::as_u64)
        .is_none_or(|e| e <= now())
    {
        return Err(unauthorized("Expired access token"));
    }
    let aud = audience(shared);
    let aud_ok = match claims.get("aud") {
        Some(Value::String(s)) => *s == aud,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(aud.as_str())),
        _ => false,
    };
    if !aud_ok {
        return Err(unauthorized(
            "The access token's audience is not the My Account API",
        ));
    }
    let bound = claims
        .get("cnf")
        .and_then(|c| c.get("jkt"))
        .and_then(Value::as_str);
    if scheme.eq_ignore_ascii_case("bearer") {
        if claims.get("cnf").is_some() {
            return Err(unauthorized(
                "A bound access token presented as a bearer token",
            ));
        }
    } else if scheme.eq_ignore_ascii_case("dpop") {
        let Some(bound) = bound else {
            return Err(unauthorized("The access token is not DPoP-bound"));
        };
        match super::dpop::check_proof(
            shared,
            req,
            &req.path,
            super::dpop::At::Resource,
            Some(token),
        ) {
            Ok(Some(jkt)) if jkt == bound => {}
            Ok(_) => return Err(unauthorized("Missing or foreign DPoP proof")),
            Err(reply) => return Err(reply),
        }
    } else {
        return Err(unauthorized("Unsupported authorization scheme"));
    }
    let granted = claims.get("scope").and_then(Value::as_str).unwrap_or("");
    if !split_scope(granted).contains(&scope) {
        return Err(problem(
            403,
            "Forbidden",
            &format!("Insufficient scope, expected: {scope}"),
        ));
    }
    claims
        .get("sub")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| unauthorized("The access token has no subject"))
}

fn body(req: &RecordedRequest) -> Result<Map<String, Value>, Reply> {
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(problem(
            400,
            "Bad Request",
            "The body must be a JSON object",
        )),
    }
}

fn text<'a>(m: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    m.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The routes of this module; `None` for a path it does not serve.
pub(crate) fn route(shared: &Shared, req: &RecordedRequest) -> Option<Reply> {
    let path = req.path.as_str();
    let reply = match (req.method.as_str(), path) {
        ("POST", "/me/v1/connected-accounts/connect") => connect(shared, req),
        ("GET", "/connected-accounts/connect") => connect_page(shared, req),
        ("POST", "/me/v1/connected-accounts/complete") => complete(shared, req),
        ("GET", "/me/v1/connected-accounts/accounts") => list_accounts(shared, req),
        ("GET", "/me/v1/connected-accounts/connections") => connections(shared, req),
        ("GET", "/me/v1/factors") => factors(shared, req),
        ("GET", "/me/v1/authentication-methods") => methods(shared, req, None),
        (m, p) if p.starts_with("/me/v1/connected-accounts/accounts/") => {
            let id = &p["/me/v1/connected-accounts/accounts/".len()..];
            if m == "DELETE" {
                delete_account(shared, req, id)
            } else {
                problem(405, "Method Not Allowed", "Use DELETE")
            }
        }
        (m, p) if p.starts_with("/me/v1/authentication-methods/") => {
            let id = &p["/me/v1/authentication-methods/".len()..];
            match m {
                "GET" => methods(shared, req, Some(id)),
                "DELETE" => delete_method(shared, req, id),
                "PATCH" => update_method(shared, req, id),
                _ => problem(405, "Method Not Allowed", "Use GET, PATCH or DELETE"),
            }
        }
        (_, p) if p.starts_with("/me/") => problem(404, "Not Found", "No such endpoint"),
        _ => return None,
    };
    Some(reply)
}

fn connect(shared: &Shared, req: &RecordedRequest) -> Reply {
    let sub = match authorize(shared, req, "create:me:connected_accounts") {
        Ok(s) => s,
        Err(r) => return r,
    };
    let b = match body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(connection) = text(&b, "connection") else {
        return problem(400, "Bad Request", "connection is required");
    };
    if !shared
        .config
        .connections
        .iter()
        .any(|c| c.name == connection)
    {
        return problem(
            400,
            "Bad Request",
            "The connection does not exist or is not enabled for Connected Accounts",
        );
    }
    let Some(redirect_uri) = text(&b, "redirect_uri").filter(|u| url::Url::parse(u).is_ok()) else {
        return problem(400, "Bad Request", "redirect_uri must be an absolute URL");
    };
    let Some(state) = text(&b, "state") else {
        return problem(400, "Bad Request", "state is required");
    };
    let (Some(challenge), Some("S256")) = (
        text(&b, "code_challenge"),
        text(&b, "code_challenge_method"),
    ) else {
        return problem(400, "Bad Request", "an S256 code_challenge is required");
    };
    let scopes: Vec<String> = b
        .get("scopes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let auth_session = random_token();
    let ticket = random_token();
    shared.lock().my_account.sessions.insert(
        auth_session.clone(),
        ConnectSession {
            sub,
            connection: connection.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            state: state.to_owned(),
            code_challenge: challenge.to_owned(),
            scopes,
            ticket: Some(ticket.clone()),
            connect_code: None,
            expires_at: now() + CONNECT_LIFETIME,
        },
    );
    Reply::json(
        201,
        &json!({
            "auth_session": auth_session,
            "connect_uri": format!("{}/connected-accounts/connect", shared.base_url),
            "connect_params": {"ticket": ticket},
            "expires_in": CONNECT_LIFETIME,
        }),
    )
}

/// The connect page: the user consents at the provider; back to the application.
fn connect_page(shared: &Shared, req: &RecordedRequest) -> Reply {
    let ticket = req
        .query
        .iter()
        .find(|(k, _)| k == "ticket")
        .map(|(_, v)| v.as_str());
    let mut state = shared.lock();
    let found = state
        .my_account
        .sessions
        .values_mut()
        .find(|s| s.ticket.is_some() && s.ticket.as_deref() == ticket && s.expires_at > now());
    let Some(session) = found else {
        return Reply::text(400, "Invalid or expired connect ticket");
    };
    session.ticket = None;
    let code = random_token();
    session.connect_code = Some(code.clone());
    let params = [
        ("connect_code", code.as_str()),
        ("state", session.state.as_str()),
    ];
    match with_query(&session.redirect_uri, &params) {
        Some(location) => Reply::redirect(location),
        None => Reply::text(400, "Invalid redirect_uri"),
    }
}

fn complete(shared: &Shared, req: &RecordedRequest) -> Reply {
    let sub = match authorize(shared, req, "create:me:connected_accounts") {
        Ok(s) => s,
        Err(r) => return r,
    };
    let b = match body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (Some(auth_session), Some(code), Some(redirect_uri)) = (
        text(&b, "auth_session"),
        text(&b, "connect_code"),
        text(&b, "redirect_uri"),
    ) else {
        return problem(
            400,
            "Bad Request",
            "auth_session, connect_code and redirect_uri are required",
        );
    };
    let mut state = shared.lock();
    let Some(session) = state.my_account.sessions.get(auth_session).cloned() else {
        return problem(404, "Not Found", "The connect session does not exist");
    };
    // The session and its code are spent whatever happens next.
    state.my_account.sessions.remove(auth_session);
    if session.sub != sub {
        return problem(
            403,
            "Forbidden",
            "The connect session belongs to another user",
        );
    }
    if session.expires_at <= now() || session.connect_code.as_deref() != Some(code) {
        return problem(400, "Bad Request", "Invalid or expired connect_code");
    }
    if session.redirect_uri != redirect_uri {
        return problem(400, "Bad Request", "redirect_uri does not match");
    }
    let verifier = text(&b, "code_verifier").unwrap_or("");
    let challenge = crate::jwt::b64(&Sha256::digest(verifier.as_bytes()));
    if challenge != session.code_challenge {
        return problem(400, "Bad Request", "Invalid code_verifier");
    }
    state.my_account.next_id += 1;
    let id = format!("cac_{:08}", state.my_account.next_id);
    let scopes = if session.scopes.is_empty() {
        shared
            .config
            .connections
            .iter()
            .find(|c| c.name == session.connection)
            .map(|c| {
                split_scope(&c.scope)
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            })
            .unwrap_or_default()
    } else {
        session.scopes.clone()
    };
    let account = json!({
        "id": id,
        "connection": session.connection,
        "access_type": "offline",
        "scopes": scopes,
        "created_at": "2026-12-01T12:00:00.000Z",
    });
    state.my_account.accounts.push((sub, account.clone()));
    Reply::json(201, &account)
}

fn query<'a>(req: &'a RecordedRequest, name: &str) -> Option<&'a str> {
    req.query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `from` (an index) and `take` of a list request.
fn page(req: &RecordedRequest) -> Result<(usize, usize), Reply> {
    let from = match query(req, "from") {
        Some(f) => f
            .parse::<usize>()
            .map_err(|_| problem(400, "Bad Request", "Invalid from"))?,
        None => 0,
    };
    let take = match query(req, "take") {
        Some(t) => match t.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => return Err(problem(400, "Bad Request", "take must be 1 to 100")),
        },
        None => 20,
    };
    Ok((from, take))
}

fn list_accounts(shared: &Shared, req: &RecordedRequest) -> Reply {
    let sub = match authorize(shared, req, "read:me:connected_accounts") {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (from, take) = match page(req) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let connection = query(req, "connection");
    let state = shared.lock();
    let mine: Vec<Value> = state
        .my_account
        .accounts
        .iter()
        .filter(|(s, a)| {
            *s == sub && connection.is_none_or(|c| a["connection"].as_str() == Some(c))
        })
        .map(|(_, a)| a.clone())
        .collect();
    let accounts: Vec<Value> = mine.iter().skip(from).take(take).cloned().collect();
    let mut out = json!({ "accounts": accounts });
    if from + take < mine.len() {
        out["next"] = (from + take).to_string().into();
    }
    Reply::json(200, &out)
}

fn delete_account(shared: &Shared, req: &RecordedRequest, id: &str) -> Reply {
    let sub = match authorize(shared, req, "delete:me:connected_accounts") {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut state = shared.lock();
    let before = state.my_account.accounts.len();
    state
        .my_account
        .accounts
        .retain(|(s, a)| !(*s == sub && a["id"].as_str() == Some(id)));
    if state.my_account.accounts.len() == before {
        return problem(404, "Not Found", "The connected account does not exist");
    }
    Reply {
        status: 204,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

fn connections(shared: &Shared, req: &RecordedRequest) -> Reply {
    if let Err(r) = authorize(shared, req, "read:me:connected_accounts") {
        return r;
    }
    let (from, take) = match page(req) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let all: Vec<Value> = shared
        .config
        .connections
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "strategy": c.name,
                "scopes": split_scope(&c.scope),
            })
        })
        .collect();
    let page: Vec<Value> = all.iter().skip(from).take(take).cloned().collect();
    let mut out = json!({ "connections": page });
    if from + take < all.len() {
        out["next"] = (from + take).to_string().into();
    }
    Reply::json(200, &out)
}

fn factors(shared: &Shared, req: &RecordedRequest) -> Reply {
    if let Err(r) = authorize(shared, req, "read:me:factors") {
        return r;
    }
    Reply::json(
        200,
        &json!({"factors": [
            {"type": "passkey", "usage": ["primary"]},
            {"type": "totp", "usage": ["secondary"]},
            {"type": "phone", "usage": ["secondary"]},
        ]}),
    )
}

/// The user's authentication methods: a password and an authenticator app.
fn user_methods(state: &crate::State) -> Vec<Value> {
    [
        json!({"id": "password|emulator", "type": "password", "created_at": "2026-01-01T00:00:00.000Z", "usage": ["primary"]}),
        json!({"id": "totp|dev_emulator", "type": "totp", "created_at": "2026-06-01T00:00:00.000Z", "name": "Authenticator app", "usage": ["secondary"]}),
    ]
    .into_iter()
    .filter(|m| {
        !state
            .my_account
            .deleted_methods
            .iter()
            .any(|d| m["id"].as_str() == Some(d.as_str()))
    })
    .map(|mut m| {
        let id = m["id"].as_str().unwrap_or_default().to_owned();
        if let Some(name) = state.my_account.method_names.get(&id) {
            m["name"] = Value::String(name.clone());
        }
        m
    })
    .collect()
}

fn methods(shared: &Shared, req: &RecordedRequest, id: Option<&str>) -> Reply {
    if let Err(r) = authorize(shared, req, "read:me:authentication_methods") {
        return r;
    }
    let all = user_methods(&shared.lock());
    match id {
        None => Reply::json(200, &json!({ "authentication_methods": all })),
        Some(id) => {
            let id = percent_decode(id);
            match all
                .into_iter()
                .find(|m| m["id"].as_str() == Some(id.as_str()))
            {
                Some(m) => Reply::json(200, &m),
                None => problem(404, "Not Found", "The authentication method does not exist"),
            }
        }
    }
}

fn delete_method(shared: &Shared, req: &RecordedRequest, id: &str) -> Reply {
    if let Err(r) = authorize(shared, req, "delete:me:authentication_methods") {
        return r;
    }
    let id = percent_decode(id);
    let mut state = shared.lock();
    if !user_methods(&state)
        .iter()
        .any(|m| m["id"].as_str() == Some(id.as_str()))
    {
        return problem(404, "Not Found", "The authentication method does not exist");
    }
    state.my_account.deleted_methods.push(id);
    Reply {
        status: 204,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

fn update_method(shared: &Shared, req: &RecordedRequest, id: &str) -> Reply {
    if let Err(r) = authorize(shared, req, "update:me:authentication_methods") {
        return r;
    }
    let b = match body(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if b.keys()
        .any(|k| k != "name" && k != "preferred_authentication_method")
        || b.is_empty()
    {
        return problem(
            400,
            "Bad Request",
            "Only name or preferred_authentication_method",
        );
    }
    let id = percent_decode(id);
    let mut state = shared.lock();
    if !user_methods(&state)
        .iter()
        .any(|m| m["id"].as_str() == Some(id.as_str()))
    {
        return problem(404, "Not Found", "The authentication method does not exist");
    }
    if let Some(name) = text(&b, "name") {
        state
            .my_account
            .method_names
            .insert(id.clone(), name.to_owned());
    }
    let updated = user_methods(&state)
        .into_iter()
        .find(|m| m["id"].as_str() == Some(id.as_str()))
        .unwrap_or(Value::Null);
    Reply::json(200, &updated)
}

fn percent_decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}
