//! Property tests for the core's pure decisions: scope merge, token-set
//! selection against a brute-force oracle, the state update after a refresh, cache-hit vs
//! refresh through the operation, and "no input panics" for every parser.

mod common;

use auth0_server_protocol::__internals::jws::unverified_claims;
use auth0_server_protocol::access_token::{
    AccessTokenRequest, apply_refresh, is_expired, select_by_scopes, select_token_set,
};
use auth0_server_protocol::config::Config;
use auth0_server_protocol::discovery::parse_metadata;
use auth0_server_protocol::effect::{Input, Operation, Step};
use auth0_server_protocol::scope::{Scopes, merge_scopes};
use auth0_server_protocol::secret::Secret;
use auth0_server_protocol::session::{StateData, TokenSet};
use auth0_server_protocol::time::UnixTime;
use auth0_server_protocol::token_endpoint::{TokenResponse, parse_token_response};
use common::*;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::time::Duration;

const AUDIENCES: [&str; 3] = ["default", "https://a/", "https://b/"];

/// A scope string over a small vocabulary (so duplicates and overlaps are common), with
/// irregular whitespace.
fn scope_string() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(vec![
                "openid",
                "profile",
                "email",
                "offline_access",
                "read:a",
                "write:a",
                "x",
            ]),
            prop::sample::select(vec![" ", "  ", "\t", " \n "]),
        ),
        0..6,
    )
    .prop_map(|words| {
        words
            .into_iter()
            .map(|(w, sep)| format!("{sep}{w}"))
            .collect()
    })
}

fn words(s: &str) -> BTreeSet<&str> {
    s.split_whitespace().collect()
}

fn token_set() -> impl Strategy<Value = TokenSet> {
    (
        prop::sample::select(AUDIENCES.to_vec()),
        prop::option::of(scope_string()),
        0u64..4,
        any::<u32>(),
    )
        .prop_map(|(aud, scope, exp, id)| TokenSet {
            audience: aud.into(),
            access_token: Secret::new(format!("at-{id}")),
            scope,
            expires_at: NOW - 100 + exp * 100,
            requested_scope: None,
            token_type: Default::default(),
        })
}

/// The selection rule, by brute force: the first stored set with an equal scope set, else the
/// first of the supersets with the fewest distinct scopes, else none.
fn oracle(sets: &[TokenSet], audience: &str, requested: Option<&str>) -> Option<usize> {
    let req = words(requested.unwrap_or(""));
    let candidates: Vec<(usize, BTreeSet<&str>)> = sets
        .iter()
        .enumerate()
        .filter(|(_, s)| s.audience == audience)
        .map(|(i, s)| (i, words(s.scope.as_deref().unwrap_or(""))))
        .collect();
    if let Some((i, _)) = candidates.iter().find(|(_, w)| *w == req) {
        return Some(*i);
    }
    candidates
        .iter()
        .filter(|(_, w)| w.is_superset(&req))
        .min_by_key(|(i, w)| (w.len(), *i))
        .map(|(i, _)| *i)
}

fn response(
    access_token: String,
    scope: Option<String>,
    rotated: Option<String>,
    expires_in: Option<u64>,
) -> TokenResponse {
    TokenResponse {
        access_token: Secret::new(access_token),
        expires_in,
        scope,
        refresh_token: rotated.map(Secret::new),
        id_token: None,
        token_type: Some("Bearer".into()),
        authorization_details: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn merge_is_an_order_preserving_deduplicated_union(defaults in prop::option::of(scope_string()), requested in prop::option::of(scope_string())) {
        let merged = merge_scopes(defaults.as_deref(), requested.as_deref());
        let mut expected: Vec<&str> = Vec::new();
        for w in defaults.iter().chain(requested.iter()).flat_map(|s| s.split_whitespace()) {
            if !expected.contains(&w) {
                expected.push(w);
            }
        }
        let expected = (!expected.is_empty()).then(|| expected.join(" "));
        prop_assert_eq!(merged, expected);
    }

    #[test]
    fn selection_matches_the_brute_force_oracle(
        sets in prop::collection::vec(token_set(), 0..8),
        audience in prop::sample::select(AUDIENCES.to_vec()),
        requested in prop::option::of(scope_string()),
    ) {
        let got = select_token_set(&sets, audience, requested.as_deref())
            .map(|chosen| sets.iter().position(|s| std::ptr::eq(s, chosen)).expect("a stored set"));
        let want = oracle(&sets, audience, requested.as_deref());
        prop_assert_eq!(got, want);
        if let Some(i) = got {
            prop_assert_eq!(&sets[i].audience, audience);
            let req = words(requested.as_deref().unwrap_or(""));
            prop_assert!(words(sets[i].scope.as_deref().unwrap_or("")).is_superset(&req));
        }
    }

    /// The requested scope spelled exactly as a stored set's (the usual cache hit, which
    /// `select_token_set` settles without parsing), with, somewhere in the list, the same
    /// scopes spelled otherwise: the same answer as the oracle and as the parsed comparison.
    #[test]
    fn selection_by_a_stored_spelling_matches_the_oracle(
        mut sets in prop::collection::vec(token_set(), 1..8),
        pick in any::<prop::sample::Index>(),
        respelled_at in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let picked = sets[pick.index(sets.len())].clone();
        if let Some(at) = respelled_at {
            let words: Vec<&str> = picked.matching_scope().split_whitespace().collect();
            let mut twin = picked.clone();
            twin.scope = Some(format!("{} ", words.join("  ")));
            sets.insert(at.index(sets.len() + 1), twin);
        }
        let (audience, requested) = (picked.audience.as_str(), picked.scope.as_deref());
        let position = |chosen: &TokenSet| sets.iter().position(|s| std::ptr::eq(s, chosen));
        let got = select_token_set(&sets, audience, requested).and_then(position);
        prop_assert_eq!(got, oracle(&sets, audience, requested));
        let parsed = select_by_scopes(&sets, audience, &Scopes::of(requested)).and_then(position);
        prop_assert_eq!(got, parsed);
    }

    #[test]
    fn refresh_update_keeps_other_sets_and_the_refresh_token_and_is_idempotent(
        sets in prop::collection::vec(token_set(), 0..8),
        audience in prop::sample::select(AUDIENCES.to_vec()),
        requested in prop::option::of(scope_string()),
        granted in prop::option::of(scope_string()),
        rotated in prop::option::of("[a-z]{1,8}"),
        expires_in in prop::option::of(0u64..100_000),
    ) {
        let mut session = StateData {
            refresh_token: Some(Secret::new("original-rt")),
            token_sets: sets.clone(),
            ..Default::default()
        };
        let granted = granted.filter(|s| !s.trim().is_empty());
        let resp = response("opaque-new".into(), granted.clone(), rotated.clone(), expires_in);
        let token = apply_refresh(&mut session, audience, requested.as_deref(), &resp, UnixTime::from_secs(NOW)).expect("an opaque token is accepted");
        let after_once = session.clone();

        // The refresh token is kept or rotated, never lost.
        let expected_rt = rotated.clone().unwrap_or_else(|| "original-rt".into());
        prop_assert_eq!(session.refresh_token.as_ref().map(Secret::expose), Some(expected_rt.as_str()));
        // Every other audience's token set survives, in order.
        let others = |s: &[TokenSet]| s.iter().filter(|t| t.audience != audience).cloned().collect::<Vec<_>>();
        prop_assert_eq!(others(&session.token_sets), others(&sets));
        // Same audience: the sets whose scopes the new set covers and that expire no later
        // are superseded (dropped); the others (other scopes, fresher sets) survive, in order.
        let new_set = session.token_sets.iter().find(|t| t.access_token == token.access_token).expect("stored").clone();
        let covers = words(new_set.matching_scope());
        let superseded = |t: &TokenSet| {
            t.audience == audience
                && words(t.matching_scope()).is_subset(&covers)
                && t.expires_at <= new_set.expires_at
        };
        let survivors = |s: &[TokenSet]| s.iter()
            .filter(|t| t.audience == audience && !superseded(t))
            .cloned().collect::<Vec<_>>();
        prop_assert_eq!(survivors(&session.token_sets), survivors(&sets));
        prop_assert!(session.token_sets.iter().filter(|t| superseded(t)).count() == 1);
        // At most one set was added, and the returned token is stored.
        prop_assert!(session.token_sets.len() <= sets.len() + 1);
        prop_assert!(session.token_sets.iter().any(|t| t.access_token == token.access_token && t.audience == audience));
        prop_assert_eq!(token.expires_at, expires_in.map_or(NOW, |e| NOW + e));

        // An identical second refresh replaces rather than appends.
        apply_refresh(&mut session, audience, requested.as_deref(), &resp, UnixTime::from_secs(NOW)).expect("accepted again");
        prop_assert_eq!(session.token_sets.len(), after_once.token_sets.len());
        prop_assert_eq!(&session, &after_once);
    }

    #[test]
    fn a_valid_cached_token_is_served_without_http_and_an_expired_one_costs_one_request(
        offset in -200i64..200,
        leeway in 0u64..120,
        call_scope in prop::option::of(scope_string()),
        noise in prop::collection::vec(token_set(), 0..4),
    ) {
        let core = core(config_builder().audience("https://a/").scope_for("https://a/", "openid read:a").leeway(Duration::from_secs(leeway)));
        let requested = merge_scopes(Some("openid read:a"), call_scope.as_deref());
        let expires_at = (NOW as i64 + offset) as u64;
        // Noise only for other audiences, so the exact-match set below is the one selected.
        let mut sets: Vec<TokenSet> = noise.into_iter().filter(|s| s.audience != "https://a/").collect();
        sets.push(TokenSet { audience: "https://a/".into(), access_token: Secret::new("cached"), scope: requested, expires_at, requested_scope: None , token_type: Default::default() });
        let session = StateData { refresh_token: Some(Secret::new(REFRESH_TOKEN)), token_sets: sets, ..Default::default() };
        let expired = is_expired(UnixTime::from_secs(expires_at), UnixTime::from_secs(NOW), Duration::from_secs(leeway));
        prop_assert_eq!(expired, offset <= leeway as i64);
        let mut script = Script::new().session(Some(session));
        if expired {
            script = script.metadata(Some(cached_metadata(NOW, 1))).http(json(200, r#"{"access_token":"fresh","expires_in":60}"#));
        }
        let req = AccessTokenRequest { audience: None, scope: call_scope };
        let (result, rec) = script.run(core.get_access_token(req), NOW);
        let token = result.expect("a token");
        if expired {
            prop_assert_eq!(token.access_token.expose(), "fresh");
            prop_assert_eq!(rec.http_requests().len(), 1);
            prop_assert_eq!(rec.token_requests()[0].param("grant_type"), Some("refresh_token"));
            prop_assert_eq!(rec.saved_sessions().len(), 1);
        } else {
            prop_assert_eq!(token.access_token.expose(), "cached");
            prop_assert_eq!(rec.names(), vec!["LoadSession".to_owned()]);
        }
    }

    // --- no input panics -----------------------------------------------------------------------

    #[test]
    fn session_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512), text in "[\\[\\]{}\":,0-9a-z_.eE+\\- null]{0,200}") {
        let _ = StateData::from_json(&bytes);
        let _ = StateData::from_json(text.as_bytes());
        // Well-formed JSON with arbitrary shapes in the known fields.
        let shaped = format!(r#"{{"token_sets":[{{"audience":{text},"access_token":"t","expires_at":{text}}}],"internal":{text},"user":{text}}}"#);
        let _ = StateData::from_json(shaped.as_bytes());
    }

    #[test]
    fn token_response_parser_never_panics(status in 100u16..1000, bytes in prop::collection::vec(any::<u8>(), 0..512), text in "[\\[\\]{}\":,0-9a-z_.<>\\- ]{0,200}") {
        for body in [bytes.clone(), text.clone().into_bytes(), format!(r#"{{"access_token":"a","expires_in":{text},"error":{text},"mfa_requirements":{text}}}"#).into_bytes()] {
            let resp = http::Response::builder().status(status).body(body).expect("valid status");
            let _ = parse_token_response(&resp);
        }
    }

    #[test]
    fn discovery_parser_never_panics(status in 100u16..1000, bytes in prop::collection::vec(any::<u8>(), 0..512), endpoint in "\\PC{0,40}") {
        let config = config_builder().build().expect("config");
        let doc = serde_json::json!({
            "issuer": ISSUER, "authorization_endpoint": endpoint, "token_endpoint": endpoint,
            "jwks_uri": endpoint, "end_session_endpoint": endpoint,
        }).to_string();
        for body in [bytes.clone(), doc.into_bytes()] {
            let resp = http::Response::builder().status(status).body(body).expect("valid status");
            let _ = parse_metadata(&config, &resp);
        }
    }

    #[test]
    fn unverified_claims_never_panics(token in "\\PC{0,200}", a in "[A-Za-z0-9_\\-=.]{0,60}", payload in prop::collection::vec(any::<u8>(), 0..100)) {
        use base64::Engine;
        let _ = unverified_claims(&token);
        let _ = unverified_claims(&a);
        let p = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&payload);
        let _ = unverified_claims(&format!("h.{p}.s"));
        let _ = unverified_claims(&format!("{a}.{p}.{a}"));
    }

    #[test]
    fn config_builder_never_panics(domain in "\\PC{0,40}", client_id in "\\PC{0,10}", secret in "\\PC{0,40}", audience in "\\PC{0,20}", redirect in "\\PC{0,30}", param in "\\PC{0,10}") {
        let _ = Config::builder(domain.clone(), client_id.clone())
            .client_secret(secret.clone())
            .secret(secret.clone())
            .audience(audience.clone())
            .redirect_uri(redirect.clone())
            .scope_for(audience.clone(), secret.clone())
            .authorization_param(param.clone(), param.clone())
            .build();
        let _ = Config::builder(format!("http://{domain}"), client_id).client_secret(secret).redirect_uri(format!("https://{redirect}")).build();
    }

    #[test]
    fn any_input_sequence_is_handled_without_panicking(choices in prop::collection::vec(0u8..8, 1..8)) {
        let core = core(config_builder());
        let mut op = core.get_access_token(AccessTokenRequest::default());
        let mut conn = core.get_access_token_for_connection(auth0_server_protocol::connection_token::ConnectionTokenRequest::new("c"));
        let input = |c: u8| match c {
            0 => Input::Start,
            1 => Input::Session(None),
            2 => Input::Session(Some(std::sync::Arc::new(StateData { refresh_token: Some(Secret::new("rt")), ..Default::default() }))),
            3 => Input::Metadata(None),
            4 => Input::Metadata(Some(cached_metadata(NOW, 1))),
            5 => Input::Http(json(200, r#"{"access_token":"x"}"#)),
            6 => Input::Http(json(500, "oops")),
            _ => Input::Done,
        };
        let mut finished = false;
        for &c in &choices {
            let step = op.step(input(c), UnixTime::from_secs(NOW));
            if finished {
                prop_assert!(matches!(step, Step::Done(Err(ref e)) if e.code() == "unexpected_input"));
            }
            finished |= matches!(step, Step::Done(_));
            let _ = conn.step(input(c), UnixTime::from_secs(NOW));
        }
    }
}

/// A session of `sub` at `iss` with Auth0 session `sid`, created at 400.
fn session_of(iss: &str, sid: &str, sub: &str) -> StateData {
    let mut state = StateData {
        user: serde_json::json!({"sub": sub, "iss": iss})
            .as_object()
            .cloned(),
        ..Default::default()
    };
    state.internal.sid = sid.into();
    state.internal.created_at = 400;
    state
}

proptest! {
    /// The cookie store's revocation list ends exactly the sessions (created before the
    /// logout token arrived) that the rule the session-holding stores apply selects
    /// (`logout_token_selects`: by `sid`, by `sub`, or only sessions matching both).
    #[test]
    fn cookie_revocation_agrees_with_the_logout_token_rule(
        session_sid in prop::sample::select(vec!["", "s1", "s2"]),
        session_sub in prop::sample::select(vec!["u1", "u2"]),
        session_iss in prop::sample::select(vec!["https://issuer/", "https://other/"]),
        token_sid in prop::option::of(prop::sample::select(vec!["s1", "s2"])),
        token_sub in prop::option::of(prop::sample::select(vec!["u1", "u2"])),
    ) {
        use auth0_server_protocol::effect::LogoutTokenClaims;
        use auth0_server_protocol::logout::logout_token_selects;
        use auth0_server_protocol::session::SessionLifetime;
        use auth0_server_protocol::session::revocation::{for_logout_token, is_revoked, session_keys};
        let state = session_of(session_iss, session_sid, session_sub);
        let claims = LogoutTokenClaims {
            iss: "https://issuer/".into(),
            sid: token_sid.map(str::to_owned),
            sub: token_sub.map(str::to_owned),
        };
        let entry = for_logout_token(&claims, UnixTime::from_secs(500), &SessionLifetime::default());
        let found: Vec<Option<UnixTime>> = session_keys(&state)
            .iter()
            .map(|k| entry.as_ref().filter(|r| &r.key == k).map(|r| r.created_until))
            .collect();
        prop_assert_eq!(is_revoked(&state, &found), logout_token_selects(&claims, &state));
    }
}
