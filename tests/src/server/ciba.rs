//! `POST /bc-authorize`: the CIBA backchannel authentication endpoint (OpenID CIBA Core 1.0
//! §7, Auth0's flavour). The request is validated as Auth0 does (client authentication, an
//! `iss_sub` login hint naming this issuer and the emulator's user, a binding message of at
//! most 64 letters, digits, spaces and `+-_.,:#`, a scope with `openid`); the answer is an
//! `auth_req_id` whose polls at `/oauth/token` follow the script a test set with
//! `Emulator::script_ciba` (see `token::ciba`).

use serde_json::{Value, json};

use super::client_auth::authenticate_client;
use super::reply::Reply;
use super::{form, now, random_token, split_scope, user_sub};
use crate::{CibaEntry, RecordedRequest, Shared};

/// How long an `auth_req_id` lives without `requested_expiry` (Auth0: 300 s).
const DEFAULT_EXPIRY: u64 = 300;

/// The polling interval the emulator asks for (Auth0's: 5 s).
pub(crate) const INTERVAL: u64 = 5;

fn invalid(error: &str, description: &str) -> Reply {
    Reply::oauth_error(400, error, description)
}

/// `POST /bc-authorize`.
pub(crate) fn bc_authorize(shared: &Shared, req: &RecordedRequest) -> Reply {
    if let Err(reply) = authenticate_client(shared, req) {
        return reply;
    }
    let scope = form(req, "scope").unwrap_or("").to_owned();
    if !split_scope(&scope).contains(&"openid") {
        return invalid("invalid_request", "scope must contain openid");
    }
    let Some(hint) = form(req, "login_hint") else {
        return invalid("invalid_request", "Missing required parameter: login_hint");
    };
    let Ok(hint) = serde_json::from_str::<Value>(hint) else {
        return invalid("invalid_request", "login_hint must be JSON");
    };
    if hint.get("format").and_then(Value::as_str) != Some("iss_sub") {
        return invalid("invalid_request", "login_hint format must be iss_sub");
    }
    if hint.get("iss").and_then(Value::as_str) != Some(shared.issuer().as_str()) {
        return invalid(
            "invalid_request",
            "login_hint iss must be this tenant's issuer",
        );
    }
    let user = shared.lock().user.clone();
    if hint.get("sub").and_then(Value::as_str) != Some(user_sub(&user).as_str()) {
        return invalid("unknown_user_id", "The user does not exist");
    }
    let Some(message) = form(req, "binding_message") else {
        return invalid(
            "invalid_request",
            "Missing required parameter: binding_message",
        );
    };
    let allowed = |c: char| c.is_alphanumeric() || c == ' ' || "+-_.,:#".contains(c);
    if message.chars().count() > 64 || !message.chars().all(allowed) {
        return invalid(
            "invalid_binding_message",
            "binding_message must be at most 64 characters of letters, digits, whitespace and +-_.,:#",
        );
    }
    let expiry = match form(req, "requested_expiry") {
        None => DEFAULT_EXPIRY,
        Some(s) => match s.parse::<u64>() {
            Ok(n) if (1..=300).contains(&n) => n,
            _ => return invalid("invalid_request", "requested_expiry must be 1 to 300"),
        },
    };
    let authorization_details = match form(req, "authorization_details") {
        None => None,
        Some(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(Value::Array(items)) if !items.is_empty() => Some(Value::Array(items)),
            _ => {
                return invalid(
                    "invalid_request",
                    "authorization_details must be a JSON array",
                );
            }
        },
    };
    let auth_req_id = random_token();
    let mut state = shared.lock();
    let script = state.ciba_script.clone();
    state.ciba.insert(
        auth_req_id.clone(),
        CibaEntry {
            scope,
            audience: form(req, "audience").map(str::to_owned),
            authorization_details,
            binding_message: message.to_owned(),
            expires_at: now() + expiry,
            script: script.into(),
        },
    );
    Reply::json(
        200,
        &json!({ "auth_req_id": auth_req_id, "expires_in": expiry, "interval": INTERVAL }),
    )
}
