//! Bearer-protected resources: `GET /userinfo` and the protected API at `GET /api/data`.

use serde_json::{Map, Value, json};

use super::mint::verify_issued;
use super::now;
use super::reply::Reply;
use crate::{RecordedRequest, Shared};

/// Verifies a bearer access token against the published keys; returns its claims.
fn bearer_claims(shared: &Shared, req: &RecordedRequest) -> Option<Map<String, Value>> {
    let header = req.header("authorization")?;
    let (scheme, token) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let claims = verify_issued(shared, token.trim())?;
    // A DPoP-bound token presented as a bearer token is refused (RFC 9449 §7.2).
    if claims.get("cnf").is_some() {
        return None;
    }
    let exp = claims.get("exp").and_then(Value::as_u64)?;
    if exp <= now() {
        return None;
    }
    Some(claims)
}

fn aud_contains(claims: &Map<String, Value>, audience: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(s)) => s == audience,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(audience)),
        _ => false,
    }
}

fn unauthorized_bearer(description: &str) -> Reply {
    let mut reply = Reply::json(
        401,
        &json!({"error": "invalid_token", "error_description": description}),
    );
    reply.headers.push((
        "WWW-Authenticate".into(),
        format!("Bearer error=\"invalid_token\", error_description=\"{description}\""),
    ));
    reply
}

/// `GET /userinfo`: the user's claims for a valid access token.
pub(crate) fn userinfo(shared: &Shared, req: &RecordedRequest) -> Reply {
    let Some(claims) = bearer_claims(shared, req) else {
        return unauthorized_bearer("Invalid or missing access token");
    };
    let mut user = shared.lock().user.clone();
    if let Some(sub) = claims.get("sub") {
        user.insert("sub".into(), sub.clone());
    }
    Reply::json(200, &Value::Object(user))
}

/// `GET /api/data`: the protected API; requires an access token for the default audience.
pub(crate) fn api_data(shared: &Shared, req: &RecordedRequest) -> Reply {
    let Some(claims) = bearer_claims(shared, req) else {
        return unauthorized_bearer("Invalid or missing access token");
    };
    let audience = shared.config.default_audience.clone().unwrap_or_default();
    if !aud_contains(&claims, &audience) {
        return unauthorized_bearer("Token audience is not this API");
    }
    Reply::json(
        200,
        &json!({
            "message": "Hello from the emulator's protected API",
            "sub": claims.get("sub").cloned().unwrap_or(Value::Null),
            "scope": claims.get("scope").cloned().unwrap_or(Value::Null),
        }),
    )
}
