//! The login transaction: what `start_interactive_login` remembers for the callback
//! (PKCE verifier, `state`, `nonce`, `app_state`), stored in the transaction store under a key derived from `state`, so two
//! logins in two tabs do not clobber each other.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// How long a login may take (pending logins are at most an hour old): every
/// transaction store forgets a transaction this long after its `created_at`.
pub const TRANSACTION_MAX_AGE: Duration = Duration::from_secs(3600);

/// Prefix of transaction keys: the key of a login is `_a0_tx.{state}`.
pub const TRANSACTION_KEY_PREFIX: &str = "_a0_tx.";

/// The transaction key for a `state` value.
pub fn transaction_key(state: &str) -> String {
    format!("{TRANSACTION_KEY_PREFIX}{state}")
}

/// An in-flight interactive login.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct TransactionData {
    /// The PKCE code verifier.
    #[serde(default)]
    pub code_verifier: Option<Secret>,
    /// The `state` sent to `/authorize`.
    #[serde(default)]
    pub state: Option<String>,
    /// The `nonce` sent to `/authorize`.
    #[serde(default)]
    pub nonce: Option<String>,
    /// The application's state, returned by `complete_interactive_login`.
    #[serde(default)]
    pub app_state: Option<Value>,
    /// The audience requested at login.
    #[serde(default)]
    pub audience: Option<String>,
    /// The scope requested at login.
    #[serde(default)]
    pub scope: Option<String>,
    /// The redirect URI sent to `/authorize` (re-sent at code exchange).
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// The organization requested, validated against the ID token.
    #[serde(default)]
    pub organization: Option<String>,
    /// When the login started (Unix seconds).
    #[serde(default)]
    pub created_at: u64,
}
