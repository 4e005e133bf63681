//! End-to-end: the Redis stores and cross-instance refresh coordination (features `redis`
//! and `redis-tokio`) against a real `redis-server` and the emulator (rotation with reuse
//! detection on).
//!
//! The Redis is `REDIS_URL` (default `redis://127.0.0.1:6379/`). When it is unreachable each
//! test prints a skip message and passes — unless `CI` is set, then it fails. Every test
//! writes under its own random key prefix, so the tests run in parallel on one Redis.
//!
//! The `cluster_*` tests run against a Redis Cluster at `REDIS_CLUSTER_URL` (a
//! `redis+cluster://host:port,host:port,…` URL; `.ci/run` starts three local nodes). Without
//! it they print a SKIPPED line and pass — unless `CI` is set, then they fail.

mod adapter_support;
mod integrity_support;

use adapter_support::{
    RecordingStore, ReqwestClient, TestOptions, assert_two_refreshes_on_one_lane, config,
    expired_session, lane_audience, now,
};
use auth0_emulator::{ANALYTICS_AUDIENCE, DEFAULT_AUDIENCE, Emulator, Failure};
use auth0_server::coordinator::{Coordinated, RefreshCoordinator, SendRequest};
use auth0_server::protocol::access_token::refresh_token_hash;
use auth0_server::protocol::effect::Coalesce;
use auth0_server::protocol::session::StateData;
use auth0_server::store::redis::{
    AsyncRedisStateStore, AsyncRedisTransactionStore, RedisRefreshCoordinator, RedisStateStore,
    RedisTransactionStore,
};
use auth0_server::store::{CookieOptions, StateStore};
use auth0_server::{AccessTokenRequest, Config, Error};
use serde_json::Map;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/";
const PER_INSTANCE: usize = 25;

type Blocking = auth0_server::blocking::ServerClient<RedisStateStore, RedisTransactionStore>;
type Async = auth0_server::nonblocking::ServerClient<
    AsyncRedisStateStore,
    AsyncRedisTransactionStore,
    ReqwestClient,
>;

/// The wall clock, for store calls made outside a client (which would hand them its clock).
fn system_now() -> auth0_server::protocol::time::UnixTime {
    auth0_server::clock::Clock::system().now()
}

/// The Redis URL when Redis answers; `None` (skip) when it does not and `CI` is unset.
fn redis_url() -> Option<String> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned());
    let ping = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
    // What messages show of the URL: no user or password.
    let shown = match url::Url::parse(&url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "(unparsable REDIS_URL)".to_owned(),
    };
    match ping {
        Ok(_) => Some(url),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("Redis at {shown} is unreachable and CI is set: {e}")
        }
        Err(e) => {
            // Straight to stderr, past the test harness's output capture, so the skip shows
            // in a plain `cargo test` run and not only with `--nocapture`.
            use std::io::Write;
            let test = std::thread::current().name().unwrap_or("?").to_owned();
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: Redis at {shown} is unreachable ({e}); start redis-server or set \
                 REDIS_URL (with CI set, this test fails instead)"
            );
            None
        }
    }
}

macro_rules! require_redis {
    () => {
        match redis_url() {
            Some(url) => url,
            None => return,
        }
    };
}

/// The Redis Cluster URL when `REDIS_CLUSTER_URL` is set and the cluster answers; `None`
/// (skip, with a SKIPPED line) when it is unset and `CI` is unset.
fn cluster_url() -> Option<String> {
    use std::io::Write;
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let Ok(url) = std::env::var("REDIS_CLUSTER_URL") else {
        if std::env::var_os("CI").is_some() {
            panic!("REDIS_CLUSTER_URL is unset and CI is set");
        }
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: REDIS_CLUSTER_URL is unset (a redis+cluster://host:port,… URL of a \
             Redis Cluster; with CI set, this test fails instead)"
        );
        return None;
    };
    let nodes: Vec<String> = url
        .trim_start_matches("redis+cluster://")
        .trim_end_matches('/')
        .split(',')
        .map(|h| format!("redis://{h}/"))
        .collect();
    let ping = redis::cluster::ClusterClient::new(nodes)
        .and_then(|c| c.get_connection())
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
    match ping {
        Ok(_) => Some(url),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("the Redis Cluster at REDIS_CLUSTER_URL is unreachable and CI is set: {e}")
        }
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: the Redis Cluster at REDIS_CLUSTER_URL is unreachable ({e})"
            );
            None
        }
    }
}

macro_rules! require_cluster {
    () => {
        match cluster_url() {
            Some(url) => url,
            None => return,
        }
    };
}

/// A raw connection, to inspect what the stores wrote.
fn raw(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(2))
        .unwrap()
}

/// A key prefix of this test's own.
fn prefix() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("test:{hex}:")
}

/// Connect and command timeouts of the stores under test: generous, because CI also runs
/// this suite over TLS (`rediss://`), where fifty callers' handshakes at once on a loaded
/// two-core machine take longer than the 2 s defaults.
const REDIS_TIMEOUT: Duration = Duration::from_secs(10);

fn state_store(cfg: &Config, url: &str, prefix: &str) -> RedisStateStore {
    RedisStateStore::builder(cfg, url)
        .connect_timeout(REDIS_TIMEOUT)
        .io_timeout(REDIS_TIMEOUT)
        .key_prefix(prefix)
        .secure(false)
        .build()
        .unwrap()
}

fn tx_store(cfg: &Config, url: &str, prefix: &str) -> RedisTransactionStore {
    RedisTransactionStore::builder(cfg, url)
        .connect_timeout(REDIS_TIMEOUT)
        .io_timeout(REDIS_TIMEOUT)
        .key_prefix(prefix)
        .secure(false)
        .build()
        .unwrap()
}

fn coordinator(cfg: &Config, url: &str, prefix: &str) -> RedisRefreshCoordinator {
    RedisRefreshCoordinator::builder(cfg, url)
        .connect_timeout(REDIS_TIMEOUT)
        .io_timeout(REDIS_TIMEOUT)
        .key_prefix(prefix)
        .build()
        .unwrap()
}

/// One application instance: its own stores, coordinator and HTTP agent, sharing Redis.
fn instance(
    emu: &Emulator,
    url: &str,
    prefix: &str,
    c: impl RefreshCoordinator + 'static,
) -> Blocking {
    let cfg = config(emu);
    Blocking::builder(
        cfg.clone(),
        state_store(&cfg, url, prefix),
        tx_store(&cfg, url, prefix),
    )
    .coordinator(c)
    .build()
}

/// The options of a request carrying the session-id cookie.
fn with_cookie(name: &str, id: &str) -> CookieOptions {
    let mut h = http::HeaderMap::new();
    h.insert(
        http::header::COOKIE,
        format!("{name}={id}").parse().unwrap(),
    );
    CookieOptions::from_request_headers(&h)
}

/// Stores `state` as a new session at `now` (Unix seconds); returns its id.
fn insert_at(store: &RedisStateStore, state: &StateData, now: u64) -> String {
    let mut o = CookieOptions::new();
    store
        .set(
            state,
            &mut o,
            auth0_server::protocol::time::UnixTime::from_secs(now),
        )
        .unwrap();
    o.cookie(store.cookie()).unwrap().to_owned()
}

/// Stores `state` as a new session; returns its id.
fn insert(store: &RedisStateStore, state: &StateData) -> String {
    let mut o = CookieOptions::new();
    store.set(state, &mut o, system_now()).unwrap();
    o.cookie(store.cookie()).unwrap().to_owned()
}

fn assert_one_refresh_no_reuse(emu: &Emulator, tokens: &[String]) {
    assert_eq!(emu.token_requests().len(), 1, "exactly one refresh request");
    assert_eq!(emu.reuse_detections(), 0, "no reuse detected");
    assert_eq!(emu.revoked_families(), 0, "no family revoked");
    assert_eq!(tokens.len(), 2 * PER_INSTANCE);
    assert!(
        tokens.iter().all(|t| t == &tokens[0]),
        "all got the same token"
    );
    assert_ne!(tokens[0], "expired-access-token");
}

/// 25 threads per instance, all released at once, each with its own copy of the cookie.
fn blocking_callers(instances: &[Blocking], cookie: &str, id: &str) -> Vec<String> {
    let barrier = Barrier::new(instances.len() * PER_INSTANCE);
    std::thread::scope(|s| {
        let handles: Vec<_> = instances
            .iter()
            .flat_map(|client| std::iter::repeat_n(client, PER_INSTANCE))
            .map(|client| {
                let barrier = &barrier;
                let mut o = with_cookie(cookie, id);
                s.spawn(move || {
                    barrier.wait();
                    client
                        .get_access_token(&mut o)
                        .map(|t| t.access_token.expose().to_owned())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    })
}

#[test]
fn session_round_trip_is_encrypted_at_rest() {
    let url = require_redis!();
    let p = prefix();
    let emu = Emulator::start(Default::default());
    let cfg = config(&emu);
    let store = state_store(&cfg, &url, &p);
    let mut session = expired_session(&emu, DEFAULT_AUDIENCE);
    session.token_sets[0].access_token = "at-in-redis-0123456789".into();
    session.token_sets[0].expires_at = now() + 3600;

    let mut first = CookieOptions::new();
    store.set(&session, &mut first, system_now()).unwrap();
    let header = first.set_cookie_headers()[0].to_str().unwrap().to_owned();
    assert!(header.starts_with("__a0_sid="), "{header}");
    assert!(
        header.contains("HttpOnly; SameSite=Lax; Path=/; Max-Age="),
        "{header}"
    );
    let id = first.cookie(store.cookie()).unwrap().to_owned();
    assert!(id.len() >= 43, "a 256-bit id: {id}");

    // Encrypted at rest: no token, no user id in the raw value; a TTL is set.
    let mut conn = raw(&url);
    let key = store.session_key(&id);
    let value: String = redis::cmd("HGET")
        .arg(&key)
        .arg("v")
        .query(&mut conn)
        .unwrap();
    assert!(value.starts_with("eyJhbGciOiJkaXIi"), "a JWE: {value:.40}");
    for secret in [
        "at-in-redis-0123456789",
        session.refresh_token.as_ref().unwrap().expose(),
        "auth0|emulator-user",
    ] {
        assert!(!value.contains(secret), "clear text in Redis");
    }
    let ttl: i64 = redis::cmd("TTL").arg(&key).query(&mut conn).unwrap();
    assert!(ttl > 0 && ttl <= 3 * 24 * 3600, "ttl {ttl}");

    // The next request reads it back (and writes no cookie).
    let mut next = with_cookie(store.cookie(), &id);
    let loaded = store
        .get(&mut next, system_now())
        .unwrap()
        .expect("a session");
    assert_eq!(loaded.token_sets, session.token_sets);
    assert_eq!(loaded.refresh_token, session.refresh_token);
    assert_eq!(loaded.user, session.user);
    assert!(next.set_cookie_headers().is_empty());

    // Through the client: a cache hit, nothing sent.
    let client = instance(&emu, &url, &p, coordinator(&cfg, &url, &p));
    let token = client.get_access_token(&mut next).unwrap();
    assert_eq!(token.access_token.expose(), "at-in-redis-0123456789");
    assert!(emu.requests().is_empty());

    // An unknown id is not adopted; delete removes the session and clears the cookie.
    let mut foreign = with_cookie(store.cookie(), "attacker-chosen-id");
    assert_eq!(store.get(&mut foreign, system_now()).unwrap(), None);
    store.set(&session, &mut foreign, system_now()).unwrap();
    assert_ne!(foreign.cookie(store.cookie()), Some("attacker-chosen-id"));
    store.delete(&mut next, system_now()).unwrap();
    assert!(
        next.set_cookie_headers()[0]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let exists: i64 = redis::cmd("EXISTS").arg(&key).query(&mut conn).unwrap();
    assert_eq!(exists, 0);
}

#[test]
fn backchannel_logout_deletes_by_sid_and_by_sub() {
    let url = require_redis!();
    backchannel_logout(&url, Some(&mut raw(&url)));
}

#[test]
fn cluster_backchannel_logout_deletes_by_sid_and_by_sub() {
    let url = require_cluster!();
    backchannel_logout(&url, None);
}

/// Sessions of two users, ended by `sid` then by `sub`; with `conn` (one server), the index
/// entries are checked too.
fn backchannel_logout(url: &str, mut conn: Option<&mut redis::Connection>) {
    let url = url.to_owned();
    let p = prefix();
    let emu = Emulator::start(Default::default());
    let client = instance(&emu, &url, &p, coordinator(&config(&emu), &url, &p));
    let store = client.state_store();
    let session = |sub: &str, sid: &str| {
        let mut s = expired_session(&emu, DEFAULT_AUDIENCE);
        s.user.as_mut().unwrap().insert("sub".into(), sub.into());
        s.internal.sid = sid.into();
        s
    };
    let alice_1 = insert(store, &session("auth0|alice", "sid-1"));
    let alice_2 = insert(store, &session("auth0|alice", "sid-2"));
    let bob = insert(store, &session("auth0|bob", "sid-3"));
    let alive = |id: &str| {
        store
            .get(&mut with_cookie(store.cookie(), id), system_now())
            .unwrap()
            .is_some()
    };
    // The index entries (sorted sets `{label}:z`), counted on one server; `None` on a cluster.
    let index_members = |conn: &mut Option<&mut redis::Connection>, kind: &str| {
        let conn = conn.as_deref_mut()?;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{p}i:{kind}:*:z"))
            .query(conn)
            .unwrap();
        Some(
            keys.iter()
                .map(|k| redis::cmd("ZCARD").arg(k).query::<usize>(conn).unwrap())
                .sum::<usize>(),
        )
    };
    let sums = |conn: &mut Option<&mut redis::Connection>| {
        index_members(conn, "sid").zip(index_members(conn, "sub"))
    };
    assert!(matches!(sums(&mut conn), None | Some((3, 3))));

    // By sid (the token also names the user: only the sid's session ends).
    let logout = emu.mint_logout_token(Some("auth0|alice"), Some("sid-1"), Map::new());
    client
        .handle_backchannel_logout(&logout, &mut CookieOptions::new())
        .unwrap();
    assert!(!alive(&alice_1) && alive(&alice_2) && alive(&bob));
    assert!(
        matches!(sums(&mut conn), None | Some((2, 2))),
        "indexes updated"
    );

    // A token naming a sid and another user ends nothing (only a session matching both
    // ends); naming the session's own user, it ends it.
    let carol = insert(store, &session("auth0|carol", "sid-9"));
    let logout = emu.mint_logout_token(Some("auth0|dave"), Some("sid-9"), Map::new());
    client
        .handle_backchannel_logout(&logout, &mut CookieOptions::new())
        .unwrap();
    assert!(
        alive(&carol),
        "a session of another user was ended by its sid"
    );
    let logout = emu.mint_logout_token(Some("auth0|carol"), Some("sid-9"), Map::new());
    client
        .handle_backchannel_logout(&logout, &mut CookieOptions::new())
        .unwrap();
    assert!(!alive(&carol));
    assert!(matches!(sums(&mut conn), None | Some((2, 2))));

    // By sub: every session of the user of that issuer.
    let logout = emu.mint_logout_token(Some("auth0|alice"), None, Map::new());
    client
        .handle_backchannel_logout(&logout, &mut CookieOptions::new())
        .unwrap();
    assert!(!alive(&alice_2) && alive(&bob));
    assert!(matches!(sums(&mut conn), None | Some((1, 1))));

    // Deleting a session directly leaves no index entry behind.
    store
        .delete(&mut with_cookie(store.cookie(), &bob), system_now())
        .unwrap();
    assert!(!alive(&bob));
    assert!(matches!(sums(&mut conn), None | Some((0, 0))));
}

#[test]
fn two_instances_fifty_callers_one_refresh() {
    two_instances_fifty_callers_one_refresh_on(&require_redis!());
}

#[test]
fn cluster_two_instances_fifty_callers_one_refresh() {
    two_instances_fifty_callers_one_refresh_on(&require_cluster!());
}

fn two_instances_fifty_callers_one_refresh_on(url: &str) {
    let url = url.to_owned();
    let p = prefix();
    let emu = Emulator::start(Default::default());
    // Latency keeps the winner's refresh in flight while every caller arrives.
    emu.fail_next("/oauth/token", Failure::Slow(Duration::from_millis(300)), 1);
    let cfg = config(&emu);
    let a = instance(&emu, &url, &p, coordinator(&cfg, &url, &p));
    let b = instance(&emu, &url, &p, coordinator(&cfg, &url, &p));
    let id = insert(a.state_store(), &expired_session(&emu, DEFAULT_AUDIENCE));
    let cookie = a.state_store().cookie().to_owned();

    let tokens = blocking_callers(&[a.clone(), b], &cookie, &id);
    assert_one_refresh_no_reuse(&emu, &tokens);

    // The shared session now holds the rotated refresh token, which is live.
    let saved = a
        .state_store()
        .get(&mut with_cookie(&cookie, &id), system_now())
        .unwrap()
        .unwrap();
    assert!(emu.refresh_token_is_live(saved.refresh_token.as_ref().unwrap().expose()));
}

#[test]
fn two_async_instances_fifty_tasks_one_refresh() {
    two_async_instances_fifty_tasks_one_refresh_on(&require_redis!());
}

#[test]
fn cluster_two_async_instances_fifty_tasks_one_refresh() {
    two_async_instances_fifty_tasks_one_refresh_on(&require_cluster!());
}

fn two_async_instances_fifty_tasks_one_refresh_on(url: &str) {
    let url = url.to_owned();
    let p = prefix();
    let emu = Emulator::start(Default::default());
    emu.fail_next("/oauth/token", Failure::Slow(Duration::from_millis(300)), 1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let cfg = config(&emu);
    let make = || -> Async {
        let _guard = rt.enter();
        Async::builder(
            cfg.clone(),
            RedisStateStore::builder(&cfg, &url)
                .connect_timeout(REDIS_TIMEOUT)
                .io_timeout(REDIS_TIMEOUT)
                .key_prefix(&p)
                .secure(false)
                .build_async()
                .unwrap(),
            RedisTransactionStore::builder(&cfg, &url)
                .connect_timeout(REDIS_TIMEOUT)
                .io_timeout(REDIS_TIMEOUT)
                .key_prefix(&p)
                .build_async()
                .unwrap(),
            adapter_support::reqwest_client(Duration::from_secs(10)),
        )
        .coordinator(
            RedisRefreshCoordinator::builder(&cfg, &url)
                .connect_timeout(REDIS_TIMEOUT)
                .io_timeout(REDIS_TIMEOUT)
                .key_prefix(&p)
                .build_async()
                .unwrap(),
        )
        .build()
    };
    let (a, b) = (make(), make());
    let id = insert(
        &state_store(&cfg, &url, &p),
        &expired_session(&emu, DEFAULT_AUDIENCE),
    );
    let cookie = a.state_store().cookie().to_owned();
    let tokens = rt.block_on(async {
        let barrier = Arc::new(tokio::sync::Barrier::new(2 * PER_INSTANCE));
        let tasks: Vec<_> = [a, b]
            .iter()
            .flat_map(|client| std::iter::repeat_n(client, PER_INSTANCE))
            .map(|client| {
                let (client, barrier) = (client.clone(), barrier.clone());
                let mut o = with_cookie(&cookie, &id);
                tokio::spawn(async move {
                    barrier.wait().await;
                    client
                        .get_access_token(&mut o)
                        .await
                        .map(|t| t.access_token.expose().to_owned())
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap().unwrap());
        }
        out
    });
    assert_one_refresh_no_reuse(&emu, &tokens);
}

/// Wraps a coordinator and records the keys it is asked about.
struct Spy<C> {
    inner: C,
    keys: Arc<Mutex<Vec<String>>>,
}

impl<C: RefreshCoordinator> RefreshCoordinator for Spy<C> {
    fn coordinate(&self, request: &Coalesce, send: SendRequest<'_>) -> Result<Coordinated, Error> {
        self.keys.lock().unwrap().push(request.key.clone());
        self.inner.coordinate(request, send)
    }
}

#[test]
fn a_killed_lock_holder_is_taken_over_after_the_lock_expires() {
    let url = require_redis!();
    let p = prefix();
    let emu = Emulator::start(Default::default());
    let cfg = config(&emu);
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    let keys = Arc::new(Mutex::new(Vec::new()));
    let spy = |keys: &Arc<Mutex<Vec<String>>>| Spy {
        inner: coordinator(&cfg, &url, &p),
        keys: keys.clone(),
    };
    let a = instance(&emu, &url, &p, spy(&keys));
    let b = instance(&emu, &url, &p, spy(&keys));
    let id = insert(a.state_store(), &session);

    // A winner that took the lock and died before sending: the lock of the refresh token's
    // lane, held with a foreign fencing value, never released, expiring in 1.5 s.
    let lane = refresh_token_hash(session.refresh_token.as_ref().unwrap());
    let coalesce_key = format!(
        "refresh {lane} {DEFAULT_AUDIENCE} {}",
        adapter_support::DEFAULT_SCOPE
    );
    let lock_key = coordinator(&cfg, &url, &p).lock_key(&Coalesce {
        key: coalesce_key.clone(),
        remember: true,
        lane: Some(lane),
    });
    let mut conn = raw(&url);
    let set: Option<String> = redis::cmd("SET")
        .arg(&lock_key)
        .arg("fencing-value-of-a-dead-instance")
        .arg("NX")
        .arg("PX")
        .arg(1500)
        .query(&mut conn)
        .unwrap();
    assert_eq!(set.as_deref(), Some("OK"));

    let started = Instant::now();
    let tokens = blocking_callers(&[a, b], "__a0_sid", &id);
    let waited = started.elapsed();
    assert_one_refresh_no_reuse(&emu, &tokens);
    assert!(
        waited >= Duration::from_millis(1400),
        "the callers waited for the lock's expiry ({waited:?})"
    );
    let seen = keys.lock().unwrap();
    assert!(
        !seen.is_empty() && seen.len() <= 2,
        "one lock attempt per instance: {seen:?}"
    );
    assert!(
        seen.iter().all(|k| k == &coalesce_key),
        "{seen:?} vs {coalesce_key}"
    );
}

#[test]
fn redis_down_is_a_typed_error_and_writes_nothing() {
    let url = require_redis!();
    let p = prefix();
    // A closed port: bound, then released.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("redis://127.0.0.1:{}/", l.local_addr().unwrap().port())
    };
    let emu = Emulator::start(Default::default());
    let cfg = config(&emu);

    // The session store down: reads and writes fail with `store_error`; no cookie is set.
    let down = instance(&emu, &closed, &p, coordinator(&cfg, &closed, &p));
    let mut o = with_cookie("__a0_sid", "some-session-id");
    let err = down.get_access_token(&mut o).unwrap_err();
    assert_eq!(err.code(), "store_error", "{err:?}");
    let mut fresh = CookieOptions::new();
    let err = down
        .state_store()
        .set(
            &expired_session(&emu, DEFAULT_AUDIENCE),
            &mut fresh,
            system_now(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("Redis"), "{err}");
    assert!(
        fresh.set_cookie_headers().is_empty(),
        "no cookie for an unwritten session"
    );

    // Sessions up, coordinator down: nothing is sent, the session is unchanged.
    let client = Blocking::builder(
        cfg.clone(),
        state_store(&cfg, &url, &p),
        tx_store(&cfg, &url, &p),
    )
    .coordinator(coordinator(&cfg, &closed, &p))
    .build();
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    let id = insert(client.state_store(), &session);
    let mut o = with_cookie("__a0_sid", &id);
    let err = client.get_access_token(&mut o).unwrap_err();
    assert_eq!(err.code(), "store_error", "{err:?}");
    assert!(
        emu.token_requests().is_empty(),
        "no refresh sent uncoordinated"
    );
    let stored = client
        .state_store()
        .get(&mut o, system_now())
        .unwrap()
        .unwrap();
    assert_eq!(stored.refresh_token, session.refresh_token);
    assert_eq!(stored.token_sets, session.token_sets);
}

#[test]
fn transactions_are_encrypted_and_bound_to_the_browser() {
    use auth0_server::protocol::transaction::{TransactionData, transaction_key};
    use auth0_server::store::TransactionStore;
    let url = require_redis!();
    let p = prefix();
    let emu = Emulator::start(Default::default());
    let store = tx_store(&config(&emu), &url, &p);
    let key = transaction_key("state-abc");
    let tx = TransactionData {
        state: Some("state-abc".into()),
        code_verifier: Some("verifier-0123456789".into()),
        ..Default::default()
    };
    let mut browser = CookieOptions::new();
    store.set(&key, &tx, &mut browser, system_now()).unwrap();
    let header = browser.set_cookie_headers()[0].to_str().unwrap().to_owned();
    assert!(header.starts_with("_a0_tx.state-abc="), "{header}");
    let got = store
        .get(&key, &mut browser, system_now())
        .unwrap()
        .expect("same browser");
    assert_eq!(got.code_verifier, tx.code_verifier);

    // Encrypted at rest.
    let mut conn = raw(&url);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{p}t:*"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(keys.len(), 1);
    let value: String = redis::cmd("GET").arg(&keys[0]).query(&mut conn).unwrap();
    assert!(!value.contains("verifier-0123456789"));

    // Another browser (no binding cookie, or a forged one) finds nothing.
    assert_eq!(
        store
            .get(&key, &mut CookieOptions::new(), system_now())
            .unwrap(),
        None
    );
    let mut forged = with_cookie(&key, "forged");
    assert_eq!(store.get(&key, &mut forged, system_now()).unwrap(), None);

    store.delete(&key, &mut browser, system_now()).unwrap();
    assert_eq!(store.get(&key, &mut browser, system_now()).unwrap(), None);
}

// Refresh-token lanes across instances: two refreshes that spend one refresh token for two
// audiences, on two instances. Each instance has its own stores (every caller presents its
// own copy of the pre-rotation session, like a cookie) and its own HTTP client; they share
// only Redis.

type LaneBlocking = auth0_server::blocking::ServerClient<RecordingStore, RecordingStore>;
type LaneAsync =
    auth0_server::nonblocking::ServerClient<RecordingStore, RecordingStore, ReqwestClient>;

fn lane_instance(emu: &Emulator, url: &str, prefix: &str) -> LaneBlocking {
    let cfg = config(emu);
    let store = RecordingStore::default();
    LaneBlocking::builder(cfg.clone(), store.clone(), store)
        .coordinator(coordinator(&cfg, url, prefix))
        .build()
}

fn lane_async_instance(
    emu: &Emulator,
    rt: &tokio::runtime::Runtime,
    url: &str,
    prefix: &str,
) -> LaneAsync {
    let _guard = rt.enter();
    let cfg = config(emu);
    let store = RecordingStore::default();
    LaneAsync::builder(
        cfg.clone(),
        store.clone(),
        store,
        adapter_support::reqwest_client(Duration::from_secs(10)),
    )
    .coordinator(
        RedisRefreshCoordinator::builder(&cfg, url)
            .key_prefix(prefix)
            .build_async()
            .unwrap(),
    )
    .build()
}

/// Every value under `prefix` is encrypted: none contains any of `secrets`. The lanes'
/// rotations were published.
fn assert_nothing_in_clear(url: &str, prefix: &str, secrets: &[String]) {
    let mut conn = raw(url);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(&mut conn)
        .unwrap();
    let rotations = keys.iter().filter(|k| k.ends_with(":rotated")).count();
    assert!(rotations >= 1, "a lane's rotation is published: {keys:?}");
    for key in &keys {
        assert!(
            secrets.iter().all(|s| !key.contains(s.as_str())),
            "a token in a key name: {key}"
        );
        let value: Option<String> = redis::cmd("GET").arg(key).query(&mut conn).unwrap();
        let Some(value) = value else { continue };
        assert!(value.starts_with("eyJhbGciOiJkaXIi"), "a JWE: {value:.40}");
        for secret in secrets {
            assert!(
                !value.contains(secret.as_str()),
                "clear text in Redis under {key}"
            );
        }
    }
}

/// Rounds of the concurrent lane scenario. Which audience each instance's in-process leader
/// asks for is up to the scheduler; only rounds where the two differ can catch an
/// uncoordinated lane, so several independent rounds make that near-certain.
const LANE_ROUNDS: usize = 4;

#[test]
fn two_instances_fifty_callers_two_audiences_one_lane() {
    let url = require_redis!();
    let mut written = Vec::new();
    for _ in 0..LANE_ROUNDS {
        let p = prefix();
        let emu = Emulator::start(Default::default());
        // Latency keeps the first refresh in flight while every caller arrives.
        emu.fail_next("/oauth/token", Failure::Slow(Duration::from_millis(300)), 1);
        let instances = [lane_instance(&emu, &url, &p), lane_instance(&emu, &url, &p)];
        let session = expired_session(&emu, DEFAULT_AUDIENCE);
        let original = session.refresh_token.clone().unwrap();
        let barrier = Barrier::new(2 * PER_INSTANCE);
        let tokens: Vec<(usize, String)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2 * PER_INSTANCE)
                .map(|i| {
                    let (client, barrier) = (&instances[i / PER_INSTANCE], &barrier);
                    let mut o = TestOptions::with(&format!("t{i}"), session.clone());
                    s.spawn(move || {
                        barrier.wait();
                        let t = client
                            .get_access_token_with(lane_audience(i), &mut o)
                            .unwrap();
                        (i, t.access_token.expose().to_owned())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let secrets =
            assert_two_refreshes_on_one_lane(&emu, original.expose(), &tokens, 2 * PER_INSTANCE);
        written.push((p, secrets));
    }
    // Once every round ran (a failed round is the more telling failure).
    for (p, secrets) in written {
        assert_nothing_in_clear(&url, &p, &secrets);
    }
}

#[test]
fn two_async_instances_fifty_tasks_two_audiences_one_lane() {
    let url = require_redis!();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let mut written = Vec::new();
    for _ in 0..LANE_ROUNDS {
        let p = prefix();
        let emu = Emulator::start(Default::default());
        emu.fail_next("/oauth/token", Failure::Slow(Duration::from_millis(300)), 1);
        let instances = [
            lane_async_instance(&emu, &rt, &url, &p),
            lane_async_instance(&emu, &rt, &url, &p),
        ];
        let session = expired_session(&emu, DEFAULT_AUDIENCE);
        let original = session.refresh_token.clone().unwrap();
        let tokens = rt.block_on(async {
            let barrier = Arc::new(tokio::sync::Barrier::new(2 * PER_INSTANCE));
            let tasks: Vec<_> = (0..2 * PER_INSTANCE)
                .map(|i| {
                    let (client, barrier) = (instances[i / PER_INSTANCE].clone(), barrier.clone());
                    let mut o = TestOptions::with(&format!("t{i}"), session.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        let t = client
                            .get_access_token_with(lane_audience(i), &mut o)
                            .await
                            .unwrap();
                        (i, t.access_token.expose().to_owned())
                    })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        });
        let secrets =
            assert_two_refreshes_on_one_lane(&emu, original.expose(), &tokens, 2 * PER_INSTANCE);
        written.push((p, secrets));
    }
    // Once every round ran (a failed round is the more telling failure).
    for (p, secrets) in written {
        assert_nothing_in_clear(&url, &p, &secrets);
    }
}

/// After one instance refreshed audience A (rotating the refresh token), the other, with the
/// old session, asks for audience B: it spends the rotated token, never the old one.
fn assert_the_later_instance_spent_the_rotated_token(
    emu: &Emulator,
    original: &str,
    late: &TestOptions,
) {
    let requests = emu.token_requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].param("refresh_token"), Some(original));
    assert_eq!(requests[0].param("audience"), Some(DEFAULT_AUDIENCE));
    assert_ne!(
        requests[1].param("refresh_token"),
        Some(original),
        "the second instance spent the rotated token"
    );
    assert_eq!(requests[1].param("audience"), Some(ANALYTICS_AUDIENCE));
    assert_eq!(emu.reuse_detections(), 0);
    assert_eq!(emu.revoked_families(), 0);
    let kept = late
        .session
        .as_ref()
        .unwrap()
        .refresh_token
        .as_ref()
        .unwrap();
    assert!(
        emu.refresh_token_is_live(kept.expose()),
        "the late session holds a live token"
    );
}

#[test]
fn another_instance_asking_for_another_audience_spends_the_rotated_token() {
    let url = require_redis!();
    let p = prefix();
    let emu = Emulator::start(Default::default());
    let (a, b) = (lane_instance(&emu, &url, &p), lane_instance(&emu, &url, &p));
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    let original = session.refresh_token.clone().unwrap();
    a.get_access_token(&mut TestOptions::with("a", session.clone()))
        .unwrap();
    let mut late = TestOptions::with("b", session);
    let token = b
        .get_access_token_with(AccessTokenRequest::audience(ANALYTICS_AUDIENCE), &mut late)
        .unwrap();
    assert_ne!(token.access_token.expose(), "expired-access-token");
    assert_the_later_instance_spent_the_rotated_token(&emu, original.expose(), &late);
}

#[test]
fn another_async_instance_asking_for_another_audience_spends_the_rotated_token() {
    let url = require_redis!();
    let p = prefix();
    let emu = Emulator::start(Default::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let a = lane_async_instance(&emu, &rt, &url, &p);
    let b = lane_async_instance(&emu, &rt, &url, &p);
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    let original = session.refresh_token.clone().unwrap();
    let mut late = TestOptions::with("b", session.clone());
    rt.block_on(async {
        a.get_access_token(&mut TestOptions::with("a", session))
            .await
            .unwrap();
        b.get_access_token_with(AccessTokenRequest::audience(ANALYTICS_AUDIENCE), &mut late)
            .await
            .unwrap();
    });
    assert_the_later_instance_spent_the_rotated_token(&emu, original.expose(), &late);
}

#[test]
fn a_connection_exchange_on_another_instance_spends_the_rotated_token() {
    use auth0_server::ConnectionTokenRequest;
    let url = require_redis!();
    let p = prefix();
    let emu = Emulator::start(Default::default());
    let (a, b) = (lane_instance(&emu, &url, &p), lane_instance(&emu, &url, &p));
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    let original = session.refresh_token.clone().unwrap();
    a.get_access_token(&mut TestOptions::with("a", session.clone()))
        .unwrap();
    // The exchange spends the refresh token too: the coordinator hands over the rotated one.
    let mut late = TestOptions::with("b", session);
    let token = b
        .get_access_token_for_connection(ConnectionTokenRequest::new("google-oauth2"), &mut late)
        .unwrap();
    assert_eq!(
        token.access_token.expose(),
        "ya29.emulator-google-access-token"
    );
    let requests = emu.token_requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].param("refresh_token"), Some(original.expose()));
    let spent = requests[1].param("subject_token").unwrap();
    assert_ne!(
        spent,
        original.expose(),
        "the exchange spent the rotated token"
    );
    assert!(emu.refresh_token_is_live(spent));
    assert_eq!(emu.reuse_detections(), 0);
    // Its answer is not published (it is not a remembered request): the only answer is the
    // refresh's. Every lane's lock was released.
    let mut conn = raw(&url);
    let mut keys = |pattern: &str| -> Vec<String> {
        redis::cmd("KEYS")
            .arg(format!("{p}{pattern}"))
            .query(&mut conn)
            .unwrap()
    };
    assert_eq!(keys("r:*:result").len(), 1, "only the refresh's answer");
    assert_eq!(keys("l:*:rotated").len(), 1, "the refresh's rotation");
    assert!(keys("l:*:lock").is_empty(), "every lane lock released");
}

// --- session integrity (I2–I4): what happens while a refresh is in flight -------------------

fn integrity_client(emu: &Emulator, url: &str) -> Arc<Blocking> {
    let cfg = config(emu);
    let prefix = prefix();
    Arc::new(
        Blocking::builder(
            cfg.clone(),
            state_store(&cfg, url, &prefix),
            tx_store(&cfg, url, &prefix),
        )
        .build(),
    )
}

#[test]
fn redis_a_logout_during_a_refresh_is_not_undone() {
    let url = require_redis!();
    let emu = Emulator::start(Default::default());
    let client = integrity_client(&emu, &url);
    let cookie = client.state_store().cookie().to_owned();
    integrity_support::logout_during_refresh_stays_logged_out(&emu, client, &cookie);
}

#[test]
fn redis_a_save_during_a_refresh_is_kept() {
    let url = require_redis!();
    let emu = Emulator::start(Default::default());
    let client = integrity_client(&emu, &url);
    let cookie = client.state_store().cookie().to_owned();
    integrity_support::a_concurrent_save_is_not_overwritten(&emu, client, &cookie);
}

#[test]
fn redis_a_failed_save_after_a_rotation_loses_nothing() {
    let url = require_redis!();
    let emu = Emulator::start(Default::default());
    let cfg = config(&emu);
    let prefix = prefix();
    let (clock, time) = integrity_support::movable_clock();
    let store = integrity_support::FailingUpdates {
        inner: state_store(&cfg, &url, &prefix),
        failing: Arc::new(std::sync::atomic::AtomicBool::new(false)),
    };
    let cookie = store.inner.cookie().to_owned();
    let client = auth0_server::blocking::ServerClient::builder(
        cfg.clone(),
        store,
        tx_store(&cfg, &url, &prefix),
    )
    .clock(clock)
    .build();
    integrity_support::a_failed_save_never_loses_the_rotated_token(&emu, &client, &cookie, &time);
}

/// Concurrent update-only saves of one session through the compare-and-set: sixteen threads
/// each add their own token set; every one of them is stored.
#[test]
fn redis_concurrent_updates_of_one_session_all_land() {
    redis_concurrent_updates_of_one_session_all_land_on(&require_redis!());
}

#[test]
fn cluster_redis_concurrent_updates_of_one_session_all_land() {
    redis_concurrent_updates_of_one_session_all_land_on(&require_cluster!());
}

fn redis_concurrent_updates_of_one_session_all_land_on(url: &str) {
    use auth0_server::protocol::session::{SessionUpdate, TokenSet, Updated};
    let url = url.to_owned();
    let emu = Emulator::start(Default::default());
    let cfg = config(&emu);
    let store = Arc::new(state_store(&cfg, &url, &prefix()));
    let base = expired_session(&emu, DEFAULT_AUDIENCE);
    let id = insert(&store, &base);
    let cookie = store.cookie().to_owned();
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let (store, base, cookie, id) =
                (store.clone(), base.clone(), cookie.clone(), id.clone());
            std::thread::spawn(move || {
                let mut after = base.clone();
                after.token_sets.push(TokenSet {
                    audience: format!("https://api-{i}.example.com"),
                    access_token: format!("at-{i}").into(),
                    scope: None,
                    expires_at: now() + 600,
                    requested_scope: None,
                    token_type: Default::default(),
                });
                let update = SessionUpdate::between(&base, &after, &[]);
                let mut o = with_cookie(&cookie, &id);
                assert_eq!(
                    store.update(&update, &mut o, system_now()).unwrap(),
                    Updated::Saved
                );
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut o = with_cookie(&cookie, &id);
    let stored = store.get(&mut o, system_now()).unwrap().unwrap();
    for i in 0..16 {
        assert!(
            stored
                .token_sets
                .iter()
                .any(|s| s.access_token.expose() == format!("at-{i}")),
            "the update of thread {i} was lost"
        );
    }
}

/// A logout received by one instance ends the cookie session on another: the cookie stores
/// share their revocation list in Redis.
#[test]
fn a_cookie_session_logged_out_on_one_instance_is_ended_on_all() {
    a_cookie_session_logged_out_on_one_instance_is_ended_on_all_on(&require_redis!());
}

#[test]
fn cluster_a_cookie_session_logged_out_on_one_instance_is_ended_on_all() {
    a_cookie_session_logged_out_on_one_instance_is_ended_on_all_on(&require_cluster!());
}

fn a_cookie_session_logged_out_on_one_instance_is_ended_on_all_on(url: &str) {
    use auth0_server::store::cookie::CookieStateStore;
    use auth0_server::store::redis::RedisRevocations;
    let url = url.to_owned();
    let emu = Emulator::start(Default::default());
    let cfg = config(&emu);
    let prefix = prefix();
    let instance = || {
        CookieStateStore::builder(&cfg)
            .secure(false)
            .revocations(
                RedisRevocations::builder(url.as_str())
                    .key_prefix(prefix.as_str())
                    .io_timeout(REDIS_TIMEOUT)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    let (one, two) = (instance(), instance());
    let mut written = CookieOptions::new();
    one.set(
        &expired_session(&emu, DEFAULT_AUDIENCE),
        &mut written,
        system_now(),
    )
    .unwrap();
    let cookies: Vec<String> = written
        .cookie_names()
        .into_iter()
        .map(|n| format!("{n}={}", written.cookie(n).unwrap()))
        .collect();
    let mut h = http::HeaderMap::new();
    h.insert(http::header::COOKIE, cookies.join("; ").parse().unwrap());
    let request = CookieOptions::from_request_headers(&h);
    assert!(
        two.get(&mut request.clone(), system_now())
            .unwrap()
            .is_some()
    );
    one.delete(&mut request.clone(), system_now()).unwrap();
    assert!(
        two.get(&mut request.clone(), system_now())
            .unwrap()
            .is_none(),
        "the other instance still serves the ended session"
    );
    if url.contains("+cluster://") {
        return;
    }
    // What Redis holds names no session or user in clear.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(&mut raw(&url))
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(!keys[0].contains("emulator") && !keys[0].contains("auth0|"));
}

/// Logins of one user race a back-channel logout by `sub`: every session written before the
/// logout began ends, and none is left alive outside the index — a second logout ends every
/// session that survived the first (they were saved while it ran).
#[test]
fn logins_racing_a_backchannel_logout_leave_no_unindexed_session() {
    logins_racing_a_backchannel_logout_on(&require_redis!());
}

#[test]
fn cluster_logins_racing_a_backchannel_logout_leave_no_unindexed_session() {
    logins_racing_a_backchannel_logout_on(&require_cluster!());
}

fn logins_racing_a_backchannel_logout_on(url: &str) {
    const LOGINS: usize = 40;
    let p = prefix();
    let emu = Emulator::start(Default::default());
    let client = instance(&emu, url, &p, coordinator(&config(&emu), url, &p));
    let store = client.state_store();
    let session = |i: usize| {
        let mut s = expired_session(&emu, DEFAULT_AUDIENCE);
        s.user
            .as_mut()
            .unwrap()
            .insert("sub".into(), "auth0|racer".into());
        s.internal.sid = format!("sid-{i}");
        s
    };
    let before: Vec<String> = (0..5).map(|i| insert(store, &session(i))).collect();
    let logout = emu.mint_logout_token(Some("auth0|racer"), None, Map::new());
    let barrier = Barrier::new(3);
    let during: Vec<String> = std::thread::scope(|s| {
        let logins: Vec<_> = (0..2)
            .map(|t| {
                let (barrier, session) = (&barrier, &session);
                s.spawn(move || {
                    barrier.wait();
                    (0..LOGINS / 2)
                        .map(|i| insert(store, &session(100 + t * LOGINS + i)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        barrier.wait();
        client
            .handle_backchannel_logout(&logout, &mut CookieOptions::new())
            .unwrap();
        logins.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let alive = |id: &str| {
        store
            .get(&mut with_cookie(store.cookie(), id), system_now())
            .unwrap()
            .is_some()
    };
    assert!(
        before.iter().all(|id| !alive(id)),
        "a session saved before the logout survived it"
    );
    // A second logout token (a replayed one is refused: its jti was seen).
    let again = emu.mint_logout_token(Some("auth0|racer"), None, Map::new());
    client
        .handle_backchannel_logout(&again, &mut CookieOptions::new())
        .unwrap();
    let survivors = during.iter().filter(|id| alive(id)).count();
    assert_eq!(
        survivors, 0,
        "{survivors} of {LOGINS} sessions escaped the index"
    );
}

/// A user's index keeps no entry past its session's absolute expiry: the next save drops
/// them (so a save costs the same however many sessions the user had).
#[test]
fn expired_index_entries_are_dropped_by_the_next_save() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let url = require_redis!();
    let p = prefix();
    let emu = Emulator::start(Default::default());
    let cfg = config(&emu);
    let clock = Arc::new(AtomicU64::new(now()));
    let store = RedisStateStore::builder(&cfg, url.as_str())
        .key_prefix(&p)
        .secure(false)
        .absolute_duration(Duration::from_secs(600))
        .build()
        .unwrap();
    let session = || {
        let mut s = expired_session(&emu, DEFAULT_AUDIENCE);
        s.internal.created_at = 0;
        s
    };
    let mut conn = raw(&url);
    let entries = |conn: &mut redis::Connection| -> usize {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{p}i:sub:*:z"))
            .query(conn)
            .unwrap();
        keys.iter()
            .map(|k| redis::cmd("ZCARD").arg(k).query::<usize>(conn).unwrap())
            .sum()
    };
    for _ in 0..10 {
        insert_at(&store, &session(), clock.load(Ordering::SeqCst));
    }
    assert_eq!(entries(&mut conn), 10);
    clock.fetch_add(601, Ordering::SeqCst);
    insert_at(&store, &session(), clock.load(Ordering::SeqCst));
    assert_eq!(entries(&mut conn), 1, "the expired entries are dropped");
}

/// Sessions written by versions before the sorted-set indexes (a session hash whose user is
/// indexed in a plain set at the label) are still ended by a back-channel logout, and the
/// next save indexes them the new way.
#[test]
fn sessions_indexed_by_an_earlier_version_are_still_logged_out() {
    let url = require_redis!();
    let p = prefix();
    let emu = Emulator::start(Default::default());
    let client = instance(&emu, &url, &p, coordinator(&config(&emu), &url, &p));
    let store = client.state_store();
    let mut conn = raw(&url);
    // Two sessions, then made to look as an earlier version left them: no sorted-set entry,
    // the id in a plain set named by the label.
    let ids: Vec<String> = (0..2)
        .map(|_| insert(store, &expired_session(&emu, DEFAULT_AUDIENCE)))
        .collect();
    for id in &ids {
        let label: String = redis::cmd("HGET")
            .arg(store.session_key(id))
            .arg("sub")
            .query(&mut conn)
            .unwrap();
        let _: () = redis::cmd("DEL")
            .arg(format!("{label}:z"))
            .query(&mut conn)
            .unwrap();
        let _: () = redis::cmd("SADD")
            .arg(&label)
            .arg(id)
            .query(&mut conn)
            .unwrap();
        let _: () = redis::cmd("HDEL")
            .arg(store.session_key(id))
            .arg("z")
            .query(&mut conn)
            .unwrap();
    }
    // The first is saved again by this version (it gains a sorted-set entry); the second is
    // only in the old set.
    let mut o = with_cookie(store.cookie(), &ids[0]);
    let state = store.get(&mut o, system_now()).unwrap().unwrap();
    store.set(&state, &mut o, system_now()).unwrap();
    let label: String = redis::cmd("HGET")
        .arg(store.session_key(&ids[0]))
        .arg("sub")
        .query(&mut conn)
        .unwrap();
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg(format!("{label}:z"))
        .arg(&ids[0])
        .query(&mut conn)
        .unwrap();
    assert!(score.is_some(), "the saved session is indexed the new way");
    let sub = emu.user_claims()["sub"].as_str().unwrap().to_owned();
    let logout = emu.mint_logout_token(Some(&sub), None, Map::new());
    client
        .handle_backchannel_logout(&logout, &mut CookieOptions::new())
        .unwrap();
    for id in &ids {
        let exists: i64 = redis::cmd("EXISTS")
            .arg(store.session_key(id))
            .query(&mut conn)
            .unwrap();
        assert_eq!(exists, 0, "a session survived its user's logout");
    }
}

/// A session saved again with another `sid` (a new login of the same user over its id) is
/// ended by a logout of its new `sid`, not of its old one: the old index's entry is stale.
#[test]
fn a_session_that_moved_to_another_sid_is_ended_by_the_new_sid_only() {
    a_session_that_moved_to_another_sid_on(&require_redis!());
}

#[test]
fn cluster_a_session_that_moved_to_another_sid_is_ended_by_the_new_sid_only() {
    a_session_that_moved_to_another_sid_on(&require_cluster!());
}

fn a_session_that_moved_to_another_sid_on(url: &str) {
    let p = prefix();
    let emu = Emulator::start(Default::default());
    let client = instance(&emu, url, &p, coordinator(&config(&emu), url, &p));
    let store = client.state_store();
    let sub = emu.user_claims()["sub"].as_str().unwrap().to_owned();
    let mut session = expired_session(&emu, DEFAULT_AUDIENCE);
    session.internal.sid = "sid-old".into();
    let id = insert(store, &session);
    session.internal.sid = "sid-new".into();
    let mut o = with_cookie(store.cookie(), &id);
    store.set(&session, &mut o, system_now()).unwrap();
    assert!(o.set_cookie_headers().is_empty(), "saved under the same id");
    let alive = || {
        store
            .get(&mut with_cookie(store.cookie(), &id), system_now())
            .unwrap()
            .is_some()
    };
    let logout = |sid: &str| {
        let token = emu.mint_logout_token(Some(&sub), Some(sid), Map::new());
        client
            .handle_backchannel_logout(&token, &mut CookieOptions::new())
            .unwrap();
    };
    logout("sid-old");
    assert!(alive(), "a logout of the session's former sid ended it");
    logout("sid-new");
    assert!(!alive(), "a logout of the session's sid left it alive");
}

/// The async store's saves, reads, deletes and back-channel logouts (by `sid`, then by
/// `sub`), on one server and on a cluster.
#[test]
fn async_store_saves_reads_and_logs_out() {
    async_store_saves_reads_and_logs_out_on(&require_redis!());
}

#[test]
fn cluster_async_store_saves_reads_and_logs_out() {
    async_store_saves_reads_and_logs_out_on(&require_cluster!());
}

fn async_store_saves_reads_and_logs_out_on(url: &str) {
    use auth0_server::protocol::effect::LogoutTokenClaims;
    use auth0_server::store::AsyncStateStore;
    let emu = Emulator::start(Default::default());
    let cfg = config(&emu);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = RedisStateStore::builder(&cfg, url)
        .connect_timeout(REDIS_TIMEOUT)
        .io_timeout(REDIS_TIMEOUT)
        .key_prefix(prefix())
        .secure(false)
        .build_async()
        .unwrap();
    let session = |sub: &str, sid: &str| {
        let mut s = expired_session(&emu, DEFAULT_AUDIENCE);
        s.user.as_mut().unwrap().insert("sub".into(), sub.into());
        s.internal.sid = sid.into();
        s
    };
    let claims = |sub: Option<&str>, sid: Option<&str>| LogoutTokenClaims {
        iss: emu.issuer(),
        sub: sub.map(str::to_owned),
        sid: sid.map(str::to_owned),
    };
    rt.block_on(async {
        let insert = |s: StateData| {
            let store = &store;
            async move {
                let mut o = CookieOptions::new();
                store.set(&s, &mut o, system_now()).await.unwrap();
                o.cookie(store.cookie()).unwrap().to_owned()
            }
        };
        let alive = |id: String| {
            let store = &store;
            async move {
                let mut o = with_cookie(store.cookie(), &id);
                store.get(&mut o, system_now()).await.unwrap().is_some()
            }
        };
        let a1 = insert(session("auth0|alice", "sid-1")).await;
        let a2 = insert(session("auth0|alice", "sid-2")).await;
        let bob = insert(session("auth0|bob", "sid-3")).await;
        assert!(alive(a1.clone()).await && alive(a2.clone()).await);
        let mut o = CookieOptions::new();
        store
            .delete_by_logout_token(
                &claims(Some("auth0|alice"), Some("sid-1")),
                &mut o,
                system_now(),
            )
            .await
            .unwrap();
        assert!(!alive(a1).await && alive(a2.clone()).await && alive(bob.clone()).await);
        store
            .delete_by_logout_token(&claims(Some("auth0|alice"), None), &mut o, system_now())
            .await
            .unwrap();
        assert!(!alive(a2).await && alive(bob.clone()).await);
        store
            .delete(&mut with_cookie(store.cookie(), &bob), system_now())
            .await
            .unwrap();
        assert!(!alive(bob).await);
    });
}

/// Issue #20 across instances: the instance that leads a refresh (it holds the Redis lock of
/// the refresh token's lane) has its caller's future dropped after the request was sent. Its
/// runtime finishes the flight (spawn hook), which publishes the answer and releases the
/// lock in one step; another instance asking with the same (old) session gets the published
/// answer. Nothing that would let it replay the old refresh token is released on drop.
#[test]
fn a_cancelled_lock_holder_never_lets_another_instance_replay_the_old_token() {
    cancelled_lock_holder(SpawnHook::Application);
}

/// The same with no spawn hook from the application (finding F3 of the simulation): the
/// Redis coordinator finishes the flight on the tokio runtime itself, so the lock is not held
/// until it expires and the other instance never spends the replaced refresh token.
#[test]
fn without_a_spawn_hook_the_redis_coordinator_still_finishes_a_cancelled_refresh() {
    cancelled_lock_holder(SpawnHook::CoordinatorDefault);
}

/// Who finishes a flight whose caller was dropped.
#[derive(Clone, Copy, PartialEq)]
enum SpawnHook {
    /// The application's `spawn_with` (recorded, and joined at the end).
    Application,
    /// Nobody told the client: the coordinator's own default.
    CoordinatorDefault,
}

fn cancelled_lock_holder(hook: SpawnHook) {
    use std::future::Future;
    let url = require_redis!();
    let p = prefix();
    let emu = Emulator::start(Default::default());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cfg = config(&emu);
    let spawned: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
    let make = || -> Async {
        let _guard = rt.enter();
        let (handle, spawned) = (rt.handle().clone(), spawned.clone());
        let builder = Async::builder(
            cfg.clone(),
            RedisStateStore::builder(&cfg, &url)
                .io_timeout(REDIS_TIMEOUT)
                .key_prefix(&p)
                .secure(false)
                .build_async()
                .unwrap(),
            RedisTransactionStore::builder(&cfg, &url)
                .io_timeout(REDIS_TIMEOUT)
                .key_prefix(&p)
                .build_async()
                .unwrap(),
            adapter_support::reqwest_client(Duration::from_secs(10)),
        )
        .coordinator(
            RedisRefreshCoordinator::builder(&cfg, &url)
                .io_timeout(REDIS_TIMEOUT)
                .key_prefix(&p)
                .build_async()
                .unwrap(),
        );
        match hook {
            SpawnHook::Application => builder
                .spawn_with(move |f| spawned.lock().unwrap().push(handle.spawn(f)))
                .build(),
            SpawnHook::CoordinatorDefault => builder.build(),
        }
    };
    let (a, b) = (make(), make());
    let id = insert(
        &state_store(&cfg, &url, &p),
        &expired_session(&emu, DEFAULT_AUDIENCE),
    );
    let cookie = a.state_store().cookie().to_owned();
    // Instance A's caller: polled until its refresh request is on the wire, then dropped.
    // (The answer is held back, so the request is still in flight when the caller goes.)
    let (sent_tx, sent_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    emu.fail_next(
        "/oauth/token",
        Failure::Before(auth0_emulator::Hook::new(move || {
            let _ = sent_tx.send(());
            let _ = release_rx.lock().unwrap().recv();
        })),
        1,
    );
    rt.block_on(async {
        let mut o = with_cookie(&cookie, &id);
        let mut leader = std::pin::pin!(a.get_access_token(&mut o));
        std::future::poll_fn(|cx| {
            let _ = leader.as_mut().poll(cx);
            if sent_rx.try_recv().is_ok() {
                std::task::Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        })
        .await;
    });
    // The caller is gone; the server answers now.
    release_tx.send(()).unwrap();
    let mut o = with_cookie(&cookie, &id);
    let token = rt
        .block_on(b.get_access_token(&mut o))
        .expect("instance B gets the published answer");
    for h in std::mem::take(&mut *spawned.lock().unwrap()) {
        rt.block_on(h).unwrap();
    }
    assert_ne!(token.access_token.expose(), "expired-access-token");
    assert_eq!(
        emu.token_requests().len(),
        1,
        "the refresh token was sent once"
    );
    assert_eq!(emu.reuse_detections(), 0);
    assert_eq!(emu.revoked_families(), 0);
}

/// A logout token is accepted once: its `jti` is recorded in Redis (`SET … NX EXAT`), so the
/// same token replayed to another instance — blocking or async, with the Redis session store
/// or with cookie sessions and the Redis revocation list — is refused there too.
#[test]
fn a_logout_token_replayed_to_another_instance_is_refused() {
    a_logout_token_replayed_to_another_instance_is_refused_on(&require_redis!());
}

#[test]
fn cluster_a_logout_token_replayed_to_another_instance_is_refused() {
    a_logout_token_replayed_to_another_instance_is_refused_on(&require_cluster!());
}

fn a_logout_token_replayed_to_another_instance_is_refused_on(url: &str) {
    use auth0_server::store::cookie::{CookieStateStore, CookieTransactionStore};
    use auth0_server::store::redis::RedisRevocations;
    let p = prefix();
    let emu = Emulator::start(Default::default());
    let cfg = config(&emu);
    let replayed = |e: Error| assert_eq!(e.code(), "logout_token_replayed", "{e}");

    // Redis session store: blocking instance, then another blocking one, then an async one.
    let one = instance(&emu, url, &p, coordinator(&cfg, url, &p));
    let two = instance(&emu, url, &p, coordinator(&cfg, url, &p));
    let token = emu.mint_logout_token(Some("auth0|alice"), Some("sid-1"), Map::new());
    one.handle_backchannel_logout(&token, &mut CookieOptions::new())
        .unwrap();
    replayed(
        two.handle_backchannel_logout(&token, &mut CookieOptions::new())
            .unwrap_err(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let three: Async = {
        let _guard = rt.enter();
        Async::builder(
            cfg.clone(),
            RedisStateStore::builder(&cfg, url)
                .io_timeout(REDIS_TIMEOUT)
                .key_prefix(&p)
                .secure(false)
                .build_async()
                .unwrap(),
            RedisTransactionStore::builder(&cfg, url)
                .io_timeout(REDIS_TIMEOUT)
                .key_prefix(&p)
                .build_async()
                .unwrap(),
            adapter_support::reqwest_client(Duration::from_secs(10)),
        )
        .build()
    };
    replayed(
        rt.block_on(three.handle_backchannel_logout(&token, &mut CookieOptions::new()))
            .unwrap_err(),
    );
    // Another token is still accepted.
    let fresh = emu.mint_logout_token(Some("auth0|alice"), Some("sid-1"), Map::new());
    rt.block_on(three.handle_backchannel_logout(&fresh, &mut CookieOptions::new()))
        .unwrap();

    // Cookie sessions with the Redis revocation list.
    let cookie_instance = || {
        auth0_server::blocking::ServerClient::builder(
            cfg.clone(),
            CookieStateStore::builder(&cfg)
                .secure(false)
                .revocations(
                    RedisRevocations::builder(url)
                        .key_prefix(p.as_str())
                        .io_timeout(REDIS_TIMEOUT)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
            CookieTransactionStore::builder(&cfg)
                .secure(false)
                .build()
                .unwrap(),
        )
        .build()
    };
    let (four, five) = (cookie_instance(), cookie_instance());
    let token = emu.mint_logout_token(Some("auth0|bob"), None, Map::new());
    four.handle_backchannel_logout(&token, &mut CookieOptions::new())
        .unwrap();
    replayed(
        five.handle_backchannel_logout(&token, &mut CookieOptions::new())
            .unwrap_err(),
    );
}
