//! Validation of the claims of a verified ID token or logout token, at a given `now`.
//!
//! * ID token: OpenID Connect Core 1.0 §3.1.3.7 (the checks the OpenID Foundation's RP
//!   certification exercises) plus Auth0 organizations: `iss` is the issuer exactly; `sub` a
//!   non-empty string; `aud` (string or array) contains the client id; `azp`, required when
//!   there are several audiences, equals the client id whenever present; `exp` numeric and not
//!   past (`now < exp + tolerance`); `iat` numeric and not beyond the tolerance in the future;
//!   `nbf`, when present, numeric and not beyond the tolerance in the future; when `max_age`
//!   was requested, `auth_time` present and `auth_time + max_age + tolerance > now`;
//!   `nonce` equal to the transaction's when one was sent; `org_id` (for an expected value
//!   starting with `org_`, exact) or `org_name` (otherwise, case-insensitive) equal to the
//!   requested organization.
//! * Logout token: OpenID Connect Back-Channel Logout 1.0 §2.4–2.6: `iss`, `aud`, `iat`,
//!   `exp` as above (all required), a non-empty `jti`, an `events` object with the
//!   back-channel-logout member (itself an object), a `sub` or a `sid`, and no `nonce`.
//!
//! Call these only after [`super::jws::Jws::verify`] succeeded.

use crate::time::UnixTime;
use serde_json::{Map, Value};
use std::time::Duration;
use subtle::ConstantTimeEq as _;

use super::JoseError;

/// The `events` member that marks a back-channel logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What an ID token must say to be accepted.
#[derive(Debug, Clone, Copy)]
pub struct IdTokenExpectations<'a> {
    /// The discovered issuer, compared exactly with `iss`.
    pub issuer: &'a str,
    /// This application's client id, expected in `aud` (and `azp`).
    pub client_id: &'a str,
    /// The nonce sent with the authorization request, when one was.
    pub nonce: Option<&'a str>,
    /// The `max_age` sent with the authorization request, when one was: `auth_time` is then
    /// required and must be recent enough.
    pub max_age: Option<Duration>,
    /// The organization requested at login (`org_…` id or a name), when one was.
    pub organization: Option<&'a str>,
    /// Current time.
    pub now: UnixTime,
    /// Allowed clock skew ([`crate::time::DEFAULT_CLOCK_TOLERANCE`] by default).
    pub clock_tolerance: Duration,
}

/// What a logout token must say to be accepted.
#[derive(Debug, Clone, Copy)]
pub struct LogoutTokenExpectations<'a> {
    /// The tenant's issuer, compared exactly with `iss`.
    pub issuer: &'a str,
    /// This application's client id, expected in `aud`.
    pub client_id: &'a str,
    /// Current time.
    pub now: UnixTime,
    /// Allowed clock skew.
    pub clock_tolerance: Duration,
}

/// The identity of a valid logout token for replay detection: its `jti`, and until when it
/// must be remembered (its `exp` plus the clock tolerance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutTokenId {
    /// The issuer and `jti`, as one key (`{iss} {jti}`): `jti` is unique per issuer.
    pub key: String,
    /// Until when the token could be accepted, so until when it must be remembered.
    pub until: UnixTime,
}

/// The replay-detection identity of a logout token that passed [`validate_logout_token`].
pub fn logout_token_id(
    claims: &Map<String, Value>,
    issuer: &str,
    tolerance: Duration,
) -> Result<LogoutTokenId, JoseError> {
    let jti = match claims.get("jti") {
        Some(Value::String(j)) if !j.is_empty() && j.len() <= 256 => j,
        _ => return Err(JoseError::InvalidLogoutToken("jti missing or invalid")),
    };
    let exp = claims
        .get("exp")
        .and_then(Value::as_f64)
        .filter(|e| e.is_finite() && *e >= 0.0)
        .ok_or(JoseError::MissingExp)?;
    let until = UnixTime::from_secs((exp.min(u64::MAX as f64 / 2.0)) as u64) + tolerance;
    Ok(LogoutTokenId {
        key: format!("{issuer} {jti}"),
        until,
    })
}

/// The claims of a valid logout token that select the sessions to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutTokenClaims {
    /// The issuer.
    pub iss: String,
    /// The user whose sessions end, if given.
    pub sub: Option<String>,
    /// The session that ends, if given.
    pub sid: Option<String>,
}

/// Validates the claims of a verified ID token (OpenID Connect Core §3.1.3.7).
pub fn validate_id_token(
    claims: &Map<String, Value>,
    exp: &IdTokenExpectations<'_>,
) -> Result<(), JoseError> {
    check_issuer(claims, exp.issuer)?;
    match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => {}
        _ => return Err(JoseError::InvalidSubject),
    }
    check_audience(claims, exp.client_id)?;
    check_expiry(claims, exp.now, exp.clock_tolerance, true)?;
    check_issued_at(claims, exp.now, exp.clock_tolerance)?;
    check_not_before(claims, exp.now, exp.clock_tolerance)?;
    if let Some(max_age) = exp.max_age {
        let auth_time = claims
            .get("auth_time")
            .and_then(Value::as_f64)
            .ok_or(JoseError::MissingAuthTime)?;
        let limit = auth_time + max_age.as_secs() as f64 + exp.clock_tolerance.as_secs() as f64;
        if (exp.now.as_secs() as f64) >= limit {
            return Err(JoseError::AuthTimeTooOld);
        }
    }
    if let Some(expected) = exp.nonce {
        match claims.get("nonce") {
            Some(Value::String(nonce))
                if bool::from(nonce.as_bytes().ct_eq(expected.as_bytes())) => {}
            _ => return Err(JoseError::InvalidNonce),
        }
    }
    if let Some(org) = exp.organization {
        let ok = if org.starts_with("org_") {
            claims.get("org_id").and_then(Value::as_str) == Some(org)
        } else {
            claims
                .get("org_name")
                .and_then(Value::as_str)
                .is_some_and(|name| name.to_lowercase() == org.to_lowercase())
        };
        if !ok {
            return Err(JoseError::OrganizationMismatch);
        }
    }
    Ok(())
}

/// Validates the claims of a verified logout token (Back-Channel Logout 1.0 §2.6) and
/// returns the `iss`/`sub`/`sid` that select the sessions to end.
pub fn validate_logout_token(
    claims: &Map<String, Value>,
    exp: &LogoutTokenExpectations<'_>,
) -> Result<LogoutTokenClaims, JoseError> {
    check_issuer(claims, exp.issuer)?;
    check_audience(claims, exp.client_id)?;
    check_issued_at(claims, exp.now, exp.clock_tolerance)?;
    check_expiry(claims, exp.now, exp.clock_tolerance, true)?;
    logout_token_id(claims, exp.issuer, exp.clock_tolerance)?;
    let events = claims
        .get("events")
        .and_then(Value::as_object)
        .ok_or(JoseError::InvalidLogoutToken("events claim missing"))?;
    if !events
        .get(BACKCHANNEL_LOGOUT_EVENT)
        .is_some_and(Value::is_object)
    {
        return Err(JoseError::InvalidLogoutToken(
            "not a back-channel logout event",
        ));
    }
    if claims.contains_key("nonce") {
        return Err(JoseError::InvalidLogoutToken("nonce present"));
    }
    let opt_str = |name: &'static str| match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(JoseError::InvalidLogoutToken(
            "sub or sid not a non-empty string",
        )),
    };
    let sub = opt_str("sub")?;
    let sid = opt_str("sid")?;
    if sub.is_none() && sid.is_none() {
        return Err(JoseError::InvalidLogoutToken("neither sub nor sid"));
    }
    Ok(LogoutTokenClaims {
        iss: exp.issuer.to_owned(),
        sub,
        sid,
    })
}

fn check_issuer(claims: &Map<String, Value>, issuer: &str) -> Result<(), JoseError> {
    match claims.get("iss") {
        Some(Value::String(iss)) if iss == issuer => Ok(()),
        other => Err(JoseError::InvalidIssuer {
            expected: issuer.to_owned(),
            actual: other.map(|v| match v {
                Value::String(s) => s.chars().take(512).collect(),
                v => v.to_string().chars().take(512).collect(),
            }),
        }),
    }
}

/// `nbf`, when present, must be numeric and not beyond `tolerance` in the future.
fn check_not_before(
    claims: &Map<String, Value>,
    now: UnixTime,
    tolerance: Duration,
) -> Result<(), JoseError> {
    match claims.get("nbf") {
        None => Ok(()),
        Some(v) => match v.as_f64() {
            Some(nbf) if nbf <= now.as_secs() as f64 + tolerance.as_secs() as f64 => Ok(()),
            _ => Err(JoseError::NotYetValid),
        },
    }
}

fn check_audience(claims: &Map<String, Value>, client_id: &str) -> Result<(), JoseError> {
    let several = match claims.get("aud") {
        Some(Value::String(aud)) if aud == client_id => false,
        Some(Value::Array(auds)) => {
            let mut found = false;
            for aud in auds {
                match aud.as_str() {
                    Some(aud) => found |= aud == client_id,
                    None => return Err(JoseError::InvalidAudience),
                }
            }
            if !found {
                return Err(JoseError::InvalidAudience);
            }
            auds.len() > 1
        }
        _ => return Err(JoseError::InvalidAudience),
    };
    match claims.get("azp") {
        None if !several => Ok(()),
        Some(Value::String(azp)) if azp == client_id => Ok(()),
        _ => Err(JoseError::InvalidAzp),
    }
}

/// `exp` must satisfy `now < exp + tolerance`; when `required`, it must be present.
fn check_expiry(
    claims: &Map<String, Value>,
    now: UnixTime,
    tolerance: Duration,
    required: bool,
) -> Result<(), JoseError> {
    let exp = match claims.get("exp") {
        None if !required => return Ok(()),
        Some(v) => v.as_f64().ok_or(JoseError::MissingExp)?,
        None => return Err(JoseError::MissingExp),
    };
    if (now.as_secs() as f64) < exp + tolerance.as_secs() as f64 {
        Ok(())
    } else {
        Err(JoseError::TokenExpired)
    }
}

/// `iat` must be present, numeric, and not beyond `tolerance` in the future.
fn check_issued_at(
    claims: &Map<String, Value>,
    now: UnixTime,
    tolerance: Duration,
) -> Result<(), JoseError> {
    let iat = claims
        .get("iat")
        .and_then(Value::as_f64)
        .ok_or(JoseError::MissingIat)?;
    if iat <= now.as_secs() as f64 + tolerance.as_secs() as f64 {
        Ok(())
    } else {
        Err(JoseError::IssuedInFuture)
    }
}
