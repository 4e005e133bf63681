//! Hot paths of the protocol core (what every request pays), on a realistic session (`session.json`: ~4.4 KB,
//! three audiences, a per-audience scope map).
//!
//! Run with `cargo bench -p auth0-server-protocol --bench core`.
//!
//! - `cache_hit_decision`: what the operation decides on a hit, as it decides it for a call
//!   without scopes of its own: `select_token_set` on the audience's default scope string
//!   (compared as spelled first, parsed only when that does not settle it) + `is_expired`
//!   (target ≤ 0.2 µs).
//! - `cache_hit_decision_parsed`: the same with the scopes parsed into one `Scopes` first,
//!   `select_by_scopes` (what the operation does for a call that adds scopes).
//! - `cache_hit_decision_joined`: the same through the string API (`requested_scope` joins the
//!   merged scopes, `select_token_set` parses them again), for comparison.
//! - `cache_hit_operation`: a whole `GetAccessToken` answered from memory: Start → LoadSession →
//!   Done. The session is shared (`Arc`), as the stores hand it over: nothing is copied.
//! - `parse_session`: `StateData::from_json` on the session JSON (target < 10 µs).
//! - `merge_scopes`: merging the audience's default scopes with a call's scopes.

use auth0_server_protocol::Core;
use auth0_server_protocol::access_token::{
    AccessTokenRequest, is_expired, requested_scope, select_by_scopes, select_token_set,
};
use auth0_server_protocol::config::Config;
use auth0_server_protocol::effect::{Effect, Input, Operation, Step};
use auth0_server_protocol::scope::{Scopes, merge_scopes};
use auth0_server_protocol::session::StateData;
use auth0_server_protocol::time::UnixTime;
use divan::{Bencher, black_box};
use std::sync::{Arc, LazyLock};

const ORDERS: &str = "https://api-orders.example.com/";
const BILLING: &str = "https://api-billing.example.com/";

struct Fixture {
    core: Core,
    session: Arc<StateData>,
    session_json: Vec<u8>,
    now: UnixTime,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("session.json")).expect("session.json is JSON");
    let params = &doc["authorization_params"];
    let mut builder = Config::builder("bench.local", "bench-client")
        .client_secret("bench-client-secret")
        .secret("a-bench-secret-of-at-least-32-bytes!!");
    if let Some(audience) = params["audience"].as_str() {
        builder = builder.audience(audience);
    }
    for (audience, scope) in params["scope"].as_object().expect("a scope map") {
        builder = builder.scope_for(audience, scope.as_str().expect("a scope string"));
    }
    let core = Core::new(builder.build().expect("valid bench config"));
    let session_json = serde_json::to_vec(&doc["session"]).expect("serialisable");
    let session = Arc::new(StateData::from_json(&session_json).expect("a valid session"));
    // Every token set must be valid at `now`, or the benchmark would measure a refresh decision.
    let now = UnixTime::from_secs(session.internal.created_at);
    let leeway = core.config().leeway();
    assert!(
        session.token_sets.iter().all(|s| !is_expired(
            UnixTime::from_secs(s.expires_at),
            now,
            leeway
        )),
        "bench session token sets must not be expired at now={now}"
    );
    Fixture {
        core,
        session,
        session_json,
        now,
    }
});

fn main() {
    // Build the fixture (and run its assertions) before any timing starts.
    LazyLock::force(&FIXTURE);
    let f = &*FIXTURE;
    for audience in [None, Some(BILLING)] {
        assert_eq!(cache_hit(f, audience, f.session.clone()), 1, "a cache hit");
        assert!(
            decision(f, audience) && decision_parsed(f, audience),
            "a valid set"
        );
    }
    divan::main();
}

fn decision(f: &Fixture, audience: Option<&str>) -> bool {
    let config = f.core.config();
    let key = config.audience_key(audience);
    let defaults = config.authorization_params().scope.for_audience(key);
    match select_token_set(&f.session.token_sets, key, defaults) {
        Some(set) => !is_expired(UnixTime::from_secs(set.expires_at), f.now, config.leeway()),
        None => false,
    }
}

fn decision_parsed(f: &Fixture, audience: Option<&str>) -> bool {
    let config = f.core.config();
    let key = config.audience_key(audience);
    let defaults = config.authorization_params().scope.for_audience(key);
    let wanted = Scopes::of(defaults);
    match select_by_scopes(&f.session.token_sets, key, &wanted) {
        Some(set) => !is_expired(UnixTime::from_secs(set.expires_at), f.now, config.leeway()),
        None => false,
    }
}

fn decision_joined(f: &Fixture, audience: Option<&str>) -> bool {
    let config = f.core.config();
    let key = config.audience_key(audience);
    let scope = requested_scope(config, key, None);
    match select_token_set(&f.session.token_sets, key, scope.as_deref()) {
        Some(set) => !is_expired(UnixTime::from_secs(set.expires_at), f.now, config.leeway()),
        None => false,
    }
}

/// Runs the operation from memory; returns the number of effects (1 on a cache hit).
fn cache_hit(f: &Fixture, audience: Option<&str>, session: Arc<StateData>) -> usize {
    let request = AccessTokenRequest {
        audience: audience.map(str::to_owned),
        scope: None,
    };
    let mut op = f.core.get_access_token(request);
    let mut input = Input::Start;
    let mut session = Some(session);
    let mut effects = 0;
    loop {
        match op.step(input, f.now) {
            Step::Done(result) => {
                black_box(result.expect("a cached token"));
                return effects;
            }
            Step::Effect(Effect::LoadSession) => {
                effects += 1;
                input = Input::Session(session.take());
            }
            Step::Effect(other) => panic!("a cache hit needs no {other:?}"),
        }
    }
}

#[divan::bench(args = [None, Some(BILLING)])]
fn cache_hit_decision(bencher: Bencher, audience: Option<&str>) {
    let f = &*FIXTURE;
    bencher.bench(|| decision(f, black_box(audience)));
}

#[divan::bench(args = [None, Some(BILLING)])]
fn cache_hit_decision_parsed(bencher: Bencher, audience: Option<&str>) {
    let f = &*FIXTURE;
    bencher.bench(|| decision_parsed(f, black_box(audience)));
}

#[divan::bench(args = [None, Some(BILLING)])]
fn cache_hit_decision_joined(bencher: Bencher, audience: Option<&str>) {
    let f = &*FIXTURE;
    bencher.bench(|| decision_joined(f, black_box(audience)));
}

#[divan::bench(args = [None, Some(BILLING)])]
fn cache_hit_operation(bencher: Bencher, audience: Option<&str>) {
    let f = &*FIXTURE;
    bencher.bench(|| cache_hit(f, black_box(audience), Arc::clone(&f.session)));
}

#[divan::bench]
fn parse_session(bencher: Bencher) {
    let f = &*FIXTURE;
    bencher.bench(|| StateData::from_json(black_box(&f.session_json)).expect("valid"));
}

#[divan::bench]
fn clone_session(bencher: Bencher) {
    let f = &*FIXTURE;
    bencher.bench(|| StateData::clone(black_box(&f.session)));
}

#[divan::bench(args = [None, Some("read:orders write:orders openid extra:scope")])]
fn merge_scope(bencher: Bencher, call: Option<&str>) {
    let f = &*FIXTURE;
    let defaults = f
        .core
        .config()
        .authorization_params()
        .scope
        .for_audience(ORDERS);
    bencher.bench(|| merge_scopes(black_box(defaults), black_box(call)));
}
