//! Text from outside (a server's `error_description`, a token's `iss`, a discovered issuer)
//! made safe to put in an error message that ends up in a log line.
//!
//! [`SafeText`] escapes every control character (so a CR/LF in an `error_description` cannot
//! forge a log line) and the Unicode bidirectional overrides, and caps the text at
//! [`MAX_SERVER_TEXT`] characters. [`redact`] removes, before anything is kept, every secret
//! the SDK itself sent in the exchange that the server echoed back.

use std::fmt;

/// Most characters of server-provided text an error message carries; longer text is cut and
/// ends with `…`.
pub const MAX_SERVER_TEXT: usize = 300;

/// What replaces a secret the server echoed back.
pub const REDACTED: &str = "[redacted]";

/// Displays text from outside safely: control and bidi-override characters escaped
/// (`\n`, `\r`, `\u{1b}`, …), at most [`MAX_SERVER_TEXT`] characters.
///
/// ```
/// use auth0_server_protocol::display::SafeText;
/// assert_eq!(SafeText("a\r\nb").to_string(), "a\\r\\nb");
/// assert_eq!(SafeText(&"x".repeat(1000)).to_string().chars().count(), 301);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct SafeText<'a>(pub &'a str);

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

impl fmt::Display for SafeText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.chars().enumerate() {
            if i == MAX_SERVER_TEXT {
                return f.write_str("…");
            }
            if needs_escape(c) {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// `text` with every occurrence of each non-empty `secret` replaced by [`REDACTED`].
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        if out.contains(*secret) {
            out = out.replace(*secret, REDACTED);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_length_capped() {
        assert_eq!(SafeText("ok").to_string(), "ok");
        let forged = "bad\r\n2026-01-01 INFO user=admin logged in";
        assert!(!SafeText(forged).to_string().contains('\n'));
        assert!(!SafeText("\u{202e}evil").to_string().contains('\u{202e}'));
        let long = SafeText(&"é".repeat(5000)).to_string();
        assert_eq!(long.chars().count(), MAX_SERVER_TEXT + 1);
    }

    #[test]
    fn echoed_secrets_are_redacted() {
        let r = redact("token rt-123456 is invalid (rt-123456)", &["rt-123456", ""]);
        assert_eq!(r, "token [redacted] is invalid ([redacted])");
    }
}
