//! Chunked-cookie reassembly and the encrypted cookie stores' `get`: a `Cookie:` header the
//! fuzzer writes, optionally mixed with the chunks of a genuinely encrypted session (of a
//! plaintext the fuzzer chooses, under the current or the old secret, or a foreign one), split
//! at a fuzzer-chosen length, with chunks dropped, duplicated or added.
//!
//! Checks: `get` never panics; a tampered, incomplete or foreign cookie is "no session"
//! (`Ok(None)`), never an error; a session returned is unexpired at the store's clock; a
//! reassembled value is never longer than `MAX_CHUNKS * CHUNK_LEN`.
#![no_main]

use arbitrary::Arbitrary;
use auth0_server::protocol::time::UnixTime;
use auth0_server::store::cookie::chunks::{self, CHUNK_LEN, MAX_CHUNKS, Read};
use auth0_server::store::cookie::codec::CookieCodec;
use auth0_server::store::cookie::{CookieStateStore, CookieTransactionStore};
use auth0_server::store::{CookieOptions, StateStore, TransactionStore};
use auth0_server_fuzz::{NOW, OLD_SECRET, SECRET};
use http::HeaderMap;
use http::header::{COOKIE, HeaderValue};
use libfuzzer_sys::fuzz_target;

const NAME: &str = "_a0_session";
const TX_KEY: &str = "_a0_tx.state123";

#[derive(Arbitrary, Debug)]
enum Secret {
    Current,
    Old,
    Foreign,
}

#[derive(Arbitrary, Debug)]
enum Plain {
    /// Arbitrary bytes as the encrypted payload.
    Raw(Vec<u8>),
    /// A session JSON with fuzzer-chosen times and size.
    Session {
        created_ago: u32,
        last_active_ago: Option<u32>,
        refresh_token: Option<String>,
        padding: u16,
    },
}

#[derive(Arbitrary, Debug)]
struct Encrypted {
    plain: Plain,
    secret: Secret,
    iv: [u8; 16],
    /// For the transaction store instead of the session store.
    transaction: bool,
    /// Split length (0 means `CHUNK_LEN`).
    chunk_len: u16,
    drop_index: Option<u8>,
    duplicate_index: Option<u8>,
    extra_index: Option<u16>,
    /// Where the encrypted chunks go among the raw cookies (before, after).
    first: bool,
    reverse: bool,
}

#[derive(Arbitrary, Debug)]
struct Case {
    header: String,
    second_header: Option<String>,
    encrypted: Option<Encrypted>,
    clock_skew: i32,
}

fn plaintext(plain: &Plain) -> Vec<u8> {
    match plain {
        Plain::Raw(bytes) => bytes.clone(),
        Plain::Session {
            created_ago,
            last_active_ago,
            refresh_token,
            padding,
        } => {
            let mut s = serde_json::json!({
                "user": {"sub": "auth0|1", "pad": "p".repeat(usize::from(*padding))},
                "refresh_token": refresh_token,
                "token_sets": [],
                "internal": {"sid": "sid", "created_at": NOW.saturating_sub(u64::from(*created_ago))},
            });
            if let Some(ago) = last_active_ago {
                s["internal"]["last_active_at"] = NOW.saturating_sub(u64::from(*ago)).into();
            }
            s.to_string().into_bytes()
        }
    }
}

fn encrypted_pairs(e: &Encrypted) -> Vec<String> {
    let name = if e.transaction { TX_KEY } else { NAME };
    let secret = match e.secret {
        Secret::Current => SECRET,
        Secret::Old => OLD_SECRET,
        Secret::Foreign => "a-foreign-application-secret-32-bytes!!",
    };
    let Ok(token) = CookieCodec::new([secret], name).encrypt_with_iv(&plaintext(&e.plain), e.iv)
    else {
        return Vec::new();
    };
    let len = match usize::from(e.chunk_len) {
        0 => CHUNK_LEN,
        n => n,
    };
    let mut pairs: Vec<String> = token
        .as_bytes()
        .chunks(len)
        .enumerate()
        .map(|(i, c)| format!("{name}.{i}={}", String::from_utf8_lossy(c)))
        .collect();
    if let Some(i) = e
        .duplicate_index
        .map(usize::from)
        .filter(|i| *i < pairs.len())
    {
        let dup = pairs[i].clone();
        pairs.push(dup.replace('=', "=x"));
    }
    if let Some(i) = e.drop_index.map(usize::from).filter(|i| *i < pairs.len()) {
        pairs.remove(i);
    }
    if let Some(i) = e.extra_index {
        pairs.push(format!("{name}.{i}=extra"));
    }
    if e.reverse {
        pairs.reverse();
    }
    pairs
}

fuzz_target!(|case: Case| {
    let mut cookie = case.header.clone();
    if let Some(e) = &case.encrypted {
        let pairs = encrypted_pairs(e).join("; ");
        cookie = if e.first {
            format!("{pairs}; {cookie}")
        } else {
            format!("{cookie}; {pairs}")
        };
    }
    let mut headers = HeaderMap::new();
    for text in std::iter::once(&cookie).chain(case.second_header.as_ref()) {
        if let Ok(v) = HeaderValue::from_bytes(text.as_bytes()) {
            headers.append(COOKIE, v);
        }
    }
    let now = NOW.saturating_add_signed(i64::from(case.clock_skew));
    let request = CookieOptions::from_request_headers(&headers);

    for name in [NAME, TX_KEY] {
        match chunks::read(&request, name) {
            Read::Value(v) => assert!(!v.is_empty() && v.len() <= MAX_CHUNKS * CHUNK_LEN),
            Read::Absent => assert!(chunks::present(&request, name).is_empty()),
            Read::Invalid => {}
        }
    }

    let at = UnixTime::from_secs(now);
    let store = CookieStateStore::builder_with_secrets([SECRET, OLD_SECRET])
        .cache_capacity(4)
        .build()
        .expect("valid store");
    // Twice: the second read goes through the decoded-session cache.
    for _ in 0..2 {
        let mut opts = request.clone();
        match store.get(&mut opts, at) {
            Ok(Some(state)) => {
                let created = state.internal.created_at;
                let last = state.internal.last_active_at.unwrap_or(created);
                assert!(
                    last.saturating_add(3 * 24 * 3600) > now,
                    "inactive session served"
                );
                assert!(
                    created.saturating_add(7 * 24 * 3600) > now,
                    "expired session served"
                );
            }
            Ok(None) => {}
            Err(e) => panic!("reading cookies never errors: {e}"),
        }
    }

    let tx_store = CookieTransactionStore::builder_with_secrets([SECRET, OLD_SECRET])
        .build()
        .expect("valid store");
    let mut opts = request.clone();
    let tx = tx_store
        .get(TX_KEY, &mut opts, at)
        .expect("transaction get never errors");
    if let Some(tx) = tx {
        assert!(tx.created_at.saturating_add(3600) > now);
    }
    let mut opts = request;
    let _ = tx_store.get(&case.header, &mut opts, at);
});
