//! Compact JWE with `alg=dir`, `enc=A256CBC-HS512` (RFC 7516, RFC 7518 §5.2.5): the format of
//! the SDK's encrypted cookies, byte-compatible with Auth0's Python server SDK.
//!
//! `BASE64URL(header) . "" . BASE64URL(iv) . BASE64URL(ciphertext) . BASE64URL(tag)`:
//!
//! * the content-encryption key (CEK) is used directly (`dir`: the encrypted-key part is
//!   empty). It is 64 bytes, derived by [`JweKey::derive`] with HKDF-SHA-256 from the
//!   application secret, salt = the store identifier, info = `"Auth0 Generated Encryption"`;
//! * its first 32 bytes key HMAC-SHA-512, its last 32 bytes key AES-256-CBC (PKCS#7 padding)
//!   with the 16-byte IV the caller drew;
//! * the tag is the first 32 bytes of HMAC-SHA-512 over
//!   `AAD || IV || ciphertext || AL`, where AAD is the ASCII of the encoded header and AL its
//!   length in bits as a 64-bit big-endian integer.
//!
//! [`decrypt`] authenticates before it decrypts: the tag is compared in constant time and the
//! ciphertext is only deciphered under a key whose tag matched (no padding oracle). Several
//! keys may be given (secret rotation: the first encrypts, all decrypt).

use std::fmt;

use aes::Aes256;
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut as _, BlockEncryptMut as _, InnerIvInit as _, KeyInit as _};
use hkdf::Hkdf;
use hmac::{Hmac, Mac as _};
use serde_json::{Map, Value};
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroize as _;

use super::{JoseError, b64};

/// Longest token [`decrypt`] accepts, in bytes.
pub const MAX_JWE_LEN: usize = 64 * 1024;

/// HKDF `info` of the Python SDK's key derivation.
pub const HKDF_INFO: &[u8] = b"Auth0 Generated Encryption";

/// The protected header this module writes: `{"alg":"dir","enc":"A256CBC-HS512"}`, encoded.
pub(crate) const HEADER_B64: &str = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2Q0JDLUhTNTEyIn0";

const IV_LEN: usize = 16;
const TAG_LEN: usize = 32;
const BLOCK: usize = 16;

/// A 64-byte A256CBC-HS512 content-encryption key, with its AES key schedule and HMAC state
/// precomputed. `Debug` shows nothing of the key.
#[derive(Clone)]
pub struct JweKey {
    mac: Hmac<Sha512>,
    aes: Aes256,
}

impl fmt::Debug for JweKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JweKey(<redacted>)")
    }
}

impl JweKey {
    /// Derives the key the Python SDK derives: HKDF-SHA-256 with IKM = `secret`, salt =
    /// `salt` (the store identifier, e.g. `_a0_session`), info = [`HKDF_INFO`], 64 bytes.
    pub fn derive(secret: &[u8], salt: &[u8]) -> JweKey {
        let mut cek = [0u8; 64];
        // 64 bytes is far below HKDF-SHA-256's 255 * 32 limit: expand cannot fail.
        let expanded = Hkdf::<Sha256>::new(Some(salt), secret).expand(HKDF_INFO, &mut cek);
        debug_assert!(expanded.is_ok());
        let key = JweKey::from_cek(&cek);
        cek.zeroize();
        key
    }

    /// Uses `cek` directly: MAC key = first 32 bytes, AES key = last 32 bytes.
    pub(crate) fn from_cek(cek: &[u8; 64]) -> JweKey {
        let (mac_key, aes_key) = cek.split_at(32);
        JweKey {
            mac: <Hmac<Sha512> as hmac::Mac>::new_from_slice(mac_key)
                .expect("HMAC accepts any key length"),
            aes: Aes256::new_from_slice(aes_key).expect("32-byte AES-256 key"),
        }
    }

    fn tag(&self, aad: &str, iv: &[u8; IV_LEN], ciphertext: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.mac.clone();
        mac.update(aad.as_bytes());
        mac.update(iv);
        mac.update(ciphertext);
        mac.update(&((aad.len() as u64) * 8).to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }
}

/// Encrypts `plaintext` under `key` with the caller-drawn random `iv`, returning a compact JWE
/// with header `{"alg":"dir","enc":"A256CBC-HS512"}`.
///
/// The IV must be fresh random bytes for every call. Tokens longer than [`MAX_JWE_LEN`]
/// (plaintexts beyond about 48 KiB) will be refused by [`decrypt`].
pub fn encrypt(key: &JweKey, plaintext: &[u8], iv: [u8; 16]) -> String {
    let ciphertext = cbc::Encryptor::<Aes256>::inner_iv_init(key.aes.clone(), &iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    let tag = key.tag(HEADER_B64, &iv, &ciphertext);
    let mut out = String::with_capacity(
        HEADER_B64.len()
            + 4
            + b64::encoded_len(IV_LEN)
            + b64::encoded_len(ciphertext.len())
            + b64::encoded_len(TAG_LEN),
    );
    out.push_str(HEADER_B64);
    out.push_str("..");
    b64::encode_into(&iv, &mut out);
    out.push('.');
    b64::encode_into(&ciphertext, &mut out);
    out.push('.');
    b64::encode_into(&tag, &mut out);
    out
}

/// Decrypts a compact JWE, trying each key in order (secret rotation).
///
/// Checks: at most [`MAX_JWE_LEN`] bytes ([`JoseError::TooLarge`]); five parts, the second
/// empty; a header object with `alg` `dir` and `enc` `A256CBC-HS512`, no `zip` and no `crit`
/// (other members such as `kid` are tolerated; otherwise [`JoseError::UnsupportedAlgorithm`]
/// or [`JoseError::Malformed`]); a 16-byte IV, a 32-byte tag and a non-empty whole number of
/// cipher blocks. The tag is verified in constant time before anything is deciphered; when no
/// key authenticates the token, or padding is invalid, [`JoseError::DecryptionFailed`].
pub fn decrypt(keys: &[JweKey], token: &str) -> Result<Vec<u8>, JoseError> {
    if token.len() > MAX_JWE_LEN {
        return Err(JoseError::TooLarge { limit: MAX_JWE_LEN });
    }
    let mut parts = token.split('.');
    let (Some(header), Some(encrypted_key), Some(iv), Some(ciphertext), Some(tag), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(JoseError::Malformed("a JWE has five parts"));
    };
    if header != HEADER_B64 {
        check_header(header)?;
    }
    if !encrypted_key.is_empty() {
        return Err(JoseError::Malformed("dir JWE has an encrypted key"));
    }
    let iv = b64::decode_array::<IV_LEN>(iv)?;
    let tag = b64::decode_array::<TAG_LEN>(tag)?;
    let mut buf = b64::decode(ciphertext)?;
    if buf.is_empty() || buf.len() % BLOCK != 0 {
        return Err(JoseError::Malformed(
            "ciphertext is not whole cipher blocks",
        ));
    }
    let key = keys
        .iter()
        .find(|key| bool::from(key.tag(header, &iv, &buf).ct_eq(&tag)))
        .ok_or(JoseError::DecryptionFailed)?;
    let len = cbc::Decryptor::<Aes256>::inner_iv_init(key.aes.clone(), &iv.into())
        .decrypt_padded_mut::<Pkcs7>(&mut buf)
        .map_err(|_| JoseError::DecryptionFailed)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

fn check_header(encoded: &str) -> Result<(), JoseError> {
    let header: Map<String, Value> = serde_json::from_slice(&b64::decode(encoded)?)
        .map_err(|_| JoseError::Malformed("JWE header is not a JSON object"))?;
    let member = |name| header.get(name).and_then(Value::as_str).unwrap_or("");
    if member("alg") != "dir" {
        return Err(JoseError::unsupported_alg(member("alg")));
    }
    if member("enc") != "A256CBC-HS512" {
        return Err(JoseError::unsupported_alg(member("enc")));
    }
    if header.contains_key("zip") || header.contains_key("crit") {
        return Err(JoseError::Malformed(
            "JWE header has unsupported zip or crit",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jose_jwe_header_constant_is_the_encoded_header() {
        assert_eq!(
            HEADER_B64,
            b64::encode(br#"{"alg":"dir","enc":"A256CBC-HS512"}"#)
        );
    }

    #[test]
    fn jose_jwe_key_debug_is_redacted() {
        let key = JweKey::from_cek(&[7u8; 64]);
        assert_eq!(format!("{key:?}"), "JweKey(<redacted>)");
    }

    /// RFC 7518 Appendix B.3: the A256CBC-HS512 test case (with its own AAD).
    #[test]
    fn jose_jwe_tag_and_ciphertext_match_rfc7518_b3() {
        let cek: [u8; 64] = std::array::from_fn(|i| i as u8);
        let key = JweKey::from_cek(&cek);
        let iv: [u8; 16] = [
            0x1a, 0xf3, 0x8c, 0x2d, 0xc2, 0xb9, 0x6f, 0xfd, 0xd8, 0x66, 0x94, 0x09, 0x23, 0x41,
            0xbc, 0x04,
        ];
        let p = b"A cipher system must not be required to be secret, and it must be able to fall into the hands of the enemy without inconvenience";
        let aad = "The second principle of Auguste Kerckhoffs";
        let c = cbc::Encryptor::<Aes256>::inner_iv_init(key.aes.clone(), &iv.into())
            .encrypt_padded_vec_mut::<Pkcs7>(p);
        assert_eq!(c.len(), 144);
        assert_eq!(&c[..8], &[0x4a, 0xff, 0xaa, 0xad, 0xb7, 0x8c, 0x31, 0xc5]);
        let t = key.tag(aad, &iv, &c);
        assert_eq!(
            t,
            [
                0x4d, 0xd3, 0xb4, 0xc0, 0x88, 0xa7, 0xf4, 0x5c, 0x21, 0x68, 0x39, 0x64, 0x5b, 0x20,
                0x12, 0xbf, 0x2e, 0x62, 0x69, 0xa8, 0xc5, 0x6a, 0x81, 0x6d, 0xbc, 0x1b, 0x26, 0x77,
                0x61, 0x95, 0x5b, 0xc5,
            ]
        );
    }
}
