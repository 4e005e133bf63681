//! The passwordless one-time-code grant: `realm` (`email` or `sms`), `username` (the address
//! or number the code was sent to) and `otp`. A code is single use and expires; a wrong one
//! is refused as Auth0 refuses it (403 `invalid_grant`).

use super::super::form;
use super::super::now;
use super::super::reply::Reply;
use super::issue_tokens;
use crate::{RecordedRequest, Shared};

/// `grant_type=http://auth0.com/oauth/grant-type/passwordless/otp`.
pub(crate) fn otp_grant(shared: &Shared, req: &RecordedRequest) -> Reply {
    let (Some(realm), Some(username), Some(otp)) =
        (form(req, "realm"), form(req, "username"), form(req, "otp"))
    else {
        return Reply::oauth_error(
            400,
            "invalid_request",
            "Missing required parameter: realm, username or otp",
        );
    };
    let user = {
        let mut state = shared.lock();
        let key = (realm.to_owned(), username.to_owned());
        let valid = state
            .passwordless_codes
            .get(&key)
            .is_some_and(|(code, expires_at)| code == otp && *expires_at >= now());
        if !valid {
            return Reply::oauth_error(
                403,
                "invalid_grant",
                &format!("Wrong {realm} or verification code."),
            );
        }
        // Single use.
        state.passwordless_codes.remove(&key);
        let mut user = state.user.clone();
        let member = if realm == "sms" {
            "phone_number"
        } else {
            "email"
        };
        user.insert(member.into(), username.into());
        user
    };
    let scope = form(req, "scope").unwrap_or("openid").to_owned();
    let audience = form(req, "audience").map(str::to_owned);
    Reply::json(
        200,
        &serde_json::Value::Object(issue_tokens(shared, &user, &scope, audience, None, None)),
    )
}
