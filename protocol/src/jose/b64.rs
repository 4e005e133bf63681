//! Base64url without padding (RFC 7515 §2, "Base64url Encoding"), strict.
//!
//! Every part of a compact JWS/JWE and every JWK number is base64url. Decoding is strict:
//! padding (`=`), whitespace, characters outside the URL-safe alphabet and non-canonical
//! trailing bits are all rejected, so one token has exactly one encoding.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::JoseError;

/// Encodes `bytes` as base64url without padding.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Appends the base64url (no padding) encoding of `bytes` to `out`.
pub fn encode_into(bytes: &[u8], out: &mut String) {
    URL_SAFE_NO_PAD.encode_string(bytes, out);
}

/// Decodes strict base64url without padding.
pub fn decode(text: &str) -> Result<Vec<u8>, JoseError> {
    URL_SAFE_NO_PAD
        .decode(text)
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

    #[test]
    fn jose_b64_decode_array_checks_length() {
        assert_eq!(decode_array::<2>("-_8").unwrap(), [0xfb, 0xff]);
        assert!(decode_array::<3>("-_8").is_err());
        assert!(decode_array::<1>("-_8").is_err());
        assert_eq!(encoded_len(16), 22);
        assert_eq!(encoded_len(32), 43);
    }
}
