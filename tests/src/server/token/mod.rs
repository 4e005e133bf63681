//! `POST /oauth/token`: client authentication, then one module per grant type.

mod ciba;
mod code;
mod custom_exchange;
mod federated;
mod refresh;

use super::client_auth::authenticate_client;
use super::form;
use super::reply::Reply;
use crate::{
    CIBA_GRANT_TYPE, FEDERATED_GRANT_TYPE, RecordedRequest, Shared, TOKEN_EXCHANGE_GRANT_TYPE,
};

/// `POST /oauth/token`: authenticates the client, then dispatches on `grant_type`.
pub(crate) fn token(shared: &Shared, req: &RecordedRequest) -> Reply {
    if let Err(reply) = authenticate_client(shared, req) {
        return reply;
    }
    let reply = grant(shared, req);
    // RFC 8705 §3: an mTLS client's access tokens are bound to its certificate.
    match (&shared.config.tls_client_auth, &req.tls) {
        (Some(_), Some(peer)) => match peer.x5t_s256() {
            Some(x5t) => bind_to_certificate(shared, reply, &x5t),
            None => reply,
        },
        _ => reply,
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
