//! Update-only saves: what an operation changed in a session, applied to whatever the store
//! holds *now*.
//!
//! A refresh reads the session, waits for the token endpoint, and saves. Meanwhile the user
//! may have logged out (the session is gone), another request may have saved a token set for
//! another audience, or another request may already have rotated the refresh token further.
//! Writing back the session as it was read would re-create a logged-out session, drop the
//! other request's token set, or put a rotated-away refresh token back. So an operation that
//! updates an existing session does not save a whole session: it hands the store a
//! [`SessionUpdate`] (what it changed, computed by [`SessionUpdate::between`]), and the store
//! applies it with [`SessionUpdate::apply`] to the session it holds at that moment, atomically
//! where it can (under the memory store's lock, or as a compare-and-set in Redis). A session
//! that is no longer there stays gone ([`Merged::OtherSession`] or no session at all is
//! [`Updated::Gone`]).

use super::{ConnectionTokenSet, StateData, TokenSet, UserClaims, store_token_set};
use crate::secret::Secret;
use crate::token_response::refresh_token_hash;
use std::fmt;

/// Which session an update belongs to: the session's `sid` and creation time. A session
/// created by a later login (even of the same user) is another session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionIdentity {
    /// The Auth0 session id (`sid` claim), empty when the ID token had none.
    pub sid: String,
    /// When the session was created (Unix seconds).
    pub created_at: u64,
}

impl SessionIdentity {
    /// The identity of a stored session.
    pub fn of(state: &StateData) -> Self {
        SessionIdentity {
            sid: state.internal.sid.clone(),
            created_at: state.internal.created_at,
        }
    }
}

/// What an operation changed in a session, to be applied to the session the store holds now.
///
/// Build it with [`SessionUpdate::between`] from the session as the operation read it and as
/// it left it; a store applies it with [`SessionUpdate::apply`].
#[derive(Clone, PartialEq)]
pub struct SessionUpdate {
    /// The session the operation read.
    pub identity: SessionIdentity,
    /// SHA-256 hashes of the refresh tokens the operation spent and that its new refresh
    /// token supersedes (the session's, then each rotation it followed).
    replaced_refresh_tokens: Vec<String>,
    /// The refresh token the operation ended with, when it differs from the one it read.
    refresh_token: Option<Secret>,
    /// A new ID token and the user claims it carries.
    id_token: Option<(Secret, Option<UserClaims>)>,
    /// Token sets the operation obtained.
    token_sets: Vec<TokenSet>,
    /// Token sets the operation read and replaced (superseded by what it obtained).
    replaced_token_sets: Vec<TokenSet>,
    /// Connection token sets the operation obtained.
    connection_token_sets: Vec<ConnectionTokenSet>,
}

impl fmt::Debug for SessionUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionUpdate")
            .field("identity", &self.identity)
            .field("rotates_refresh_token", &self.refresh_token.is_some())
            .field("new_id_token", &self.id_token.is_some())
            .field("token_sets", &self.token_sets.len())
            .field("connection_token_sets", &self.connection_token_sets.len())
            .finish()
    }
}

/// What [`SessionUpdate::apply`] made of the session a store holds.
// Returned once per save and consumed at once: boxing the session would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Merged {
    /// The session with the update applied: write it.
    Updated(StateData),
    /// The store holds another session (a later login): leave it alone; for the operation the
    /// session it read is gone.
    OtherSession,
}

/// What a store did with an update-only save.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Updated {
    /// The update was applied to the stored session.
    Saved,
    /// There is no such session any more (logged out, ended by back-channel logout, expired,
    /// or replaced by another login): nothing was written.
    Gone,
}

/// An update-only save failed in the store; the message is the store's (which never carries
/// session contents or tokens).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SaveFailed {
    /// What the store reported.
    pub message: String,
}

impl SessionUpdate {
    /// What an operation changed: `before` is the session as it read it, `after` as it left
    /// it, and `spent` the refresh tokens it sent to the token endpoint, in order (the
    /// session's, then each rotated token it followed).
    pub fn between(before: &StateData, after: &StateData, spent: &[Secret]) -> Self {
        let refresh_token = after
            .refresh_token
            .as_ref()
            .filter(|rt| before.refresh_token.as_ref() != Some(*rt))
            .cloned();
        let mut replaced: Vec<String> = Vec::new();
        if refresh_token.is_some() {
            for rt in before.refresh_token.iter().chain(spent) {
                if Some(rt) != after.refresh_token.as_ref() {
                    let hash = refresh_token_hash(rt);
                    if !replaced.contains(&hash) {
                        replaced.push(hash);
                    }
                }
            }
        }
        let id_token = match &after.id_token {
            Some(id) if before.id_token.as_ref() != Some(id) => {
                Some((id.clone(), after.user.clone()))
            }
            _ => None,
        };
        SessionUpdate {
            identity: SessionIdentity::of(before),
            replaced_refresh_tokens: replaced,
            refresh_token,
            id_token,
            token_sets: after
                .token_sets
                .iter()
                .filter(|s| !before.token_sets.contains(s))
                .cloned()
                .collect(),
            replaced_token_sets: before
                .token_sets
                .iter()
                .filter(|s| !after.token_sets.contains(s))
                .cloned()
                .collect(),
            connection_token_sets: after
                .connection_token_sets
                .iter()
                .filter(|s| !before.connection_token_sets.contains(s))
                .cloned()
                .collect(),
        }
    }

    /// Whether the update carries a refresh token that replaces a spent one (the token
    /// endpoint rotated it): losing such an update would leave the session with a token the
    /// server no longer accepts.
    pub fn rotates_refresh_token(&self) -> bool {
        self.refresh_token.is_some()
    }

    /// The new refresh token and the hashes of the tokens it replaces, when the update rotates.
    pub fn rotation(&self) -> Option<(&Secret, &[String])> {
        self.refresh_token
            .as_ref()
            .map(|rt| (rt, self.replaced_refresh_tokens.as_slice()))
    }

    /// The same update reduced to its identity and rotation (what [`after_update`] and
    /// [`rotation`](Self::rotation) read): what an operation keeps while its store applies the
    /// whole update, so the token sets and user claims are not copied twice.
    pub(crate) fn rotation_only(&self) -> SessionUpdate {
        SessionUpdate {
            identity: self.identity.clone(),
            replaced_refresh_tokens: self.replaced_refresh_tokens.clone(),
            refresh_token: self.refresh_token.clone(),
            id_token: None,
            token_sets: Vec::new(),
            replaced_token_sets: Vec::new(),
            connection_token_sets: Vec::new(),
        }
    }

    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self.refresh_token.is_none()
            && self.id_token.is_none()
            && self.token_sets.is_empty()
            && self.connection_token_sets.is_empty()
    }

    /// Applies the update to the session a store holds now.
    ///
    /// * Another session (different `sid` or creation time) is left alone.
    /// * The new refresh token replaces the stored one only when the stored one is a token
    ///   this operation spent: a token another request rotated further is newer and stays.
    /// * A new ID token (and its user claims) is applied only when the session ends up with
    ///   this operation's refresh token (or none rotated).
    /// * Token sets are stored as a refresh stores them (superseding the sets of their
    ///   audience they cover), unless the session already holds a set for the same audience
    ///   and scope that expires later; connection token sets likewise per connection and
    ///   login hint. Everything else (other audiences' sets, `internal`) stays as stored.
    pub fn apply(&self, mut current: StateData) -> Merged {
        if SessionIdentity::of(&current) != self.identity {
            return Merged::OtherSession;
        }
        let mut ours = true;
        if let Some(rt) = &self.refresh_token {
            let stored = current.refresh_token.as_ref().map(refresh_token_hash);
            match stored {
                Some(h) if self.replaced_refresh_tokens.contains(&h) => {
                    current.refresh_token = Some(rt.clone());
                }
                None => current.refresh_token = Some(rt.clone()),
                Some(_) => ours = current.refresh_token.as_ref() == Some(rt),
            }
        }
        if let (Some((id_token, user)), true) = (&self.id_token, ours) {
            current.id_token = Some(id_token.clone());
            if user.is_some() {
                current.user = user.clone();
            }
        }
        for set in &self.token_sets {
            let fresher = current.token_sets.iter().any(|s| {
                s.audience == set.audience
                    && crate::scope::same_set(s.matching_scope(), set.matching_scope())
                    && s.expires_at > set.expires_at
            });
            if !fresher {
                // A set of the same audience that this one supersedes by scope but that another
                // request saved meanwhile, and that expires no earlier, stays beside it; the
                // sets this operation read and replaced go.
                let newer: Vec<TokenSet> = current
                    .token_sets
                    .iter()
                    .filter(|s| {
                        s.audience == set.audience
                            && s.expires_at >= set.expires_at
                            && !self.replaced_token_sets.contains(s)
                    })
                    .cloned()
                    .collect();
                store_token_set(&mut current.token_sets, set.clone());
                for s in newer {
                    if !current.token_sets.contains(&s) {
                        current.token_sets.push(s);
                    }
                }
            }
        }
        for set in &self.connection_token_sets {
            let same = |s: &ConnectionTokenSet| {
                s.connection == set.connection && s.login_hint == set.login_hint
            };
            match current.connection_token_sets.iter_mut().find(|s| same(s)) {
                Some(existing) if existing.expires_at > set.expires_at => {}
                Some(existing) => *existing = set.clone(),
                None => current.connection_token_sets.push(set.clone()),
            }
        }
        Merged::Updated(current)
    }
}

/// A rotation the process keeps because the session holding the replaced refresh token
/// could not be saved: the lanes (hashes of the refresh tokens the operation spent) and the
/// token they were rotated to.
#[derive(Clone, Debug)]
pub struct KeepRotation {
    /// The lanes whose rotation is kept.
    pub lanes: Vec<String>,
    /// The refresh token they were rotated to.
    pub rotated_to: Secret,
}

/// What an operation does after an update-only save, decided by [`after_update`].
#[derive(Debug)]
pub enum UpdateNext {
    /// The session was updated: the operation succeeds.
    Saved,
    /// The session is gone: the operation fails with `missing_session`, and nothing it
    /// obtained is stored.
    Gone,
    /// The store failed: the operation fails with `session_not_saved`.
    Failed {
        /// When the update rotated the refresh token: the rotation to keep in the process
        /// (asked of the driver as `Effect::KeepRotation` before failing).
        keep: Option<KeepRotation>,
        /// Whether the rotated refresh token is kept.
        refresh_token_kept: bool,
        /// What the store reported.
        reason: String,
    },
}

/// Decides what follows an update-only save of `update` that ended with `outcome`.
pub fn after_update(update: &SessionUpdate, outcome: Result<Updated, SaveFailed>) -> UpdateNext {
    match outcome {
        Ok(Updated::Saved) => UpdateNext::Saved,
        Ok(Updated::Gone) => UpdateNext::Gone,
        Err(failed) => {
            let keep = update
                .rotation()
                .filter(|(_, lanes)| !lanes.is_empty())
                .map(|(to, lanes)| KeepRotation {
                    lanes: lanes.to_vec(),
                    rotated_to: to.clone(),
                });
            UpdateNext::Failed {
                refresh_token_kept: keep.is_some(),
                keep,
                reason: failed.message,
            }
        }
    }
}
