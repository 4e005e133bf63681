//! The quickstart binary runs the whole walkthrough and reports every step.

use std::process::Command;

#[test]
fn quickstart_runs_every_step_and_exits_zero() {
    let output = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .env_remove("AUTH0_DOMAIN")
        .output()
        .expect("run the quickstart");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        output.status
    );

    for expected in [
        " 1. Started the Auth0 emulator at http://127.0.0.1:",
        "start_interactive_login → redirect to http://127.0.0.1:",
        "The emulator logged in the test user and redirected the browser to /auth/callback",
        "complete_interactive_login → logged in (returnTo /profile); session cookies: _a0_session",
        "get_user → sub auth0|emulator-user, name \"Emulator User\"",
        "get_session → 1 access token(s), refresh token present",
        "get_access_token → eyJ",
        "get_access_token_with(audience https://analytics.example.com) → eyJ",
        "(scope \"read:analytics write:analytics\")",
        "scope \"write:orders\") → eyJ",
        "get_access_token_for_connection(google-oauth2) → ",
        "The same four calls again → served from the session (the default API's request by the broader token)",
        "token requests: 0 (emulator total still 4)",
        "get_access_token refreshed: eyJ",
        "token requests: 1 (grant_type=refresh_token)",
        "GET /api/data with the token → 200",
        "logout → session cookies cleared",
        // Discovery advertises an end_session_endpoint: logout follows it (issue 14).
        "/oidc/logout?client_id=emulator-client&post_logout_redirect_uri=",
        "get_user → None (logged out)",
        "All 16 steps passed.",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }

    // Steps are numbered 1..=16 in order.
    let numbers: Vec<usize> = stdout
        .lines()
        .filter_map(|l| {
            l.trim_start()
                .split_once(". ")
                .and_then(|(n, _)| n.parse().ok())
        })
        .collect();
    assert_eq!(numbers, (1..=16).collect::<Vec<_>>(), "{stdout}");

    // Tokens are only ever shown shortened: every `eyJ` is followed by `…(N chars)`.
    for (i, _) in stdout.match_indices("eyJ") {
        let rest = &stdout[i..];
        let shown: String = rest.chars().take(11).collect();
        assert!(
            shown.ends_with('…'),
            "a token printed whole near: {}",
            &rest[..rest.len().min(40)]
        );
    }
}

#[test]
fn quickstart_refuses_a_real_tenant_with_a_clear_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .env("AUTH0_DOMAIN", "example.auth0.com")
        .output()
        .expect("run the quickstart");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("quickstart FAILED") && stderr.contains("--serve"),
        "{stderr}"
    );
}
