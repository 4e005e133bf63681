//! Custom Token Exchange (RFC 8693, Auth0's profile): a subject token of a type a tenant
//! profile handles, for Auth0 tokens of the user the profile's Action sets.

use serde_json::{Map, Value};

use super::super::form;
use super::super::reply::Reply;
use super::issue_tokens;
use crate::{RecordedRequest, Shared};

/// The issued token type of the answer (RFC 8693 §2.2.1).
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`.
pub(crate) fn custom_exchange_grant(shared: &Shared, req: &RecordedRequest) -> Reply {
    let cfg = &shared.config;
    let (Some(subject), Some(subject_type)) =
        (form(req, "subject_token"), form(req, "subject_token_type"))
    else {
        return Reply::oauth_error(
            400,
            "invalid_request",
            "Missing required parameter: subject_token or subject_token_type",
        );
    };
    if form(req, "actor_token").is_some() != form(req, "actor_token_type").is_some() {
        return Reply::oauth_error(
            400,
            "invalid_request",
            "actor_token and actor_token_type must be sent together",
        );
    }
    let Some(profile) = cfg
        .token_exchange_profiles
        .iter()
        .find(|p| p.subject_token_type == subject_type)
    else {
        return Reply::oauth_error(
            400,
            "invalid_request",
            "No Custom Token Exchange profile for this subject_token_type",
        );
    };
    // The profile's Action: an unknown subject token is rejected.
    let Some((_, user)) = profile.subjects.iter().find(|(token, _)| token == subject) else {
        return Reply::oauth_error(400, "invalid_request", "Invalid subject token");
    };
    let scope = form(req, "scope").unwrap_or("").to_owned();
    let audience = form(req, "audience").map(str::to_owned);
    let org = form(req, "organization").map(|o| {
        if o.starts_with("org_") {
            (o.to_owned(), "emulator-org".to_owned())
        } else {
            (format!("org_{o}"), o.to_owned())
        }
    });
    let act = form(req, "actor_token").map(|actor| {
        // The Action names the actor; here, the actor token itself stands for it.
        let mut act = Map::new();
        act.insert("sub".into(), actor.into());
        Value::Object(act)
    });
    let mut body = issue_tokens(shared, user, &scope, audience, org, act);
    body.insert("issued_token_type".into(), ACCESS_TOKEN_TYPE.into());
    Reply::json(200, &Value::Object(body))
}
