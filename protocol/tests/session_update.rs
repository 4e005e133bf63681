//! Properties of update-only saves (`SessionUpdate`): what concurrent refreshes of one session
//! leave in the store, whatever order their saves land in. They are the integrity invariants
//! read as the contract the stores execute: a deleted or replaced session is never written
//! (I2), concurrent saves all land (I3), and the session never ends up with a refresh token
//! that was already spent (I1).

use auth0_server_protocol::access_token::apply_refresh;
use auth0_server_protocol::secret::Secret;
use auth0_server_protocol::session::{
    Merged, SaveFailed, SessionUpdate, StateData, TokenSet, UpdateNext, Updated, after_update,
};
use auth0_server_protocol::time::UnixTime;
use auth0_server_protocol::token_endpoint::TokenResponse;
use proptest::prelude::*;

const NOW: u64 = 1_800_000_000;
const AUDIENCES: [&str; 3] = ["default", "https://a/", "https://b/"];

fn base(rt: &str, sets: Vec<TokenSet>) -> StateData {
    let mut s = StateData {
        refresh_token: Some(Secret::new(rt)),
        token_sets: sets,
        ..Default::default()
    };
    s.internal.sid = "sid-1".into();
    s.internal.created_at = NOW - 100;
    s
}

fn response(at: &str, rt: Option<&str>, expires_in: u64) -> TokenResponse {
    TokenResponse {
        access_token: Secret::new(at),
        expires_in: Some(expires_in),
        scope: None,
        refresh_token: rt.map(Secret::new),
        id_token: None,
        token_type: Some("Bearer".into()),
        authorization_details: None,
    }
}

/// A refresh for `audience` of the session `read`, spending `spent` (its token, then each
/// rotation followed) and answered with `answer`: the update it hands the store.
fn refresh(
    read: &StateData,
    spent: &[&str],
    audience: &str,
    answer: &TokenResponse,
) -> SessionUpdate {
    let mut after = read.clone();
    after.refresh_token = spent.last().map(|t| Secret::new(*t));
    apply_refresh(&mut after, audience, None, answer, UnixTime::from_secs(NOW)).expect("applies");
    let spent: Vec<Secret> = spent.iter().map(|t| Secret::new(*t)).collect();
    SessionUpdate::between(read, &after, &spent)
}

fn applied(update: &SessionUpdate, current: StateData) -> StateData {
    match update.apply(current) {
        Merged::Updated(s) => s,
        Merged::OtherSession => panic!("the update is for another session"),
    }
}

fn token_for<'a>(s: &'a StateData, audience: &str) -> Option<&'a str> {
    s.token_sets
        .iter()
        .find(|t| t.audience == audience)
        .map(|t| t.access_token.expose())
}

proptest! {
    /// Applied to the session it was computed from, an update gives what the operation
    /// computed: an uncontended update-only save is an ordinary save.
    #[test]
    fn alone_an_update_is_the_operations_session(
        aud in prop::sample::select(AUDIENCES.to_vec()),
        rotates in any::<bool>(),
        expires_in in 1u64..100_000,
    ) {
        let read = base("rt-a", vec![]);
        let answer = response("at-new", rotates.then_some("rt-b"), expires_in);
        let mut after = read.clone();
        apply_refresh(&mut after, aud, None, &answer, UnixTime::from_secs(NOW)).unwrap();
        let update = SessionUpdate::between(&read, &after, &[Secret::new("rt-a")]);
        prop_assert_eq!(applied(&update, read), after);
    }

    /// I3: two refreshes for two audiences that read the same session both end up stored,
    /// whichever save lands first.
    #[test]
    fn concurrent_refreshes_for_two_audiences_both_land(
        first in 0usize..3, second in 0usize..3, x_first in any::<bool>(),
    ) {
        prop_assume!(first != second);
        let read = base("rt-a", vec![]);
        let x = refresh(&read, &["rt-a"], AUDIENCES[first], &response("at-x", None, 600));
        let y = refresh(&read, &["rt-a"], AUDIENCES[second], &response("at-y", None, 600));
        let (a, b) = if x_first { (&x, &y) } else { (&y, &x) };
        let stored = applied(b, applied(a, read));
        prop_assert_eq!(token_for(&stored, AUDIENCES[first]), Some("at-x"));
        prop_assert_eq!(token_for(&stored, AUDIENCES[second]), Some("at-y"));
    }

    /// I1: a chain of rotations A→B (request X) then B→C (request Y, which followed X's
    /// rotation) leaves C whatever order the two saves land in; a replaced token is never put
    /// back.
    #[test]
    fn a_rotated_away_token_is_never_put_back(x_first in any::<bool>(), aud_x in 0usize..3, aud_y in 0usize..3) {
        let read = base("rt-a", vec![]);
        let x = refresh(&read, &["rt-a"], AUDIENCES[aud_x], &response("at-x", Some("rt-b"), 600));
        let y = refresh(&read, &["rt-a", "rt-b"], AUDIENCES[aud_y], &response("at-y", Some("rt-c"), 600));
        let (a, b) = if x_first { (&x, &y) } else { (&y, &x) };
        let stored = applied(b, applied(a, read));
        prop_assert_eq!(stored.refresh_token.as_ref().map(Secret::expose), Some("rt-c"));
    }

    /// I2: an update never lands on another session (a later login, even of the same user),
    /// so a refresh in flight across a logout and a new login leaves the new session alone.
    #[test]
    fn an_update_never_writes_another_session(created_later in 1u64..1_000, other_sid in any::<bool>()) {
        let read = base("rt-a", vec![]);
        let update = refresh(&read, &["rt-a"], "default", &response("at", Some("rt-b"), 600));
        let mut other = base("rt-z", vec![]);
        if other_sid {
            other.internal.sid = "sid-2".into();
        } else {
            other.internal.created_at += created_later;
        }
        prop_assert_eq!(update.apply(other), Merged::OtherSession);
    }

    /// A token set the store already holds for the same audience and scope that expires later
    /// is newer than the update's: it stays.
    #[test]
    fn a_fresher_stored_token_set_is_kept(extra in 1u64..10_000) {
        let read = base("rt-a", vec![]);
        let update = refresh(&read, &["rt-a"], "https://a/", &response("at-old", None, 600));
        let mut current = read.clone();
        current.token_sets.push(TokenSet {
            audience: "https://a/".into(),
            access_token: Secret::new("at-fresher"),
            scope: None,
            expires_at: NOW + 600 + extra,
            requested_scope: None,
            token_type: Default::default(),
        });
        let stored = applied(&update, current);
        prop_assert_eq!(token_for(&stored, "https://a/"), Some("at-fresher"));
        prop_assert_eq!(stored.token_sets.len(), 1);
    }

    /// Applying an update twice is applying it once (a store may retry a write).
    #[test]
    fn updates_are_idempotent(aud in 0usize..3, rotates in any::<bool>()) {
        let read = base("rt-a", vec![]);
        let update = refresh(&read, &["rt-a"], AUDIENCES[aud], &response("at", rotates.then_some("rt-b"), 600));
        let once = applied(&update, read);
        prop_assert_eq!(applied(&update, once.clone()), once);
    }
}

/// I4: when the store fails after a rotation, the operation keeps the new refresh token in
/// the process for every token it replaces, and reports `session_not_saved`.
#[test]
fn a_failed_save_after_a_rotation_keeps_the_new_token() {
    let read = base("rt-a", vec![]);
    let update = refresh(
        &read,
        &["rt-a", "rt-b"],
        "default",
        &response("at", Some("rt-c"), 600),
    );
    let failed = SaveFailed {
        message: "redis is down".into(),
    };
    match after_update(&update, Err(failed)) {
        UpdateNext::Failed {
            keep: Some(effect),
            refresh_token_kept: true,
            reason,
        } => {
            assert_eq!(reason, "redis is down");
            let shown = format!("{effect:?}");
            assert!(shown.contains("KeepRotation") && !shown.contains("rt-c"));
        }
        other => panic!("expected the rotation kept, got {other:?}"),
    }
    let no_rotation = refresh(&read, &["rt-a"], "default", &response("at", None, 600));
    let failed = SaveFailed {
        message: "x".into(),
    };
    assert!(matches!(
        after_update(&no_rotation, Err(failed)),
        UpdateNext::Failed {
            keep: None,
            refresh_token_kept: false,
            ..
        }
    ));
    assert!(matches!(
        after_update(&update, Ok(Updated::Gone)),
        UpdateNext::Gone
    ));
}

// --- the cookie budget (I5) --------------------------------------------------------------------

mod budget {
    use super::*;
    use auth0_server_protocol::session::{ConnectionTokenSet, fit_within};

    fn size(s: &StateData) -> usize {
        s.to_json().len()
    }

    fn arb_session() -> impl Strategy<Value = StateData> {
        (
            prop::collection::vec((0u64..200, 1usize..400), 0..12),
            prop::collection::vec((0u64..200, 1usize..400), 0..4),
            0usize..600,
        )
            .prop_map(|(sets, conns, id_len)| {
                let mut s = base("rt-a", vec![]);
                s.id_token = Some(Secret::new("i".repeat(id_len)));
                for (i, (exp, len)) in sets.into_iter().enumerate() {
                    s.token_sets.push(TokenSet {
                        audience: format!("https://api-{i}/"),
                        access_token: Secret::new("a".repeat(len)),
                        scope: None,
                        expires_at: NOW - 100 + exp,
                        requested_scope: None,
                        token_type: Default::default(),
                    });
                }
                for (i, (exp, len)) in conns.into_iter().enumerate() {
                    s.connection_token_sets.push(ConnectionTokenSet {
                        connection: format!("conn-{i}"),
                        login_hint: None,
                        access_token: Secret::new("c".repeat(len)),
                        scope: None,
                        expires_at: NOW - 100 + exp,
                    });
                }
                s
            })
    }

    proptest! {
        /// What `fit_within` returns fits; it never touches the refresh token, ID token, user or
        /// anything but cached tokens; it refuses only a session whose identity alone is too
        /// large; and what it evicts is expired or expires no later than anything it keeps.
        #[test]
        fn eviction_keeps_the_identity_and_evicts_the_oldest_first(s in arb_session(), budget in 200usize..6000) {
            let fits = |x: &StateData| size(x) <= budget;
            let bare = StateData { token_sets: vec![], connection_token_sets: vec![], ..s.clone() };
            match fit_within(s.clone(), UnixTime::from_secs(NOW), fits) {
                None => prop_assert!(!fits(&bare)),
                Some(kept) => {
                    prop_assert!(fits(&kept));
                    prop_assert_eq!(&kept.refresh_token, &s.refresh_token);
                    prop_assert_eq!(&kept.id_token, &s.id_token);
                    prop_assert_eq!(&kept.user, &s.user);
                    prop_assert_eq!(&kept.internal, &s.internal);
                    if fits(&s) {
                        prop_assert_eq!(&kept, &s, "a session that fits is left alone");
                    }
                    let kept_min = kept.token_sets.iter().map(|t| t.expires_at)
                        .chain(kept.connection_token_sets.iter().map(|t| t.expires_at)).min();
                    for t in &s.token_sets {
                        if !kept.token_sets.contains(t) {
                            prop_assert!(t.expires_at <= NOW || kept_min.is_none_or(|m| t.expires_at <= m));
                        }
                    }
                    for t in &s.connection_token_sets {
                        if !kept.connection_token_sets.contains(t) {
                            prop_assert!(t.expires_at <= NOW || kept_min.is_none_or(|m| t.expires_at <= m));
                        }
                    }
                }
            }
        }
    }
}

/// Finding F5 of the simulation: a late save of a broad-scope token set does not drop a
/// narrower set of the same API that another request obtained (and saved) after it.
#[test]
fn a_late_broad_save_keeps_a_newer_narrower_token_set() {
    let read = base("rt-a", vec![]);
    let mut after = read.clone();
    apply_refresh(
        &mut after,
        "https://b/",
        Some("read write"),
        &response("at-broad-older", None, 600),
        UnixTime::from_secs(NOW),
    )
    .unwrap();
    let late = SessionUpdate::between(&read, &after, &[Secret::new("rt-a")]);
    let mut current = read.clone();
    current.token_sets.push(TokenSet {
        audience: "https://b/".into(),
        access_token: Secret::new("at-narrow-newer"),
        scope: Some("read".into()),
        expires_at: NOW + 900,
        requested_scope: None,
        token_type: Default::default(),
    });
    let stored = applied(&late, current);
    let tokens: Vec<&str> = stored
        .token_sets
        .iter()
        .map(|s| s.access_token.expose())
        .collect();
    assert!(tokens.contains(&"at-narrow-newer"), "{tokens:?}");
    assert!(tokens.contains(&"at-broad-older"), "{tokens:?}");
}
