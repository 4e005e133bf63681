//! Ending stateless sessions: the revocation list's decisions.
//!
//! A cookie session lives in the browser; deleting its cookie at logout does not end a copy
//! taken before (or a refresh in flight that writes it back), and a back-channel logout has
//! no cookie to delete at all. So the cookie store keeps a list of ended sessions and users:
//! logout records the session's key, a back-channel logout the `sid` (or the user, for a
//! token with only `sub`), each until every session it can match has expired anyway. A
//! session whose keys are on the list is no session.
//!
//! These functions decide the keys and the matching; the list itself (in the process, or in
//! Redis so every instance sees it) only stores what they say.

use super::{SessionLifetime, StateData};
use crate::jose::claims::LogoutTokenClaims;
use crate::time::UnixTime;
use sha2::{Digest, Sha256};

/// One entry of a revocation list: sessions matching `key` created at or before
/// `created_until` are ended; the entry can be forgotten after `keep_until`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// What it matches (see [`session_keys`]). It contains the issuer, `sid` or `sub` in
    /// clear: a list kept outside the process stores a hash of it ([`hashed_key`]).
    pub key: String,
    /// Sessions created after this instant are not ended by it (a later login).
    pub created_until: UnixTime,
    /// When every session it can match has expired: the entry may be dropped then.
    pub keep_until: UnixTime,
}

/// A key as a list outside the process stores it: its SHA-256, in hex (no user id, `sid` or
/// issuer in clear).
pub fn hashed_key(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// Keys join their parts with NUL, which no issuer, `sid` or `sub` contains: the parts cannot
// run into each other. They are built on every cookie-session read, so they are plain strings
// (hashing is left to lists that store them elsewhere).
fn sid_key(iss: &str, sid: &str) -> String {
    format!("sid\0{iss}\0{sid}")
}

/// A session of one Auth0 session and one user: what a logout token carrying both `sid` and
/// `sub` ends (only sessions matching both, Back-Channel Logout 1.0 §2.6).
fn sid_user_key(iss: &str, sid: &str, sub: &str) -> String {
    format!("sid+sub\0{iss}\0{sid}\0{sub}")
}

fn user_key(iss: &str, sub: &str) -> String {
    format!("sub\0{iss}\0{sub}")
}

/// The keys a session is looked up by: its session (the `sid`, or for an ID token without
/// one its user and creation time), its `sid` with its user, and its user.
pub fn session_keys(state: &StateData) -> Vec<String> {
    let iss = state.iss().unwrap_or("");
    let mut keys = Vec::with_capacity(3);
    let sid = state.internal.sid.as_str();
    if sid.is_empty() {
        keys.push(format!(
            "session\0{iss}\0{}\0{}",
            state.sub().unwrap_or(""),
            state.internal.created_at
        ));
    } else {
        keys.push(sid_key(iss, sid));
    }
    if let Some(sub) = state.sub() {
        if !sid.is_empty() {
            keys.push(sid_user_key(iss, sid, sub));
        }
        keys.push(user_key(iss, sub));
    }
    keys
}

/// The entry a logout records: this session, until its absolute expiry.
pub fn for_logout(state: &StateData, lifetime: &SessionLifetime) -> Revocation {
    let created = UnixTime::from_secs(state.internal.created_at);
    Revocation {
        key: session_keys(state).swap_remove(0),
        created_until: UnixTime::from_secs(u64::MAX),
        keep_until: created + lifetime.absolute,
    }
}

/// The entry a verified back-channel logout token records at `now`: its `sid` (every
/// session of that Auth0 session; with a `sub` too, only those of that user, as
/// `logout::logout_token_selects` decides for stores that hold sessions), else its `sub` (every session of that user created until now), until
/// every session it can match has expired.
pub fn for_logout_token(
    claims: &LogoutTokenClaims,
    now: UnixTime,
    lifetime: &SessionLifetime,
) -> Option<Revocation> {
    let keep_until = now + lifetime.absolute;
    match (&claims.sid, &claims.sub) {
        (Some(sid), Some(sub)) if !sid.is_empty() && !sub.is_empty() => Some(Revocation {
            key: sid_user_key(&claims.iss, sid, sub),
            created_until: UnixTime::from_secs(u64::MAX),
            keep_until,
        }),
        (Some(sid), _) if !sid.is_empty() => Some(Revocation {
            key: sid_key(&claims.iss, sid),
            created_until: UnixTime::from_secs(u64::MAX),
            keep_until,
        }),
        (_, Some(sub)) if !sub.is_empty() => Some(Revocation {
            key: user_key(&claims.iss, sub),
            created_until: now,
            keep_until,
        }),
        _ => None,
    }
}

/// Whether a session is ended, given what the list holds for each of its
/// [`session_keys`] (`created_until` of the entry, or `None`).
pub fn is_revoked(state: &StateData, found: &[Option<UnixTime>]) -> bool {
    let created = UnixTime::from_secs(state.internal.created_at);
    found.iter().flatten().any(|until| created <= *until)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn session(sid: &str, sub: &str, created_at: u64) -> StateData {
        let mut s = StateData {
            user: json!({"sub": sub, "iss": "https://issuer/"})
                .as_object()
                .cloned(),
            ..Default::default()
        };
        s.internal.sid = sid.into();
        s.internal.created_at = created_at;
        s
    }

    fn found(state: &StateData, list: &[Revocation]) -> Vec<Option<UnixTime>> {
        session_keys(state)
            .iter()
            .map(|k| list.iter().find(|r| &r.key == k).map(|r| r.created_until))
            .collect()
    }

    #[test]
    fn a_logout_ends_that_session_and_no_other() {
        let lifetime = SessionLifetime::default();
        let a = session("sid-a", "u1", 100);
        let b = session("sid-b", "u1", 200);
        let list = [for_logout(&a, &lifetime)];
        assert!(is_revoked(&a, &found(&a, &list)));
        assert!(!is_revoked(&b, &found(&b, &list)));
        assert_eq!(
            list[0].keep_until,
            UnixTime::from_secs(100) + lifetime.absolute
        );
        // Without a sid, the session is its user and creation time.
        let c = session("", "u1", 300);
        let d = session("", "u1", 301);
        let list = [for_logout(&c, &lifetime)];
        assert!(is_revoked(&c, &found(&c, &list)));
        assert!(!is_revoked(&d, &found(&d, &list)));
    }

    #[test]
    fn a_logout_token_by_sub_ends_the_users_earlier_sessions_only() {
        let lifetime = SessionLifetime::default();
        let claims = LogoutTokenClaims {
            iss: "https://issuer/".into(),
            sid: None,
            sub: Some("u1".into()),
        };
        let r = for_logout_token(&claims, UnixTime::from_secs(500), &lifetime).unwrap();
        let list = [r];
        let before = session("sid-a", "u1", 400);
        let after = session("sid-b", "u1", 600);
        let other = session("sid-c", "u2", 400);
        assert!(is_revoked(&before, &found(&before, &list)));
        assert!(!is_revoked(&after, &found(&after, &list)));
        assert!(!is_revoked(&other, &found(&other, &list)));
    }

    #[test]
    fn a_logout_token_by_sid_ends_that_session_of_that_issuer() {
        let lifetime = SessionLifetime::default();
        let claims = LogoutTokenClaims {
            iss: "https://issuer/".into(),
            sid: Some("sid-a".into()),
            sub: Some("u1".into()),
        };
        let list = [for_logout_token(&claims, UnixTime::from_secs(500), &lifetime).unwrap()];
        let a = session("sid-a", "u1", 900);
        assert!(is_revoked(&a, &found(&a, &list)));
        let mut foreign = a.clone();
        foreign
            .user
            .as_mut()
            .unwrap()
            .insert("iss".into(), json!("https://other/"));
        assert!(!is_revoked(&foreign, &found(&foreign, &list)));
        let hashed = session_keys(&a)
            .iter()
            .map(|k| hashed_key(k))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            !hashed.contains("u1") && !hashed.contains("sid-a"),
            "{hashed}"
        );
    }

    #[test]
    fn a_logout_token_with_sid_and_sub_ends_only_the_session_matching_both() {
        let lifetime = SessionLifetime::default();
        let claims = LogoutTokenClaims {
            iss: "https://issuer/".into(),
            sid: Some("sid-a".into()),
            sub: Some("u1".into()),
        };
        let list = [for_logout_token(&claims, UnixTime::from_secs(500), &lifetime).unwrap()];
        let both = session("sid-a", "u1", 400);
        let other_user = session("sid-a", "u2", 400);
        assert!(is_revoked(&both, &found(&both, &list)));
        assert!(!is_revoked(&other_user, &found(&other_user, &list)));
        // A token with the sid alone ends that session whoever it belongs to.
        let sid_only = LogoutTokenClaims {
            sub: None,
            ..claims
        };
        let list = [for_logout_token(&sid_only, UnixTime::from_secs(500), &lifetime).unwrap()];
        assert!(is_revoked(&other_user, &found(&other_user, &list)));
    }
}
