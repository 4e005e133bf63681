//! `grant_type=urn:openid:params:grant-type:ciba`: a poll of a backchannel authentication
//! started at `/bc-authorize`. Each poll takes the next step of the request's script
//! (`Emulator::script_ciba`; once it is used up, the user has still not answered):
//! `authorization_pending`, `slow_down`, `access_denied` and `expired_token` come with HTTP
//! 400 as from Auth0; an approval answers with tokens and an ID token for the user.

use serde_json::{Map, Value};

use super::super::mint::{access_token, id_token_claims, sign_current};
use super::super::reply::Reply;
use super::super::{form, now, random_token, split_scope, user_sub};
use crate::{CibaStep, RecordedRequest, RefreshEntry, Shared};

/// A poll.
pub(crate) fn ciba_grant(shared: &Shared, req: &RecordedRequest) -> Reply {
    let Some(id) = form(req, "auth_req_id") else {
        return Reply::oauth_error(
            400,
            "invalid_request",
            "Missing required parameter: auth_req_id",
        );
    };
    let (entry, step) = {
        let mut state = shared.lock();
        let Some(entry) = state.ciba.get_mut(id) else {
            return Reply::oauth_error(400, "invalid_grant", "Invalid or expired auth_req_id");
        };
        let step = if now() >= entry.expires_at {
            CibaStep::Expire
        } else {
            entry.script.pop_front().unwrap_or(CibaStep::Pending)
        };
        let entry = entry.clone();
        if matches!(
            step,
            CibaStep::Approve | CibaStep::ApproveWithIdTokenAudience(_) | CibaStep::Deny
        ) {
            state.ciba.remove(id);
        }
        (entry, step)
    };
    let id_token_audience = match step {
        CibaStep::Pending => {
            return Reply::oauth_error(
                400,
                "authorization_pending",
                "The end-user authorization is pending",
            );
        }
        CibaStep::SlowDown => {
            return Reply::oauth_error(
                400,
                "slow_down",
                "You are polling faster than allowed. Try again in 10 seconds.",
            );
        }
        CibaStep::Deny => {
            return Reply::oauth_error(
                400,
                "access_denied",
                "The end-user denied the authorization request or it has been expired",
            );
        }
        CibaStep::Expire => {
            return Reply::oauth_error(400, "expired_token", "The auth_req_id has expired");
        }
        CibaStep::Approve => None,
        CibaStep::ApproveWithIdTokenAudience(aud) => Some(aud),
    };
    let cfg = &shared.config;
    let user = shared.lock().user.clone();
    let sub = user_sub(&user);
    let sid = random_token();
    let audience = entry
        .audience
        .clone()
        .or_else(|| cfg.default_audience.clone());
    let scope = entry.scope.clone();
    let refresh = split_scope(&scope).contains(&"offline_access").then(|| {
        let mut state = shared.lock();
        let family = state.next_family;
        state.next_family += 1;
        let token = random_token();
        state.refresh_tokens.insert(
            token.clone(),
            RefreshEntry {
                family,
                sub: sub.clone(),
                scope: scope.clone(),
                audience: audience.clone(),
                sid: sid.clone(),
                org: None,
                rotated: false,
            },
        );
        state.sessions.insert(sid.clone(), sub.clone());
        token
    });
    let mut claims = id_token_claims(shared, &user, None, &sid, None);
    if let Some(aud) = id_token_audience {
        claims.insert("aud".into(), aud.into());
    }
    let mut body = Map::new();
    body.insert(
        "access_token".into(),
        access_token(
            shared,
            &sub,
            audience.as_deref(),
            &scope,
            cfg.access_token_lifetime,
        )
        .into(),
    );
    body.insert("id_token".into(), sign_current(shared, &claims).into());
    if let Some(rt) = refresh {
        body.insert("refresh_token".into(), rt.into());
    }
    body.insert("scope".into(), scope.into());
    body.insert("expires_in".into(), cfg.access_token_lifetime.into());
    body.insert("token_type".into(), "Bearer".into());
    if let Some(details) = entry.authorization_details {
        body.insert("authorization_details".into(), details);
    }
    Reply::json(200, &Value::Object(body))
}
