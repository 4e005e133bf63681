//! A redacting newtype for tokens and secrets: logs and errors never show one.
//!
//! Every access token, refresh token, ID token, client secret and cookie value the SDK holds is
//! a [`Secret`]: its `Debug` output is `Secret([redacted])`, it has no `Display`, and reading it
//! takes an explicit call to [`Secret::expose`]. It serialises transparently, so sessions keep
//! their JSON shape.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A string that must never appear in logs, `Debug` output or error messages.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The wrapped value. Call sites that use this are the places a token leaves the SDK.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> String {
        self.0
    }

    /// Whether the value is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("super-secret-refresh-token");
        let out = format!("{s:?} {:?}", Some(&s));
        assert!(!out.contains("super-secret"), "{out}");
    }

    #[test]
    fn serialises_as_a_plain_string() {
        let s = Secret::new("abc");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"abc\"");
        let back: Secret = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(back.expose(), "abc");
    }
}
