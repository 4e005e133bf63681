//! Splitting a cookie value across numbered cookies and putting it back together.
//!
//! Browsers keep about 4096 bytes per cookie (name, value and attributes together), and an
//! encrypted session with an ID token and a few access tokens is larger. A value is
//! therefore written as `name.0`, `name.1`, … with at most [`CHUNK_LEN`] bytes each. The
//! suffix is always present, even for a single chunk (as Auth0's JavaScript SDK does), so a
//! reader never has to guess which form it is looking at.
//!
//! Reading takes the chunks `name.{i}` present in the request (canonical decimal indices
//! only), and accepts them only when they are exactly `0..n` with `n ≤` [`MAX_CHUNKS`]. A
//! gap or too many chunks make the whole value invalid. Writing a value that needs fewer
//! chunks than were present deletes the surplus; clearing deletes every chunk present.
//!
//! ```
//! use auth0_server::store::CookieOptions;
//! use auth0_server::store::cookie::chunks;
//! let mut opts = CookieOptions::new();
//! let value = "x".repeat(chunks::CHUNK_LEN + 1);
//! chunks::write(&mut opts, "_a0_session", &value, "Path=/");
//! assert_eq!(opts.cookie("_a0_session.1"), Some("x"));
//! assert_eq!(chunks::read(&opts, "_a0_session"), chunks::Read::Value(value));
//! chunks::write(&mut opts, "_a0_session", "short", "Path=/");
//! assert_eq!(opts.cookie("_a0_session.1"), None, "the surplus chunk is deleted");
//! ```

use crate::store::CookieOptions;

/// Most bytes of value per cookie. With a name of up to 128 bytes and the attributes the
/// stores write (under 100 bytes), a `Set-Cookie` stays below the 4096 bytes browsers keep.
pub const CHUNK_LEN: usize = 3800;

/// Most chunks a value may span. A request carrying more is treated as carrying no value.
pub const MAX_CHUNKS: usize = 10;

/// Longest cookie name the stores accept (before the `.{i}` suffix).
pub const MAX_NAME_LEN: usize = 128;

/// The outcome of [`read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// No chunk of this name is present.
    Absent,
    /// Chunks are present but do not form a value: a gap in the indices, or more than
    /// [`MAX_CHUNKS`] chunks.
    Invalid,
    /// The reassembled value.
    Value(String),
}

/// Whether `name` is a valid cookie name (an RFC 6265 / RFC 7230 token) of at most
/// [`MAX_NAME_LEN`] bytes.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(
                    b,
                    b'(' | b')'
                        | b'<'
                        | b'>'
                        | b'@'
                        | b','
                        | b';'
                        | b':'
                        | b'\\'
                        | b'"'
                        | b'/'
                        | b'['
                        | b']'
                        | b'?'
                        | b'='
                        | b'{'
                        | b'}'
                )
        })
}

/// The chunk cookie name for index `i`: `name.i`.
pub fn chunk_name(name: &str, i: usize) -> String {
    format!("{name}.{i}")
}

/// Indices `i` of the `name.{i}` cookies currently present, ascending. Only canonical
/// decimal indices of at most four digits count (`name.01` or `name.x` are other cookies).
pub fn present(options: &CookieOptions, name: &str) -> Vec<usize> {
    present_values(options, name)
        .into_iter()
        .map(|(i, _)| i)
        .collect()
}

/// [`present`] with each chunk's current value, found in the same pass: the bytes the
/// request sent (a chunk that is not UTF-8 is present, and makes the value invalid).
fn present_values<'a>(options: &'a CookieOptions, name: &str) -> Vec<(usize, &'a [u8])> {
    let mut found: Vec<(usize, &[u8])> = options
        .names()
        .filter_map(|n| {
            let i = parse_index(n.strip_prefix(name)?.strip_prefix('.')?)?;
            Some((i, options.cookie_bytes(n)?))
        })
        .collect();
    // A repeated name has one current value (`cookie_bytes`): repeats are equal pairs.
    found.sort_unstable_by_key(|&(i, _)| i);
    found.dedup_by_key(|&mut (i, _)| i);
    found
}

fn parse_index(s: &str) -> Option<usize> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// Reassembles the value stored under `name` from the chunks present in `options`.
pub fn read(options: &CookieOptions, name: &str) -> Read {
    match read_parts(options, name) {
        Parts::Absent => Read::Absent,
        Parts::Invalid => Read::Invalid,
        Parts::Value(parts) => match String::from_utf8(parts.concat()) {
            Ok(value) => Read::Value(value),
            Err(_) => Read::Invalid,
        },
    }
}

/// [`read`] without the copy: the chunks' values in order, borrowed from `options`, as
/// the bytes the request sent (not checked for UTF-8: the caller decodes or compares them).
pub(crate) enum Parts<'a> {
    Absent,
    Invalid,
    Value(Vec<&'a [u8]>),
}

pub(crate) fn read_parts<'a>(options: &'a CookieOptions, name: &str) -> Parts<'a> {
    let chunks = present_values(options, name);
    if chunks.is_empty() {
        return Parts::Absent;
    }
    if chunks.len() > MAX_CHUNKS || chunks.iter().enumerate().any(|(i, &(idx, _))| i != idx) {
        return Parts::Invalid;
    }
    let mut total = 0;
    for &(_, chunk) in &chunks {
        if chunk.is_empty() || total + chunk.len() > MAX_CHUNKS * CHUNK_LEN {
            return Parts::Invalid;
        }
        total += chunk.len();
    }
    // Collected in place: the list of chunks becomes the list of their values.
    Parts::Value(chunks.into_iter().map(|(_, chunk)| chunk).collect())
}

/// Writes `value` under `name` as chunks `name.0 … name.{n-1}` with these `Set-Cookie`
/// attributes, and deletes any chunk `name.{i}`, `i ≥ n`, that is present.
///
/// `value` must be ASCII (the stores write base64url JWE); a non-ASCII value is split at
/// character boundaries, so a chunk may be slightly shorter than [`CHUNK_LEN`].
pub fn write(options: &mut CookieOptions, name: &str, value: &str, attributes: &str) {
    let before = present(options, name);
    let mut n = 0;
    let mut rest = value;
    while !rest.is_empty() || n == 0 {
        let mut cut = rest.len().min(CHUNK_LEN);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (chunk, tail) = rest.split_at(cut);
        options.set_cookie(&chunk_name(name, n), chunk, attributes);
        rest = tail;
        n += 1;
    }
    for i in before.into_iter().filter(|&i| i >= n) {
        options.remove_cookie(
            &chunk_name(name, i),
            attributes_without_max_age(attributes).as_str(),
        );
    }
}

/// Deletes every chunk of `name` present (`Set-Cookie: name.i=; Max-Age=0; attributes`).
pub fn clear(options: &mut CookieOptions, name: &str, attributes: &str) {
    for i in present(options, name) {
        options.remove_cookie(&chunk_name(name, i), attributes);
    }
}

fn attributes_without_max_age(attributes: &str) -> String {
    attributes
        .split(';')
        .map(str::trim)
        .filter(|a| !a.to_ascii_lowercase().starts_with("max-age"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(cookies: &str) -> CookieOptions {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::COOKIE, cookies.parse().unwrap());
        CookieOptions::from_request_headers(&h)
    }

    #[test]
    fn single_chunk_is_still_suffixed() {
        let mut o = CookieOptions::new();
        write(&mut o, "s", "abc", "Path=/");
        assert_eq!(o.cookie("s.0"), Some("abc"));
        assert_eq!(o.cookie("s"), None);
        assert_eq!(o.set_cookie_headers().len(), 1);
    }

    #[test]
    fn reads_chunks_in_numeric_not_lexical_order() {
        let cookies: Vec<String> = (0..10).rev().map(|i| format!("s.{i}={i}")).collect();
        assert_eq!(
            read(&request(&cookies.join("; ")), "s"),
            Read::Value("0123456789".into())
        );
    }

    #[test]
    fn gap_or_too_many_chunks_is_invalid() {
        assert_eq!(read(&request("s.0=a; s.2=c"), "s"), Read::Invalid);
        assert_eq!(read(&request("s.1=b"), "s"), Read::Invalid);
        let eleven: Vec<String> = (0..=MAX_CHUNKS).map(|i| format!("s.{i}=x")).collect();
        assert_eq!(read(&request(&eleven.join("; ")), "s"), Read::Invalid);
        assert_eq!(read(&request("s.0="), "s"), Read::Invalid);
    }

    #[test]
    fn unrelated_and_non_canonical_names_are_ignored() {
        let o = request("s=a; s.01=b; s.x=c; s.0.1=d; ss.0=e; other=f");
        assert_eq!(read(&o, "s"), Read::Absent);
        assert!(present(&o, "s").is_empty());
    }

    #[test]
    fn shrinking_deletes_surplus_chunks_without_max_age() {
        let mut o = request("s.0=a; s.1=b; s.2=c");
        write(&mut o, "s", "z", "HttpOnly; Path=/; Max-Age=60");
        assert_eq!(read(&o, "s"), Read::Value("z".into()));
        let headers: Vec<&str> = o
            .set_cookie_headers()
            .iter()
            .map(|h| h.to_str().unwrap())
            .collect();
        assert_eq!(
            headers,
            [
                "s.0=z; HttpOnly; Path=/; Max-Age=60",
                "s.1=; Max-Age=0; HttpOnly; Path=/",
                "s.2=; Max-Age=0; HttpOnly; Path=/"
            ]
        );
    }

    #[test]
    fn clear_deletes_every_present_chunk_including_strays() {
        let mut o = request("s.0=a; s.5=b; t.0=c");
        clear(&mut o, "s", "Path=/");
        assert_eq!(read(&o, "s"), Read::Absent);
        assert_eq!(o.cookie("t.0"), Some("c"));
        assert_eq!(o.set_cookie_headers().len(), 2);
    }

    #[test]
    fn split_sizes() {
        let mut o = CookieOptions::new();
        let v = "y".repeat(2 * CHUNK_LEN + 5);
        write(&mut o, "s", &v, "Path=/");
        assert_eq!(o.cookie("s.0").unwrap().len(), CHUNK_LEN);
        assert_eq!(o.cookie("s.1").unwrap().len(), CHUNK_LEN);
        assert_eq!(o.cookie("s.2").unwrap().len(), 5);
        assert_eq!(read(&o, "s"), Read::Value(v));
    }

    #[test]
    fn cookie_name_validation() {
        assert!(is_valid_name("_a0_session"));
        assert!(is_valid_name("_a0_tx.abc-DEF_123"));
        for bad in ["", "a b", "a;b", "a=b", "a,b", "é", "a\"", &"n".repeat(129)] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }
}
