//! Raw bytes as Redis would send them, end to end: the `redis` crate's reply parser
//! (`parse_redis_value`, RESP2 and RESP3), then every typed reply the Redis stores, the
//! coordinator and the revocation list ask for (`Option<String>` of `HGET`/`GET`,
//! and of the logout-token `SET … NX`, `(i64, String)` of the acquire script,
//! `(i64, String, String)` of the delete and end scripts, `Vec<String>` of an index listing,
//! `Vec<Option<u64>>` of the revocation `MGET`, `i64` of the save script), each handed to the decoder that reads it
//! (`auth0_server::store::redis::fuzzing`). Invariants: no panic; a conversion either fails
//! with the crate's typed error or its value is decoded; nothing unsealed is accepted.
#![no_main]

use auth0_server::store::redis::fuzzing::{RedisDecoders, SessionRead};
use auth0_server::store::{CookieOptions, LogoutTokenIdRecord};
use auth0_server_fuzz::config;
use auth0_server_protocol::effect::{Coalesce, JtiRecord, LogoutTokenClaims};
use auth0_server_protocol::time::UnixTime;
use libfuzzer_sys::fuzz_target;
use redis::{FromRedisValue, Value};
use std::sync::OnceLock;

const NOW: u64 = 4_102_441_200 + 7_200;

fn decoders() -> &'static [RedisDecoders; 2] {
    static D: OnceLock<[RedisDecoders; 2]> = OnceLock::new();
    D.get_or_init(|| {
        let now = UnixTime::from_secs(NOW);
        [
            RedisDecoders::new(config(), now, 4, false).expect("decoders"),
            RedisDecoders::new(config(), now, 0, true).expect("decoders"),
        ]
    })
}

fn reply<T: FromRedisValue>(v: &Value) -> Option<T> {
    redis::from_redis_value_ref(v).ok()
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = redis::parse_redis_value(data) else {
        return;
    };
    let lanes = [
        Coalesce {
            key: "refresh:key".into(),
            remember: true,
            lane: Some("lane".into()),
        },
        Coalesce {
            key: "discovery".into(),
            remember: true,
            lane: None,
        },
    ];
    for d in decoders() {
        // A session or transaction value (HGET / GET), or the logout-token record's answer.
        if let Some(v) = reply::<Option<String>>(&value) {
            let recorded = RedisDecoders::logout_token_id_answer(v.clone());
            let first = LogoutTokenIdRecord::Kept(JtiRecord::FirstSeen);
            assert_eq!(
                recorded == first,
                v.is_some(),
                "OK means first seen, nil a replay"
            );
            for id in ["id", "other-id"] {
                match d.read_session(id, v.clone()) {
                    Ok(SessionRead::Gone { leftover }) => assert_eq!(leftover, v.is_some()),
                    Ok(read) => panic!("an unsealed session was accepted: {read:?}"),
                    Err(e) => panic!("a read that needs no rewrite failed: {e}"),
                }
            }
            let mut headers = http::HeaderMap::new();
            headers.insert(
                http::header::COOKIE,
                http::HeaderValue::from_static("_a0_tx.s=binding"),
            );
            let options = CookieOptions::from_request_headers(&headers);
            assert!(d.read_transaction("_a0_tx.s", v, &options).is_none());
        }
        // The acquire script: (code, published value or lock TTL).
        if let Some(r) = reply::<(i64, String)>(&value) {
            for request in &lanes {
                assert!(
                    d.read_acquired(request, r.clone()).is_none(),
                    "an unsealed publication was accepted"
                );
            }
            if let Some(delay) = d.wait_after(r) {
                assert!(delay <= std::time::Duration::from_secs(60));
            }
        }
        // The delete / end scripts: (deleted, sid label, sub label); and an index listing.
        let ended = reply::<(i64, String, String)>(&value);
        let ids = reply::<Vec<String>>(&value);
        if ended.is_some() || ids.is_some() {
            let claims = LogoutTokenClaims {
                iss: "https://tenant.auth0.com/".into(),
                sub: Some("auth0|user".into()),
                sid: Some("sid".into()),
            };
            let listed: Vec<(String, Option<String>)> = ids
                .unwrap_or_default()
                .into_iter()
                .take(64)
                .map(|id| (id, Some("stored".to_owned())))
                .collect();
            let ended = ended.unwrap_or((1, "auth0:i:sid:x".into(), String::new()));
            let (_, ended_ids) = d.logout_commands(&claims, &listed, ended);
            // The token names `sid` and `sub`: only sessions that decode and match are ended.
            assert!(ended_ids.is_empty(), "ended a session it could not read");
        }
        // The revocation list's MGET: one Unix time per entry, or nil.
        if let Some(entries) = reply::<Vec<Option<u64>>>(&value) {
            let _: Vec<Option<UnixTime>> = entries
                .into_iter()
                .map(|e| e.map(UnixTime::from_secs))
                .collect();
        }
        // The save script's answer.
        if let Some(answer) = reply::<i64>(&value) {
            let _ = RedisDecoders::update_answer(answer);
        }
    }
});
