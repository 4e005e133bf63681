//! The federated connection access token exchange (Auth0 Token Vault): a refresh token for
//! an external provider's access token.

use serde_json::json;

use super::super::form;
use super::super::reply::Reply;
use super::invalid_refresh_token;
use crate::{
    FEDERATED_GRANT_TYPE, FEDERATED_TOKEN_TYPE, REFRESH_TOKEN_TYPE, RecordedRequest, Shared,
};

/// The Token Vault exchange: the federated connection's access token for a live refresh token.
pub(crate) fn federated_grant(shared: &Shared, req: &RecordedRequest) -> Reply {
    if shared.config.token_vault_requires_non_rotating && shared.config.rotation {
        // Auth0 only enables the Token Vault grant for clients whose refresh tokens do not
        // rotate; for any other client it is a grant type the client may not use.
        return Reply::oauth_error(
            403,
            "unauthorized_client",
            &format!("Grant type '{FEDERATED_GRANT_TYPE}' not allowed for the client."),
        );
    }
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
        // Auth0's Token Vault answers 401 when it holds no token for the connection.
        return Reply::oauth_error(
            401,
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
