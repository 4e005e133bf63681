//! Unit tests of the cookie stores' decisions (the end-to-end tests are in
//! `tests/tests/cookie_store.rs`).

use super::*;
use crate::clock::Clock;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The wall clock, for store calls made outside a client (which would hand them its clock).
fn system_now() -> UnixTime {
    Clock::system().now()
}

const SECRET: &str = "unit-test-secret-unit-test-secret-0123";
const T0: u64 = 1_750_000_000;

fn clock() -> (Arc<AtomicU64>, Clock) {
    let now = Arc::new(AtomicU64::new(T0));
    let c = now.clone();
    (now, Clock::from_fn(move || c.load(Ordering::SeqCst)))
}

fn session() -> StateData {
    serde_json::from_str(r#"{"user":{"sub":"auth0|u"},"refresh_token":"rt"}"#).unwrap()
}

/// The request a browser would send back after `opts`'s Set-Cookie headers.
fn next_request(opts: &CookieOptions) -> CookieOptions {
    let mut pairs = Vec::new();
    for name in opts.cookie_names() {
        pairs.push(format!("{name}={}", opts.cookie(name).unwrap()));
    }
    let mut h = http::HeaderMap::new();
    if !pairs.is_empty() {
        h.insert(http::header::COOKIE, pairs.join("; ").parse().unwrap());
    }
    CookieOptions::from_request_headers(&h)
}

#[test]
fn max_age_is_the_earlier_of_inactivity_and_absolute_limits() {
    let (now, c) = clock();
    let store = CookieStateStore::builder_with_secrets([SECRET])
        .absolute_duration(Duration::from_secs(1000))
        .inactivity_duration(Duration::from_secs(300))
        .build()
        .unwrap();
    let mut o = CookieOptions::new();
    store.set(&session(), &mut o, c.now()).unwrap();
    let h = o.set_cookie_headers()[0].to_str().unwrap().to_owned();
    assert!(h.ends_with("Max-Age=300"), "{h}");
    // 900 s later (touching every 200 s), the absolute limit is closer than inactivity.
    let mut o = next_request(&o);
    for _ in 0..4 {
        now.fetch_add(200, Ordering::SeqCst);
        assert!(store.get(&mut o, c.now()).unwrap().is_some());
        o = next_request(&o);
    }
    now.fetch_add(100, Ordering::SeqCst);
    let mut o2 = o.clone();
    assert!(store.get(&mut o2, c.now()).unwrap().is_some());
    let h = o2.set_cookie_headers()[0].to_str().unwrap().to_owned();
    assert!(h.ends_with("Max-Age=100"), "{h}");
}

/// Issue 18: the cookie never outlives the IPSIE `session_expiry` ceiling (less the 30 s
/// leeway every store applies), whatever the inactivity and absolute limits allow.
#[test]
fn max_age_never_reaches_past_the_session_ceiling() {
    let (_now, c) = clock();
    let store = CookieStateStore::builder_with_secrets([SECRET])
        .absolute_duration(Duration::from_secs(1000))
        .inactivity_duration(Duration::from_secs(300))
        .build()
        .unwrap();
    let mut s = session();
    s.internal.session_expires_at = Some(c.now().as_secs() + 130);
    let mut o = CookieOptions::new();
    store.set(&s, &mut o, c.now()).unwrap();
    let h = o.set_cookie_headers()[0].to_str().unwrap().to_owned();
    assert!(h.ends_with("Max-Age=100"), "{h}");
}

#[test]
fn get_within_touch_interval_writes_nothing_after_it_rewrites() {
    let (now, c) = clock();
    let store = CookieStateStore::builder_with_secrets([SECRET])
        .build()
        .unwrap();
    let mut o = CookieOptions::new();
    store.set(&session(), &mut o, c.now()).unwrap();
    let mut req = next_request(&o);
    now.fetch_add(TOUCH_INTERVAL.as_secs(), Ordering::SeqCst);
    let s = store.get(&mut req, c.now()).unwrap().unwrap();
    assert!(req.set_cookie_headers().is_empty());
    assert_eq!(s.internal.last_active_at, Some(T0));
    assert_eq!(s.internal.created_at, T0);
    now.fetch_add(1, Ordering::SeqCst);
    let s = store.get(&mut req, c.now()).unwrap().unwrap();
    assert_eq!(req.set_cookie_headers().len(), 1);
    assert_eq!(
        s.internal.last_active_at,
        Some(T0 + TOUCH_INTERVAL.as_secs() + 1)
    );
    assert_eq!(s.internal.created_at, T0, "creation time is kept");
}

#[test]
fn cached_session_is_still_checked_for_expiry() {
    let (now, c) = clock();
    let store = CookieStateStore::builder_with_secrets([SECRET])
        .inactivity_duration(Duration::from_secs(100))
        .build()
        .unwrap();
    let mut o = CookieOptions::new();
    store.set(&session(), &mut o, c.now()).unwrap();
    assert_eq!(store.cache.len(), 1, "set warms the cache");
    let req = next_request(&o);
    assert!(store.get(&mut req.clone(), c.now()).unwrap().is_some());
    now.fetch_add(100, Ordering::SeqCst);
    let mut r = req.clone();
    assert!(store.get(&mut r, c.now()).unwrap().is_none());
    assert_eq!(store.cache.len(), 0);
    assert!(
        r.set_cookie_headers()[0]
            .to_str()
            .unwrap()
            .starts_with("_a0_session.0=; Max-Age=0")
    );
}

#[test]
fn setting_a_session_past_its_absolute_limit_clears_it() {
    let (_, c) = clock();
    let store = CookieStateStore::builder_with_secrets([SECRET])
        .build()
        .unwrap();
    let mut s = session();
    s.internal.created_at = T0 - DEFAULT_ABSOLUTE_DURATION.as_secs();
    let mut o = next_request(&{
        let mut o = CookieOptions::new();
        store.set(&session(), &mut o, c.now()).unwrap();
        o
    });
    store.set(&s, &mut o, c.now()).unwrap();
    assert_eq!(o.cookie("_a0_session.0"), None);
}

#[test]
fn too_large_session_is_an_error_on_set() {
    let store = CookieStateStore::builder_with_secrets([SECRET])
        .build()
        .unwrap();
    let mut s = session();
    s.id_token = Some(Secret::new(
        "x".repeat(chunks::MAX_CHUNKS * chunks::CHUNK_LEN),
    ));
    let mut o = CookieOptions::new();
    assert!(store.set(&s, &mut o, system_now()).is_err());
    assert!(o.set_cookie_headers().is_empty());
}

#[test]
fn builder_validates() {
    assert!(
        CookieStateStore::builder_with_secrets(Vec::<String>::new())
            .build()
            .is_err()
    );
    assert!(
        CookieStateStore::builder_with_secrets(["short"])
            .build()
            .is_err()
    );
    assert!(
        CookieStateStore::builder_with_secrets([SECRET])
            .identifier("bad name")
            .build()
            .is_err()
    );
    assert!(
        CookieStateStore::builder_with_secrets([SECRET])
            .inactivity_duration(Duration::ZERO)
            .build()
            .is_err()
    );
    assert!(
        CookieTransactionStore::builder_with_secrets([SECRET])
            .max_age(Duration::ZERO)
            .build()
            .is_err()
    );
}

#[test]
fn loopback_http_detection() {
    for url in [
        "http://localhost:3000",
        "http://LOCALHOST/",
        "http://app.localhost:8080/x",
        "http://127.0.0.1:8080",
        "http://127.9.9.9",
        "http://[::1]:3000/",
    ] {
        assert!(is_loopback_http(url), "{url}");
    }
    for url in [
        "https://localhost:3000",
        "http://example.com",
        "http://192.168.1.2",
        "http://localhost.example.com",
        "not a url",
        "",
    ] {
        assert!(!is_loopback_http(url), "{url}");
    }
    let s = CookieStateStore::builder_with_secrets([SECRET])
        .for_app_base_url("http://127.0.0.1:3000")
        .build()
        .unwrap();
    assert!(!s.is_secure());
    let s = CookieStateStore::builder_with_secrets([SECRET])
        .for_app_base_url("https://app.example.com")
        .build()
        .unwrap();
    assert!(s.is_secure());
}

fn logged_in(store: &CookieStateStore, sid: &str, now: UnixTime) -> CookieOptions {
    let mut s = session();
    s.internal.sid = sid.into();
    s.user
        .as_mut()
        .unwrap()
        .insert("iss".into(), "https://t/".into());
    let mut o = CookieOptions::new();
    store.set(&s, &mut o, now).unwrap();
    next_request(&o)
}

#[test]
fn a_cookie_copied_before_logout_is_no_session_afterwards() {
    let (_, c) = clock();
    let store = CookieStateStore::builder_with_secrets([SECRET])
        .build()
        .unwrap();
    let request = logged_in(&store, "sid-1", c.now());
    let copy = request.clone();
    let other = logged_in(&store, "sid-2", c.now());
    store.delete(&mut request.clone(), c.now()).unwrap();
    assert!(store.get(&mut copy.clone(), c.now()).unwrap().is_none());
    assert!(
        store.get(&mut other.clone(), c.now()).unwrap().is_some(),
        "another session ended too"
    );
}

#[test]
fn back_channel_logout_ends_a_cookie_session_by_sid_or_by_sub() {
    let (now, c) = clock();
    let store = CookieStateStore::builder_with_secrets([SECRET])
        .build()
        .unwrap();
    let a = logged_in(&store, "sid-a", c.now());
    let b = logged_in(&store, "sid-b", c.now());
    let by_sid = LogoutTokenClaims {
        iss: "https://t/".into(),
        sub: None,
        sid: Some("sid-a".into()),
    };
    store
        .delete_by_logout_token(&by_sid, &mut CookieOptions::new(), c.now())
        .unwrap();
    assert!(store.get(&mut a.clone(), c.now()).unwrap().is_none());
    assert!(store.get(&mut b.clone(), c.now()).unwrap().is_some());
    // By `sub`: every session of the user created until then; a later login stays.
    now.fetch_add(10, Ordering::SeqCst);
    let by_sub = LogoutTokenClaims {
        iss: "https://t/".into(),
        sub: Some("auth0|u".into()),
        sid: None,
    };
    store
        .delete_by_logout_token(&by_sub, &mut CookieOptions::new(), c.now())
        .unwrap();
    assert!(store.get(&mut b.clone(), c.now()).unwrap().is_none());
    now.fetch_add(1, Ordering::SeqCst);
    let later = logged_in(&store, "sid-c", c.now());
    assert!(store.get(&mut later.clone(), c.now()).unwrap().is_some());
}

#[test]
fn transaction_expires_after_max_age_and_is_cleared() {
    let (now, c) = clock();
    let store = CookieTransactionStore::builder_with_secrets([SECRET])
        .build()
        .unwrap();
    let mut o = CookieOptions::new();
    store
        .set("_a0_tx.s1", &TransactionData::default(), &mut o, c.now())
        .unwrap();
    let req = next_request(&o);
    now.fetch_add(DEFAULT_TRANSACTION_MAX_AGE - 1, Ordering::SeqCst);
    let tx = store
        .get("_a0_tx.s1", &mut req.clone(), c.now())
        .unwrap()
        .unwrap();
    assert_eq!(tx.created_at, T0);
    now.fetch_add(1, Ordering::SeqCst);
    let mut r = req.clone();
    assert!(store.get("_a0_tx.s1", &mut r, c.now()).unwrap().is_none());
    assert_eq!(r.cookie("_a0_tx.s1.0"), None);
}

#[test]
fn transactions_for_two_states_do_not_share_cookies_or_keys() {
    let store = CookieTransactionStore::builder_with_secrets([SECRET])
        .build()
        .unwrap();
    let mut o = CookieOptions::new();
    let a = TransactionData {
        state: Some("a".into()),
        ..Default::default()
    };
    let b = TransactionData {
        state: Some("b".into()),
        ..Default::default()
    };
    store.set("_a0_tx.a", &a, &mut o, system_now()).unwrap();
    store.set("_a0_tx.b", &b, &mut o, system_now()).unwrap();
    let mut req = next_request(&o);
    assert_eq!(
        store
            .get("_a0_tx.a", &mut req, system_now())
            .unwrap()
            .unwrap()
            .state,
        a.state
    );
    assert_eq!(
        store
            .get("_a0_tx.b", &mut req, system_now())
            .unwrap()
            .unwrap()
            .state,
        b.state
    );
    // A's cookie copied under B's name does not decrypt (the key is the salt).
    let mut h = http::HeaderMap::new();
    let value = req.cookie("_a0_tx.a.0").unwrap().to_owned();
    h.insert(
        http::header::COOKIE,
        format!("_a0_tx.b.0={value}").parse().unwrap(),
    );
    let mut swapped = CookieOptions::from_request_headers(&h);
    assert!(
        store
            .get("_a0_tx.b", &mut swapped, system_now())
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .set("bad key", &TransactionData::default(), &mut o, system_now())
            .is_err()
    );
    assert!(
        store
            .get("bad key", &mut o, system_now())
            .unwrap()
            .is_none()
    );
}

/// A warm read hands out the session the cache holds, not a copy; a store without a cache
/// decodes a new one each time.
#[test]
fn warm_reads_share_the_cached_session() {
    let (_, c) = clock();
    let cached = CookieStateStore::builder_with_secrets([SECRET])
        .build()
        .unwrap();
    let mut o = CookieOptions::new();
    cached.set(&session(), &mut o, c.now()).unwrap();
    let first = cached.get(&mut next_request(&o), c.now()).unwrap().unwrap();
    let second = cached.get(&mut next_request(&o), c.now()).unwrap().unwrap();
    assert!(Arc::ptr_eq(&first, &second), "the cached session, shared");
    let uncached = CookieStateStore::builder_with_secrets([SECRET])
        .cache_capacity(0)
        .build()
        .unwrap();
    let a = uncached
        .get(&mut next_request(&o), c.now())
        .unwrap()
        .unwrap();
    let b = uncached
        .get(&mut next_request(&o), c.now())
        .unwrap()
        .unwrap();
    assert!(
        !Arc::ptr_eq(&a, &b) && a == b,
        "decoded anew, the same session"
    );
}

/// The warm path reads the session's chunks as the bytes the request sent. A chunk with a
/// byte that is not UTF-8 (in the ciphertext, so the cache's key, the tag, still matches)
/// is no session, cached or not, and every chunk is cleared.
#[test]
fn a_chunk_that_is_not_utf8_is_no_session_and_is_cleared() {
    let (_, c) = clock();
    for capacity in [0, 16] {
        let store = CookieStateStore::builder_with_secrets([SECRET])
            .cache_capacity(capacity)
            .build()
            .unwrap();
        let mut o = CookieOptions::new();
        store.set(&session(), &mut o, c.now()).unwrap();
        assert!(store.get(&mut next_request(&o), c.now()).unwrap().is_some());
        let value = o.cookie("_a0_session.0").unwrap();
        let mut tampered = format!("_a0_session.0={value}").into_bytes();
        let middle = tampered.len() / 2;
        tampered[middle] = 0xff;
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            http::HeaderValue::from_bytes(&tampered).unwrap(),
        );
        let mut request = CookieOptions::from_request_headers(&h);
        assert!(
            store.get(&mut request, c.now()).unwrap().is_none(),
            "{capacity}"
        );
        let cleared: Vec<&str> = request
            .set_cookie_headers()
            .iter()
            .filter_map(|h| h.to_str().ok())
            .collect();
        assert!(
            cleared.len() == 1 && cleared[0].starts_with("_a0_session.0=; Max-Age=0"),
            "{cleared:?}"
        );
    }
}
