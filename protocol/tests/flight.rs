//! Properties of the single-flight and coordination decisions (`flight`): they read as the
//! contract the adapters execute.

use auth0_server_protocol::Secret;
use auth0_server_protocol::effect::Coalesce;
use auth0_server_protocol::flight::{
    Acquire, FailureKind, FlightView, MAX_POLL_DELAY, Poll, Publication, ROTATION_LIFETIME, Share,
    acquire, next_poll, remember_until, rotation_followed, rotation_lifetime, settle,
};
use auth0_server_protocol::time::UnixTime;
use auth0_server_protocol::token_endpoint::refresh_token_hash;
use proptest::prelude::*;
use std::time::Duration;

fn view() -> impl Strategy<Value = FlightView> {
    (
        proptest::option::of(0u64..200),
        any::<bool>(),
        proptest::option::of(0u64..200),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(remembered_until, in_flight, rotated_at, rotation_kept, lane_busy)| FlightView {
                remembered_until: remembered_until.map(UnixTime::from_secs),
                in_flight,
                rotated_at: rotated_at.map(UnixTime::from_secs),
                rotation_kept,
                lane_busy,
            },
        )
}

fn response(status: u16, body: String) -> http::Response<Vec<u8>> {
    let mut r = http::Response::new(body.into_bytes());
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
    r
}

proptest! {
    /// The decision against a brute-force reading of the rules: a fresh remembered answer,
    /// else the same key in flight, else a fresh rotation, else a busy lane, else lead.
    #[test]
    fn acquire_follows_the_precedence_of_the_rules(v in view(), now in 0u64..300, grace in 0u64..100) {
        let grace_d = Duration::from_secs(grace);
        // A rotation is followed for days (the session's lifetime), not seconds: within this
        // test's time range, always — unless remembering is disabled (zero grace) and it was
        // not kept after a failed save.
        let fresh = |at: Option<UnixTime>| at.is_some_and(|_| v.rotation_kept || grace > 0);
        let d = acquire(v, UnixTime::from_secs(now), grace_d);
        let remembered = v.remembered_until.is_some_and(|until| now < until.as_secs());
        let expected = if remembered {
            Acquire::Remembered
        } else if v.in_flight {
            Acquire::Wait
        } else if fresh(v.rotated_at) {
            Acquire::Rotated
        } else if v.lane_busy {
            Acquire::WaitLane
        } else {
            Acquire::Lead
        };
        prop_assert_eq!(d.action, expected);
        // Only what is stale is forgotten.
        prop_assert_eq!(d.forget_remembered, v.remembered_until.is_some() && !remembered);
        if d.forget_rotation {
            prop_assert!(v.rotated_at.is_some() && !fresh(v.rotated_at));
        }
    }

    /// Two requests of one key are never both sent, and a spent refresh token is never sent
    /// while its rotation is known: a caller leads only when nothing is in flight on its key or
    /// lane and no fresh rotation exists.
    #[test]
    fn a_caller_leads_only_when_nothing_shareable_exists(v in view(), now in 0u64..300, grace in 1u64..100) {
        let d = acquire(v, UnixTime::from_secs(now), Duration::from_secs(grace));
        if d.action == Acquire::Lead {
            prop_assert!(!v.in_flight && !v.lane_busy);
            prop_assert!(v.rotated_at.is_none());
        }
    }

    /// A rotation is followed for the session's lifetime, however short the grace window
    /// (a cancelled, unsaved or overwritten copy of the session may carry the replaced token
    /// for that long), and forgotten after it.
    #[test]
    fn a_rotation_is_followed_for_the_sessions_lifetime(
        kept in any::<bool>(),
        at in 0u64..1_000_000,
        grace in 1u64..3_600,
        age in 0u64..2_000_000,
    ) {
        let lifetime = ROTATION_LIFETIME.as_secs();
        let followed = rotation_followed(
            kept,
            UnixTime::from_secs(at),
            UnixTime::from_secs(at + age),
            Duration::from_secs(grace),
        );
        prop_assert_eq!(followed, age < lifetime);
        prop_assert_eq!(rotation_lifetime(Duration::from_secs(grace)), ROTATION_LIFETIME);
    }

    /// Zero grace follows no rotation (but one kept because its session could not be saved:
    /// that is not sharing, it is the only copy of the user's refresh token), and remembers
    /// nothing.
    #[test]
    fn zero_grace_shares_only_what_is_in_flight(v in view(), now in 0u64..300, at in 0u64..300, e in proptest::option::of(0u64..100)) {
        let d = acquire(v, UnixTime::from_secs(now), Duration::ZERO);
        prop_assert!(d.action != Acquire::Rotated || v.rotation_kept);
        let at = UnixTime::from_secs(at);
        prop_assert_eq!(remember_until(at, Duration::ZERO, e.map(Duration::from_secs)), at);
    }

    /// A remembered answer is served within the grace window and never past the expiry of the
    /// access token it carries.
    #[test]
    fn remembered_answers_are_never_served_past_their_expiry(
        at in 0u64..1000, grace in 0u64..120, expires_in in proptest::option::of(0u64..200), now in 0u64..1400,
    ) {
        let until = remember_until(UnixTime::from_secs(at), Duration::from_secs(grace), expires_in.map(Duration::from_secs));
        let view = FlightView { remembered_until: Some(until), ..FlightView::default() };
        if acquire(view, UnixTime::from_secs(now), Duration::from_secs(grace)).action == Acquire::Remembered {
            prop_assert!(now < at + grace);
            if let Some(e) = expires_in {
                prop_assert!(now < at + e);
            }
        }
    }

    /// A rotation is a successful token answer carrying a refresh token other than the one
    /// spent — nothing else, whatever the status and body.
    #[test]
    fn only_a_successful_answer_with_a_new_refresh_token_rotates(
        status in prop_oneof![Just(200u16), Just(201), Just(400), Just(401), Just(403), Just(500)],
        new_token in proptest::option::of("[a-z0-9-]{1,12}"),
        spent in "[a-z0-9-]{1,12}",
        remember in any::<bool>(),
    ) {
        let body = match &new_token {
            Some(t) => format!(r#"{{"access_token":"at","token_type":"Bearer","expires_in":60,"refresh_token":"{t}"}}"#),
            None => r#"{"access_token":"at","token_type":"Bearer","expires_in":60}"#.to_owned(),
        };
        let request = Coalesce {
            key: "k".into(),
            remember,
            lane: Some(refresh_token_hash(&Secret::new(spent.clone()))),
        };
        let s = settle(&request, &response(status, body));
        let expected = (200..300).contains(&status)
            && new_token.as_deref().is_some_and(|t| t != spent);
        prop_assert_eq!(s.rotated_to.is_some(), expected);
        if let (Some(to), Some(t)) = (&s.rotated_to, &new_token) {
            prop_assert_eq!(to.expose(), t.as_str());
        }
        let success = (200..300).contains(&status);
        prop_assert_eq!(
            s.share,
            match (success, remember) {
                (true, true) => Share::ForGraceWindow,
                (true, false) => Share::WaitersOnly,
                (false, _) => Share::FailureOnly,
            }
        );
    }

    /// Any body: settling never panics, and garbage is never remembered.
    #[test]
    fn settling_garbage_never_panics_nor_remembers(status in 100u16..600, body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let request = Coalesce { key: "k".into(), remember: true, lane: Some("l".into()) };
        let mut r = http::Response::new(body.clone());
        *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
        let s = settle(&request, &r);
        if s.share == Share::ForGraceWindow {
            prop_assert!(serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body).is_ok());
        }
    }

    /// The waiter's backoff: never past the timeout, never above the cap once started, never
    /// past a known lock expiry (plus 1 ms), and it gives up exactly when the time is spent.
    #[test]
    fn polling_is_bounded(
        first_ms in 1u64..50,
        expires_ms in proptest::option::of(1u64..500),
        waited_ms in 0u64..2000,
        timeout_ms in 1u64..2000,
    ) {
        let mut delay = Duration::from_millis(first_ms);
        let (waited, timeout) = (Duration::from_millis(waited_ms), Duration::from_millis(timeout_ms));
        match next_poll(&mut delay, expires_ms.map(Duration::from_millis), waited, timeout) {
            Poll::GiveUp => prop_assert!(waited >= timeout),
            Poll::After(d) => {
                prop_assert!(waited < timeout);
                prop_assert!(d <= timeout - waited);
                prop_assert!(d <= Duration::from_millis(first_ms));
                if let Some(e) = expires_ms {
                    prop_assert!(d <= Duration::from_millis(e + 1));
                }
                prop_assert!(delay <= MAX_POLL_DELAY.max(Duration::from_millis(first_ms)));
            }
        }
    }

    /// A publication decodes to itself for its own binding and to nothing for another; any
    /// bytes decode without panicking.
    #[test]
    fn publications_round_trip_for_their_binding_only(
        status in 100u16..1000,
        body in proptest::collection::vec(any::<u8>(), 0..64),
        at in any::<u64>(),
        ct in proptest::option::of("[a-z/+-]{1,20}"),
        message in ".{0,40}",
        binding in "[0-9a-f]{1,16}",
        garbage in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        for p in [
            Publication::Answer { status, content_type: ct.clone(), body: body.clone(), received_at: UnixTime::from_secs(at) },
            Publication::Failure { kind: FailureKind::Connect, message: message.clone() },
        ] {
            let bytes = p.encode(&binding);
            prop_assert_eq!(Publication::decode(&bytes, &binding), Some(p));
            prop_assert_eq!(Publication::decode(&bytes, &format!("{binding}x")), None);
        }
        let _ = Publication::decode(&garbage, &binding);
    }
}

mod pending_logins {
    use auth0_server_protocol::transaction::{MAX_PENDING_LOGINS, pending_logins_to_drop};
    use proptest::prelude::*;

    proptest! {
        /// At most MAX_PENDING_LOGINS - 1 others remain (room for the new login), the dropped
        /// ones are never younger than a kept one, and nothing is dropped below the bound.
        #[test]
        fn the_oldest_pending_logins_are_dropped_first(ages in proptest::collection::vec(proptest::option::of(0u64..1000), 0..12)) {
            let keys: Vec<String> = (0..ages.len()).map(|i| format!("_a0_tx.{i}")).collect();
            let pending: Vec<(&str, Option<u64>)> = keys.iter().map(String::as_str).zip(ages.iter().copied()).collect();
            let dropped = pending_logins_to_drop(&pending);
            let kept: Vec<_> = pending.iter().filter(|(k, _)| !dropped.contains(k)).collect();
            prop_assert_eq!(kept.len(), pending.len().min(MAX_PENDING_LOGINS - 1));
            for d in &dropped {
                let age = pending.iter().find(|(k, _)| k == d).map(|(_, a)| *a).unwrap();
                for (_, kept_age) in &kept {
                    prop_assert!(age <= *kept_age, "dropped {age:?} while keeping older {kept_age:?}");
                }
            }
        }
    }
}
