//! Everything the Redis stores and the refresh coordinator decode from values read back from
//! Redis (`auth0_server::store::redis::fuzzing`, the stores' own code at a fixed clock):
//! session values through the decoded-session cache (`get`) and the update-only save
//! (`update`), transaction values with their binding cookie, the acquire script's reply to a
//! waiting coordinator (published answers, failures and rotations, lock TTLs), and the ids
//! and labels a cluster back-channel logout builds commands from.
//!
//! Values are either raw strings (anything Redis could hold) or sealed with the store's own
//! key (or another kind's key) over fuzzer-chosen plaintext or well-formed JSON with
//! fuzzer-chosen fields, so the decoders are reached past the MAC; a filler stretches
//! sessions across the 64 KiB JWE limit. Invariants: no panic; nothing unsealed or sealed
//! under another key is ever accepted; a session is served only within its lifetimes, and
//! the decoded-session cache never changes an answer (checked against a store without
//! cache); a transaction only with its binding cookie and within its max age; a published
//! answer or rotation only for its own key or lane and kind of reply.
#![no_main]

use arbitrary::Arbitrary;
use auth0_server::coordinator::Coordinated;
use auth0_server::store::CookieOptions;
use auth0_server::store::redis::fuzzing::{RedisDecoders, SessionRead, Stored, UpdateRead};
use auth0_server::store::redis::{
    DEFAULT_ABSOLUTE_DURATION, DEFAULT_INACTIVITY_DURATION, DEFAULT_TRANSACTION_MAX_AGE,
};
use auth0_server_fuzz::config;
use auth0_server_protocol::effect::{Coalesce, LogoutTokenClaims};
use auth0_server_protocol::flight::{FailureKind, Publication};
use auth0_server_protocol::secret::Secret;
use auth0_server_protocol::session::{SessionLifetime, SessionUpdate, StateData, TokenSet};
use auth0_server_protocol::time::UnixTime;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// "Now": the fixture session (created 2100-01-01) is a few hours old.
const NOW: u64 = 4_102_441_200 + 7_200;
/// The fixture session's issuer.
const ISS: &str = "https://bench.local/";

#[derive(Arbitrary, Debug)]
enum Value {
    /// No such key.
    Absent,
    /// Whatever string Redis holds.
    Raw(String),
    /// Arbitrary plaintext sealed with this kind's key, or another kind's.
    Sealed { plaintext: Vec<u8>, other_key: bool },
    /// A well-formed value of this kind with fuzzer-chosen fields, sealed.
    Shaped {
        fields: Fields,
        other_key: bool,
        /// Cut (even) or corrupt (odd) the sealed value at this position.
        tamper: Option<u16>,
    },
}

#[derive(Arbitrary, Debug, Clone)]
struct Fields {
    created_ago: i32,
    last_active_ago: Option<i32>,
    sid: String,
    sub: String,
    filler: u32,
    binding_matches: bool,
    publication: Published,
}

#[derive(Arbitrary, Debug, Clone)]
enum Published {
    Answer {
        status: u16,
        content_type: Option<String>,
        body: Vec<u8>,
        received_ago: i32,
    },
    Failure {
        kind: u8,
        message: String,
    },
    Rotation(String),
    /// The JSON of a publication with the wrong binding.
    Foreign(String),
}

#[derive(Arbitrary, Debug)]
enum Read {
    Session {
        id: String,
        value: Value,
    },
    Update {
        id: String,
        value: Value,
        token: String,
    },
    Transaction {
        key: String,
        value: Value,
        cookie: Option<String>,
    },
    Acquired {
        /// The acquire script's code: `code % 6 - 1` (1 published, 2 lock, 3 rotated, else
        /// wait).
        code: u8,
        value: Value,
        key: String,
        lane: Option<String>,
    },
    Wait {
        code: u8,
        ttl: String,
    },
    Logout {
        /// The token's issuer: the fixture session's, or this one.
        iss: Option<String>,
        sid: Option<String>,
        sub: Option<String>,
        /// The sessions an index lists, each with its stored value; a shaped session with
        /// `binding_matches` carries the token's `sid` and `sub`.
        listed: Vec<(String, Value)>,
        /// The end script's reply: deleted, and the session's two index labels.
        reply: (bool, String, String),
    },
    UpdateAnswer(i64),
}

#[derive(Arbitrary, Debug)]
struct Input {
    cluster: bool,
    cache: u8,
    reads: Vec<Read>,
}

fn template() -> &'static serde_json::Value {
    static T: OnceLock<serde_json::Value> = OnceLock::new();
    T.get_or_init(|| {
        let file: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/session.json")).expect("JSON");
        file["session"].clone()
    })
}

/// `NOW` minus `secs` folded into ±`range` (negative: in the future), so that fuzzer
/// values land around the lifetimes that matter.
fn ago_within(secs: i32, range: i32) -> u64 {
    NOW.saturating_add_signed(-i64::from(secs % range))
}

/// Around the session lifetimes (7 days absolute, 3 days inactive).
fn ago(secs: i32) -> u64 {
    ago_within(secs, 900_000)
}

/// A session JSON with the fuzzer's times, `sid`, `sub` and filler.
fn session_json(f: &Fields) -> Vec<u8> {
    let mut s = template().clone();
    s["internal"]["created_at"] = ago(f.created_ago).into();
    if let Some(a) = f.last_active_ago {
        s["internal"]["last_active_at"] = ago(a).into();
    }
    s["internal"]["sid"] = f.sid.clone().into();
    s["user"]["sub"] = f.sub.clone().into();
    s["user"]["filler"] = "x".repeat((f.filler % 80_000) as usize).into();
    serde_json::to_vec(&s).expect("serialises")
}

/// A stored transaction `{"b": binding, "t": transaction}` for the cookie `cookie`.
fn transaction_json(f: &Fields, cookie: Option<&str>) -> Vec<u8> {
    let binding = match (f.binding_matches, cookie) {
        (true, Some(c)) => c.to_owned(),
        _ => format!("other-{}", f.sid),
    };
    serde_json::to_vec(&serde_json::json!({
        "b": binding,
        "t": {
            "state": f.sid,
            "code_verifier": f.sub,
            "created_at": ago_within(f.created_ago, 7_200),
        },
    }))
    .expect("serialises")
}

fn publication_json(f: &Fields, binding: &str) -> Vec<u8> {
    let p = match &f.publication {
        Published::Answer {
            status,
            content_type,
            body,
            received_ago,
        } => Publication::Answer {
            status: *status,
            content_type: content_type.clone(),
            body: body.clone(),
            received_at: UnixTime::from_secs(ago(*received_ago)),
        },
        Published::Failure { kind, message } => Publication::Failure {
            kind: match kind % 4 {
                0 => FailureKind::Timeout,
                1 => FailureKind::Connect,
                2 => FailureKind::TooLarge,
                _ => FailureKind::Io,
            },
            message: message.clone(),
        },
        Published::Rotation(to) => Publication::Rotation(Secret::new(to.clone())),
        Published::Foreign(other) => {
            return Publication::Rotation(Secret::new("rt"))
                .encode(&format!("{other}-not-{binding}"));
        }
    };
    p.encode(binding)
}

/// The stored value: `None` (absent), and whether it was sealed with the right key over
/// well-formed content of the right kind.
fn store_value(
    d: &RedisDecoders,
    kind: Stored,
    value: &Value,
    shaped: impl Fn(&Fields) -> Vec<u8>,
) -> Option<(String, bool)> {
    let other = |other_key: bool| match (other_key, kind) {
        (false, k) => k,
        (true, Stored::Session) => Stored::Transaction,
        (true, _) => Stored::Session,
    };
    match value {
        Value::Absent => None,
        Value::Raw(s) => Some((s.clone(), false)),
        Value::Sealed {
            plaintext,
            other_key,
        } => d
            .seal(other(*other_key), plaintext)
            .ok()
            .map(|v| (v, !other_key)),
        Value::Shaped {
            fields,
            other_key,
            tamper,
        } => {
            let mut v = d.seal(other(*other_key), &shaped(fields)).ok()?;
            let mut genuine = !other_key;
            if let Some(tamper) = *tamper {
                let at = usize::from(tamper) % v.len();
                if tamper % 2 == 0 {
                    v.truncate(at);
                } else {
                    let c = if v.as_bytes()[at] == b'A' { "B" } else { "A" };
                    v.replace_range(at..=at, c);
                }
                genuine = false;
            }
            Some((v, genuine))
        }
    }
}

fn lifetime() -> SessionLifetime {
    SessionLifetime {
        absolute: DEFAULT_ABSOLUTE_DURATION,
        inactivity: DEFAULT_INACTIVITY_DURATION,
    }
}

fn check_live(state: &StateData) {
    assert!(
        lifetime().expires_at(state) > UnixTime::from_secs(NOW),
        "a session past its lifetime was served"
    );
}

/// The same read through the cached and the uncached decoders: the same answer.
fn same_read(a: &SessionRead, b: &SessionRead) {
    match (a, b) {
        (SessionRead::Gone { leftover: x }, SessionRead::Gone { leftover: y }) => {
            assert_eq!(x, y)
        }
        (SessionRead::Valid(x), SessionRead::Valid(y))
        | (SessionRead::Touched(x), SessionRead::Touched(y)) => {
            assert_eq!(x.to_json(), y.to_json(), "the cache changed the session")
        }
        _ => panic!("the cache changed the answer: {a:?} vs {b:?}"),
    }
}

fuzz_target!(|input: Input| {
    let now = UnixTime::from_secs(NOW);
    let cached = RedisDecoders::new(config(), now, usize::from(input.cache % 4), input.cluster)
        .expect("decoders");
    let plain = RedisDecoders::new(config(), now, 0, input.cluster).expect("decoders");
    for read in input.reads.iter().take(16) {
        match read {
            Read::Session { id, value } => {
                let stored = store_value(&cached, Stored::Session, value, session_json);
                let v = stored.as_ref().map(|(v, _)| v.clone());
                for _ in 0..2 {
                    let (Ok(a), Ok(b)) = (
                        cached.read_session(id, v.clone()),
                        plain.read_session(id, v.clone()),
                    ) else {
                        // Only a rolling rewrite (re-encryption) can fail: too large.
                        continue;
                    };
                    same_read(&a, &b);
                    match &a {
                        SessionRead::Valid(s) => {
                            check_live(s);
                            assert!(matches!(stored, Some((_, true))), "forged session");
                        }
                        SessionRead::Touched(s) => {
                            check_live(s);
                            assert_eq!(s.internal.last_active_at, Some(NOW));
                            assert!(matches!(stored, Some((_, true))), "forged session");
                        }
                        SessionRead::Gone { leftover } => {
                            assert_eq!(*leftover, stored.is_some())
                        }
                    }
                }
            }
            Read::Update { id, value, token } => {
                let stored = store_value(&cached, Stored::Session, value, session_json);
                let v = stored.as_ref().map(|(v, _)| v.clone());
                // The update an operation that read this session would save: one more
                // token set.
                let before =
                    v.as_ref()
                        .and_then(|v| match plain.read_session(id, Some(v.clone())) {
                            Ok(SessionRead::Valid(s) | SessionRead::Touched(s)) => Some(s),
                            _ => None,
                        });
                let Some(before) = before else {
                    let update =
                        SessionUpdate::between(&StateData::default(), &StateData::default(), &[]);
                    if let Ok(r) = cached.update_session(id, v, &update) {
                        assert!(!matches!(r, UpdateRead::Write(_)), "wrote over no session");
                    }
                    continue;
                };
                let mut after = before.clone();
                after.token_sets.push(TokenSet {
                    audience: "https://fuzz.example/".into(),
                    access_token: Secret::new(format!("at-{token}")),
                    scope: None,
                    expires_at: NOW + 60,
                    requested_scope: None,
                    token_type: Default::default(),
                });
                let update = SessionUpdate::between(&before, &after, &[]);
                if let Ok(UpdateRead::Write(s)) = cached.update_session(id, v, &update) {
                    check_live(&s);
                    assert!(
                        s.token_sets
                            .iter()
                            .any(|t| t.access_token.expose() == format!("at-{token}")),
                        "the update's token set was lost"
                    );
                }
            }
            Read::Transaction { key, value, cookie } => {
                // A transaction key and binding a browser can send back (the cookie parser
                // itself is the cookie_chunks target's).
                let alnum =
                    |s: &str| -> String { s.chars().filter(char::is_ascii_alphanumeric).collect() };
                let key = format!("_a0_tx.{}", alnum(key).chars().take(32).collect::<String>());
                let cookie: Option<String> = cookie.as_deref().map(alnum);
                let stored = store_value(&cached, Stored::Transaction, value, |f| {
                    transaction_json(f, cookie.as_deref())
                });
                let mut headers = http::HeaderMap::new();
                if let Some(c) = &cookie {
                    let h = http::HeaderValue::from_str(&format!("{key}={c}")).expect("ASCII");
                    headers.insert(http::header::COOKIE, h);
                }
                let options = CookieOptions::from_request_headers(&headers);
                let v = stored.as_ref().map(|(v, _)| v.clone());
                if let Some(tx) = cached.read_transaction(&key, v, &options) {
                    assert!(matches!(stored, Some((_, true))), "forged transaction");
                    assert!(options.cookie(&key).is_some(), "no binding cookie");
                    assert!(
                        tx.created_at.saturating_add(DEFAULT_TRANSACTION_MAX_AGE) > NOW,
                        "a transaction past its max age"
                    );
                }
            }
            Read::Acquired {
                code,
                value,
                key,
                lane,
            } => {
                let request = Coalesce {
                    key: key.clone(),
                    remember: true,
                    lane: lane.clone(),
                };
                let (hash, lane_hash) = cached.bindings(&request);
                let code = i64::from(code % 6) - 1;
                let binding = if code == 3 {
                    lane_hash.clone().unwrap_or_default()
                } else {
                    hash.clone()
                };
                let stored = store_value(&cached, Stored::Refresh, value, |f| {
                    publication_json(f, &binding)
                });
                let v = stored.as_ref().map(|(v, _)| v.clone()).unwrap_or_default();
                match cached.read_acquired(&request, (code, v)) {
                    None => {}
                    Some(outcome) => {
                        assert!(matches!(stored, Some((_, true))), "forged publication");
                        match outcome {
                            Ok(Coordinated::Response(r)) => {
                                assert_eq!(code, 1, "an answer from another reply");
                                assert!((100..1000).contains(&r.response.status().as_u16()));
                            }
                            Ok(Coordinated::Rotated(_)) => {
                                assert_eq!(code, 3, "a rotation from another reply");
                                assert!(lane_hash.is_some(), "a rotation without a lane");
                            }
                            Err(e) => {
                                assert_eq!(code, 1, "a failure from another reply");
                                let _ = e.to_string();
                            }
                        }
                    }
                }
            }
            Read::Wait { code, ttl } => {
                if let Some(d) = cached.wait_after((i64::from(*code) - 1, ttl.clone())) {
                    assert!(d <= std::time::Duration::from_secs(60), "waits too long");
                }
            }
            Read::Logout {
                iss,
                sid,
                sub,
                listed,
                reply,
            } => {
                let claims = LogoutTokenClaims {
                    iss: iss.clone().unwrap_or_else(|| ISS.to_owned()),
                    sub: sub.clone(),
                    sid: sid.clone(),
                };
                let mut genuine = Vec::new();
                let listed: Vec<(String, Option<String>)> = listed
                    .iter()
                    .take(16)
                    .map(|(id, value)| {
                        let stored = store_value(&cached, Stored::Session, value, |f| {
                            let mut f = f.clone();
                            if f.binding_matches {
                                f.sid = sid.clone().unwrap_or_default();
                                f.sub = sub.clone().unwrap_or_default();
                            }
                            session_json(&f)
                        });
                        if matches!(stored, Some((_, true))) {
                            genuine.push(id.clone());
                        }
                        (id.clone(), stored.map(|(v, _)| v))
                    })
                    .collect();
                let reply = (i64::from(reply.0), reply.1.clone(), reply.2.clone());
                let (built, ended) = cached.logout_commands(&claims, &listed, reply);
                if sid.as_deref() == Some("") || (sid.is_none() && sub.is_none()) {
                    assert_eq!(built, 0, "a logout naming nothing built commands");
                }
                if sid.is_some() && sub.is_some() {
                    // Each listed session is read and checked by the core's rule first.
                    for id in &ended {
                        assert!(genuine.contains(id), "ended a session it could not read");
                    }
                }
            }
            Read::UpdateAnswer(answer) => {
                let _ = RedisDecoders::update_answer(*answer);
            }
        }
    }
});
