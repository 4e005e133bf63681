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

/// How many logins one browser may have pending at once: starting one more drops the oldest
/// (abandoned tabs, prefetches and bots must not grow the Cookie header without bound; a
/// browser sends about 8 KB of cookies before servers answer 431).
pub const MAX_PENDING_LOGINS: usize = 3;

/// Which pending logins to drop before a new one is stored: given the browser's other pending
/// logins as (key, created_at) pairs (`None` for one that cannot be read, dropped first), the
/// keys to remove so that at most `MAX_PENDING_LOGINS - 1` remain — the oldest go first, and a
/// younger login is never dropped while an older one stays.
pub fn pending_logins_to_drop<'a>(pending: &[(&'a str, Option<u64>)]) -> Vec<&'a str> {
    let keep = MAX_PENDING_LOGINS.saturating_sub(1);
    if pending.len() <= keep {
        return Vec::new();
    }
    let mut by_age: Vec<&(&str, Option<u64>)> = pending.iter().collect();
    // Unreadable first, then oldest; ties by key so the choice is deterministic.
    by_age.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)));
    by_age[..pending.len() - keep]
        .iter()
        .map(|(k, _)| *k)
        .collect()
}

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
    /// The `max_age` requested (seconds), when one was: the ID token's `auth_time` is then
    /// checked against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// When the login started (Unix seconds).
    #[serde(default)]
    pub created_at: u64,
    /// For an account-linking flow: link or unlink, and the user who started it. The
    /// callback then merges into that user's session instead of replacing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<AccountLink>,
    /// The custom domain the login was started on (the normalised origin), recorded by a
    /// client with a domain resolver: the callback must arrive on the same domain
    /// ([`crate::mcd`]). Absent without a resolver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// For a connected-account flow: the connect session and connection it completes
    /// ([`crate::my_account`]). A login callback never completes such a transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<PendingConnect>,
}

impl TransactionData {
    /// The transaction as a store writes it at `now`: started now when it has no start time
    /// (`created_at` 0). Every transaction store stamps what it writes with this.
    pub fn written_at(&self, now: crate::time::UnixTime) -> TransactionData {
        let mut tx = self.clone();
        if tx.created_at == 0 {
            tx.created_at = now.as_secs();
        }
        tx
    }
}

/// Whether a link flow adds or removes an identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkAction {
    /// Add the identity of `requested_connection` to the account (`link_account`).
    Link,
    /// Remove it (`unlink_account`).
    Unlink,
}

/// What a link transaction remembers: the action, and the user whose session started it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountLink {
    /// Link or unlink.
    pub action: LinkAction,
    /// The `sub` of the session that started the flow; the callback's ID token must name it.
    pub sub: String,
}

/// What a pending connection of the My Account API ([`crate::my_account`]) remembers in its
/// transaction, next to `state`, the PKCE verifier, the redirect URI and the application state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingConnect {
    /// The connect session Auth0 opened (`auth_session`).
    pub auth_session: Secret,
    /// The connection being connected.
    pub connection: String,
}
