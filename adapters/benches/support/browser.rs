//! What a browser sends back: the `name=value` pairs of the `Set-Cookie` headers a store
//! wrote, in one `Cookie` header.

use auth0_server::store::CookieOptions;
use http::HeaderMap;

/// The pairs the response set, and request headers carrying them back.
pub fn cookies_sent_back(response: &CookieOptions) -> (Vec<String>, HeaderMap) {
    let pairs: Vec<String> = response
        .set_cookie_headers()
        .iter()
        .map(|h| {
            let text = h.to_str().expect("ASCII");
            text.split(';').next().expect("name=value").to_owned()
        })
        .collect();
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::COOKIE,
        pairs.join("; ").parse().expect("header value"),
    );
    (pairs, headers)
}
