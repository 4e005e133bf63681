//! `POST /oauth/token`: client authentication, then one module per grant type.

mod code;
mod custom_exchange;
mod federated;
mod refresh;

use super::client_auth::authenticate_client;
use super::form;
use super::reply::Reply;
use crate::{FEDERATED_GRANT_TYPE, RecordedRequest, Shared, TOKEN_EXCHANGE_GRANT_TYPE};

/// `POST /oauth/token`: authenticates the client, then dispatches on `grant_type`.
pub(crate) fn token(shared: &Shared, req: &RecordedRequest) -> Reply {
    if let Err(reply) = authenticate_client(shared, req) {
        return reply;
    }
    match form(req, "grant_type") {
        Some("refresh_token") => refresh::refresh_grant(shared, req),
        Some("authorization_code") => code::code_grant(shared, req),
        Some(FEDERATED_GRANT_TYPE) => federated::federated_grant(shared, req),
        Some(TOKEN_EXCHANGE_GRANT_TYPE) => custom_exchange::custom_exchange_grant(shared, req),
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
