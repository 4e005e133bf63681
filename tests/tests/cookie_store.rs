//! End-to-end tests of the encrypted cookie stores (`auth0_server::store::cookie`): cookies go
//! out as `Set-Cookie` headers, come back the way a browser sends them, and whatever a client
//! does to them — tamper, truncate, drop a chunk, replay late — reads as "no session".

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use auth0_emulator::{DEFAULT_AUDIENCE, Emulator, EmulatorConfig, RefreshGrant};
use auth0_server::blocking::ServerClient;
use auth0_server::clock::Clock;
use auth0_server::protocol::config::{Config, DEFAULT_SCOPE};
use auth0_server::protocol::jose::jwe::{self, JweKey};
use auth0_server::protocol::secret::Secret;
use auth0_server::protocol::session::{ConnectionTokenSet, Internal, StateData, TokenSet};
use auth0_server::store::StoreError;
use auth0_server::store::cookie::chunks::{CHUNK_LEN, MAX_CHUNKS};
use auth0_server::store::cookie::codec::CookieCodec;
use auth0_server::store::cookie::{
    CookieStateStore, CookieTransactionStore, DEFAULT_ABSOLUTE_DURATION,
    DEFAULT_INACTIVITY_DURATION, DEFAULT_SESSION_COOKIE,
};
use auth0_server::store::{CookieOptions, StateStore};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const SECRET_A: &str = "secret-A-0123456789-0123456789-0123456789";
const SECRET_B: &str = "secret-B-0123456789-0123456789-0123456789";
const T0: u64 = 1_750_000_000;
const DAY: u64 = 86_400;

// ---------------------------------------------------------------------------------------------
// A browser's cookie jar, fed only by Set-Cookie headers.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    /// Applies a response's `Set-Cookie` headers: `Max-Age=0` deletes, anything else stores.
    fn apply(&mut self, response: &CookieOptions) {
        for header in response.set_cookie_headers() {
            let text = header.to_str().expect("ASCII Set-Cookie");
            let (pair, attrs) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            let deleted = attrs.split(';').any(|a| a.trim() == "Max-Age=0");
            if deleted {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    /// The next request as the browser sends it: one `Cookie` header.
    fn request(&self) -> CookieOptions {
        let mut headers = http::HeaderMap::new();
        if !self.0.is_empty() {
            let line: Vec<String> = self.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
            headers.insert(http::header::COOKIE, line.join("; ").parse().unwrap());
        }
        CookieOptions::from_request_headers(&headers)
    }

    fn names(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

fn headers(opts: &CookieOptions) -> Vec<String> {
    opts.set_cookie_headers()
        .iter()
        .map(|h| h.to_str().unwrap().to_owned())
        .collect()
}

fn attributes(header: &str) -> Vec<String> {
    header
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_owned())
        .collect()
}

struct TestClock(Arc<AtomicU64>);

impl TestClock {
    fn new() -> (TestClock, Clock) {
        let now = Arc::new(AtomicU64::new(T0));
        let c = now.clone();
        (
            TestClock(now),
            Clock::from_fn(move || c.load(Ordering::SeqCst)),
        )
    }
    fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

/// A cookie store and the clock a client would hand it with every call (stores own no
/// clock): what these tests call the store directly through.
struct Clocked {
    store: CookieStateStore,
    clock: Clock,
}

impl Clocked {
    fn new(store: CookieStateStore, clock: Clock) -> Self {
        Clocked { store, clock }
    }
    /// The session, unshared (tests compare it by value).
    fn get(&self, o: &mut CookieOptions) -> Result<Option<StateData>, StoreError> {
        StateStore::get(&self.store, o, self.clock.now())
            .map(|s| s.map(std::sync::Arc::unwrap_or_clone))
    }
    fn set(&self, s: &StateData, o: &mut CookieOptions) -> Result<(), StoreError> {
        StateStore::set(&self.store, s, o, self.clock.now())
    }
    fn delete(&self, o: &mut CookieOptions) -> Result<(), StoreError> {
        StateStore::delete(&self.store, o, self.clock.now())
    }
}

fn store(secrets: &[&str], clock: &Clock) -> Clocked {
    Clocked::new(
        CookieStateStore::builder_with_secrets(secrets.iter().copied())
            .build()
            .unwrap(),
        clock.clone(),
    )
}

fn session(id_token_len: usize) -> StateData {
    let user: Map<String, Value> =
        serde_json::from_value(json!({"sub": "auth0|cookie", "name": "Cookie Monster"})).unwrap();
    StateData {
        user: Some(user),
        id_token: Some(Secret::new("i".repeat(id_token_len))),
        refresh_token: Some(Secret::new("v1.refresh")),
        token_sets: vec![TokenSet {
            audience: "https://api.example.com".into(),
            access_token: Secret::new("at-1"),
            scope: Some("openid read:x".into()),
            expires_at: T0 + 3600,
            requested_scope: None,
            token_type: Default::default(),
        }],
        internal: Internal {
            sid: "sid-1".into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Writes `state` with `store` into a fresh jar.
fn jar_with(store: &Clocked, state: &StateData) -> Jar {
    let mut response = CookieOptions::new();
    store.set(state, &mut response).unwrap();
    let mut jar = Jar::default();
    jar.apply(&response);
    jar
}

/// `get` on `jar` reads no session and clears every session chunk the jar carried.
fn assert_no_session_and_cleared(store: &Clocked, jar: &Jar) {
    let mut req = jar.request();
    assert_eq!(store.get(&mut req).unwrap(), None);
    let cleared: Vec<String> = headers(&req);
    let chunk_names: Vec<&str> = jar
        .names()
        .into_iter()
        .filter(|n| n.starts_with("_a0_session."))
        .collect();
    assert!(!chunk_names.is_empty());
    for name in &chunk_names {
        assert!(
            cleared
                .iter()
                .any(|h| h.starts_with(&format!("{name}=; Max-Age=0;"))),
            "{name} not cleared: {cleared:?}"
        );
    }
    let mut after = jar.clone();
    after.apply(&req);
    assert!(after.names().iter().all(|n| !n.starts_with("_a0_session")));
}

// ---------------------------------------------------------------------------------------------
// Round trip and attributes
// ---------------------------------------------------------------------------------------------

#[test]
fn set_cookie_headers_sent_back_by_a_browser_read_as_the_same_session() {
    let (_t, clock) = TestClock::new();
    let store = store(&[SECRET_A], &clock);
    let mut response = CookieOptions::new();
    store.set(&session(100), &mut response).unwrap();
    let sent = headers(&response);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].starts_with("_a0_session.0=eyJ"));
    assert_eq!(
        attributes(&sent[0]),
        [
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Path=/",
            &format!("Max-Age={}", DEFAULT_INACTIVITY_DURATION.as_secs())
        ]
    );
    let mut jar = Jar::default();
    jar.apply(&response);

    // A new store (same secret, cold cache) reads what the browser sends back.
    let other = Clocked::new(
        CookieStateStore::builder_with_secrets([SECRET_A])
            .cache_capacity(0)
            .build()
            .unwrap(),
        clock.clone(),
    );
    let mut req = jar.request();
    let loaded = other.get(&mut req).unwrap().expect("session");
    let mut expected = session(100);
    expected.internal.created_at = T0;
    expected.internal.last_active_at = Some(T0);
    assert_eq!(loaded, expected);
    assert!(
        headers(&req).is_empty(),
        "nothing rewritten on a fresh read"
    );
    // And the writing store (warm cache) reads the same.
    assert_eq!(store.get(&mut jar.request()).unwrap(), Some(expected));
}

#[test]
fn loopback_http_app_gets_cookies_without_secure() {
    let store = CookieStateStore::builder_with_secrets([SECRET_A])
        .for_app_base_url("http://localhost:3000")
        .build()
        .unwrap();
    let mut response = CookieOptions::new();
    Clocked::new(store, Clock::system())
        .set(&session(10), &mut response)
        .unwrap();
    let attrs = attributes(&headers(&response)[0]);
    assert!(!attrs.iter().any(|a| a == "Secure"));
    assert!(attrs.iter().any(|a| a == "HttpOnly"));
    assert!(attrs.iter().any(|a| a == "SameSite=Lax"));
    assert!(attrs.iter().any(|a| a == "Path=/"));
    let tx = CookieTransactionStore::builder_with_secrets([SECRET_A])
        .for_app_base_url("https://app.example.com")
        .build()
        .unwrap();
    assert!(tx.is_secure());
}

// ---------------------------------------------------------------------------------------------
// Secret rotation
// ---------------------------------------------------------------------------------------------

#[test]
fn rotation_new_secret_first_still_reads_old_cookies_and_old_secret_alone_does_not() {
    let (_t, clock) = TestClock::new();
    let jar = jar_with(&store(&[SECRET_A], &clock), &session(100));

    let rotated = store(&[SECRET_B, SECRET_A], &clock);
    assert_eq!(
        rotated.get(&mut jar.request()).unwrap().unwrap().sub(),
        Some("auth0|cookie")
    );
    // The rotated store writes with B: readable by [B] alone, not by [A] alone.
    let new_jar = jar_with(&rotated, &session(100));
    assert!(
        store(&[SECRET_B], &clock)
            .get(&mut new_jar.request())
            .unwrap()
            .is_some()
    );
    assert!(
        store(&[SECRET_A], &clock)
            .get(&mut new_jar.request())
            .unwrap()
            .is_none()
    );

    assert_no_session_and_cleared(&store(&[SECRET_B], &clock), &jar);
}

// ---------------------------------------------------------------------------------------------
// Chunking
// ---------------------------------------------------------------------------------------------

#[test]
fn session_growing_to_three_chunks_and_back_deletes_the_surplus() {
    let (_t, clock) = TestClock::new();
    let store = store(&[SECRET_A], &clock);
    let mut jar = jar_with(&store, &session(100));
    assert_eq!(jar.names(), ["_a0_session.0"]);

    let big = session(2 * CHUNK_LEN);
    let mut req = jar.request();
    store.set(&big, &mut req).unwrap();
    jar.apply(&req);
    assert_eq!(
        jar.names(),
        ["_a0_session.0", "_a0_session.1", "_a0_session.2"]
    );
    assert!(jar.0.values().all(|v| v.len() <= CHUNK_LEN));
    let loaded = store.get(&mut jar.request()).unwrap().unwrap();
    assert_eq!(loaded.id_token, big.id_token);

    let mut req = jar.request();
    store.set(&session(100), &mut req).unwrap();
    let sent = headers(&req);
    assert!(
        sent.iter()
            .any(|h| h.starts_with("_a0_session.1=; Max-Age=0;"))
    );
    assert!(
        sent.iter()
            .any(|h| h.starts_with("_a0_session.2=; Max-Age=0;"))
    );
    jar.apply(&req);
    assert_eq!(jar.names(), ["_a0_session.0"]);
    assert_eq!(
        store.get(&mut jar.request()).unwrap().unwrap().id_token,
        session(100).id_token
    );

    let mut req = jar.request();
    store.delete(&mut req).unwrap();
    jar.apply(&req);
    assert!(jar.names().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Corruption: each is "no session" and clears the cookies
// ---------------------------------------------------------------------------------------------

fn three_chunk_jar(clock: &Clock) -> (Clocked, Jar) {
    let store = store(&[SECRET_A], clock);
    let jar = jar_with(&store, &session(2 * CHUNK_LEN));
    assert_eq!(jar.names().len(), 3);
    (store, jar)
}

#[test]
fn tampered_byte_is_no_session() {
    let (_t, clock) = TestClock::new();
    let (store, mut jar) = three_chunk_jar(&clock);
    let v = jar.0.get_mut("_a0_session.1").unwrap();
    let mid = v.len() / 2;
    let c = if &v[mid..=mid] == "A" { "B" } else { "A" };
    v.replace_range(mid..=mid, c);
    assert_no_session_and_cleared(&store, &jar);
}

#[test]
fn truncated_value_is_no_session() {
    let (_t, clock) = TestClock::new();
    let (store, mut jar) = three_chunk_jar(&clock);
    let v = jar.0.get_mut("_a0_session.2").unwrap();
    v.truncate(v.len() - 7);
    assert_no_session_and_cleared(&store, &jar);
}

#[test]
fn missing_middle_chunk_is_no_session() {
    let (_t, clock) = TestClock::new();
    let (store, mut jar) = three_chunk_jar(&clock);
    jar.0.remove("_a0_session.1");
    assert_no_session_and_cleared(&store, &jar);
}

#[test]
fn foreign_secret_is_no_session() {
    let (_t, clock) = TestClock::new();
    let jar = jar_with(&store(&[SECRET_B], &clock), &session(10));
    assert_no_session_and_cleared(&store(&[SECRET_A], &clock), &jar);
}

#[test]
fn not_a_jwe_is_no_session() {
    let (_t, clock) = TestClock::new();
    let store = store(&[SECRET_A], &clock);
    for junk in ["hello", "a.b.c.d.e", "eyJhbGciOiJub25lIn0.e30.", "...."] {
        let mut jar = Jar::default();
        jar.0.insert("_a0_session.0".into(), junk.into());
        assert_no_session_and_cleared(&store, &jar);
    }
}

#[test]
fn valid_jwe_of_non_session_json_is_no_session() {
    let (_t, clock) = TestClock::new();
    let store = store(&[SECRET_A], &clock);
    let token = CookieCodec::new([SECRET_A], "_a0_session")
        .encrypt(br#"{"token_sets": "not a list"}"#)
        .unwrap();
    let mut jar = Jar::default();
    jar.0.insert("_a0_session.0".into(), token);
    assert_no_session_and_cleared(&store, &jar);
}

#[test]
fn too_many_chunks_is_no_session() {
    let (_t, clock) = TestClock::new();
    let (store, jar3) = three_chunk_jar(&clock);
    // The first chunks are genuine; the count is over the limit.
    let mut jar = jar3.clone();
    for i in 3..=MAX_CHUNKS {
        jar.0.insert(format!("_a0_session.{i}"), "x".into());
    }
    assert_eq!(jar.names().len(), MAX_CHUNKS + 1);
    assert_no_session_and_cleared(&store, &jar);
}

#[test]
fn replay_after_inactivity_limit_is_no_session() {
    let (t, clock) = TestClock::new();
    let store = store(&[SECRET_A], &clock);
    let jar = jar_with(&store, &session(10));
    t.advance(DEFAULT_INACTIVITY_DURATION.as_secs() - 1);
    assert!(
        store.get(&mut jar.request()).unwrap().is_some(),
        "still inside"
    );
    // The read above rewrote the cookie; a client replaying the OLD cookie later fails.
    t.advance(1);
    assert_no_session_and_cleared(&store, &jar);
}

#[test]
fn active_session_ends_at_the_absolute_limit_even_when_replayed() {
    let (t, clock) = TestClock::new();
    let store = store(&[SECRET_A], &clock);
    let mut jar = jar_with(&store, &session(10));
    // Used every day: inactivity never triggers, the rolling rewrite keeps it alive.
    let mut elapsed = 0;
    while elapsed + DAY < DEFAULT_ABSOLUTE_DURATION.as_secs() {
        t.advance(DAY);
        elapsed += DAY;
        let mut req = jar.request();
        assert!(
            store.get(&mut req).unwrap().is_some(),
            "day {}",
            elapsed / DAY
        );
        let sent = headers(&req);
        assert_eq!(sent.len(), 1, "rolling rewrite");
        jar.apply(&req);
    }
    let last = jar.clone();
    t.advance(DEFAULT_ABSOLUTE_DURATION.as_secs() - elapsed);
    assert_no_session_and_cleared(&store, &last);
}

#[test]
fn max_age_counts_down_to_the_absolute_limit() {
    let (t, clock) = TestClock::new();
    let store = store(&[SECRET_A], &clock);
    let jar = jar_with(&store, &session(10));
    t.advance(DEFAULT_ABSOLUTE_DURATION.as_secs() - 100);
    // Still inside inactivity? No: 7 days without use is past 3 days of inactivity.
    assert!(store.get(&mut jar.request()).unwrap().is_none());
    // A session re-set 100 s before its absolute limit gets Max-Age 100.
    let mut s = session(10);
    s.internal.created_at = T0;
    let mut resp = CookieOptions::new();
    store.set(&s, &mut resp).unwrap();
    assert!(headers(&resp)[0].ends_with("; Max-Age=100"));
}

// ---------------------------------------------------------------------------------------------
// Interoperability with the Python SDK's encryption
// ---------------------------------------------------------------------------------------------

fn python_vectors() -> Vec<(String, String, String, Value)> {
    let file: Value = serde_json::from_str(include_str!("../data/python-jwe.json")).unwrap();
    file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["secret"].as_str().unwrap().to_owned(),
                v["salt"].as_str().unwrap().to_owned(),
                v["jwe"].as_str().unwrap().to_owned(),
                v["plaintext_json"].clone(),
            )
        })
        .collect()
}

#[test]
fn every_python_sdk_token_decrypts_through_the_cookie_codec() {
    let vectors = python_vectors();
    assert!(vectors.len() >= 16);
    for (secret, salt, token, plaintext) in vectors {
        let codec = CookieCodec::new([&secret], &salt);
        let bytes = codec.decrypt(&token).expect("python token decrypts");
        let got: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(got, plaintext, "salt {salt}");
        // And ours decrypts with the same derived key.
        let ours = codec.encrypt(&bytes).unwrap();
        let key = JweKey::derive(secret.as_bytes(), salt.as_bytes());
        assert_eq!(jwe::decrypt(&[key], &ours).unwrap(), bytes);
        // A rotated codec with the Python secret second still reads it.
        let rotated = CookieCodec::new([SECRET_B, secret.as_str()], &salt);
        assert_eq!(rotated.decrypt(&token).as_deref(), Some(&bytes[..]));
    }
}

#[test]
fn python_sdk_session_cookie_loads_through_the_store() {
    let (secret, salt, token, plaintext) = python_vectors().remove(0);
    assert_eq!(salt, "_a0_session");
    let created = plaintext["internal"]["created_at"].as_u64().unwrap();
    let store = Clocked::new(
        CookieStateStore::builder_with_secrets([secret])
            .build()
            .unwrap(),
        Clock::from_fn(move || created + 10),
    );
    let mut jar = Jar::default();
    jar.0.insert("_a0_session.0".into(), token);
    let s = store
        .get(&mut jar.request())
        .unwrap()
        .expect("python session");
    assert_eq!(s.sub(), Some("auth0|123"));
    assert_eq!(s.token_sets[0].audience, "https://api.example.com");
    assert_eq!(s.internal.created_at, created);
}

// ---------------------------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------------------------

#[test]
fn transaction_cookie_per_state_round_trips_and_tampering_clears_it() {
    use auth0_server::protocol::transaction::{TransactionData, transaction_key};
    use auth0_server::store::TransactionStore;
    let (_t, clock) = TestClock::new();
    let store = CookieTransactionStore::builder_with_secrets([SECRET_A])
        .build()
        .unwrap();
    let (k1, k2) = (transaction_key("tab-one"), transaction_key("tab-two"));
    let tx = |s: &str| TransactionData {
        state: Some(s.into()),
        code_verifier: Some(Secret::new(format!("verifier-{s}"))),
        ..Default::default()
    };
    let mut resp = CookieOptions::new();
    store
        .set(&k1, &tx("tab-one"), &mut resp, clock.now())
        .unwrap();
    store
        .set(&k2, &tx("tab-two"), &mut resp, clock.now())
        .unwrap();
    let sent = headers(&resp);
    assert!(sent[0].starts_with("_a0_tx.tab-one.0="));
    assert!(sent[0].ends_with("; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=3600"));
    let mut jar = Jar::default();
    jar.apply(&resp);
    let got = store
        .get(&k2, &mut jar.request(), clock.now())
        .unwrap()
        .unwrap();
    assert_eq!(got.state.as_deref(), Some("tab-two"));
    assert_eq!(got.created_at, T0);
    assert_eq!(
        store
            .get(&k1, &mut jar.request(), clock.now())
            .unwrap()
            .unwrap()
            .state
            .as_deref(),
        Some("tab-one")
    );
    jar.0.get_mut("_a0_tx.tab-one.0").unwrap().insert(60, 'Q');
    let mut req = jar.request();
    assert!(store.get(&k1, &mut req, clock.now()).unwrap().is_none());
    assert!(headers(&req)[0].starts_with("_a0_tx.tab-one.0=; Max-Age=0;"));
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn arb_claim_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(Value::Null),
        prop::collection::vec(any::<String>(), 0..3).prop_map(Value::from),
    ]
}

fn arb_state() -> impl Strategy<Value = StateData> {
    let user = prop::option::of(
        (
            "[a-z0-9|]{1,30}",
            prop::collection::btree_map("[a-z_]{1,12}", arb_claim_value(), 0..6),
        )
            .prop_map(|(sub, extra)| {
                let mut m: Map<String, Value> = extra.into_iter().collect();
                m.insert("sub".into(), Value::from(sub));
                m
            }),
    );
    let token_set = (
        "\\PC{1,40}",
        "[A-Za-z0-9._-]{1,600}",
        prop::option::of("[a-z: ]{0,60}"),
        any::<u64>(),
    )
        .prop_map(|(audience, at, scope, expires_at)| TokenSet {
            audience,
            access_token: Secret::new(at),
            scope,
            expires_at,
            requested_scope: None,
            token_type: Default::default(),
        });
    let connection_set = (
        "[a-z0-9-]{1,20}",
        prop::option::of("\\PC{0,20}"),
        "[A-Za-z0-9._-]{1,200}",
        prop::option::of("[a-z: ]{0,40}"),
        any::<u64>(),
    )
        .prop_map(
            |(connection, login_hint, at, scope, expires_at)| ConnectionTokenSet {
                connection,
                login_hint,
                access_token: Secret::new(at),
                scope,
                expires_at,
            },
        );
    (
        user,
        prop::option::of("[A-Za-z0-9._-]{0,1500}"),
        prop::option::of("\\PC{0,80}"),
        prop::collection::vec(token_set, 0..5),
        prop::collection::vec(connection_set, 0..3),
        "\\PC{0,40}",
        0..=1000u64,
    )
        .prop_map(|(user, id, rt, sets, conn, sid, age)| StateData {
            user,
            id_token: id.map(Secret::new),
            refresh_token: rt.map(Secret::new),
            token_sets: sets,
            connection_token_sets: conn,
            internal: Internal {
                sid,
                created_at: if age == 0 { 0 } else { T0 - age },
                last_active_at: None,
                extra: Default::default(),
                session_expires_at: None,
            },
            extra: Default::default(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_decode_is_the_identity(state in arb_state()) {
        let (_t, clock) = TestClock::new();
        let writer = store(&[SECRET_A], &clock);
        let jar = jar_with(&writer, &state);
        let mut expected = state.clone();
        if expected.internal.created_at == 0 {
            expected.internal.created_at = T0;
        }
        expected.internal.last_active_at = Some(T0);
        let cold = Clocked::new(
            CookieStateStore::builder_with_secrets([SECRET_A])
                .cache_capacity(0)
                .build()
                .unwrap(),
            clock.clone(),
        );
        prop_assert_eq!(cold.get(&mut jar.request()).unwrap(), Some(expected.clone()));
        prop_assert_eq!(writer.get(&mut jar.request()).unwrap(), Some(expected));
    }

    #[test]
    fn any_single_byte_change_to_any_chunk_is_no_session(
        id_len in 0..(2 * CHUNK_LEN),
        chunk_pick in any::<prop::sample::Index>(),
        pos_pick in any::<prop::sample::Index>(),
        replacement in prop::sample::select(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!#$%&'()*+/:<>?@[]^`{|}~".to_vec()
        ),
    ) {
        let (_t, clock) = TestClock::new();
        // The writing store: its warm cache holds the genuine value.
        let store = store(&[SECRET_A], &clock);
        let mut jar = jar_with(&store, &session(id_len));
        let names: Vec<String> = jar.0.keys().cloned().collect();
        let name = chunk_pick.get(&names).clone();
        let value = jar.0.get_mut(&name).unwrap();
        let pos = pos_pick.index(value.len());
        let original = value.as_bytes()[pos];
        let replacement = if replacement == original { if original == b'A' { b'B' } else { b'A' } } else { replacement };
        value.replace_range(pos..=pos, &(replacement as char).to_string());
        let mut req = jar.request();
        prop_assert_eq!(store.get(&mut req).unwrap(), None);
        prop_assert!(!headers(&req).is_empty(), "cookies cleared");
    }
}

// ---------------------------------------------------------------------------------------------
// Through a real client against the emulator
// ---------------------------------------------------------------------------------------------

/// The emulator, a client configuration for it, and a session whose access token has
/// expired and whose refresh token the emulator accepts.
struct Refreshable {
    emu: Emulator,
    config: Config,
    now: u64,
    refresh_token: String,
    state: StateData,
}

fn refreshable() -> Refreshable {
    let emu = Emulator::start(EmulatorConfig::default());
    let config = Config::builder(emu.base_url(), emu.client_id())
        .client_secret(emu.client_secret())
        .secret(SECRET_A)
        .audience(DEFAULT_AUDIENCE)
        .build()
        .unwrap();
    let now = Clock::system().now().as_secs();
    let refresh_token = emu.issue_refresh_token(RefreshGrant::default());
    let state = StateData {
        user: Some(serde_json::from_value(json!({"sub": "auth0|emulator-user"})).unwrap()),
        refresh_token: Some(Secret::new(refresh_token.clone())),
        token_sets: vec![TokenSet {
            audience: DEFAULT_AUDIENCE.into(),
            access_token: Secret::new("expired-access-token"),
            scope: Some(DEFAULT_SCOPE.into()),
            expires_at: now - 10,
            requested_scope: None,
            token_type: Default::default(),
        }],
        ..Default::default()
    };
    Refreshable {
        emu,
        config,
        now,
        refresh_token,
        state,
    }
}

/// A blocking client over cookie stores for `config`, and a browser jar holding `state`.
fn client_with(
    config: &Config,
    state: &StateData,
) -> (ServerClient<CookieStateStore, CookieTransactionStore>, Jar) {
    let sessions = || {
        CookieStateStore::builder(config)
            .for_app_base_url("http://127.0.0.1:3000")
            .build()
            .unwrap()
    };
    let jar = jar_with(&Clocked::new(sessions(), Clock::system()), state);
    let client = ServerClient::builder(
        config.clone(),
        sessions(),
        CookieTransactionStore::new(config).unwrap(),
    )
    .build();
    (client, jar)
}

#[test]
fn expired_token_in_cookies_is_refreshed_and_written_back_as_cookies() {
    let Refreshable {
        emu,
        config,
        now,
        refresh_token,
        mut state,
    } = refreshable();
    // Keys another SDK wrote, which this one does not know (I9).
    state
        .extra
        .insert("domain".into(), json!("tenant.auth0.com"));
    state
        .internal
        .extra
        .insert("migrated_from".into(), json!("auth0-server-python"));
    let (client, mut jar) = client_with(&config, &state);

    let mut req = jar.request();
    let token = client.get_access_token(&mut req).unwrap();
    assert_ne!(token.access_token.expose(), "expired-access-token");
    assert_eq!(emu.token_requests().len(), 1);
    jar.apply(&req);

    // A fresh store (cold cache, same secret) decodes the rewritten cookies.
    let reader = Clocked::new(CookieStateStore::new(&config).unwrap(), Clock::system());
    let saved = reader.get(&mut jar.request()).unwrap().expect("session");
    let set = saved
        .token_sets
        .iter()
        .find(|s| s.audience == DEFAULT_AUDIENCE)
        .unwrap();
    assert_eq!(set.access_token.expose(), token.access_token.expose());
    assert!(set.expires_at > now);
    let rotated = saved.refresh_token.as_ref().unwrap().expose().to_owned();
    assert_ne!(rotated, refresh_token, "rotated refresh token saved");
    assert!(emu.refresh_token_is_live(&rotated));
    assert_eq!(
        saved.extra["domain"], "tenant.auth0.com",
        "an unknown key was lost"
    );
    assert_eq!(
        saved.internal.extra["migrated_from"],
        json!("auth0-server-python")
    );

    // The next request with the new cookies is a cache hit: no token request.
    let again = client.get_access_token(&mut jar.request()).unwrap();
    assert_eq!(again.access_token.expose(), token.access_token.expose());
    assert_eq!(emu.token_requests().len(), 1);
}

/// I5: a session that outgrows the cookie budget with a refresh keeps its rotated refresh
/// token: cached tokens are evicted (expired first, then the soonest to expire), never the
/// refresh token, and the refresh succeeds.
#[test]
fn a_refresh_that_would_overflow_the_cookies_evicts_cached_tokens_instead_of_failing() {
    let Refreshable {
        emu,
        config,
        now,
        refresh_token,
        mut state,
    } = refreshable();
    // Fill the session with other APIs' tokens to just under the cookie budget.
    let codec = CookieCodec::new([SECRET_A.as_bytes()], DEFAULT_SESSION_COOKIE);
    let budget = MAX_CHUNKS * CHUNK_LEN;
    let encrypted = |s: &StateData| codec.encrypt(&s.to_json()).unwrap().len();
    let mut i = 0;
    while encrypted(&state) < budget - 200 {
        let room = (budget - 200 - encrypted(&state)) * 3 / 4;
        state.token_sets.push(TokenSet {
            audience: format!("https://api-{i}.example.com"),
            access_token: Secret::new("t".repeat(room.clamp(1, 3000))),
            scope: None,
            expires_at: now + 600 + i,
            requested_scope: None,
            token_type: Default::default(),
        });
        i += 1;
    }
    let filler = state.token_sets.len() - 1;
    let (client, mut jar) = client_with(&config, &state);

    let mut req = jar.request();
    let token = client
        .get_access_token(&mut req)
        .expect("the refresh is saved, not refused for size");
    jar.apply(&req);
    let session_chunks = jar
        .names()
        .iter()
        .filter(|n| n.starts_with(DEFAULT_SESSION_COOKIE))
        .count();
    assert!(session_chunks <= MAX_CHUNKS, "{session_chunks} chunks");
    let saved = Clocked::new(CookieStateStore::new(&config).unwrap(), Clock::system())
        .get(&mut jar.request())
        .unwrap()
        .expect("session");
    let rotated = saved.refresh_token.as_ref().unwrap().expose().to_owned();
    assert_ne!(rotated, refresh_token);
    assert!(
        emu.refresh_token_is_live(&rotated),
        "the rotated refresh token was lost"
    );
    assert_eq!(
        saved.sub(),
        Some("auth0|emulator-user"),
        "the user was evicted"
    );
    // The new token is cached; the soonest-expiring filler went first; some filler stayed.
    assert!(
        saved
            .token_sets
            .iter()
            .any(|s| s.access_token == token.access_token)
    );
    assert!(
        !saved
            .token_sets
            .iter()
            .any(|s| s.audience == "https://api-0.example.com")
    );
    assert!(saved.token_sets.len() > 1 && saved.token_sets.len() <= filler + 1);
    // And the next call is a cache hit.
    let again = client.get_access_token(&mut jar.request()).unwrap();
    assert_eq!(again.access_token, token.access_token);
    assert_eq!(emu.token_requests().len(), 1);
}

/// I5, at login: identity data too large for any cookie is refused when the session is
/// created, with an error that says so.
#[test]
fn a_session_whose_identity_alone_is_too_large_is_refused_when_created() {
    let (_, clock) = TestClock::new();
    let store = store(&[SECRET_A], &clock);
    let huge = session(MAX_CHUNKS * CHUNK_LEN);
    let err = store.set(&huge, &mut CookieOptions::new()).unwrap_err();
    assert!(err.to_string().contains("too large"), "{err}");
}
