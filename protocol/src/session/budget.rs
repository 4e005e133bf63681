//! Keeping a session within a size budget (the cookie store's): which cached tokens go first.
//!
//! A cookie session carries every token set it ever cached. Before a save would exceed the
//! budget, [`fit_within`] evicts expired token sets and connection token sets, then the
//! least recently obtained ones (the soonest to expire first: a set obtained longer ago
//! expires sooner), one at a time, until the session fits. The refresh token, the ID token
//! and the user are never evicted: a session whose identity alone does not fit is refused
//! (which happens at login, when it is created, before any refresh token is rotated).

use super::StateData;
use crate::time::UnixTime;

/// Which cached token an eviction removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cached {
    TokenSet(usize),
    ConnectionTokenSet(usize),
}

/// The session, with as few cached tokens evicted as it takes to satisfy `fits`; `None` when
/// even without any cached token it does not fit (its identity is too large).
///
/// Expired sets go first (all of them, once eviction is needed), then the unexpired ones
/// that expire soonest. `fits` is called once per eviction, so a caller that can tell the
/// size cheaply should check the whole session itself first.
pub fn fit_within(
    mut state: StateData,
    now: UnixTime,
    fits: impl Fn(&StateData) -> bool,
) -> Option<StateData> {
    if fits(&state) {
        return Some(state);
    }
    let now = now.as_secs();
    state.token_sets.retain(|s| s.expires_at > now);
    state.connection_token_sets.retain(|s| s.expires_at > now);
    loop {
        if fits(&state) {
            return Some(state);
        }
        let soonest = state
            .token_sets
            .iter()
            .enumerate()
            .map(|(i, s)| (s.expires_at, Cached::TokenSet(i)))
            .chain(
                state
                    .connection_token_sets
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (s.expires_at, Cached::ConnectionTokenSet(i))),
            )
            .min_by_key(|(expires_at, _)| *expires_at)
            .map(|(_, which)| which);
        match soonest {
            Some(Cached::TokenSet(i)) => {
                state.token_sets.remove(i);
            }
            Some(Cached::ConnectionTokenSet(i)) => {
                state.connection_token_sets.remove(i);
            }
            None => return None,
        }
    }
}
