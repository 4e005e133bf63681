//! Client authentication at the token, PAR and revocation endpoints: `client_secret_post` or
//! `client_secret_basic`, never both.

use super::reply::Reply;
use crate::jwt;
use crate::{RecordedRequest, Shared};

/// Client authentication (client_secret_post or client_secret_basic). `Err` is the answer.
pub(crate) fn authenticate_client(shared: &Shared, req: &RecordedRequest) -> Result<(), Reply> {
    let cfg = &shared.config;
    let form_id = req
        .form
        .iter()
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.as_str());
    let form_secret = req
        .form
        .iter()
        .find(|(k, _)| k == "client_secret")
        .map(|(_, v)| v.as_str());
    let basic = req.header("authorization").and_then(|h| {
        let (scheme, rest) = h.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = String::from_utf8(jwt::std_b64_decode(rest)?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        let dec = |s: &str| -> String {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        Some((dec(id), dec(secret)))
    });
    let unauthorized = || Reply::oauth_error(401, "access_denied", "Unauthorized");
    let (id, secret) = match (&basic, form_secret) {
        (Some(_), Some(_)) => {
            return Err(Reply::oauth_error(
                400,
                "invalid_request",
                "Multiple client authentication methods are not allowed",
            ));
        }
        (Some((id, secret)), None) => {
            if form_id.is_some_and(|f| f != id) {
                return Err(Reply::oauth_error(
                    401,
                    "invalid_client",
                    "client_id mismatch",
                ));
            }
            (id.as_str(), secret.as_str())
        }
        (None, Some(secret)) => match form_id {
            Some(id) => (id, secret),
            None => {
                return Err(Reply::oauth_error(
                    401,
                    "invalid_client",
                    "Missing client_id",
                ));
            }
        },
        (None, None) => {
            return Err(Reply::oauth_error(
                401,
                "invalid_client",
                "Client authentication is required",
            ));
        }
    };
    if id != cfg.client_id {
        return Err(Reply::oauth_error(401, "invalid_client", "Unknown client"));
    }
    if !constant_time_eq(secret.as_bytes(), cfg.client_secret.as_bytes()) {
        return Err(unauthorized());
    }
    Ok(())
}

/// Compares secrets without an early exit on the first differing byte.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
