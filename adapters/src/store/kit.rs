//! What every store shares, written once: the attributes of the cookies the SDK writes, random
//! identifiers, the check of encryption secrets, and constant-time comparison.

use super::StoreError;
use crate::clock::random_bytes;
use auth0_server_protocol::Secret;
use auth0_server_protocol::config::MIN_SECRET_LEN;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// The attributes of every cookie the SDK writes (session, session id, transaction, binding):
/// `HttpOnly; Secure; SameSite=Lax; Path=/`, without `Secure` when `secure` is off (plain
/// http on loopback, see [`is_loopback_http`](super::cookie::is_loopback_http)).
pub(crate) fn cookie_attributes(secure: bool) -> &'static str {
    if secure {
        "HttpOnly; Secure; SameSite=Lax; Path=/"
    } else {
        "HttpOnly; SameSite=Lax; Path=/"
    }
}

/// The longest `Max-Age` written: 400 days, the cap browsers apply anyway (RFC 6265bis
/// §5.5); a longer session lifetime is still enforced from the times inside the session.
pub(crate) const MAX_COOKIE_AGE: u64 = 400 * 24 * 3600;

/// [`cookie_attributes`] with a `Max-Age` of `max_age` seconds (at most [`MAX_COOKIE_AGE`]).
pub(crate) fn cookie_attributes_max_age(secure: bool, max_age: u64) -> String {
    format!(
        "{}; Max-Age={}",
        cookie_attributes(secure),
        max_age.min(MAX_COOKIE_AGE)
    )
}

/// `bytes` random bytes from the operating system, base64url without padding: session ids,
/// binding values, lock fences.
pub(crate) fn random_token(bytes: usize) -> Result<String, StoreError> {
    random_bytes(bytes)
        .map(|b| URL_SAFE_NO_PAD.encode(b))
        .map_err(|_| StoreError::new("the OS random number generator failed"))
}

/// Checks the encryption secrets of a store (`what` names it in the error): at least one,
/// each at least [`MIN_SECRET_LEN`] bytes.
pub(crate) fn check_secrets(what: &str, secrets: &[Secret]) -> Result<(), StoreError> {
    if secrets.is_empty() {
        return Err(StoreError::new(format!(
            "{what}: at least one encryption secret is required"
        )));
    }
    if let Some(i) = secrets
        .iter()
        .position(|s| s.expose().len() < MIN_SECRET_LEN)
    {
        return Err(StoreError::new(format!(
            "{what}: secret #{i} is shorter than {MIN_SECRET_LEN} bytes"
        )));
    }
    Ok(())
}

/// Equality of two secrets' text that takes the same time wherever they differ.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_strict_and_secure_unless_turned_off() {
        assert_eq!(
            cookie_attributes(true),
            "HttpOnly; Secure; SameSite=Lax; Path=/"
        );
        assert_eq!(
            cookie_attributes_max_age(false, 60),
            "HttpOnly; SameSite=Lax; Path=/; Max-Age=60"
        );
    }

    #[test]
    fn secrets_are_checked_and_tokens_are_random() {
        assert!(check_secrets("s", &[]).is_err());
        assert!(check_secrets("s", &[Secret::new("short")]).is_err());
        assert!(check_secrets("s", &[Secret::new("a-secret-of-at-least-32-bytes-long!!")]).is_ok());
        let (a, b) = (random_token(16).unwrap(), random_token(16).unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 22);
        assert!(constant_time_eq(&a, &a.clone()) && !constant_time_eq(&a, &b));
        assert!(!constant_time_eq("a", "ab"));
    }
}
