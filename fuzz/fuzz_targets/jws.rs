//! `Jws::parse`, then `verify_rs256` against a fixed JWKS (the protocol tests' keys `a` and
//! `b`), then `validate_id_token` / `validate_logout_token` on the claims at several times.
//!
//! Seeds are correctly signed tokens; the fuzzer's mutations must never verify unless the
//! signed bytes are unchanged, and no input may panic.
#![no_main]

use auth0_server_fuzz::{CLIENT_ID, ISSUER, NOW, jwks, single_key_jwks};
use auth0_server_protocol::__internals::claims::{
    IdTokenExpectations, LogoutTokenExpectations, validate_id_token, validate_logout_token,
};
use auth0_server_protocol::__internals::jws::{Jws, MAX_JWS_LEN};
use auth0_server_protocol::time::UnixTime;
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let jws = match Jws::parse(token) {
        Ok(jws) => jws,
        Err(e) => {
            let _ = (e.code(), e.to_string());
            return;
        }
    };
    assert!(token.len() <= MAX_JWS_LEN);
    assert!(token.starts_with(jws.signing_input()));
    let _ = format!("{jws:?}");
    for set in [jwks(), single_key_jwks()] {
        if jws.verify_rs256(set).is_ok() {
            assert_eq!(jws.header().alg, "RS256", "verified a non-RS256 token");
        }
    }
    let claims = jws.claims();
    for (now, tolerance) in [(NOW, 60), (0, 0), (u64::MAX, u64::MAX), (NOW, u64::MAX)] {
        let id = IdTokenExpectations {
            issuer: ISSUER,
            client_id: CLIENT_ID,
            nonce: Some("nonce-1"),
            max_age: Some(Duration::from_secs(tolerance)),
            organization: claims.get("org_hint").and_then(|v| v.as_str()),
            now: UnixTime::from_secs(now),
            clock_tolerance: Duration::from_secs(tolerance),
        };
        let _ = validate_id_token(claims, &id);
        let _ = validate_id_token(
            claims,
            &IdTokenExpectations {
                nonce: None,
                max_age: None,
                organization: None,
                ..id
            },
        );
        let logout = LogoutTokenExpectations {
            issuer: ISSUER,
            client_id: CLIENT_ID,
            now: UnixTime::from_secs(now),
            clock_tolerance: Duration::from_secs(tolerance),
        };
        if let Ok(selected) = validate_logout_token(claims, &logout) {
            assert!(selected.sub.is_some() || selected.sid.is_some());
            assert!(!claims.contains_key("nonce"));
        }
    }
});
