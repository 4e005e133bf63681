//! `GET /v2/logout` (Auth0's logout), `GET /oidc/logout` (OIDC RP-initiated logout, the
//! discovery document's `end_session_endpoint`) and `POST /oauth/revoke` (refresh-token
//! revocation). Both logouts end the Auth0 session and deliver a back-channel logout token
//! (see [`super::backchannel`]) before redirecting.

use serde_json::Value;

use super::backchannel::{LogoutTrigger, end_session};
use super::client_auth::authenticate_client;
use super::mint::verify_issued;
use super::reply::Reply;
use super::{SESSION_COOKIE, cookie, form, with_query};
use crate::{RecordedRequest, Shared};

/// `GET /v2/logout`: ends the browser's Auth0 session (found through its session cookie) if
/// it is open, delivers the back-channel logout token, then redirects to `returnTo`.
pub(crate) fn v2_logout(shared: &Shared, req: &RecordedRequest) -> Reply {
    let sid = cookie(req, SESSION_COOKIE);
    if let Some(sid) = sid.filter(|sid| is_open(shared, sid)) {
        end_session(shared, LogoutTrigger::V2Logout, Some(sid), None);
    }
    with_cleared_cookie(logout(req, "returnTo"), sid.is_some())
}

/// `GET /oidc/logout` (the end-session endpoint): ends the open session named by
/// `id_token_hint` (its `sid` and `sub`; a hint that does not verify is ignored), else by
/// `logout_hint` (a `sid`), else by the session cookie; delivers the back-channel logout
/// token, then redirects to `post_logout_redirect_uri` with `state` echoed back.
pub(crate) fn oidc_logout(shared: &Shared, req: &RecordedRequest) -> Reply {
    let query = |name: &str| {
        req.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let hinted = query("id_token_hint")
        .and_then(|hint| verify_issued(shared, hint))
        .filter(|claims| {
            claims.get("aud").and_then(Value::as_str) == Some(shared.config.client_id.as_str())
        });
    let claim = |name: &str| {
        hinted
            .as_ref()
            .and_then(|c| c.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let (sid, sub) = match (claim("sid"), claim("sub")) {
        (None, None) => (
            query("logout_hint")
                .or_else(|| cookie(req, SESSION_COOKIE))
                .map(str::to_owned),
            None,
        ),
        found => found,
    };
    // Only an open session ends (and is announced); a hint naming no session changes nothing.
    let open = match &sid {
        Some(sid) => is_open(shared, sid),
        None => sub.is_some(),
    };
    if open {
        end_session(
            shared,
            LogoutTrigger::OidcLogout,
            sid.as_deref(),
            sub.as_deref(),
        );
    }
    let had_cookie = cookie(req, SESSION_COOKIE).is_some();
    with_cleared_cookie(logout(req, "post_logout_redirect_uri"), had_cookie)
}

/// Whether Auth0 session `sid` is open (started by a login or a minted grant, not yet ended).
fn is_open(shared: &Shared, sid: &str) -> bool {
    shared.lock().sessions.contains_key(sid)
}

/// Clears the session cookie on the answer when the browser sent one.
fn with_cleared_cookie(mut reply: Reply, clear: bool) -> Reply {
    if clear {
        reply.headers.push((
            "Set-Cookie".into(),
            format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
        ));
    }
    reply
}

/// The redirect (or the plain "logged out" page) of both logout endpoints: `redirect_param`
/// names the target parameter (`returnTo` or `post_logout_redirect_uri`).
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

/// `POST /oauth/revoke`: revokes the refresh token's whole family.
pub(crate) fn revoke(shared: &Shared, req: &RecordedRequest) -> Reply {
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
