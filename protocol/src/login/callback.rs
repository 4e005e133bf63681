//! Step 2 of a login: reading the callback URL Auth0 redirected the browser to.

use super::error::LoginError;

/// The query parameters of a callback that matter.
///
/// `Debug` does not show the authorization code (a credential).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Callback {
    /// `state`.
    pub state: Option<String>,
    /// `code`.
    pub code: Option<String>,
    /// `error`.
    pub error: Option<String>,
    /// `error_description`.
    pub error_description: Option<String>,
    /// `iss` (RFC 9207): the issuer that sent the browser back.
    pub iss: Option<String>,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("state", &self.state)
            .field("code", &self.code.as_ref().map(|_| "<redacted>"))
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .field("iss", &self.iss)
            .finish()
    }
}

/// Longest callback URL accepted.
pub const MAX_CALLBACK_URL: usize = 16 * 1024;

/// Reads a callback URL: absolute (`https://app/callback?code=…`) or just the path and query
/// (`/callback?code=…`). A parameter given twice is refused (parameter pollution).
pub fn parse_callback(callback_url: &str) -> Result<Callback, LoginError> {
    if callback_url.len() > MAX_CALLBACK_URL {
        return Err(LoginError::InvalidCallback("too long"));
    }
    let url = match url::Url::parse(callback_url) {
        Ok(u) => u,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let base = url::Url::parse("http://callback.invalid/")
                .map_err(|_| LoginError::InvalidCallback("unparsable"))?;
            base.join(callback_url)
                .map_err(|_| LoginError::InvalidCallback("not a URL"))?
        }
        Err(_) => return Err(LoginError::InvalidCallback("not a URL")),
    };
    let mut cb = Callback::default();
    for (k, v) in url.query_pairs() {
        let slot = match k.as_ref() {
            "state" => &mut cb.state,
            "code" => &mut cb.code,
            "error" => &mut cb.error,
            "error_description" => &mut cb.error_description,
            "iss" => &mut cb.iss,
            _ => continue,
        };
        if slot.is_some() {
            return Err(LoginError::InvalidCallback("a parameter is repeated"));
        }
        *slot = Some(v.into_owned());
    }
    Ok(cb)
}
