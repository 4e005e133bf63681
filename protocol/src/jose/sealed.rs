//! Values the SDK seals for a page to carry and hand back (a sealed MFA token, a sealed
//! passkey session): a JSON payload with its expiry, encrypted as a compact JWE
//! ([`super::jwe`], `dir` + `A256CBC-HS512`) under a key derived from the configured secrets
//! with a salt of the value's own, so one kind of sealed value never opens as another.
//!
//! Secret rotation: the first secret seals, every secret opens.

use super::jwe::{self, JweKey};
use crate::secret::Secret;
use crate::time::UnixTime;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Length of the random IV a seal needs (drawn by the caller's driver, fresh for each seal).
pub const SEAL_IV_LEN: usize = 16;

/// The payload with its expiry, as sealed: the payload's fields and `exp` (Unix seconds) in
/// one JSON object.
#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    #[serde(flatten)]
    value: T,
    exp: u64,
}

/// What opening a sealed value found.
#[derive(Debug, PartialEq)]
pub(crate) enum Opened<T> {
    /// It opened, and has not expired.
    Valid(T),
    /// It opened, and its expiry has passed.
    Expired,
    /// It is too long, was altered, was sealed under another secret or salt, or is not a
    /// sealed value of this kind.
    Invalid,
}

/// Seals `value` with `secret` and `salt`, to open until `expires_at`.
pub(crate) fn seal<T: Serialize>(
    secret: &Secret,
    salt: &[u8],
    value: T,
    expires_at: UnixTime,
    iv: [u8; SEAL_IV_LEN],
) -> Result<String, serde_json::Error> {
    let plaintext = serde_json::to_vec(&Envelope {
        value,
        exp: expires_at.as_secs(),
    })?;
    let key = JweKey::derive(secret.expose().as_bytes(), salt);
    Ok(jwe::encrypt(&key, &plaintext, iv))
}

/// Opens `sealed` (at most `max_len` bytes) with any of `secrets` and `salt`, at `now`.
pub(crate) fn open<T: DeserializeOwned>(
    secrets: &[Secret],
    salt: &[u8],
    sealed: &str,
    max_len: usize,
    now: UnixTime,
) -> Opened<T> {
    if sealed.len() > max_len {
        return Opened::Invalid;
    }
    let keys: Vec<JweKey> = secrets
        .iter()
        .map(|s| JweKey::derive(s.expose().as_bytes(), salt))
        .collect();
    let Ok(plaintext) = jwe::decrypt(&keys, sealed) else {
        return Opened::Invalid;
    };
    match serde_json::from_slice::<Envelope<T>>(&plaintext) {
        Ok(envelope) if now.as_secs() >= envelope.exp => Opened::Expired,
        Ok(envelope) => Opened::Valid(envelope.value),
        Err(_) => Opened::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Value {
        handle: String,
    }

    fn secret(s: &str) -> Secret {
        Secret::new(s)
    }

    #[test]
    fn opens_until_its_expiry_and_never_under_another_salt_or_after_tampering() {
        let (a, b) = (
            secret("a-first-secret-of-at-least-32-bytes!"),
            secret("a-second-secret-of-at-least-32-bytes"),
        );
        let value = Value { handle: "h".into() };
        let sealed = seal(&a, b"_salt_a", &value, UnixTime::from_secs(100), [7; 16]).unwrap();
        let open_at = |secrets: &[Secret], salt: &[u8], token: &str, now: u64| {
            open::<Value>(secrets, salt, token, 4096, UnixTime::from_secs(now))
        };
        assert_eq!(
            open_at(&[b.clone(), a.clone()], b"_salt_a", &sealed, 99),
            Opened::Valid(value)
        );
        assert_eq!(
            open_at(std::slice::from_ref(&a), b"_salt_a", &sealed, 100),
            Opened::Expired
        );
        assert_eq!(
            open_at(std::slice::from_ref(&a), b"_salt_b", &sealed, 99),
            Opened::Invalid
        );
        assert_eq!(open_at(&[b], b"_salt_a", &sealed, 99), Opened::Invalid);
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(
            open_at(std::slice::from_ref(&a), b"_salt_a", &tampered, 99),
            Opened::Invalid
        );
        assert_eq!(
            open::<Value>(
                &[a],
                b"_salt_a",
                &sealed,
                sealed.len() - 1,
                UnixTime::from_secs(99)
            ),
            Opened::Invalid
        );
    }
}
