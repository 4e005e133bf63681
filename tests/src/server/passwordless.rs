//! Passwordless: `POST /passwordless/start` (JSON, client credentials in the body) sends a
//! one-time code (email or SMS) or a magic link (email). Nothing is really sent: each message
//! is recorded ([`Emulator::passwordless_messages`](crate::Emulator::passwordless_messages)),
//! with its code, or with the link's final callback URL (Auth0's own
//! `/passwordless/verify_redirect` hop is skipped: the link carries the code and `state` the
//! application's callback expects).

use serde_json::{Value, json};

use super::client_auth::authenticate_client;
use super::reply::Reply;
use super::{form, now, random_token, split_scope, with_query};
use crate::{CodeEntry, PasswordlessMessage, RecordedRequest, Shared};

/// How long a code or link is valid (Auth0's default: 3 minutes).
pub(crate) const PASSWORDLESS_LIFETIME: u64 = 180;

/// `POST /passwordless/start`.
pub(crate) fn start(shared: &Shared, req: &RecordedRequest) -> Reply {
    if let Err(reply) = authenticate_client(shared, req) {
        return reply;
    }
    let connection = form(req, "connection").unwrap_or_default();
    let (member, recipient) = match connection {
        "email" => ("email", form(req, "email")),
        "sms" => ("phone_number", form(req, "phone_number")),
        _ => {
            return Reply::oauth_error(
                400,
                "bad.connection",
                "Connection does not exist or is not passwordless",
            );
        }
    };
    let Some(recipient) = recipient.filter(|r| !r.is_empty()) else {
        return Reply::oauth_error(400, "bad.request", &format!("Missing {member}"));
    };
    // Auth0 sends a link when `send` is absent.
    let send = form(req, "send").unwrap_or("link");
    let language = req
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-request-language"))
        .map(|(_, v)| v.clone());
    let mut message = PasswordlessMessage {
        connection: connection.to_owned(),
        recipient: recipient.to_owned(),
        send: send.to_owned(),
        language,
        code: None,
        link: None,
    };
    match (send, connection) {
        ("code", _) => {
            let code = format!(
                "{:06}",
                u64::from_str_radix(&random_token()[..8], 16).unwrap_or(0) % 1_000_000
            );
            shared.lock().passwordless_codes.insert(
                (connection.to_owned(), recipient.to_owned()),
                (code.clone(), now() + PASSWORDLESS_LIFETIME),
            );
            message.code = Some(code);
        }
        ("link", "email") => {
            let params: serde_json::Map<String, Value> = form(req, "authParams")
                .and_then(|p| serde_json::from_str(p).ok())
                .unwrap_or_default();
            let get = |k: &str| params.get(k).and_then(Value::as_str);
            let (Some(redirect_uri), Some("code")) = (get("redirect_uri"), get("response_type"))
            else {
                return Reply::oauth_error(
                    400,
                    "bad.request",
                    "authParams needs redirect_uri and response_type=code",
                );
            };
            let entry = CodeEntry {
                redirect_uri: Some(redirect_uri.to_owned()),
                code_challenge: None,
                code_challenge_method: "plain".into(),
                scope: split_scope(get("scope").unwrap_or("openid")).join(" "),
                audience: get("audience").map(str::to_owned),
                nonce: get("nonce").map(str::to_owned),
                org: None,
                authorization_details: None,
                sid: random_token(),
                expires_at: now() + PASSWORDLESS_LIFETIME,
            };
            let code = random_token();
            let mut q = vec![("code", code.as_str())];
            if let Some(state) = get("state") {
                q.push(("state", state));
            }
            message.link = with_query(redirect_uri, &q);
            shared.lock().codes.insert(code, entry);
        }
        _ => {
            return Reply::oauth_error(400, "bad.request", "A link can only be sent by email");
        }
    }
    shared.lock().passwordless_messages.push(message);
    Reply::json(200, &json!({"_id": random_token(), member: recipient}))
}
