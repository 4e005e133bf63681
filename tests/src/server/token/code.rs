//! The authorization-code grant, with PKCE (`S256` or `plain`).

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::super::client_auth::constant_time_eq;
use super::super::mint::{access_token, id_token_claims, sign_current};
use super::super::reply::Reply;
use super::super::{form, now, random_token, split_scope, user_sub};
use crate::jwt;
use crate::{CodeEntry, RecordedRequest, RefreshEntry, Shared};

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

/// `grant_type=authorization_code`.
pub(crate) fn code_grant(shared: &Shared, req: &RecordedRequest) -> Reply {
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
