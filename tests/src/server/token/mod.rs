//! `POST /oauth/token`: client authentication, the DPoP proof when there is one, then one
//! module per grant type (the answer to a DPoP request bound to the proof's key).

mod code;
mod federated;
mod refresh;

use super::client_auth::authenticate_client;
use super::dpop::{At, bind_answer, check_proof};
use super::form;
use super::reply::Reply;
use crate::{FEDERATED_GRANT_TYPE, RecordedRequest, Shared};

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
    match jkt {
        Some(jkt) => bind_answer(shared, reply, &jkt),
        None => reply,
    }
}

/// Dispatches on `grant_type`.
fn grant(shared: &Shared, req: &RecordedRequest) -> Reply {
    match form(req, "grant_type") {
        Some("refresh_token") => refresh::refresh_grant(shared, req),
        Some("authorization_code") => code::code_grant(shared, req),
        Some(FEDERATED_GRANT_TYPE) => federated::federated_grant(shared, req),
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
