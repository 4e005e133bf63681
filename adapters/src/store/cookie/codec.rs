//! The encryption layer of the cookie stores: a value is a compact JWE (`alg=dir`,
//! `enc=A256CBC-HS512`) under a key derived from the application secret with the store
//! identifier as HKDF salt — the format of Auth0's Python server SDK.
//!
//! Keys are derived once, when the codec is built (HKDF plus the AES key schedule cost a few
//! microseconds; a request should not pay them). With several secrets the first encrypts and
//! every one decrypts, so secrets can be rotated without logging everyone out.
//!
//! ```
//! use auth0_server::store::cookie::codec::CookieCodec;
//! let codec = CookieCodec::new(["a-secret-of-at-least-32-bytes-long!!"], "_a0_session");
//! let token = codec.encrypt(br#"{"user":{"sub":"auth0|1"}}"#)?;
//! assert_eq!(codec.decrypt(&token).as_deref(), Some(&br#"{"user":{"sub":"auth0|1"}}"#[..]));
//! // A codec for another identifier (salt) derives other keys: nothing decrypts.
//! let other = CookieCodec::new(["a-secret-of-at-least-32-bytes-long!!"], "_a0_tx.x");
//! assert_eq!(other.decrypt(&token), None);
//! # Ok::<(), auth0_server::store::StoreError>(())
//! ```

use auth0_server_protocol::jose::jwe::{self, JweKey};

use crate::clock::random_bytes;
use crate::store::StoreError;

/// Encrypts and decrypts cookie values for one store identifier under one or more secrets.
/// `Debug` shows no key material.
#[derive(Clone, Debug)]
pub struct CookieCodec {
    keys: Vec<JweKey>,
}

impl CookieCodec {
    /// Derives one key per secret with [`JweKey::derive`]`(secret, identifier)`. The first
    /// secret encrypts; all of them decrypt, in order.
    pub fn new<S: AsRef<[u8]>>(secrets: impl IntoIterator<Item = S>, identifier: &str) -> Self {
        CookieCodec {
            keys: secrets
                .into_iter()
                .map(|s| JweKey::derive(s.as_ref(), identifier.as_bytes()))
                .collect(),
        }
    }

    /// Whether the codec has no key (built from no secrets): it encrypts nothing and decrypts
    /// nothing.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Encrypts under the first secret with a fresh random IV from the operating system.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<String, StoreError> {
        let bytes = random_bytes(16)
            .map_err(|e| StoreError::new(format!("no OS randomness for the cookie IV: {e}")))?;
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&bytes);
        self.encrypt_with_iv(plaintext, iv)
    }

    /// Encrypts under the first secret with the given IV, which must be fresh random bytes
    /// (for tests and for callers with their own randomness).
    pub fn encrypt_with_iv(&self, plaintext: &[u8], iv: [u8; 16]) -> Result<String, StoreError> {
        let key = self
            .keys
            .first()
            .ok_or_else(|| StoreError::new("cookie store has no encryption secret"))?;
        Ok(jwe::encrypt(key, plaintext, iv))
    }

    /// Decrypts a token with any of the secrets. Anything that is not a JWE this codec's keys
    /// authenticate — tampered, truncated, foreign, malformed — is `None`.
    pub fn decrypt(&self, token: &str) -> Option<Vec<u8>> {
        jwe::decrypt(&self.keys, token).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "secret-a-secret-a-secret-a-secret-a";
    const B: &str = "secret-b-secret-b-secret-b-secret-b";

    #[test]
    fn rotation_first_secret_encrypts_every_secret_decrypts() {
        let old = CookieCodec::new([A], "_a0_session");
        let token = old.encrypt(b"{}").unwrap();
        let rotated = CookieCodec::new([B, A], "_a0_session");
        assert_eq!(rotated.decrypt(&token).as_deref(), Some(&b"{}"[..]));
        let new_token = rotated.encrypt(b"{}").unwrap();
        assert_eq!(old.decrypt(&new_token), None, "new writes use secret B");
        assert_eq!(CookieCodec::new([B], "_a0_session").decrypt(&token), None);
    }

    #[test]
    fn empty_codec_neither_encrypts_nor_decrypts() {
        let none = CookieCodec::new(Vec::<&str>::new(), "_a0_session");
        assert!(none.is_empty());
        assert!(none.encrypt(b"{}").is_err());
        let token = CookieCodec::new([A], "_a0_session").encrypt(b"{}").unwrap();
        assert_eq!(none.decrypt(&token), None);
    }

    #[test]
    fn each_encryption_uses_a_fresh_iv() {
        let c = CookieCodec::new([A], "_a0_session");
        assert_ne!(c.encrypt(b"same").unwrap(), c.encrypt(b"same").unwrap());
    }

    #[test]
    fn garbage_is_none() {
        let c = CookieCodec::new([A], "_a0_session");
        for t in ["", ".", "....", "not a jwe", "a.b.c.d.e", "\u{0}\u{ffff}"] {
            assert_eq!(c.decrypt(t), None);
        }
    }
}
