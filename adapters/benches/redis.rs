//! Redis session store benchmarks (issue 17) against a real `redis-server`: what the store
//! adds over the bare Redis command that moves the same bytes over the same kind of
//! connection (one blocking connection, loopback TCP).
//!
//! The session is the realistic one in `tests/data/session.json` (about 4.4 KB of JSON,
//! about 6 KB encrypted).
//!
//! * `bare_get` / `cache_hit`: a `GET` of the encrypted session's bytes, against reading the
//!   session through [`RedisStateStore::get`] (one `HGET`, decrypt, parse, expiry check);
//! * `bare_set` / `save`: a `SET … PX` of the same bytes, against saving the session over its
//!   existing id through [`RedisStateStore::set`] (encrypt, one script); `bare_script_hset`
//!   is the floor of any scripted write (a script doing only `HSET` + `PEXPIRE`);
//! * `save_new_session`: a login's save (a new session id) for a user who already has `k`
//!   live sessions, k = 0, 1,000, 3,000 — the cost must not grow with k.
//!
//! Run with a Redis to spare (the benchmark writes under its own key prefix and deletes what
//! it wrote), e.g. `redis-server --port 6411 --save '' --appendonly no --daemonize yes`, then
//! `REDIS_URL=redis://127.0.0.1:6411/ cargo bench -p auth0-server --features redis --bench redis`.
//! Without a reachable Redis it prints a SKIPPED line and measures nothing.

use auth0_server::protocol::session::StateData;
use auth0_server::store::redis::RedisStateStore;
use auth0_server::store::{CookieOptions, StateStore};
use divan::{Bencher, black_box};
use serde_json::Value;
use std::sync::OnceLock;
use std::time::Duration;

const SECRET: &str = "benchmark-secret-benchmark-secret-0123456789";
const SESSIONS_PER_USER: [usize; 3] = [0, 1_000, 3_000];

fn main() {
    if redis_url().is_none() {
        return;
    }
    divan::main();
}

fn redis_url() -> Option<&'static str> {
    static URL: OnceLock<Option<String>> = OnceLock::new();
    URL.get_or_init(|| {
        let url =
            std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
        match connect(&url) {
            Ok(_) => Some(url),
            Err(e) => {
                eprintln!("SKIPPED the Redis benchmarks: no Redis at REDIS_URL ({e})");
                None
            }
        }
    })
    .as_deref()
}

fn connect(url: &str) -> redis::RedisResult<redis::Connection> {
    let mut c = redis::Client::open(url)?.get_connection_with_timeout(Duration::from_secs(2))?;
    redis::cmd("PING").query::<String>(&mut c)?;
    Ok(c)
}

fn url() -> &'static str {
    redis_url().expect("checked in main")
}

/// A key prefix of this run's own.
fn prefix(what: &str) -> String {
    format!("bench:{}:{what}:", std::process::id())
}

fn session() -> StateData {
    let file: Value = serde_json::from_str(include_str!("../../tests/data/session.json"))
        .expect("session.json is JSON");
    StateData::from_json(file["session"].to_string().as_bytes()).expect("a session")
}

/// The time the benchmark runs at, handed to the store with every call: 30 s after the
/// session's creation (no rolling rewrite on read).
static AT: std::sync::LazyLock<auth0_server::protocol::time::UnixTime> =
    std::sync::LazyLock::new(|| {
        auth0_server::protocol::time::UnixTime::from_secs(session().internal.created_at + 30)
    });

/// A store for the benchmark's keys.
fn store(prefix: &str, _session: &StateData) -> RedisStateStore {
    RedisStateStore::builder_with_secrets([SECRET], url())
        .key_prefix(prefix)
        .build()
        .expect("a store")
}

fn with_cookie(store: &RedisStateStore, id: &str) -> CookieOptions {
    let mut h = http::HeaderMap::new();
    h.insert(
        http::header::COOKIE,
        format!("{}={id}", store.cookie()).parse().expect("header"),
    );
    CookieOptions::from_request_headers(&h)
}

/// Saves `state` as a new session and returns its id.
fn insert(store: &RedisStateStore, state: &StateData) -> String {
    let mut o = CookieOptions::new();
    store.set(state, &mut o, *AT).expect("saved");
    o.cookie(store.cookie())
        .expect("a session cookie")
        .to_owned()
}

/// One stored session, its id, and its encrypted bytes copied under a plain key.
struct Fixture {
    store: RedisStateStore,
    session: StateData,
    request: CookieOptions,
    bare_key: String,
    value: String,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let p = prefix("hit");
        let session = session();
        let store = store(&p, &session);
        let id = insert(&store, &session);
        let mut c = connect(url()).expect("Redis");
        let value: String = redis::cmd("HGET")
            .arg(store.session_key(&id))
            .arg("v")
            .query(&mut c)
            .expect("the stored session");
        let bare_key = format!("{p}bare");
        let () = redis::cmd("SET")
            .arg(&bare_key)
            .arg(&value)
            .query(&mut c)
            .expect("SET");
        Fixture {
            request: with_cookie(&store, &id),
            store,
            session,
            bare_key,
            value,
        }
    })
}

#[divan::bench]
fn bare_get(bencher: Bencher) {
    let f = fixture();
    let mut c = connect(url()).expect("Redis");
    bencher.bench_local(|| {
        let v: String = redis::Cmd::get(&f.bare_key).query(&mut c).expect("GET");
        black_box(v)
    });
}

#[divan::bench]
fn cache_hit(bencher: Bencher) {
    let f = fixture();
    // Warm the store's connection pool.
    f.store.get(&mut f.request.clone(), *AT).expect("read");
    bencher.bench_local(|| {
        let mut o = f.request.clone();
        black_box(f.store.get(&mut o, *AT).expect("read").expect("a session"))
    });
}

#[divan::bench]
fn bare_set(bencher: Bencher) {
    let f = fixture();
    let mut c = connect(url()).expect("Redis");
    bencher.bench_local(|| {
        let () = redis::Cmd::pset_ex(&f.bare_key, f.value.as_str(), 3_600_000)
            .query(&mut c)
            .expect("SET");
    });
}

#[divan::bench]
fn save(bencher: Bencher) {
    let f = fixture();
    f.store
        .set(&f.session, &mut f.request.clone(), *AT)
        .expect("save");
    bencher.bench_local(|| {
        let mut o = f.request.clone();
        f.store.set(&f.session, &mut o, *AT).expect("save");
        black_box(o)
    });
}

/// A session saved by the benchmark, deleted when divan drops it (outside the timing), so the
/// user keeps `k` sessions give or take one sample.
struct Saved<'a> {
    store: &'a RedisStateStore,
    id: String,
}

impl Drop for Saved<'_> {
    fn drop(&mut self) {
        let _ = self
            .store
            .delete(&mut with_cookie(self.store, &self.id), *AT);
    }
}

#[divan::bench(args = SESSIONS_PER_USER, sample_size = 10, sample_count = 200)]
fn save_new_session(bencher: Bencher, k: usize) {
    let session = session();
    let store = store(&prefix(&format!("user{k}")), &session);
    let existing: Vec<String> = (0..k).map(|_| insert(&store, &session)).collect();
    bencher.bench_local(|| Saved {
        id: insert(&store, &session),
        store: &store,
    });
    for id in existing {
        let _ = store.delete(&mut with_cookie(&store, &id), *AT);
    }
}

/// The floor of any scripted write: `EVALSHA` of a script that only does `HSET` + `PEXPIRE`
/// with the same bytes (the store's save is one script, plus encryption).
#[divan::bench]
fn bare_script_hset(bencher: Bencher) {
    let f = fixture();
    let mut c = connect(url()).expect("Redis");
    let script = redis::Script::new(
        "redis.call('HSET', KEYS[1], 'v', ARGV[1]) redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1",
    );
    let key = format!("{}script", f.bare_key);
    bencher.bench_local(|| {
        let r: i64 = script
            .key(&key)
            .arg(f.value.as_str())
            .arg(3_600_000)
            .invoke(&mut c)
            .expect("EVALSHA");
        r
    });
}
