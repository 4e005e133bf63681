//! Hostile cookies, as the `cookie_chunks` fuzz target (fuzz/) throws them at the encrypted
//! cookie stores: every bound on what the SDK reads from a `Cookie:` header holds, and
//! anything that is not a valid session of this application reads as "no session" (cleared),
//! never as an error or a panic.

use auth0_server::store::cookie::chunks::{self, CHUNK_LEN, MAX_CHUNKS, Read};
use auth0_server::store::cookie::{CookieStateStore, CookieTransactionStore};
use auth0_server::store::{CookieOptions, StateStore, TransactionStore};
use auth0_server_protocol::session::StateData;

const SECRET: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const NOW: u64 = 1_700_000_000;

fn store() -> CookieStateStore {
    CookieStateStore::builder_with_secrets([SECRET])
        .build()
        .expect("valid store")
}

fn request(cookie: &[u8]) -> CookieOptions {
    let mut h = http::HeaderMap::new();
    h.insert(
        http::header::COOKIE,
        http::HeaderValue::from_bytes(cookie).expect("header value"),
    );
    CookieOptions::from_request_headers(&h)
}

/// The `name.i=value` pairs of a genuinely written session.
fn session_pairs(padding: usize) -> Vec<String> {
    let state: StateData = serde_json::from_value(serde_json::json!({
        "user": {"sub": "auth0|1", "pad": "p".repeat(padding)}
    }))
    .expect("session");
    let mut out = CookieOptions::new();
    store()
        .set(
            &state,
            &mut out,
            auth0_server::protocol::time::UnixTime::from_secs(NOW),
        )
        .expect("set");
    out.set_cookie_headers()
        .iter()
        .map(|h| {
            h.to_str()
                .expect("ascii")
                .split(';')
                .next()
                .expect("pair")
                .to_owned()
        })
        .collect()
}

#[test]
fn a_genuine_session_reads_back() {
    let pairs = session_pairs(10);
    let loaded = store()
        .get(
            &mut request(pairs.join("; ").as_bytes()),
            auth0_server::protocol::time::UnixTime::from_secs(NOW),
        )
        .expect("get");
    assert_eq!(loaded.expect("session").sub(), Some("auth0|1"));
}

#[test]
fn more_chunks_than_allowed_is_no_session_and_cleared() {
    let mut cookie: Vec<String> = session_pairs(10);
    for i in cookie.len()..=MAX_CHUNKS {
        cookie.push(format!("_a0_session.{i}=x"));
    }
    let mut opts = request(cookie.join("; ").as_bytes());
    assert_eq!(chunks::read(&opts, "_a0_session"), Read::Invalid);
    assert_eq!(
        store()
            .get(
                &mut opts,
                auth0_server::protocol::time::UnixTime::from_secs(NOW)
            )
            .expect("no error"),
        None
    );
    assert_eq!(
        opts.set_cookie_headers().len(),
        MAX_CHUNKS + 1,
        "every chunk cleared"
    );
}

#[test]
fn oversized_chunks_are_refused_before_decryption() {
    let big = "A".repeat(CHUNK_LEN * 2);
    let cookie: Vec<String> = (0..MAX_CHUNKS)
        .map(|i| format!("_a0_session.{i}={big}"))
        .collect();
    let mut opts = request(cookie.join("; ").as_bytes());
    assert_eq!(chunks::read(&opts, "_a0_session"), Read::Invalid);
    assert_eq!(
        store()
            .get(
                &mut opts,
                auth0_server::protocol::time::UnixTime::from_secs(NOW)
            )
            .expect("no error"),
        None
    );
}

#[test]
fn only_the_first_two_hundred_request_cookies_are_looked_at() {
    // CookieOptions keeps at most 200 request cookies (MAX_REQUEST_COOKIES).
    let junk: Vec<String> = (0..200).map(|i| format!("junk{i}=v")).collect();
    let cookie = format!("{}; {}", junk.join("; "), session_pairs(10).join("; "));
    let opts = request(cookie.as_bytes());
    assert_eq!(opts.cookie_names().len(), 200);
    assert_eq!(chunks::read(&opts, "_a0_session"), Read::Absent);
}

#[test]
fn tampered_truncated_reordered_and_foreign_cookies_are_no_session() {
    let pairs = session_pairs(5000); // two chunks
    assert!(pairs.len() >= 2);
    let tampered = pairs[0].replacen("=eyJ", "=eyK", 1);
    let foreign = CookieStateStore::builder_with_secrets(["another-app-secret-of-32-bytes!!!!"])
        .build()
        .expect("store");
    for cookie in [
        tampered + "; " + &pairs[1..].join("; "),
        pairs[0].clone(),      // truncated: last chunk missing
        pairs[1..].join("; "), // gap: chunk 0 missing
        format!(
            "{}; {}",
            pairs[1].replace(".1=", ".0="),
            pairs[0].replace(".0=", ".1=")
        ),
        "_a0_session.0=".to_owned(),
        "_a0_session.0=\"\"".to_owned(),
        "_a0_session.0=%%%; _a0_session.01=x; _a0_session.1a=y".to_owned(),
    ] {
        let mut opts = request(cookie.as_bytes());
        assert_eq!(
            store()
                .get(
                    &mut opts,
                    auth0_server::protocol::time::UnixTime::from_secs(NOW)
                )
                .expect("no error"),
            None,
            "{cookie:.80}"
        );
        let mut opts = request(cookie.as_bytes());
        assert_eq!(
            foreign
                .get(
                    &mut opts,
                    auth0_server::protocol::time::UnixTime::from_secs(NOW)
                )
                .expect("no error"),
            None
        );
    }
    let mut opts = request(pairs.join("; ").as_bytes());
    assert_eq!(
        foreign
            .get(
                &mut opts,
                auth0_server::protocol::time::UnixTime::from_secs(NOW)
            )
            .expect("no error"),
        None,
        "foreign key"
    );
    assert!(
        !opts.set_cookie_headers().is_empty(),
        "foreign cookie cleared"
    );
}

#[test]
fn non_utf8_and_odd_headers_are_ignored() {
    for raw in [
        &b"_a0_session.0=\xff\xfe"[..],
        b";;;===;",
        b"_a0_session.0",
        b"=; =x; _a0_session.9999=1; _a0_session.99999=2",
    ] {
        let mut opts = request(raw);
        assert_eq!(
            store()
                .get(
                    &mut opts,
                    auth0_server::protocol::time::UnixTime::from_secs(NOW)
                )
                .expect("no error"),
            None
        );
        let tx = CookieTransactionStore::builder_with_secrets([SECRET])
            .build()
            .expect("store");
        let mut opts = request(raw);
        assert_eq!(
            tx.get(
                "_a0_tx.abc",
                &mut opts,
                auth0_server::protocol::time::UnixTime::from_secs(NOW)
            )
            .expect("no error"),
            None
        );
        assert_eq!(
            tx.get(
                "not a cookie name;",
                &mut opts,
                auth0_server::protocol::time::UnixTime::from_secs(NOW)
            )
            .expect("no error"),
            None
        );
    }
}

/// Found by `cookie_chunks`: a session written by another implementation (no
/// `last_active_at`) right at the cookie budget grew past it when the rolling-expiry rewrite
/// stamped the field, and every read failed with "too large". It is served as it is.
#[test]
fn a_session_at_the_budget_without_last_active_is_still_served() {
    use auth0_server::store::cookie::codec::CookieCodec;
    let codec = CookieCodec::new([SECRET], "_a0_session");
    let session = |pad: usize| {
        serde_json::json!({"user": {"sub": "auth0|1", "pad": "p".repeat(pad)},
            "internal": {"sid": "", "created_at": NOW - 3600}})
        .to_string()
    };
    // The largest padding whose encryption fits the budget.
    let budget = MAX_CHUNKS * CHUNK_LEN;
    let mut pad = 0;
    while codec
        .encrypt(session(pad + 16).as_bytes())
        .expect("encrypt")
        .len()
        <= budget
    {
        pad += 16;
    }
    let token = codec.encrypt(session(pad).as_bytes()).expect("encrypt");
    assert!(token.len() <= budget && token.len() > budget - 200);
    let mut written = CookieOptions::new();
    chunks::write(&mut written, "_a0_session", &token, "Path=/");
    let cookie: Vec<String> = written
        .set_cookie_headers()
        .iter()
        .map(|h| {
            h.to_str()
                .expect("ascii")
                .split(';')
                .next()
                .expect("pair")
                .to_owned()
        })
        .collect();
    let mut opts = request(cookie.join("; ").as_bytes());
    let loaded = store()
        .get(
            &mut opts,
            auth0_server::protocol::time::UnixTime::from_secs(NOW),
        )
        .expect("reading never errors");
    assert_eq!(loaded.expect("served").sub(), Some("auth0|1"));
}
