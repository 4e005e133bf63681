//! End-to-end: a session that grows to 30 token sets (30 APIs through Multi-Resource Refresh
//! Tokens) keeps working with the encrypted cookie store. Every call succeeds; every audience
//! whose token set the cookie budget kept is served from the session (no token request); what
//! did not fit was evicted soonest-to-expire first, and never the refresh token, the ID token
//! or the user (README "Session integrity").

mod adapter_support;
mod login_support;

use auth0_emulator::{
    DEFAULT_API_SCOPES, DEFAULT_AUDIENCE, Emulator, EmulatorConfig, RefreshTokenPolicy,
};
use auth0_server::blocking::ServerClient;
use auth0_server::clock::Clock;
use auth0_server::protocol::config::Config;
use auth0_server::store::cookie::chunks::{CHUNK_LEN, MAX_CHUNKS};
use auth0_server::store::cookie::{
    CookieStateStore, CookieTransactionStore, DEFAULT_SESSION_COOKIE,
};
use auth0_server::store::{CookieOptions, StateStore};
use auth0_server::{AccessToken, AccessTokenRequest};
use login_support::Jar;

const SECRET: &str = "secret-growth-0123456789-0123456789-0123456789";
const APIS: usize = 30;

/// The 30 APIs. The long path makes each token set (its key, and the token's `aud`) about
/// 1.3 KB, so 30 of them do not fit in the cookies and some must be evicted.
fn api(i: usize) -> String {
    format!("https://api-{i:02}.example.com/{}", "v".repeat(300))
}

/// How many chunks of the session cookie the browser holds.
fn session_chunks(jar: &Jar) -> usize {
    jar.0
        .keys()
        .filter(|n| n.starts_with(DEFAULT_SESSION_COOKIE))
        .count()
}

#[test]
fn a_session_with_30_token_sets_works_with_the_cookie_store() {
    let mut policies = vec![RefreshTokenPolicy::new(
        DEFAULT_AUDIENCE,
        &DEFAULT_API_SCOPES,
    )];
    policies.extend((0..APIS).map(|i| RefreshTokenPolicy::new(&api(i), &["read:data"])));
    let emu = Emulator::start(EmulatorConfig {
        refresh_token_policies: policies,
        ..Default::default()
    });
    let mut builder = Config::builder(emu.base_url(), emu.client_id())
        .client_secret(emu.client_secret())
        .secret(SECRET)
        .audience(DEFAULT_AUDIENCE);
    for i in 0..APIS {
        builder = builder.scope_for(api(i), "read:data");
    }
    let config = builder.build().unwrap();
    let store = || {
        CookieStateStore::builder(&config)
            .for_app_base_url("http://127.0.0.1:3000")
            .build()
            .unwrap()
    };
    let client = ServerClient::builder(
        config.clone(),
        store(),
        CookieTransactionStore::new(&config).unwrap(),
    )
    .build();

    // A logged-in user whose default-audience token has expired (rotation is on).
    let state = adapter_support::expired_session(&emu, DEFAULT_AUDIENCE);
    let first_refresh_token = state
        .refresh_token
        .as_ref()
        .map(|t| t.expose().to_owned())
        .expect("a refresh token");
    let mut jar = Jar::default();
    let mut written = CookieOptions::new();
    StateStore::set(&store(), &state, &mut written, Clock::system().now()).unwrap();
    jar.apply(&written);

    // The default audience (refresh, which brings an ID token), then the 30 APIs, each a
    // refresh with the (rotating) refresh token, each saved back into the cookies.
    let mut obtained: Vec<(String, AccessToken)> = Vec::new();
    let mut request = jar.request();
    let token = client
        .get_access_token(&mut request)
        .expect("default audience");
    jar.apply(&request);
    obtained.push((DEFAULT_AUDIENCE.to_owned(), token));
    for i in 0..APIS {
        let mut request = jar.request();
        let token = client
            .get_access_token_with(AccessTokenRequest::audience(api(i)), &mut request)
            .unwrap_or_else(|e| panic!("API {i}: {e}"));
        jar.apply(&request);
        assert!(
            session_chunks(&jar) <= MAX_CHUNKS,
            "{} chunks",
            session_chunks(&jar)
        );
        obtained.push((api(i), token));
    }
    let refreshes = emu.token_requests().len();
    assert_eq!(refreshes, APIS + 1, "one refresh per audience");

    // What the cookies hold now, read by a fresh store (cold cache).
    let saved = StateStore::get(&store(), &mut jar.request(), Clock::system().now())
        .unwrap()
        .expect("the session");
    let rotated = saved.refresh_token.as_ref().expect("refresh token kept");
    assert_ne!(rotated.expose(), first_refresh_token);
    assert!(
        emu.refresh_token_is_live(rotated.expose()),
        "the latest rotated refresh token is the one saved"
    );
    assert!(saved.id_token.is_some(), "the ID token was evicted");
    assert_eq!(
        saved.sub(),
        Some("auth0|emulator-user"),
        "the user was evicted"
    );
    let encrypted: usize = jar.0.values().map(String::len).sum();
    assert!(encrypted <= MAX_CHUNKS * CHUNK_LEN);

    // The budget does not hold all 31 token sets: some were evicted, the latest kept.
    let kept = |audience: &str| saved.token_sets.iter().any(|s| s.audience == audience);
    let (in_session, evicted): (Vec<_>, Vec<_>) = obtained.iter().partition(|(a, _)| kept(a));
    assert!(
        !evicted.is_empty(),
        "30 token sets of this size fit; enlarge them"
    );
    assert!(
        in_session.len() >= 10,
        "only {} token sets kept",
        in_session.len()
    );
    assert!(kept(&api(APIS - 1)), "the token just obtained was evicted");
    // Soonest to expire went first.
    let latest_evicted = evicted.iter().map(|(_, t)| t.expires_at).max().unwrap();
    let earliest_kept = in_session.iter().map(|(_, t)| t.expires_at).min().unwrap();
    assert!(
        latest_evicted <= earliest_kept,
        "a token set expiring at {earliest_kept} was kept over one expiring at {latest_evicted}"
    );

    // Every kept audience is served from the session: the same token, no token request.
    for (audience, token) in &in_session {
        let mut request = jar.request();
        let again = if audience == DEFAULT_AUDIENCE {
            client.get_access_token(&mut request)
        } else {
            client
                .get_access_token_with(AccessTokenRequest::audience(audience.clone()), &mut request)
        }
        .unwrap_or_else(|e| panic!("{audience}: {e}"));
        jar.apply(&request);
        assert_eq!(again.access_token, token.access_token, "{audience}");
    }
    assert_eq!(
        emu.token_requests().len(),
        refreshes,
        "a kept token set was not served from the session"
    );

    // An evicted audience is simply refreshed again, without error.
    let (audience, _) = evicted[0];
    let mut request = jar.request();
    let again = if audience == DEFAULT_AUDIENCE {
        client.get_access_token(&mut request)
    } else {
        client.get_access_token_with(AccessTokenRequest::audience(audience.clone()), &mut request)
    }
    .expect("an evicted audience refreshes");
    jar.apply(&request);
    assert_eq!(again.audience, *audience);
    assert_eq!(emu.token_requests().len(), refreshes + 1);
    assert!(session_chunks(&jar) <= MAX_CHUNKS);
}
