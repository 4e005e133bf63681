//! `jose::jwe::decrypt` with fixed keys (the session cookie keys of the current and an old
//! secret): arbitrary tokens decrypt or fail with a typed error. The bytes are also used as a
//! plaintext for an encrypt/decrypt round trip.
#![no_main]

use auth0_server_fuzz::jwe_keys;
use auth0_server_protocol::jose::jwe::{MAX_JWE_LEN, decrypt, encrypt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        match decrypt(jwe_keys(), token) {
            Ok(_) => assert!(token.len() <= MAX_JWE_LEN),
            Err(e) => {
                let _ = (e.code(), e.to_string());
            }
        }
        // A token from a key this application does not have never decrypts.
        let _ = decrypt(&jwe_keys()[1..], token);
        let _ = decrypt(&[], token).expect_err("no key, no plaintext");
    }
    if data.len() <= 4096 {
        let mut iv = [0u8; 16];
        for (i, b) in data.iter().take(16).enumerate() {
            iv[i] = *b;
        }
        let token = encrypt(&jwe_keys()[0], data, iv);
        assert_eq!(decrypt(jwe_keys(), &token).expect("round trip"), data);
        assert_eq!(decrypt(&jwe_keys()[1..], &token).ok(), None);
    }
});
