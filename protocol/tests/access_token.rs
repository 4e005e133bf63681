//! `get_access_token` through the operation, rule by rule (default scopes, token-set choice, expiry, refresh), driven by a script.

mod common;

use auth0_server_protocol::access_token::{AccessTokenError, AccessTokenRequest};
use auth0_server_protocol::config::ClientAuthMethod;
use auth0_server_protocol::effect::{Effect, Input, Operation, Step};
use auth0_server_protocol::secret::Secret;
use auth0_server_protocol::session::{Internal, StateData, TokenSet, Updated};
use auth0_server_protocol::time::UnixTime;
use auth0_server_protocol::token_endpoint::ResponseError;
use base64::Engine;
use common::*;
use serde_json::json;
use std::time::Duration;

const API: &str = "https://api.example.com/";
const OTHER_API: &str = "https://other.example.com/";
const OLD_ID_TOKEN: &str = "old-id-token-SHOULD-NOT-LEAK";

fn set(audience: &str, token: &str, scope: Option<&str>, expires_at: u64) -> TokenSet {
    TokenSet {
        audience: audience.into(),
        access_token: Secret::new(token),
        scope: scope.map(str::to_owned),
        expires_at,
        requested_scope: None,
        token_type: Default::default(),
    }
}

fn session(token_sets: Vec<TokenSet>) -> StateData {
    StateData {
        user: Some(user()),
        id_token: Some(Secret::new(OLD_ID_TOKEN)),
        refresh_token: Some(Secret::new(REFRESH_TOKEN)),
        token_sets,
        connection_token_sets: Vec::new(),
        internal: Internal {
            sid: "sid-1".into(),
            created_at: NOW - 100,
            last_active_at: None,
            extra: Default::default(),
            session_expires_at: None,
        },
        extra: Default::default(),
    }
}

fn token_response(access_token: &str, extra: serde_json::Value) -> http::Response<Vec<u8>> {
    let mut body =
        json!({"access_token": access_token, "token_type": "Bearer", "expires_in": 86400});
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    json(200, &body.to_string())
}

/// Runs `get_access_token` with fresh metadata and one scripted token response.
fn refresh_with(
    core: &auth0_server_protocol::Core,
    req: AccessTokenRequest,
    s: StateData,
    response: http::Response<Vec<u8>>,
) -> (
    Result<auth0_server_protocol::access_token::AccessToken, AccessTokenError>,
    Recording,
) {
    Script::new()
        .session(Some(s))
        .metadata(Some(cached_metadata(NOW, 10)))
        .jwks(Some(cached_jwks()))
        .http(response)
        .run(core.get_access_token(req), NOW)
}

// --- audience key ------------------------------------------------------------------------------

#[test]
fn no_requested_audience_uses_the_configured_default_audience() {
    let core = core(config_builder().audience(API));
    let s = session(vec![set(
        API,
        "at-api",
        Some("openid profile email offline_access"),
        NOW + 3600,
    )]);
    let (result, rec) = Script::new()
        .session(Some(s))
        .run(core.get_access_token(AccessTokenRequest::default()), NOW);
    let token = result.unwrap();
    assert_eq!(token.access_token.expose(), "at-api");
    assert_eq!(token.audience, API);
    assert_eq!(rec.names(), ["LoadSession"]);
}

#[test]
fn without_any_audience_the_key_is_the_literal_default_and_no_audience_is_sent() {
    let core = core(config_builder());
    let s = session(vec![set(
        "default",
        "old",
        Some("openid profile email offline_access"),
        NOW - 1,
    )]);
    let (result, rec) = refresh_with(
        &core,
        AccessTokenRequest::default(),
        s,
        token_response("new-at", json!({})),
    );
    assert_eq!(result.unwrap().audience, "default");
    let req = rec.token_requests()[0];
    assert_eq!(req.param("audience"), None);
    let saved = rec.saved();
    assert_eq!(saved.token_sets.len(), 1, "replaced under the same key");
    assert_eq!(saved.token_sets[0].audience, "default");
    assert_eq!(saved.token_sets[0].access_token.expose(), "new-at");
}

#[test]
fn a_requested_audience_is_the_key_for_lookup_request_and_storage() {
    let core = core(config_builder().audience(API));
    let s = session(vec![set(
        API,
        "at-api",
        Some("openid profile email offline_access"),
        NOW + 3600,
    )]);
    let (result, rec) = refresh_with(
        &core,
        AccessTokenRequest::audience(OTHER_API),
        s,
        token_response("at-other", json!({})),
    );
    let token = result.unwrap();
    assert_eq!(
        (token.audience.as_str(), token.access_token.expose()),
        (OTHER_API, "at-other")
    );
    assert_eq!(rec.token_requests()[0].param("audience"), Some(OTHER_API));
    let saved = rec.saved();
    assert_eq!(saved.token_sets.len(), 2, "appended for the new audience");
    assert_eq!(
        saved.token_sets[0],
        set(
            API,
            "at-api",
            Some("openid profile email offline_access"),
            NOW + 3600
        )
    );
    assert_eq!(saved.token_sets[1].audience, OTHER_API);
}

// --- scope merge -------------------------------------------------------------------------------

#[test]
fn scope_map_entry_for_the_audience_is_merged_with_the_call_scopes() {
    let core = core(
        config_builder()
            .audience(API)
            .scope_for(API, "openid read:a")
            .scope_for(OTHER_API, "openid read:b"),
    );
    let req = AccessTokenRequest::audience(OTHER_API).scope("write:b  read:b openid extra");
    let (result, rec) = refresh_with(&core, req, session(vec![]), token_response("at", json!({})));
    result.unwrap();
    assert_eq!(
        rec.token_requests()[0].param("scope"),
        Some("openid read:b write:b extra")
    );
}

#[test]
fn scope_map_without_an_entry_for_the_audience_sends_only_the_call_scopes_or_none() {
    let core = core(config_builder().scope_for(API, "openid read:a"));
    let (_, rec) = refresh_with(
        &core,
        AccessTokenRequest::audience(OTHER_API).scope("read:x"),
        session(vec![]),
        token_response("at", json!({})),
    );
    assert_eq!(rec.token_requests()[0].param("scope"), Some("read:x"));

    let (result, rec) = refresh_with(
        &core,
        AccessTokenRequest::audience(OTHER_API),
        session(vec![]),
        token_response("at", json!({})),
    );
    let req = rec.token_requests()[0];
    assert_eq!(
        req.param("scope"),
        None,
        "no scope parameter when there is none"
    );
    assert_eq!(result.unwrap().scope, None);
}

#[test]
fn scope_string_applies_to_every_audience() {
    let core = core(config_builder().scope("openid profile"));
    for audience in [API, OTHER_API] {
        let req = AccessTokenRequest::audience(audience).scope("profile read:x");
        let (_, rec) = refresh_with(&core, req, session(vec![]), token_response("at", json!({})));
        assert_eq!(
            rec.token_requests()[0].param("scope"),
            Some("openid profile read:x")
        );
    }
}

#[test]
fn default_scope_is_used_when_none_is_configured() {
    let core = core(config_builder());
    let (_, rec) = refresh_with(
        &core,
        AccessTokenRequest::default(),
        session(vec![]),
        token_response("at", json!({})),
    );
    assert_eq!(
        rec.token_requests()[0].param("scope"),
        Some("openid profile email offline_access")
    );
}

// --- selection ---------------------------------------------------------------------------------

fn hit(
    core: &auth0_server_protocol::Core,
    req: AccessTokenRequest,
    sets: Vec<TokenSet>,
) -> (String, Recording) {
    let (result, rec) = Script::new()
        .session(Some(session(sets)))
        .run(core.get_access_token(req), NOW);
    (result.unwrap().access_token.expose().to_owned(), rec)
}

#[test]
fn selection_prefers_the_exact_scope_set_over_an_earlier_superset() {
    let core = core(config_builder().audience(API).scope_for(API, "a b"));
    let (token, rec) = hit(
        &core,
        AccessTokenRequest::default(),
        vec![
            set(API, "superset", Some("a b c"), NOW + 3600),
            set(OTHER_API, "other-audience", Some("b a"), NOW + 3600),
            set(API, "exact", Some("b a"), NOW + 3600),
        ],
    );
    assert_eq!(token, "exact");
    assert_eq!(rec.names(), ["LoadSession"]);
}

#[test]
fn selection_falls_back_to_the_smallest_superset() {
    let core = core(config_builder().audience(API).scope_for(API, "a"));
    let (token, _) = hit(
        &core,
        AccessTokenRequest::default(),
        vec![
            set(API, "big", Some("a b c d"), NOW + 3600),
            set(API, "small", Some("c a"), NOW + 3600),
            set(API, "subset-only", Some("b"), NOW + 3600),
        ],
    );
    assert_eq!(token, "small");
}

#[test]
fn no_superset_for_the_audience_means_a_refresh() {
    let core = core(config_builder().audience(API).scope_for(API, "a b"));
    let s = session(vec![
        set(API, "subset", Some("a"), NOW + 3600),
        set(
            OTHER_API,
            "other-audience-superset",
            Some("a b c"),
            NOW + 3600,
        ),
    ]);
    let (result, rec) = refresh_with(
        &core,
        AccessTokenRequest::default(),
        s,
        token_response("fresh", json!({"scope": "a b"})),
    );
    assert_eq!(result.unwrap().access_token.expose(), "fresh");
    assert_eq!(rec.token_requests().len(), 1);
    let saved = rec.saved();
    // The new set supersedes the stored set of its audience whose scope
    // it covers ("a" ⊂ "a b"), in place; the other audience's set stays.
    assert_eq!(
        saved.token_sets.len(),
        2,
        "the superseded subset token set is replaced, the other audience's kept"
    );
    assert_eq!(
        saved.token_sets[0],
        set(API, "fresh", Some("a b"), NOW + 86400)
    );
    assert_eq!(
        saved.token_sets[1].access_token.expose(),
        "other-audience-superset"
    );
}

#[test]
fn a_server_granting_fewer_scopes_than_requested_is_a_cache_hit_next_time() {
    let core = core(config_builder().audience(API).scope_for(API, "a b"));
    let s = session(vec![set(API, "expired", Some("a b"), NOW - 10)]);
    let (result, rec) = refresh_with(
        &core,
        AccessTokenRequest::default(),
        s,
        token_response("fresh", json!({"scope": "a"})),
    );
    let token = result.unwrap();
    assert_eq!(
        token.scope.as_deref(),
        Some("a"),
        "the granted scope is exposed"
    );
    let saved = rec.saved().clone();
    assert_eq!(saved.token_sets.len(), 1);
    assert_eq!(saved.token_sets[0].scope.as_deref(), Some("a"));
    assert_eq!(saved.token_sets[0].requested_scope.as_deref(), Some("a b"));
    // The same request again: served from the session, no request.
    let (again, rec) = Script::new()
        .session(Some(saved))
        .run(core.get_access_token(AccessTokenRequest::default()), NOW);
    assert_eq!(again.unwrap().access_token.expose(), "fresh");
    assert!(rec.http_requests().is_empty());
}

// --- expiry with leeway ------------------------------------------------------------------------

#[test]
fn a_token_expiring_within_the_leeway_is_refreshed() {
    let core = core(config_builder().audience(API));
    let scope = Some("openid profile email offline_access");
    // Default leeway is 30 s: expiring at now + 30 is expired, now + 31 is served.
    for (expires_at, refreshed) in [
        (NOW + 31, false),
        (NOW + 30, true),
        (NOW + 29, true),
        (NOW - 5, true),
    ] {
        let mut script =
            Script::new().session(Some(session(vec![set(API, "stored", scope, expires_at)])));
        if refreshed {
            script = script
                .metadata(Some(cached_metadata(NOW, 1)))
                .http(token_response("fresh", json!({})));
        }
        let (result, rec) = script.run(core.get_access_token(AccessTokenRequest::default()), NOW);
        let expected = if refreshed { "fresh" } else { "stored" };
        assert_eq!(
            result.unwrap().access_token.expose(),
            expected,
            "expires_at = now + {}",
            expires_at as i64 - NOW as i64
        );
        assert_eq!(rec.token_requests().len(), usize::from(refreshed));
    }
}

#[test]
fn the_configured_leeway_is_applied() {
    let core = core(
        config_builder()
            .audience(API)
            .leeway(Duration::from_secs(300)),
    );
    let s = session(vec![set(
        API,
        "stored",
        Some("openid profile email offline_access"),
        NOW + 299,
    )]);
    let (result, _) = refresh_with(
        &core,
        AccessTokenRequest::default(),
        s,
        token_response("fresh", json!({})),
    );
    assert_eq!(result.unwrap().access_token.expose(), "fresh");
}

// --- cache hit ---------------------------------------------------------------------------------

#[test]
fn a_cache_hit_is_exactly_one_load_session_and_no_http() {
    let core = core(config_builder().audience(API));
    let stored = set(
        API,
        "stored-at",
        Some("openid profile email offline_access"),
        NOW + 3600,
    );
    let (result, rec) = Script::new()
        .session(Some(session(vec![stored.clone()])))
        .run(core.get_access_token(AccessTokenRequest::default()), NOW);
    let token = result.unwrap();
    assert_eq!(token.access_token, stored.access_token);
    assert_eq!(token.scope, stored.scope);
    assert_eq!(token.expires_at, stored.expires_at);
    assert_eq!(rec.names(), ["LoadSession"]);
}

// --- discovery and the refresh request ---------------------------------------------------------

const DISCOVERED_TOKEN_ENDPOINT: &str = "https://tenant.auth0.com/custom/oauth/token";

#[test]
fn missing_metadata_is_discovered_then_one_request_goes_to_the_discovered_endpoint() {
    let core = core(config_builder().audience(API));
    let (result, rec) = Script::new()
        .session(Some(session(vec![])))
        .metadata(None)
        .http(discovery_document(DISCOVERED_TOKEN_ENDPOINT))
        .http(token_response("fresh", json!({})))
        .run(core.get_access_token(AccessTokenRequest::default()), NOW);
    result.unwrap();
    assert_eq!(
        rec.names(),
        [
            "LoadSession",
            "LoadMetadata",
            "GET /.well-known/openid-configuration",
            "StoreMetadata",
            "POST /custom/oauth/token",
            "SaveSession"
        ]
    );
    let discovery = rec.http_requests()[0];
    assert_eq!(
        discovery.uri,
        "https://tenant.auth0.com/.well-known/openid-configuration"
    );
    assert_eq!(rec.token_requests().len(), 1);
    assert_eq!(rec.token_requests()[0].uri, DISCOVERED_TOKEN_ENDPOINT);
    let stored = rec
        .0
        .iter()
        .find_map(|e| match e {
            Recorded::StoreMetadata(m) => Some(m.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(stored.fetched_at, UnixTime::from_secs(NOW));
    assert_eq!(stored.metadata.token_endpoint, DISCOVERED_TOKEN_ENDPOINT);
}

#[test]
fn metadata_older_than_the_ttl_is_refetched_and_younger_is_used() {
    let core = core(config_builder().audience(API));
    // 600 s old: stale.
    let (result, rec) = Script::new()
        .session(Some(session(vec![])))
        .metadata(Some(cached_metadata(NOW, 600)))
        .http(discovery_document(DISCOVERED_TOKEN_ENDPOINT))
        .http(token_response("fresh", json!({})))
        .run(core.get_access_token(AccessTokenRequest::default()), NOW);
    result.unwrap();
    assert_eq!(rec.http_requests().len(), 2);
    assert_eq!(rec.token_requests()[0].uri, DISCOVERED_TOKEN_ENDPOINT);
    // 599 s old: fresh, no discovery.
    let (result, rec) = Script::new()
        .session(Some(session(vec![])))
        .metadata(Some(cached_metadata(NOW, 599)))
        .http(token_response("fresh", json!({})))
        .run(core.get_access_token(AccessTokenRequest::default()), NOW);
    result.unwrap();
    assert_eq!(
        rec.names(),
        [
            "LoadSession",
            "LoadMetadata",
            "POST /oauth/token",
            "SaveSession"
        ]
    );
    assert_eq!(rec.token_requests()[0].uri, TOKEN_ENDPOINT);
}

#[test]
fn refresh_request_with_client_secret_post_has_exactly_these_params() {
    let core = core(
        config_builder()
            .audience(API)
            .scope_for(API, "openid offline_access read:a"),
    );
    let (_, rec) = refresh_with(
        &core,
        AccessTokenRequest::default(),
        session(vec![]),
        token_response("at", json!({})),
    );
    let req = rec.token_requests()[0];
    assert_eq!(req.method, http::Method::POST);
    assert_eq!(req.uri, TOKEN_ENDPOINT);
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(req.header("authorization"), None);
    assert_eq!(
        req.param_names(),
        [
            "audience",
            "client_id",
            "client_secret",
            "grant_type",
            "refresh_token",
            "scope"
        ]
    );
    assert_eq!(req.param("grant_type"), Some("refresh_token"));
    assert_eq!(req.param("refresh_token"), Some(REFRESH_TOKEN));
    assert_eq!(req.param("client_id"), Some(CLIENT_ID));
    assert_eq!(req.param("client_secret"), Some(CLIENT_SECRET));
    assert_eq!(req.param("audience"), Some(API));
    assert_eq!(req.param("scope"), Some("openid offline_access read:a"));
}

#[test]
fn refresh_request_with_client_secret_basic_authenticates_in_the_header() {
    let secret = "s3cr:t/+&é";
    let core = core(
        config_builder()
            .client_secret(secret)
            .client_auth_method(ClientAuthMethod::ClientSecretBasic),
    );
    let (_, rec) = refresh_with(
        &core,
        AccessTokenRequest::default(),
        session(vec![]),
        token_response("at", json!({})),
    );
    let req = rec.token_requests()[0];
    assert_eq!(
        req.param("client_secret"),
        None,
        "the secret is not in the body"
    );
    assert!(!String::from_utf8_lossy(&req.body).contains("s3cr"));
    assert_eq!(
        req.param_names(),
        ["client_id", "grant_type", "refresh_token", "scope"]
    );
    let auth = req.header("authorization").expect("Authorization header");
    let encoded = auth.strip_prefix("Basic ").expect("Basic scheme");
    let decoded = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap();
    let (id, pw) = decoded.split_once(':').unwrap();
    let dec = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .unwrap()
            .1
            .into_owned()
    };
    assert_eq!(
        (dec(id), dec(pw)),
        (CLIENT_ID.to_owned(), secret.to_owned())
    );
    assert!(!pw.contains(':'), "the secret's colon is form-urlencoded");
}

#[test]
fn the_coalescing_key_never_holds_the_refresh_token_in_clear() {
    let core = core(config_builder());
    let (_, rec) = refresh_with(
        &core,
        AccessTokenRequest::default(),
        session(vec![]),
        token_response("at", json!({})),
    );
    let key = &rec.token_requests()[0]
        .coalesce
        .as_ref()
        .expect("refreshes coalesce")
        .key;
    assert!(!key.contains(REFRESH_TOKEN), "{key}");
}

// --- the session saved after a refresh ----------------------------------------------------------

#[test]
fn a_refresh_keeps_the_rotated_refresh_token_and_replaces_id_token_and_user() {
    let core = core(config_builder().audience(API));
    let new_id = id_token(json!({"name": "Jane Updated", "email": "new@example.com"}));
    let other_set = set(OTHER_API, "other", Some("x"), NOW + 100);
    let mut s = session(vec![
        set(
            API,
            "old",
            Some("openid profile email offline_access"),
            NOW - 10,
        ),
        other_set.clone(),
    ]);
    s.connection_token_sets
        .push(auth0_server_protocol::session::ConnectionTokenSet {
            connection: "google-oauth2".into(),
            login_hint: None,
            access_token: Secret::new("conn"),
            scope: None,
            expires_at: NOW + 10,
        });
    let before = s.clone();
    let (result, rec) = refresh_with(
        &core,
        AccessTokenRequest::default(),
        s,
        token_response(
            "fresh",
            json!({"refresh_token": ROTATED_REFRESH_TOKEN, "id_token": new_id, "expires_in": 120}),
        ),
    );
    let token = result.unwrap();
    assert_eq!(token.expires_at, NOW + 120);
    let saved = rec.saved();
    assert_eq!(
        saved.refresh_token.as_ref().unwrap().expose(),
        ROTATED_REFRESH_TOKEN
    );
    assert_eq!(saved.id_token.as_ref().unwrap().expose(), new_id);
    let user = saved.user.as_ref().unwrap();
    assert_eq!(user["name"], "Jane Updated");
    assert_eq!(user["sub"], SUB);
    assert_eq!(
        saved.token_sets,
        vec![
            set(
                API,
                "fresh",
                Some("openid profile email offline_access"),
                NOW + 120
            ),
            other_set
        ],
        "replaced in place, the other audience untouched"
    );
    assert_eq!(saved.connection_token_sets, before.connection_token_sets);
    assert_eq!(saved.internal, before.internal);
}

#[test]
fn without_rotation_or_id_token_the_old_ones_are_kept() {
    let core = core(config_builder().audience(API));
    let s = session(vec![]);
    let (_, rec) = refresh_with(
        &core,
        AccessTokenRequest::default(),
        s.clone(),
        token_response("fresh", json!({})),
    );
    let saved = rec.saved();
    assert_eq!(saved.refresh_token, s.refresh_token);
    assert_eq!(saved.id_token, s.id_token);
    assert_eq!(saved.user, s.user);
}

#[test]
fn the_response_scope_is_stored_else_the_requested_scope() {
    let core = core(config_builder().audience(API).scope_for(API, "a b"));
    let (_, rec) = refresh_with(
        &core,
        AccessTokenRequest::default(),
        session(vec![]),
        token_response("t", json!({"scope": "a b c"})),
    );
    assert_eq!(rec.saved().token_sets[0].scope.as_deref(), Some("a b c"));
    let (_, rec) = refresh_with(
        &core,
        AccessTokenRequest::default(),
        session(vec![]),
        token_response("t", json!({})),
    );
    assert_eq!(rec.saved().token_sets[0].scope.as_deref(), Some("a b"));
}

#[test]
fn a_second_refresh_replaces_rather_than_appends() {
    let core = core(config_builder().audience(API).scope_for(API, "a b"));
    let (_, rec) = refresh_with(
        &core,
        AccessTokenRequest::default(),
        session(vec![]),
        token_response("one", json!({})),
    );
    let mut after_first = rec.saved().clone();
    after_first.token_sets[0].expires_at = NOW - 1;
    let (_, rec) = refresh_with(
        &core,
        AccessTokenRequest::default(),
        after_first,
        token_response("two", json!({"scope": "b a"})),
    );
    let saved = rec.saved();
    assert_eq!(saved.token_sets.len(), 1);
    assert_eq!(saved.token_sets[0].access_token.expose(), "two");
}

#[test]
fn a_refreshed_token_is_served_from_the_saved_session_next_time() {
    let core = core(config_builder().audience(API));
    let (_, rec) = refresh_with(
        &core,
        AccessTokenRequest::audience(OTHER_API).scope("read:x"),
        session(vec![]),
        token_response("fresh", json!({})),
    );
    let saved = rec.saved().clone();
    let (result, rec) = Script::new().session(Some(saved)).run(
        core.get_access_token(AccessTokenRequest::audience(OTHER_API).scope("read:x")),
        NOW + 60,
    );
    assert_eq!(result.unwrap().access_token.expose(), "fresh");
    assert_eq!(rec.names(), ["LoadSession"]);
}

// --- audience mismatch -------------------------------------------------------------------------

#[test]
fn a_jwt_for_another_audience_is_audience_mismatch_and_not_cached_but_the_rotation_is_saved() {
    let core = core(config_builder().audience(API));
    let wrong = jwt(json!({"aud": [API, "https://tenant.auth0.com/userinfo"], "exp": NOW + 3600}));
    let (result, rec) = refresh_with(
        &core,
        AccessTokenRequest::audience(OTHER_API),
        session(vec![]),
        token_response(&wrong, json!({"refresh_token": ROTATED_REFRESH_TOKEN})),
    );
    let err = result.unwrap_err();
    assert_eq!(err.code(), "audience_mismatch");
    match &err {
        AccessTokenError::AudienceMismatch {
            requested,
            received,
        } => {
            assert_eq!(requested, OTHER_API);
            assert!(received.contains(&API.to_owned()));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("refresh token policy"), "{err}");
    let saved = rec.saved();
    assert_eq!(
        saved.refresh_token.as_ref().unwrap().expose(),
        ROTATED_REFRESH_TOKEN
    );
    assert!(saved.token_sets.is_empty(), "the wrong token is not cached");
}

#[test]
fn a_jwt_whose_aud_contains_the_audience_or_an_opaque_token_is_accepted() {
    let core = core(config_builder());
    for token in [
        jwt(json!({"aud": OTHER_API})),
        jwt(json!({"aud": ["https://tenant.auth0.com/userinfo", OTHER_API]})),
        "opaque-access-token".to_owned(),
    ] {
        let (result, rec) = refresh_with(
            &core,
            AccessTokenRequest::audience(OTHER_API),
            session(vec![]),
            token_response(&token, json!({})),
        );
        assert_eq!(result.unwrap().access_token.expose(), token);
        assert_eq!(rec.saved().token_sets.len(), 1);
    }
}

// --- session mismatch --------------------------------------------------------------------------

#[test]
fn a_refreshed_id_token_for_another_user_or_issuer_saves_nothing() {
    let core = core(config_builder());
    for claims in [
        json!({"sub": "auth0|someone-else"}),
        json!({"iss": "https://evil.example/"}),
    ] {
        let (result, rec) = refresh_with(
            &core,
            AccessTokenRequest::default(),
            session(vec![]),
            token_response(
                "fresh",
                json!({"id_token": id_token(claims.clone()), "refresh_token": ROTATED_REFRESH_TOKEN}),
            ),
        );
        // Another user is a session mismatch; another issuer fails verification first.
        let expected = if claims.get("sub").is_some() {
            "session_mismatch"
        } else {
            "invalid_id_token"
        };
        assert_eq!(result.unwrap_err().code(), expected, "{claims}");
        assert!(
            rec.saved_sessions().is_empty(),
            "nothing saved for {claims}"
        );
    }
}

// --- missing session / refresh token -----------------------------------------------------------

#[test]
fn no_session_is_missing_session() {
    let core = core(config_builder());
    let (result, rec) = Script::new()
        .session(None)
        .run(core.get_access_token(AccessTokenRequest::default()), NOW);
    assert_eq!(result.unwrap_err(), AccessTokenError::MissingSession);
    assert_eq!(rec.names(), ["LoadSession"]);
}

#[test]
fn no_usable_token_and_no_refresh_token_is_missing_refresh_token_without_io() {
    let core = core(config_builder().audience(API));
    let mut s = session(vec![set(
        API,
        "expired",
        Some("openid profile email offline_access"),
        NOW - 1,
    )]);
    s.refresh_token = None;
    let (result, rec) = Script::new()
        .session(Some(s))
        .run(core.get_access_token(AccessTokenRequest::default()), NOW);
    let err = result.unwrap_err();
    assert_eq!(err.code(), "missing_refresh_token");
    assert!(err.to_string().contains("offline_access"));
    assert_eq!(rec.names(), ["LoadSession"]);
}

// --- error answers -----------------------------------------------------------------------------

#[test]
fn an_oauth_error_is_failed_to_refresh_token_with_error_and_description_and_saves_nothing() {
    let core = core(config_builder());
    let (result, rec) = refresh_with(
        &core,
        AccessTokenRequest::default(),
        session(vec![]),
        json(
            403,
            r#"{"error":"invalid_grant","error_description":"Unknown or invalid refresh token."}"#,
        ),
    );
    let err = result.unwrap_err();
    assert_eq!(err.code(), "failed_to_refresh_token");
    let oauth = err.oauth_error().expect("the OAuth error is kept");
    assert_eq!(oauth.status, 403);
    assert_eq!(oauth.error, "invalid_grant");
    assert_eq!(
        oauth.error_description.as_deref(),
        Some("Unknown or invalid refresh token.")
    );
    assert!(err.to_string().contains("invalid_grant"));
    assert!(rec.saved_sessions().is_empty());
}

#[test]
fn mfa_required_carries_the_mfa_token_and_requirements() {
    let core = core(config_builder());
    let (result, rec) = refresh_with(
        &core,
        AccessTokenRequest::default(),
        session(vec![]),
        json(
            403,
            r#"{"error":"mfa_required","error_description":"Multifactor authentication required","mfa_token":"mfa-token-SHOULD-NOT-LEAK","mfa_requirements":{"challenge":[{"type":"otp"}]}}"#,
        ),
    );
    let err = result.unwrap_err();
    assert_eq!(err.code(), "mfa_required");
    match &err {
        AccessTokenError::MfaRequired {
            mfa_token,
            mfa_requirements,
            error_description,
        } => {
            assert_eq!(mfa_token.expose(), "mfa-token-SHOULD-NOT-LEAK");
            assert_eq!(
                mfa_requirements.as_ref().unwrap(),
                &json!({"challenge": [{"type": "otp"}]})
            );
            assert_eq!(
                error_description.as_deref(),
                Some("Multifactor authentication required")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!format!("{err} {err:?}").contains("mfa-token-SHOULD-NOT-LEAK"));
    assert!(rec.saved_sessions().is_empty());
}

#[test]
fn unusable_bodies_are_typed_errors() {
    let core = core(config_builder());
    let cases: Vec<(http::Response<Vec<u8>>, ResponseError)> = vec![
        (
            raw(
                200,
                "text/html",
                b"<html><body>Login</body></html>".to_vec(),
            ),
            ResponseError::Invalid {
                status: 200,
                reason: "HTML instead of JSON",
            },
        ),
        (
            raw(200, "application/json", Vec::new()),
            ResponseError::Invalid {
                status: 200,
                reason: "empty body",
            },
        ),
        (
            json(200, r#"{"access_token": "#),
            ResponseError::Invalid {
                status: 200,
                reason: "malformed JSON",
            },
        ),
        (
            json(200, r#"{"token_type":"Bearer"}"#),
            ResponseError::Invalid {
                status: 200,
                reason: "no access_token in the response",
            },
        ),
        (
            raw(
                502,
                "text/html",
                b"<!doctype html><h1>Bad gateway</h1>".to_vec(),
            ),
            ResponseError::Invalid {
                status: 502,
                reason: "error status with an HTML body",
            },
        ),
        (
            raw(500, "text/plain", Vec::new()),
            ResponseError::Invalid {
                status: 500,
                reason: "error status with an empty body",
            },
        ),
        (
            raw(200, "application/json", vec![b' '; (1 << 20) + 1]),
            ResponseError::TooLarge { status: 200 },
        ),
    ];
    for (response, expected) in cases {
        let (result, rec) = refresh_with(
            &core,
            AccessTokenRequest::default(),
            session(vec![]),
            response,
        );
        assert_eq!(
            result.unwrap_err(),
            AccessTokenError::FailedToRefresh(expected.clone()),
            "{expected:?}"
        );
        assert!(rec.saved_sessions().is_empty());
    }
}

#[test]
fn discovery_failure_is_discovery_failed_and_no_token_request() {
    let core = core(config_builder());
    let wrong_issuer = json(
        200,
        &json!({"issuer": "https://evil.example/", "authorization_endpoint": "https://evil.example/a", "token_endpoint": "https://evil.example/t"}).to_string(),
    );
    for response in [
        json(500, r#"{"error":"server_error"}"#),
        raw(200, "text/html", b"<html/>".to_vec()),
        wrong_issuer,
    ] {
        let (result, rec) = Script::new()
            .session(Some(session(vec![])))
            .metadata(None)
            .http(response)
            .run(core.get_access_token(AccessTokenRequest::default()), NOW);
        assert_eq!(result.unwrap_err().code(), "discovery_failed");
        assert!(rec.token_requests().is_empty());
        assert!(rec.saved_sessions().is_empty());
        assert_eq!(rec.count(|e| matches!(e, Recorded::StoreMetadata(_))), 0);
    }
}

// --- driver mistakes ---------------------------------------------------------------------------

fn expect_unexpected<T: std::fmt::Debug>(step: Step<T, AccessTokenError>) {
    match step {
        Step::Done(Err(e)) => assert_eq!(e.code(), "unexpected_input", "{e:?}"),
        other => panic!("expected unexpected_input, got {other:?}"),
    }
}

#[test]
fn wrong_input_at_any_step_is_unexpected_input_not_a_panic() {
    let core = core(config_builder());
    // At the start.
    let mut op = core.get_access_token(AccessTokenRequest::default());
    expect_unexpected(op.step(Input::Done, UnixTime::from_secs(NOW)));
    // Instead of the session.
    let mut op = core.get_access_token(AccessTokenRequest::default());
    assert!(matches!(
        op.step(Input::Start, UnixTime::from_secs(NOW)),
        Step::Effect(Effect::LoadSession)
    ));
    expect_unexpected(op.step(Input::Http(json(200, "{}")), UnixTime::from_secs(NOW)));
    // Instead of the metadata.
    let mut op = core.get_access_token(AccessTokenRequest::default());
    op.step(Input::Start, UnixTime::from_secs(NOW));
    assert!(matches!(
        op.step(
            Input::Session(Some(std::sync::Arc::new(session(vec![])))),
            UnixTime::from_secs(NOW)
        ),
        Step::Effect(Effect::LoadMetadata)
    ));
    expect_unexpected(op.step(Input::Session(None), UnixTime::from_secs(NOW)));
    // Instead of the token response.
    let mut op = core.get_access_token(AccessTokenRequest::default());
    op.step(Input::Start, UnixTime::from_secs(NOW));
    op.step(
        Input::Session(Some(std::sync::Arc::new(session(vec![])))),
        UnixTime::from_secs(NOW),
    );
    assert!(matches!(
        op.step(
            Input::Metadata(Some(cached_metadata(NOW, 1))),
            UnixTime::from_secs(NOW)
        ),
        Step::Effect(Effect::Http(_))
    ));
    expect_unexpected(op.step(Input::Done, UnixTime::from_secs(NOW)));
    // Instead of the save acknowledgement.
    let mut op = core.get_access_token(AccessTokenRequest::default());
    op.step(Input::Start, UnixTime::from_secs(NOW));
    op.step(
        Input::Session(Some(std::sync::Arc::new(session(vec![])))),
        UnixTime::from_secs(NOW),
    );
    op.step(
        Input::Metadata(Some(cached_metadata(NOW, 1))),
        UnixTime::from_secs(NOW),
    );
    assert!(matches!(
        op.step(
            Input::Http(token_response("t", json!({}))),
            UnixTime::from_secs(NOW)
        ),
        Step::Effect(Effect::UpdateSession(_))
    ));
    expect_unexpected(op.step(Input::Start, UnixTime::from_secs(NOW)));
}

#[test]
fn stepping_a_finished_operation_is_unexpected_input() {
    let core = core(config_builder());
    let mut op = core.get_access_token(AccessTokenRequest::default());
    op.step(Input::Start, UnixTime::from_secs(NOW));
    assert!(matches!(
        op.step(Input::Session(None), UnixTime::from_secs(NOW)),
        Step::Done(Err(AccessTokenError::MissingSession))
    ));
    expect_unexpected(op.step(Input::Session(None), UnixTime::from_secs(NOW)));
    expect_unexpected(op.step(Input::Start, UnixTime::from_secs(NOW)));
}

// --- secrets -----------------------------------------------------------------------------------

const SECRETS: [&str; 6] = [
    REFRESH_TOKEN,
    ROTATED_REFRESH_TOKEN,
    CLIENT_SECRET,
    COOKIE_SECRET,
    OLD_ID_TOKEN,
    "access-token-SHOULD-NOT-LEAK",
];

fn assert_no_secret(text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "`{secret}` leaked into: {text}");
    }
    assert!(
        !text.contains("SHOULD-NOT-LEAK"),
        "a secret leaked into: {text}"
    );
}

#[test]
fn debug_and_errors_never_show_tokens_or_secrets() {
    let core = core(config_builder().audience(API));
    assert_no_secret(&format!("{core:?}"));
    let mut s = session(vec![set(
        API,
        "access-token-SHOULD-NOT-LEAK",
        Some("x"),
        NOW - 1,
    )]);
    assert_no_secret(&format!("{s:?}"));
    // Every effect and the operation's own state along a refresh.
    let mut op = core.get_access_token(AccessTokenRequest::default());
    let mut input = Input::Start;
    let mut seen = Vec::new();
    loop {
        assert_no_secret(&format!("{op:?}"));
        match op.step(input, UnixTime::from_secs(NOW)) {
            Step::Done(result) => {
                assert_no_secret(&format!("{result:?}"));
                let token = result.unwrap();
                assert_eq!(token.access_token.expose(), "access-token-SHOULD-NOT-LEAK");
                break;
            }
            Step::Effect(effect) => {
                assert_no_secret(&format!("{effect:?}"));
                seen.push(format!("{effect:?}"));
                input = match effect {
                    Effect::LoadSession => {
                        Input::Session(Some(std::sync::Arc::new(std::mem::take(&mut s))))
                    }
                    Effect::LoadMetadata => Input::Metadata(Some(cached_metadata(NOW, 1))),
                    Effect::Http(_) => Input::Http(token_response(
                        "access-token-SHOULD-NOT-LEAK",
                        json!({"refresh_token": ROTATED_REFRESH_TOKEN}),
                    )),
                    Effect::UpdateSession(update) => {
                        assert_no_secret(&format!("{update:?}"));
                        Input::Updated(Ok(Updated::Saved))
                    }
                    other => panic!("{other:?}"),
                };
            }
        }
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    // Errors built from server answers that echo credentials.
    let (result, _) = refresh_with(
        &core,
        AccessTokenRequest::default(),
        session(vec![]),
        json(
            400,
            &format!(
                r#"{{"error":"invalid_request","refresh_token":"{REFRESH_TOKEN}","client_secret":"{CLIENT_SECRET}"}}"#
            ),
        ),
    );
    let err = result.unwrap_err();
    assert_no_secret(&format!("{err} {err:?}"));
    let (result, _) = refresh_with(
        &core,
        AccessTokenRequest::default(),
        session(vec![]),
        json(
            200,
            &format!(r#"{{"access_token": 1, "refresh_token":"{REFRESH_TOKEN}""#),
        ),
    );
    let err = result.unwrap_err();
    assert_no_secret(&format!("{err} {err:?}"));
}

// --- update-only saves (the session may have changed while the refresh was in flight) ----------

#[test]
fn a_session_logged_out_during_the_refresh_stays_logged_out() {
    let core = core(config_builder());
    let (result, rec) = Script::new()
        .session(Some(session(vec![])))
        .stored_meanwhile(None)
        .metadata(Some(cached_metadata(NOW, 10)))
        .http(token_response(
            "new-at",
            json!({"refresh_token": ROTATED_REFRESH_TOKEN}),
        ))
        .run(core.get_access_token(AccessTokenRequest::default()), NOW);
    assert_eq!(result.unwrap_err().code(), "missing_session");
    assert!(rec.saved_sessions().is_empty(), "{:?}", rec.names());
    assert!(rec.names().contains(&"UpdateSession (gone)".to_owned()));
}

#[test]
fn a_session_replaced_by_a_new_login_during_the_refresh_is_left_alone() {
    let core = core(config_builder());
    let mut newer = session(vec![]);
    newer.internal.created_at = NOW - 1;
    newer.internal.sid = "sid-2".into();
    let (result, rec) = Script::new()
        .session(Some(session(vec![])))
        .stored_meanwhile(Some(newer))
        .metadata(Some(cached_metadata(NOW, 10)))
        .http(token_response("new-at", json!({})))
        .run(core.get_access_token(AccessTokenRequest::default()), NOW);
    assert_eq!(result.unwrap_err().code(), "missing_session");
    assert!(rec.saved_sessions().is_empty());
}

#[test]
fn another_requests_token_set_saved_meanwhile_is_kept() {
    let core = core(config_builder());
    let mut meanwhile = session(vec![]);
    meanwhile
        .token_sets
        .push(set(API, "at-other-api", None, NOW + 600));
    let (result, rec) = Script::new()
        .session(Some(session(vec![])))
        .stored_meanwhile(Some(meanwhile))
        .metadata(Some(cached_metadata(NOW, 10)))
        .http(token_response("new-at", json!({})))
        .run(core.get_access_token(AccessTokenRequest::default()), NOW);
    assert_eq!(result.unwrap().access_token.expose(), "new-at");
    let saved = rec.saved();
    let tokens: Vec<&str> = saved
        .token_sets
        .iter()
        .map(|s| s.access_token.expose())
        .collect();
    assert_eq!(tokens, ["at-other-api", "new-at"]);
}

#[test]
fn a_failed_save_after_a_rotation_keeps_the_new_refresh_token_and_says_so() {
    let core = core(config_builder());
    let (result, rec) = Script::new()
        .session(Some(session(vec![])))
        .failing_saves("session store error: connection refused")
        .metadata(Some(cached_metadata(NOW, 10)))
        .http(token_response(
            "new-at",
            json!({"refresh_token": ROTATED_REFRESH_TOKEN}),
        ))
        .run(core.get_access_token(AccessTokenRequest::default()), NOW);
    let e = result.unwrap_err();
    assert_eq!(e.code(), "session_not_saved");
    assert!(matches!(
        e,
        AccessTokenError::SessionNotSaved {
            refresh_token_kept: true,
            ..
        }
    ));
    let shown = e.to_string();
    assert!(
        shown.contains("connection refused") && shown.contains("kept"),
        "{shown}"
    );
    assert!(!shown.contains(ROTATED_REFRESH_TOKEN));
    assert_eq!(
        rec.names()[rec.names().len() - 2..],
        ["UpdateSession (failed)", "KeepRotation"]
    );
}

#[test]
fn a_refresh_token_obtained_for_a_session_that_ended_meanwhile_is_revoked() {
    let core = core(config_builder());
    let mut metadata = common::metadata();
    metadata.revocation_endpoint = Some("https://tenant.example.com/oauth/revoke".into());
    let cached = auth0_server_protocol::discovery::CachedMetadata {
        metadata: std::sync::Arc::new(metadata),
        fetched_at: UnixTime::from_secs(NOW - 10),
    };
    let (result, rec) = Script::new()
        .session(Some(session(vec![])))
        .stored_meanwhile(None)
        .metadata(Some(cached))
        .http(token_response(
            "new-at",
            json!({"refresh_token": ROTATED_REFRESH_TOKEN}),
        ))
        .http(json(200, "{}"))
        .run(core.get_access_token(AccessTokenRequest::default()), NOW);
    assert_eq!(result.unwrap_err().code(), "missing_session");
    let revoke = rec.http_requests()[1];
    assert!(revoke.uri.ends_with("/oauth/revoke"));
    assert_eq!(revoke.param("token"), Some(ROTATED_REFRESH_TOKEN));
    assert_eq!(revoke.param("token_type_hint"), Some("refresh_token"));
    assert!(rec.saved_sessions().is_empty());
}

/// What a refresh did when its answer was applied `delay` seconds after it arrived.
struct DelayedRefresh {
    token: auth0_server_protocol::access_token::AccessToken,
    /// The bodies of the token requests sent.
    sent: Vec<String>,
    stored: StateData,
}

/// Runs `get_access_token` on an expired session whose first refresh answer (lifetime
/// `expires_in`, sent at NOW) is saved `delay` seconds later; any further refresh is answered
/// with a fresh token at that later time.
fn refresh_applied_after(expires_in: u64, delay: u64) -> DelayedRefresh {
    use auth0_server_protocol::session::Merged;
    let core = core(config_builder());
    let mut op = core.get_access_token(AccessTokenRequest::default());
    let later = NOW + delay;
    let mut stored = session(vec![]);
    let mut input = Input::Start;
    let mut now = NOW;
    let mut sent: Vec<String> = Vec::new();
    let token = loop {
        match op.step(input, UnixTime::from_secs(now)) {
            Step::Done(result) => break result.expect("a token"),
            Step::Effect(Effect::LoadSession) => {
                input = Input::Session(Some(std::sync::Arc::new(stored.clone())))
            }
            Step::Effect(Effect::LoadMetadata) => {
                input = Input::Metadata(Some(cached_metadata(now, 10)))
            }
            Step::Effect(Effect::Http(request)) => {
                sent.push(String::from_utf8(request.request.body().clone()).unwrap());
                // The first answer was sent (and its lifetime counts) from NOW.
                let (access_token, rotated, at, lifetime) = if sent.len() == 1 {
                    ("stale-at", ROTATED_REFRESH_TOKEN, NOW, expires_in)
                } else {
                    ("fresh-at", "third-refresh-token", later, 600)
                };
                now = at;
                input = Input::Http(token_response(
                    access_token,
                    json!({"expires_in": lifetime, "refresh_token": rotated}),
                ));
            }
            Step::Effect(Effect::UpdateSession(update)) => {
                now = later;
                stored = match update.apply(stored.clone()) {
                    Merged::Updated(s) => s,
                    other => panic!("{other:?}"),
                };
                input = Input::Updated(Ok(Updated::Saved));
            }
            Step::Effect(other) => panic!("unexpected {other:?}"),
        }
        assert!(sent.len() <= 2, "refreshed more than once more");
    };
    DelayedRefresh {
        token,
        sent,
        stored,
    }
}

/// Finding F2 of the simulation: a refresh whose answer is applied long after it arrived (a
/// leader dropped after sending, its flight continued by a caller an hour later) holds an
/// access token that has already expired. The session is saved with it (its rotated refresh
/// token kept), and the operation starts over once from the saved session: the caller gets a
/// fresh token, obtained with the rotated refresh token, never the stale one.
#[test]
fn an_answer_stale_on_arrival_is_saved_then_refreshed_once_more() {
    let DelayedRefresh {
        token,
        sent,
        stored,
    } = refresh_applied_after(600, 3600);
    assert_eq!(token.access_token.expose(), "fresh-at");
    assert_eq!(sent.len(), 2);
    let second = url::form_urlencoded::parse(sent[1].as_bytes())
        .find(|(k, _)| k == "refresh_token")
        .map(|(_, v)| v.into_owned());
    assert_eq!(
        second.as_deref(),
        Some(ROTATED_REFRESH_TOKEN),
        "the second refresh spends the rotated token"
    );
    assert_eq!(
        stored.refresh_token.as_ref().map(Secret::expose),
        Some("third-refresh-token")
    );
}

/// A server that issues an access token already expired (`expires_in: 0`) gets one refresh
/// per call, not two: the token was stale before any delay, and asking again would only spend
/// the rotated refresh token on the same answer (found by the `access_token_machine` fuzzer).
#[test]
fn an_answer_issued_expired_is_not_refreshed_again() {
    let r = refresh_applied_after(0, 0);
    assert_eq!(r.sent.len(), 1);
    assert_eq!(r.token.access_token.expose(), "stale-at");
    let r = refresh_applied_after(0, 3600);
    assert_eq!(
        r.sent.len(),
        1,
        "the delay did not make it stale: it was issued so"
    );
}

proptest::proptest! {
    /// One call refreshes a second time exactly when the delay between receiving the answer
    /// and saving it made a token that was valid on receipt expire.
    #[test]
    fn a_second_refresh_only_when_the_delay_expired_the_answer(
        expires_in in 0u64..5_000,
        delay in 0u64..5_000,
    ) {
        let r = refresh_applied_after(expires_in, delay);
        let expected = if expires_in > 0 && expires_in <= delay { 2 } else { 1 };
        proptest::prop_assert_eq!(r.sent.len(), expected);
        let fresh = if expected == 2 { "fresh-at" } else { "stale-at" };
        proptest::prop_assert_eq!(r.token.access_token.expose(), fresh);
    }
}
