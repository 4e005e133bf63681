//! `POST /oauth/token`: client authentication, the DPoP proof when there is one, then one
//! module per grant type (the answer to a DPoP request bound to the proof's key).

mod ciba;
mod code;
mod custom_exchange;
mod federated;
mod passwordless;
mod refresh;

use super::client_auth::authenticate_client;
use super::dpop::{At, bind_answer, check_proof};
use super::form;
use super::reply::Reply;
use crate::{
    CIBA_GRANT_TYPE, FEDERATED_GRANT_TYPE, PASSWORDLESS_OTP_GRANT_TYPE, RecordedRequest,
    RefreshEntry, Shared, TOKEN_EXCHANGE_GRANT_TYPE,
};
use serde_json::{Map, Value};

/// `POST /oauth/token`: authenticates the client, then dispatches on `grant_type`.
pub(crate) fn token(shared: &Shared, req: &RecordedRequest) -> Reply {
    if let Err(reply) = authenticate_client(shared, req) {
        return reply;
    }
    let jkt = match check_proof(shared, req, "/oauth/token", At::AuthorizationServer, None) {
        Ok(jkt) => jkt,
        Err(reply) => return reply,
    };
    let reply = grant(shared, req);
    // RFC 8705 §3: an mTLS client's access tokens are bound to its certificate.
    let reply = match (&shared.config.tls_client_auth, &req.tls) {
        (Some(_), Some(peer)) => match peer.x5t_s256() {
            Some(x5t) => bind_to_certificate(shared, reply, &x5t),
            None => reply,
        },
        _ => reply,
    };
    match jkt {
        Some(jkt) => bind_answer(shared, reply, &jkt),
        None => reply,
    }
}

/// Adds `cnf: {"x5t#S256": x5t}` to the access token of a successful answer (re-signed with
/// the current key).
fn bind_to_certificate(shared: &Shared, mut reply: Reply, x5t: &str) -> Reply {
    if reply.status != 200 {
        return reply;
    }
    let Ok(serde_json::Value::Object(mut body)) = serde_json::from_slice(&reply.body) else {
        return reply;
    };
    let Some(mut claims) = body
        .get("access_token")
        .and_then(serde_json::Value::as_str)
        .and_then(crate::jwt::decode_payload)
    else {
        return reply;
    };
    claims.insert("cnf".into(), serde_json::json!({ "x5t#S256": x5t }));
    body.insert(
        "access_token".into(),
        super::mint::sign_current(shared, &claims).into(),
    );
    reply.body = serde_json::to_vec(&body).unwrap_or_default();
    reply
}

/// Dispatches on `grant_type`.
fn grant(shared: &Shared, req: &RecordedRequest) -> Reply {
    match form(req, "grant_type") {
        Some("refresh_token") => refresh::refresh_grant(shared, req),
        Some("authorization_code") => code::code_grant(shared, req),
        Some(FEDERATED_GRANT_TYPE) => federated::federated_grant(shared, req),
        Some(TOKEN_EXCHANGE_GRANT_TYPE) => custom_exchange::custom_exchange_grant(shared, req),
        Some(CIBA_GRANT_TYPE) => ciba::ciba_grant(shared, req),
        Some(PASSWORDLESS_OTP_GRANT_TYPE) => passwordless::otp_grant(shared, req),
        Some(crate::WEBAUTHN_GRANT_TYPE) => super::passkey::webauthn_grant(shared, req),
        Some(
            g @ (crate::MFA_OTP_GRANT_TYPE
            | crate::MFA_OOB_GRANT_TYPE
            | crate::MFA_RECOVERY_CODE_GRANT_TYPE),
        ) => super::mfa::mfa_grant(shared, req, g),
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

/// Auth0's answer to an unknown, rotated-away or revoked refresh token.
pub(crate) fn invalid_refresh_token() -> Reply {
    Reply::oauth_error(403, "invalid_grant", "Unknown or invalid refresh token.")
}

/// The token answer of a grant that logs `user` in without a browser (Custom Token Exchange,
/// passwordless): an access token for `audience` (else the default), an ID token (no
/// `nonce`; `org_id`/`org_name` for `org`; `act` when given) when `openid` is in `scope`, a
/// refresh token with `offline_access`, in a new Auth0 session.
pub(crate) fn issue_tokens(
    shared: &Shared,
    user: &Map<String, Value>,
    scope: &str,
    audience: Option<String>,
    org: Option<(String, String)>,
    act: Option<Value>,
) -> Map<String, Value> {
    use super::mint::{access_token, id_token_claims, sign_current};
    use super::{random_token, split_scope, user_sub};
    let cfg = &shared.config;
    let scopes = split_scope(scope);
    let audience = audience.or_else(|| cfg.default_audience.clone());
    let sub = user_sub(user);
    let sid = random_token();
    let refresh = scopes.contains(&"offline_access").then(|| {
        let mut state = shared.lock();
        let family = state.next_family;
        state.next_family += 1;
        let token = random_token();
        state.refresh_tokens.insert(
            token.clone(),
            RefreshEntry {
                family,
                sub: sub.clone(),
                scope: scope.to_owned(),
                audience: audience.clone(),
                sid: sid.clone(),
                org: org.clone(),
                rotated: false,
            },
        );
        state.sessions.insert(sid.clone(), sub.clone());
        token
    });
    let mut body = Map::new();
    body.insert(
        "access_token".into(),
        access_token(
            shared,
            &sub,
            audience.as_deref(),
            scope,
            cfg.access_token_lifetime,
        )
        .into(),
    );
    if scopes.contains(&"openid") {
        let mut claims = id_token_claims(shared, user, None, &sid, org.as_ref());
        if let Some(act) = act {
            claims.insert("act".into(), act);
        }
        body.insert("id_token".into(), sign_current(shared, &claims).into());
    }
    if let Some(rt) = refresh {
        body.insert("refresh_token".into(), rt.into());
    }
    if !scope.is_empty() {
        body.insert("scope".into(), scope.into());
    }
    body.insert("expires_in".into(), cfg.access_token_lifetime.into());
    body.insert("token_type".into(), "Bearer".into());
    body
}
