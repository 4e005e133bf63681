//! `returnTo`: where the browser goes after login — only ever a path of this application.

/// The longest `returnTo` accepted, in bytes.
pub const MAX_RETURN_TO: usize = 2048;

/// `candidate` if it is a safe same-origin relative path to send the browser to, else `None`.
///
/// Accepted: an absolute path (`/profile`, `/orders?id=7#top`). Refused, so that `returnTo`
/// can never become an open redirect: absolute URLs (`https://evil.example`, `javascript:…`),
/// scheme-relative ones (`//evil.example`), backslashes anywhere (browsers read `/\evil` as
/// `//evil`), control characters and whitespace (browsers strip tabs and newlines, turning
/// `/\t/evil` into `//evil`), anything that does not resolve to the same origin, and values
/// longer than [`MAX_RETURN_TO`].
///
/// ```
/// use auth0_server::axum::safe_return_to;
/// assert_eq!(safe_return_to("/orders?id=7"), Some("/orders?id=7"));
/// assert_eq!(safe_return_to("//evil.example"), None);
/// assert_eq!(safe_return_to("/\\evil.example"), None);
/// assert_eq!(safe_return_to("https://evil.example/"), None);
/// ```
pub fn safe_return_to(candidate: &str) -> Option<&str> {
    let ok = candidate.len() <= MAX_RETURN_TO
        && candidate.starts_with('/')
        && !candidate.starts_with("//")
        && !candidate
            .chars()
            .any(|c| c == '\\' || c.is_control() || c.is_whitespace());
    if !ok {
        return None;
    }
    // Belt and braces: it must resolve against this origin to this origin.
    let base = url::Url::parse("http://app.invalid/").ok()?;
    let joined = base.join(candidate).ok()?;
    (joined.origin() == base.origin()).then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_paths() {
        for ok in [
            "/",
            "/profile",
            "/a/b?c=d&e=%2F%2Fx#frag",
            "/%2F%2Fevil",
            "/@evil",
        ] {
            assert_eq!(safe_return_to(ok), Some(ok), "{ok}");
        }
    }

    #[test]
    fn refuses_open_redirects() {
        for bad in [
            "",
            "profile",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/ /evil.example",
            "/\u{0}x",
            "/\u{7f}x",
            "/\u{a0}x",
            "https://evil.example",
            "http:evil.example",
            "javascript:alert(1)",
            "data:text/html,x",
        ] {
            assert_eq!(safe_return_to(bad), None, "{bad:?}");
        }
        assert_eq!(
            safe_return_to(&format!("/{}", "a".repeat(MAX_RETURN_TO))),
            None
        );
    }
}
