//! `jose::jwk::Jwks::from_slice`: documents of any shape parse or fail with a typed error;
//! every key kept is an RSA key of 2048–8192 bits.
#![no_main]

use auth0_server_protocol::__internals::jwk::{
    Jwks, MAX_JWKS_LEN, MAX_KEYS, MAX_RSA_BITS, MIN_RSA_BITS,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Jwks::from_slice(data) {
        Ok(jwks) => {
            assert!(data.len() <= MAX_JWKS_LEN);
            assert!(jwks.len() <= MAX_KEYS);
            for key in jwks.keys() {
                assert!((MIN_RSA_BITS..=MAX_RSA_BITS).contains(&key.bits()));
                if let Some(kid) = key.kid() {
                    assert!(jwks.find(kid).is_some());
                }
            }
        }
        Err(e) => {
            let _ = (e.code(), e.to_string());
        }
    }
});
