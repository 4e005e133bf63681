//! Base64url without padding (RFC 7515 §2, "Base64url Encoding"), strict.
//!
//! Every part of a compact JWS/JWE and every JWK number is base64url. Decoding is strict:
//! padding (`=`), whitespace, characters outside the URL-safe alphabet and non-canonical
//! trailing bits are all rejected, so one token has exactly one encoding.
//!
//! Whole parts go through `base64-simd` (kilobytes per session cookie); the fixed-size ones
//! (IV, tag) through `base64`. Both are strict in the same way (a differential property test
//! below).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64_simd::URL_SAFE_NO_PAD as SIMD_URL_SAFE_NO_PAD;

use super::JoseError;

/// Encodes `bytes` as base64url without padding.
pub fn encode(bytes: &[u8]) -> String {
    SIMD_URL_SAFE_NO_PAD.encode_to_string(bytes)
}

/// Appends the base64url (no padding) encoding of `bytes` to `out`.
pub fn encode_into(bytes: &[u8], out: &mut String) {
    SIMD_URL_SAFE_NO_PAD.encode_append(bytes, out);
}

/// Decodes strict base64url without padding.
pub fn decode(text: &str) -> Result<Vec<u8>, JoseError> {
    SIMD_URL_SAFE_NO_PAD
        .decode_to_vec(text)
        .map_err(|_| JoseError::Malformed("invalid base64url"))
}

/// Decodes strict base64url that must hold exactly `N` bytes.
pub fn decode_array<const N: usize>(text: &str) -> Result<[u8; N], JoseError> {
    let mut out = [0u8; N];
    if text.len() != encoded_len(N) {
        return Err(JoseError::Malformed("unexpected encoded length"));
    }
    match URL_SAFE_NO_PAD.decode_slice(text, &mut out) {
        Ok(n) if n == N => Ok(out),
        _ => Err(JoseError::Malformed("invalid base64url")),
    }
}

/// Length of the unpadded base64url encoding of `n` bytes.
pub const fn encoded_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jose_b64_rejects_padding_and_foreign_alphabet() {
        assert_eq!(decode("YQ").unwrap(), b"a");
        assert!(decode("YQ==").is_err());
        assert!(decode("Y Q").is_err());
        assert!(decode("+/").is_err());
        // "YR" has non-zero trailing bits: a second spelling of "a", rejected.
        assert!(decode("YR").is_err());
        assert_eq!(encode(&[0xfb, 0xff]), "-_8");
    }

    proptest::proptest! {
        /// The SIMD codec accepts exactly what the `base64` crate accepts (padding, spaces,
        /// the other alphabet and non-canonical trailing bits refused) and decodes it to the
        /// same bytes; it encodes every input as `base64` does.
        #[test]
        fn jose_b64_simd_agrees_with_base64(
            text in "[A-Za-z0-9_=+/ .-]{0,80}",
            alphabet_only in "[A-Za-z0-9_-]{0,80}",
            canonical in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            for text in [&text, &alphabet_only] {
                let ours = decode(text).ok();
                let theirs = URL_SAFE_NO_PAD.decode(text).ok();
                proptest::prop_assert_eq!(ours, theirs);
            }
            let encoded = encode(&canonical);
            proptest::prop_assert_eq!(&encoded, &URL_SAFE_NO_PAD.encode(&canonical));
            let mut appended = String::from("x.");
            encode_into(&canonical, &mut appended);
            proptest::prop_assert_eq!(&appended[2..], encoded.as_str());
            proptest::prop_assert_eq!(decode(&encoded).ok(), Some(canonical));
        }
    }

    #[test]
    fn jose_b64_decode_array_checks_length() {
        assert_eq!(decode_array::<2>("-_8").unwrap(), [0xfb, 0xff]);
        assert!(decode_array::<3>("-_8").is_err());
        assert!(decode_array::<1>("-_8").is_err());
        assert_eq!(encoded_len(16), 22);
        assert_eq!(encoded_len(32), 43);
    }
}
