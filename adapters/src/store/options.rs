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
    request: Vec<(String, String)>,
    written: Vec<(String, Option<String>)>,
    set_cookie: Vec<HeaderValue>,
    /// The request's `Host` header, for a domain resolver (multiple custom domains).
    host: Option<String>,
}

impl std::fmt::Debug for CookieOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Cookie values are session data: names only.
        let names: Vec<&str> = self.request.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("CookieOptions")
            .field("request_cookies", &names)
            .field("set_cookie_count", &self.set_cookie.len())
            .finish()
    }
}

/// Most cookies a request may carry that the SDK will look at; the rest are ignored.
pub const MAX_REQUEST_COOKIES: usize = 200;

impl CookieOptions {
    /// Options for a request with these headers (every `Cookie` header is read). A pair
    /// that is not UTF-8 is skipped, not the whole header: browsers send other cookies'
    /// non-ASCII values as they are.
    pub fn from_request_headers(headers: &HeaderMap) -> Self {
        let mut request = Vec::new();
        let mut add = |pair: &str| {
            if request.len() < MAX_REQUEST_COOKIES {
                if let Some((name, value)) = pair.trim().split_once('=') {
                    let value = value.trim().trim_matches('"');
                    request.push((name.trim().to_owned(), value.to_owned()));
                }
            }
        };
        for value in headers.get_all(COOKIE) {
            match value.to_str() {
                // The usual case, all visible ASCII: split the text (memchr-fast).
                Ok(text) => text.split(';').for_each(&mut add),
                // Some cookie carries other bytes (a UTF-8 value, or garbage): keep every pair
                // that decodes, skip only the ones that do not.
                Err(_) => value
                    .as_bytes()
                    .split(|&b| b == b';')
                    .filter_map(|pair| std::str::from_utf8(pair).ok())
                    .for_each(&mut add),
            }
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
        if let Some((_, v)) = self.written.iter().rev().find(|(n, _)| n == name) {
            return v.as_deref();
        }
        self.request
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Names of the cookies currently present (request cookies and this request's writes,
    /// minus deletions), each once.
    pub fn cookie_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for (n, _) in self
            .request
            .iter()
            .map(|(n, v)| (n, Some(v)))
            .chain(self.written.iter().map(|(n, v)| (n, v.as_ref())))
        {
            if !names.contains(&n.as_str()) && self.cookie(n).is_some() {
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
