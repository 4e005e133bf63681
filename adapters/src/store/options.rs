//! [`CookieOptions`]: the `store_options` of cookie-based stores.

use http::header::{COOKIE, HeaderMap, HeaderValue, SET_COOKIE};

/// Store options for stores that keep state in cookies (the encrypted cookie stores) or a
/// session id in a cookie (the in-memory and server-side stores): the incoming request's
/// headers, plus the `Set-Cookie` values the stores write for the response.
///
/// Reads see the stores' own writes of the same request: after a store sets or deletes a
/// cookie, [`CookieOptions::cookie`] returns the new value (or nothing).
///
/// ```
/// use auth0_server::store::CookieOptions;
/// let mut headers = http::HeaderMap::new();
/// headers.insert(http::header::COOKIE, "a=1; b=2".parse().unwrap());
/// let mut opts = CookieOptions::from_request_headers(&headers);
/// assert_eq!(opts.cookie("b"), Some("2"));
/// opts.set_cookie("b", "3", "Path=/; HttpOnly");
/// assert_eq!(opts.cookie("b"), Some("3"));
/// opts.remove_cookie("a", "Path=/");
/// assert_eq!(opts.cookie("a"), None);
/// assert_eq!(opts.set_cookie_headers().len(), 2);
/// ```
#[derive(Clone, Default)]
pub struct CookieOptions {
    request: RequestCookies,
    written: Vec<(String, Option<String>)>,
    set_cookie: Vec<HeaderValue>,
    /// The request's `Host` header, for a domain resolver (multiple custom domains).
    host: Option<String>,
}

impl std::fmt::Debug for CookieOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Cookie values are session data: names only.
        let names: Vec<String> = self
            .request
            .iter()
            .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
            .collect();
        f.debug_struct("CookieOptions")
            .field("request_cookies", &names)
            .field("set_cookie_count", &self.set_cookie.len())
            .finish()
    }
}

/// Most cookies a request may carry that the SDK will look at; the rest are ignored.
pub const MAX_REQUEST_COOKIES: usize = 200;

impl CookieOptions {
    /// Options for a request with these headers (every `Cookie` header is read). The
    /// headers are shared, not copied: a `Cookie` header is split into pairs where it lies.
    /// A pair whose value is not UTF-8 reads as absent, and only that pair: browsers send
    /// other cookies' non-ASCII values as they are.
    pub fn from_request_headers(headers: &HeaderMap) -> Self {
        let mut request = RequestCookies::default();
        for value in headers.get_all(COOKIE) {
            request.add_header(value);
        }
        CookieOptions {
            request,
            host: headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned),
            ..Default::default()
        }
    }

    /// The request's host as the client sent it (its `Host` header, or the one set with
    /// [`CookieOptions::with_request_host`]), for a domain resolver (multiple custom
    /// domains, [`crate::mcd`]). Chosen by the client: map it to one of your domains with a
    /// [`DomainAllowlist`](crate::mcd::DomainAllowlist), never use it as it is.
    pub fn request_host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The same options with `host` as the request's host (e.g. an HTTP/2 request's
    /// `:authority`, which is not a `Host` header).
    pub fn with_request_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Options for a request without cookies.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current value of a cookie: what a store wrote during this request, else what the
    /// request carried (the first one, when a name repeats).
    pub fn cookie(&self, name: &str) -> Option<&str> {
        std::str::from_utf8(self.cookie_bytes(name)?).ok()
    }

    /// [`CookieOptions::cookie`] as the bytes the request sent, not checked for UTF-8: for
    /// the cookie stores, whose values are base64url (any other byte fails to decode), and
    /// whose warm path compares a value with a cached one without reading it as text.
    pub(crate) fn cookie_bytes(&self, name: &str) -> Option<&[u8]> {
        if let Some((_, v)) = self.written.iter().rev().find(|(n, _)| n == name) {
            return v.as_deref().map(str::as_bytes);
        }
        self.request.first(name)
    }

    /// Names of the request's cookies (those that are UTF-8), then of this request's writes
    /// (deletions included), repeats and all: for lookups that check
    /// [`CookieOptions::cookie`] themselves.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.request
            .iter()
            .filter_map(|(n, _)| std::str::from_utf8(n).ok())
            .chain(self.written.iter().map(|(n, _)| n.as_str()))
    }

    /// Names of the cookies currently present (request cookies and this request's writes,
    /// minus deletions), each once.
    pub fn cookie_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for n in self.names() {
            if !names.contains(&n) && self.cookie(n).is_some() {
                names.push(n);
            }
        }
        names
    }

    /// Sets a cookie: records the value for later reads and a `Set-Cookie: name=value; attributes`
    /// header for the response. Replaces an earlier write of the same name in this request.
    pub fn set_cookie(&mut self, name: &str, value: &str, attributes: &str) {
        self.record(
            name,
            Some(value.to_owned()),
            format!("{name}={value}; {attributes}"),
        );
    }

    /// Deletes a cookie: `Set-Cookie: name=; Max-Age=0; attributes`.
    pub fn remove_cookie(&mut self, name: &str, attributes: &str) {
        self.record(name, None, format!("{name}=; Max-Age=0; {attributes}"));
    }

    fn record(&mut self, name: &str, value: Option<String>, header: String) {
        let prefix = format!("{name}=");
        self.set_cookie
            .retain(|h| !h.to_str().is_ok_and(|s| s.starts_with(&prefix)));
        self.written.retain(|(n, _)| n != name);
        self.written.push((name.to_owned(), value));
        if let Ok(h) = HeaderValue::from_str(&header) {
            self.set_cookie.push(h);
        }
    }

    /// The `Set-Cookie` header values to send with the response.
    pub fn set_cookie_headers(&self) -> &[HeaderValue] {
        &self.set_cookie
    }

    /// Appends the `Set-Cookie` values to a response's headers.
    pub fn apply_to(&self, headers: &mut HeaderMap) {
        for h in &self.set_cookie {
            headers.append(SET_COOKIE, h.clone());
        }
    }
}

/// The request's cookies, parsed once: the `Cookie` headers themselves (shared with the
/// request's `HeaderMap`, not copied) and where each pair's name and value lie in them,
/// trimmed.
#[derive(Clone, Default)]
struct RequestCookies {
    headers: Vec<HeaderValue>,
    pairs: Vec<PairAt>,
}

/// Where one pair lies: in `headers[header]`, the name is `start..split`, the value
/// `value..end`.
#[derive(Clone, Copy)]
struct PairAt {
    header: usize,
    start: usize,
    split: usize,
    value: usize,
    end: usize,
}

impl RequestCookies {
    /// Adds the `name=value` pairs of one `Cookie` header: split at each `;` (found with
    /// SIMD: a session cookie is kilobytes long), surrounding spaces and the value's quotes
    /// removed; text without `=` is no pair. At most [`MAX_REQUEST_COOKIES`] are kept.
    fn add_header(&mut self, header: &HeaderValue) {
        let bytes = header.as_bytes();
        let index = self.headers.len();
        let before = self.pairs.len();
        let mut start = 0;
        for end in memchr::memchr_iter(b';', bytes).chain([bytes.len()]) {
            if self.pairs.len() >= MAX_REQUEST_COOKIES {
                break;
            }
            if let Some(pair) = pair_at(index, bytes, start, end) {
                self.pairs.push(pair);
            }
            start = end + 1;
        }
        if self.pairs.len() > before {
            self.headers.push(header.clone());
        }
    }

    /// The pairs as `(name, value)` bytes, in the order the request sent them.
    fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.pairs.iter().map(|p| {
            let bytes = self.headers.get(p.header).map_or(&[][..], |h| h.as_bytes());
            (
                bytes.get(p.start..p.split).unwrap_or_default(),
                bytes.get(p.value..p.end).unwrap_or_default(),
            )
        })
    }

    /// The value of the first pair named `name`.
    fn first(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| v)
    }
}

/// The pair in `bytes[from..to]` of header `header`: name and value each without surrounding
/// ASCII spaces, the value without surrounding quotes; `None` without an `=`.
fn pair_at(header: usize, bytes: &[u8], from: usize, to: usize) -> Option<PairAt> {
    let eq = from + memchr::memchr(b'=', bytes.get(from..to)?)?;
    let (start, split) = trimmed(bytes, from, eq, u8::is_ascii_whitespace);
    let (value, end) = trimmed(bytes, eq + 1, to, u8::is_ascii_whitespace);
    let (value, end) = trimmed(bytes, value, end, |&b| b == b'"');
    Some(PairAt {
        header,
        start,
        split,
        value,
        end,
    })
}

/// `from..to` without the bytes at either end that `strip` matches.
fn trimmed(bytes: &[u8], mut from: usize, mut to: usize, strip: fn(&u8) -> bool) -> (usize, usize) {
    while from < to && bytes.get(from).is_some_and(strip) {
        from += 1;
    }
    while to > from && bytes.get(to - 1).is_some_and(strip) {
        to -= 1;
    }
    (from, to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the request cookies are, read the plain way: each header split at `;`, each
    /// piece split at its first `=`, name and value without surrounding ASCII spaces, the
    /// value without surrounding quotes, the first [`MAX_REQUEST_COOKIES`] pairs kept.
    fn model(headers: &[Vec<u8>]) -> Vec<(Vec<u8>, Vec<u8>)> {
        headers
            .iter()
            .flat_map(|h| h.split(|&b| b == b';'))
            .filter_map(|piece| {
                let eq = piece.iter().position(|&b| b == b'=')?;
                let (name, value) = (&piece[..eq], piece[eq + 1..].trim_ascii());
                let lead = value.iter().take_while(|&&b| b == b'"').count();
                let value = &value[lead..];
                let trail = value.iter().rev().take_while(|&&b| b == b'"').count();
                Some((
                    name.trim_ascii().to_vec(),
                    value[..value.len() - trail].to_vec(),
                ))
            })
            .take(MAX_REQUEST_COOKIES)
            .collect()
    }

    fn options(headers: &[Vec<u8>]) -> Option<CookieOptions> {
        let mut map = HeaderMap::new();
        for h in headers {
            map.append(COOKIE, HeaderValue::from_bytes(h).ok()?);
        }
        Some(CookieOptions::from_request_headers(&map))
    }

    #[test]
    fn pairs_are_trimmed_unquoted_and_the_first_of_a_name_wins() {
        let o = options(&[
            b" a = 1 ; b=\"two\";junk; a=3".to_vec(),
            b"c=caf\xc3\xa9; d=\xff\xfe; e=5".to_vec(),
        ])
        .unwrap();
        assert_eq!(o.cookie("a"), Some("1"));
        assert_eq!(o.cookie("b"), Some("two"));
        assert_eq!(o.cookie("c"), Some("café"));
        assert_eq!(
            o.cookie("d"),
            None,
            "not UTF-8: that pair only reads as absent"
        );
        assert_eq!(o.cookie_bytes("d"), Some(&b"\xff\xfe"[..]));
        assert_eq!(o.cookie("e"), Some("5"));
        assert_eq!(o.cookie_names(), ["a", "b", "c", "e"]);
        assert!(!format!("{o:?}").contains("two"), "Debug shows names only");
    }

    #[test]
    fn at_most_max_request_cookies_are_read() {
        let header: Vec<u8> = (0..MAX_REQUEST_COOKIES + 5)
            .map(|i| format!("c{i}=v"))
            .collect::<Vec<_>>()
            .join("; ")
            .into_bytes();
        let o = options(&[header]).unwrap();
        assert_eq!(o.cookie_names().len(), MAX_REQUEST_COOKIES);
        assert_eq!(o.cookie(&format!("c{}", MAX_REQUEST_COOKIES)), None);
    }

    proptest! {
        /// Any `Cookie` headers (bytes a header may carry, UTF-8 or not) read as the plain
        /// reading of them does: the first pair of a name is its value, text when UTF-8.
        #[test]
        fn reading_matches_the_plain_reading(
            headers in proptest::collection::vec(
                proptest::collection::vec(
                    prop_oneof![
                        Just(b';'), Just(b'='), Just(b' '), Just(b'"'), Just(b'a'), Just(b'b'),
                        0x21u8..0x7f, 0x80u8..=0xff,
                    ],
                    0..40,
                ),
                0..3,
            )
        ) {
            if let Some(o) = options(&headers) {
                let want = model(&headers);
                let got: Vec<(Vec<u8>, Vec<u8>)> = o
                    .request
                    .iter()
                    .map(|(n, v)| (n.to_vec(), v.to_vec()))
                    .collect();
                prop_assert_eq!(&got, &want);
                for (name, _) in &want {
                    let Ok(name) = std::str::from_utf8(name) else { continue };
                    let first = want
                        .iter()
                        .find(|(n, _)| n == name.as_bytes())
                        .map(|(_, v)| v.as_slice());
                    prop_assert_eq!(o.cookie_bytes(name), first);
                    prop_assert_eq!(o.cookie(name), first.and_then(|v| std::str::from_utf8(v).ok()));
                }
            }
        }
    }
}
