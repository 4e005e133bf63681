//! A minimal browser cookie jar: what the quickstart (and the tests) use to carry cookies
//! from one "request" to the next, as a browser would.

use auth0_server::store::CookieOptions;
use std::collections::BTreeMap;

/// Cookies by name (one host, path `/`: all the examples need).
#[derive(Clone, Debug, Default)]
pub struct CookieJar {
    cookies: BTreeMap<String, String>,
}

impl CookieJar {
    /// An empty jar.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores one `Set-Cookie` header value; `Max-Age=0` (or an empty value) deletes.
    pub fn store(&mut self, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim(), value.trim());
        let expired = parts.any(|attr| attr.trim().eq_ignore_ascii_case("max-age=0"));
        if expired || value.is_empty() {
            self.cookies.remove(name);
        } else {
            self.cookies.insert(name.to_owned(), value.to_owned());
        }
    }

    /// Stores every `Set-Cookie` header a request's store options collected.
    pub fn store_from(&mut self, options: &CookieOptions) {
        for header in options.set_cookie_headers() {
            if let Ok(text) = header.to_str() {
                self.store(text);
            }
        }
    }

    /// The `Cookie` request header value, or `None` when the jar is empty.
    pub fn header(&self) -> Option<String> {
        if self.cookies.is_empty() {
            return None;
        }
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        Some(pairs.join("; "))
    }

    /// Store options for a new "request" carrying the jar's cookies.
    pub fn request_options(&self) -> CookieOptions {
        let mut headers = http::HeaderMap::new();
        if let Some(value) = self.header().and_then(|h| h.parse().ok()) {
            headers.insert(http::header::COOKIE, value);
        }
        CookieOptions::from_request_headers(&headers)
    }

    /// The names of the cookies held.
    pub fn names(&self) -> Vec<&str> {
        self.cookies.keys().map(String::as_str).collect()
    }

    /// The total size of the cookie values, in bytes.
    pub fn total_len(&self) -> usize {
        self.cookies.values().map(String::len).sum()
    }

    /// Whether the jar holds no cookie.
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// Forgets every cookie.
    pub fn clear(&mut self) {
        self.cookies.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_replaces_and_deletes() {
        let mut jar = CookieJar::new();
        jar.store("a=1; HttpOnly; Path=/");
        jar.store("b=2; Path=/");
        jar.store("a=3; Path=/");
        assert_eq!(jar.header().as_deref(), Some("a=3; b=2"));
        jar.store("a=; Max-Age=0; Path=/");
        assert_eq!(jar.names(), vec!["b"]);
        assert_eq!(jar.request_options().cookie("b"), Some("2"));
    }
}
