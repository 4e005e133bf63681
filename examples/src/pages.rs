//! The HTML pages both example apps render (HTML-escaped, no templates, no JavaScript).

use auth0_server::protocol::session::{Session, UserClaims};
use serde_json::Value;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body` (already HTML).
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;max-width:50em;margin:2em auto}}\
         td,th{{text-align:left;padding:2px 8px;vertical-align:top}}</style></head>\n\
         <body><nav><a href=\"/\">Home</a> · <a href=\"/profile\">Profile</a> · \
         <a href=\"/api/data\">API data</a> · <a id=\"logout\" href=\"/auth/logout\">Log out</a></nav>\n\
         <h1>{}</h1>\n{body}\n</body></html>\n",
        escape(title),
        escape(title)
    )
}

fn display_name(user: &UserClaims) -> String {
    ["name", "nickname", "email", "sub"]
        .iter()
        .find_map(|k| user.get(*k).and_then(Value::as_str))
        .unwrap_or("user")
        .to_owned()
}

/// `/`: a greeting and the login link (or the profile link when logged in).
pub fn home(user: Option<&UserClaims>) -> String {
    match user {
        Some(user) => page(
            "auth0-server example",
            &format!(
                "<p>Hello, {}! See your <a id=\"profile\" href=\"/profile\">profile</a>.</p>",
                escape(&display_name(user))
            ),
        ),
        None => page(
            "auth0-server example",
            "<p>You are not logged in.</p>\n<p><a id=\"login\" href=\"/auth/login\">Log in</a></p>",
        ),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `/profile`: the user's claims and a summary of the session (tokens shortened).
pub fn profile(user: &UserClaims, session: Option<&Session>) -> String {
    let mut body = format!(
        "<p id=\"greeting\">Logged in as <strong>{}</strong>.</p>\n<h2>User</h2>\n<table id=\"user\">",
        escape(&display_name(user))
    );
    for (name, value) in user {
        body.push_str(&format!(
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(name),
            escape(&value_text(value))
        ));
    }
    body.push_str("</table>\n<h2>Session</h2>\n");
    if let Some(session) = session {
        body.push_str(&format!(
            "<p>Refresh token: {}. ID token: {}.</p>\n<table id=\"tokens\">\
             <tr><th>Audience</th><th>Scope</th><th>Expires at</th><th>Access token</th></tr>",
            if session.refresh_token.is_some() {
                "present"
            } else {
                "absent"
            },
            session.id_token.as_ref().map_or_else(
                || "absent".to_owned(),
                |t| escape(&crate::shorten(t.expose()))
            ),
        ));
        for set in &session.token_sets {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&set.audience),
                escape(set.scope.as_deref().unwrap_or("")),
                set.expires_at,
                escape(&crate::shorten(set.access_token.expose())),
            ));
        }
        for set in &session.connection_token_sets {
            body.push_str(&format!(
                "<tr><td>connection {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&set.connection),
                escape(set.scope.as_deref().unwrap_or("")),
                set.expires_at,
                escape(&crate::shorten(set.access_token.expose())),
            ));
        }
        body.push_str("</table>");
    }
    page("Profile", &body)
}

/// A page for visitors without a session (status 401).
pub fn logged_out() -> String {
    page(
        "Not logged in",
        "<p id=\"logged-out\">You are not logged in.</p>\n<p><a id=\"login\" href=\"/auth/login\">Log in</a></p>",
    )
}

/// `/api/data`: the protected API's status and JSON answer.
pub fn api_data(status: u16, body: &str) -> String {
    let pretty = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| body.to_owned());
    page(
        "API data",
        &format!(
            "<p>The protected API answered <strong>{status}</strong>:</p>\n<pre id=\"api-data\">{}</pre>",
            escape(&pretty)
        ),
    )
}

/// An error page: a stable code and a message (both escaped).
pub fn error(code: &str, message: &str) -> String {
    page(
        "Something went wrong",
        &format!(
            "<p id=\"error\"><code>{}</code>: {}</p>\n<p><a href=\"/\">Home</a></p>",
            escape(code),
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_user_claims() {
        let mut user = UserClaims::new();
        user.insert("name".into(), "<script>alert('x')</script>".into());
        let html = profile(&user, None);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    }
}
