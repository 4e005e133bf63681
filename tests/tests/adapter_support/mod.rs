//! Shared by the adapter end-to-end tests (`access_token_blocking.rs`,
//! `access_token_async.rs`, `single_flight.rs`): configuration for the emulator, sessions
//! minted without a login, a recording test store whose `store_options` carry the session
//! (like a cookie), the shipped `reqwest` client, and the seed guide's scenarios written once
//! against [`Api`], which both clients implement.

#![allow(dead_code, unused_macros)]

/// The seed guide's scenarios as `#[test]`s, for one client: `$make` builds a client from a
/// configuration and options, `$with_store` with a given recording store.
macro_rules! scenarios {
    ($make:ident, $with_store:ident) => {
        #[test]
        fn valid_stored_token_is_served_without_any_request() {
            adapter_support::cache_hit($make);
        }

        #[test]
        fn expired_token_is_refreshed_with_exact_form_parameters_then_cached() {
            adapter_support::refresh_when_expired_post($make);
        }

        #[test]
        fn client_secret_basic_sends_a_basic_header_and_the_named_audience() {
            adapter_support::refresh_with_basic_auth($make);
        }

        #[test]
        fn mrrt_uses_per_audience_scopes_and_merges_extra_scopes() {
            adapter_support::mrrt_scope_map($make);
        }

        #[test]
        fn audience_outside_the_policy_is_audience_mismatch_and_keeps_the_rotated_refresh_token() {
            adapter_support::audience_outside_policy($make);
        }

        #[test]
        fn connection_token_is_exchanged_once_then_served_from_the_session() {
            adapter_support::connection_token_once($make);
        }

        #[test]
        fn without_refresh_token_the_error_is_missing_refresh_token() {
            adapter_support::missing_refresh_token($make);
        }

        #[test]
        fn refused_refresh_surfaces_invalid_grant() {
            adapter_support::refresh_failure_surfaces_oauth_error($make);
        }

        #[test]
        fn mfa_required_carries_the_mfa_token() {
            adapter_support::mfa_required($make);
        }

        #[test]
        fn mfa_required_by_the_tenant_policy_for_an_audience() {
            adapter_support::mfa_required_by_policy($make);
        }

        #[test]
        fn connection_missing_from_token_vault_is_a_401_oauth_error() {
            adapter_support::connection_not_in_token_vault($make);
        }

        #[test]
        fn slow_token_endpoint_is_a_transport_timeout() {
            adapter_support::timeout_is_typed($make);
        }

        #[test]
        fn server_errors_html_and_malformed_json_are_typed_errors() {
            adapter_support::bad_answers_are_typed($make);
        }

        #[test]
        fn store_options_reach_every_store_call_unchanged() {
            adapter_support::store_options_reach_the_store($with_store);
        }

        #[test]
        fn get_user_and_get_session_read_the_session() {
            adapter_support::user_and_session($make);
        }
    };
}

use auth0_emulator::{DEFAULT_AUDIENCE, Emulator, RefreshGrant};
pub use auth0_server::http::ReqwestClient;
use auth0_server::protocol::config::ConfigBuilder;
use auth0_server::protocol::effect::LogoutTokenClaims;
use auth0_server::protocol::session::{Session, StateData, TokenSet, UserClaims};
use auth0_server::protocol::transaction::TransactionData;
use auth0_server::store::{StateStore, StoreError, TransactionStore};
use auth0_server::{
    AccessToken, AccessTokenRequest, Config, ConnectionToken, ConnectionTokenRequest, Error,
    TransportErrorKind,
};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The session encryption secret (unused by these stores, required by the config).
pub const SECRET: &str = "test-secret-test-secret-test-secret!!";

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A config builder for the emulator's client (client_secret_post), no audience.
pub fn config_builder(emu: &Emulator) -> ConfigBuilder {
    // The issuer URL: the base URL for the Auth0 shape, plus the path of a path issuer.
    Config::builder(emu.issuer_url(), emu.client_id())
        .client_secret(emu.client_secret())
        .secret(SECRET)
}

/// The emulator's client with its default audience.
pub fn config(emu: &Emulator) -> Config {
    config_builder(emu)
        .audience(DEFAULT_AUDIENCE)
        .build()
        .expect("valid config")
}

/// The default scope the SDK requests when none is configured.
pub const DEFAULT_SCOPE: &str = "openid profile email offline_access";

/// A logged-in session (no login needed): the emulator's user, a live refresh token from
/// `issue_refresh_token`, and an expired access token for `audience`.
pub fn expired_session(emu: &Emulator, audience: &str) -> StateData {
    let refresh_token = emu.issue_refresh_token(RefreshGrant::default());
    StateData {
        user: Some(user(emu)),
        refresh_token: Some(refresh_token.into()),
        token_sets: vec![TokenSet {
            audience: audience.into(),
            access_token: "expired-access-token".into(),
            scope: Some(DEFAULT_SCOPE.into()),
            expires_at: now() - 10,
            requested_scope: None,
            token_type: Default::default(),
        }],
        internal: auth0_server::protocol::session::Internal {
            sid: "emulator-sid".into(),
            created_at: now() - 100,
            last_active_at: None,
            extra: Default::default(),
            session_expires_at: None,
        },
        ..Default::default()
    }
}

/// The emulator user's claims as a session holds them (`sub` and `iss`).
pub fn user(emu: &Emulator) -> UserClaims {
    let mut claims = emu.user_claims();
    claims.insert("iss".into(), Value::String(emu.issuer()));
    claims
}

/// What the test store saw: which operation, and the options' tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreCall {
    /// `get`, `set`, `delete`, …
    pub op: &'static str,
    /// The tag of the options handed in.
    pub tag: String,
}

/// `store_options` of the test store: the session travels in the options, as with a cookie
/// store (each caller presents its own copy), plus a tag to check the options arrive unchanged.
#[derive(Clone, Debug, Default)]
pub struct TestOptions {
    /// Identifies the caller.
    pub tag: String,
    /// The session "cookie": read by `get`, replaced by `set`, cleared by `delete`.
    pub session: Option<StateData>,
    /// How many store calls saw these very options.
    pub calls: usize,
}

impl TestOptions {
    /// Options carrying `session`.
    pub fn with(tag: &str, session: StateData) -> Self {
        TestOptions {
            tag: tag.into(),
            session: Some(session),
            calls: 0,
        }
    }
}

/// A state store keeping the session in the options, recording every call.
#[derive(Clone, Default)]
pub struct RecordingStore {
    /// Every call, in order.
    pub calls: Arc<Mutex<Vec<StoreCall>>>,
}

impl RecordingStore {
    /// The calls so far.
    pub fn calls(&self) -> Vec<StoreCall> {
        self.calls.lock().unwrap().clone()
    }
    fn record(&self, op: &'static str, options: &mut TestOptions) {
        options.calls += 1;
        self.calls.lock().unwrap().push(StoreCall {
            op,
            tag: options.tag.clone(),
        });
    }
}

impl StateStore for RecordingStore {
    type Options = TestOptions;
    fn get(
        &self,
        options: &mut TestOptions,
        _now: auth0_server::protocol::time::UnixTime,
    ) -> Result<Option<std::sync::Arc<StateData>>, StoreError> {
        self.record("get", options);
        Ok(options.session.clone().map(std::sync::Arc::new))
    }
    fn set(
        &self,
        state: &StateData,
        options: &mut TestOptions,
        _now: auth0_server::protocol::time::UnixTime,
    ) -> Result<(), StoreError> {
        self.record("set", options);
        options.session = Some(state.clone());
        Ok(())
    }
    fn update(
        &self,
        update: &auth0_server::protocol::session::SessionUpdate,
        options: &mut TestOptions,
        _now: auth0_server::protocol::time::UnixTime,
    ) -> Result<auth0_server::protocol::session::Updated, StoreError> {
        use auth0_server::protocol::session::{Merged, Updated};
        self.record("update", options);
        match options.session.take().map(|s| update.apply(s)) {
            Some(Merged::Updated(s)) => {
                options.session = Some(s);
                Ok(Updated::Saved)
            }
            _ => Ok(Updated::Gone),
        }
    }
    fn delete(
        &self,
        options: &mut TestOptions,
        _now: auth0_server::protocol::time::UnixTime,
    ) -> Result<(), StoreError> {
        self.record("delete", options);
        options.session = None;
        Ok(())
    }
    fn delete_by_logout_token(
        &self,
        _claims: &LogoutTokenClaims,
        options: &mut TestOptions,
        _now: auth0_server::protocol::time::UnixTime,
    ) -> Result<(), StoreError> {
        self.record("delete_by_logout_token", options);
        Ok(())
    }
}

impl TransactionStore for RecordingStore {
    type Options = TestOptions;
    fn get(
        &self,
        _key: &str,
        options: &mut TestOptions,
        _now: auth0_server::protocol::time::UnixTime,
    ) -> Result<Option<TransactionData>, StoreError> {
        self.record("tx_get", options);
        Ok(None)
    }
    fn set(
        &self,
        _key: &str,
        _t: &TransactionData,
        options: &mut TestOptions,
        _now: auth0_server::protocol::time::UnixTime,
    ) -> Result<(), StoreError> {
        self.record("tx_set", options);
        Ok(())
    }
    fn delete(
        &self,
        _key: &str,
        options: &mut TestOptions,
        _now: auth0_server::protocol::time::UnixTime,
    ) -> Result<(), StoreError> {
        self.record("tx_delete", options);
        Ok(())
    }
}

/// The SDK's shipped async [`HttpClient`] over `reqwest`, with an overall timeout (build
/// it inside the tokio runtime it runs on).
pub fn reqwest_client(timeout: Duration) -> ReqwestClient {
    ReqwestClient::builder()
        .timeout(timeout)
        .build()
        .expect("reqwest client")
}

/// The seed guide's operations, implemented by both clients so each scenario is written once.
pub trait Api {
    /// `get_access_token_with`.
    fn token(&self, req: AccessTokenRequest, o: &mut TestOptions) -> Result<AccessToken, Error>;
    /// `get_access_token_for_connection`.
    fn connection(
        &self,
        req: ConnectionTokenRequest,
        o: &mut TestOptions,
    ) -> Result<ConnectionToken, Error>;
    /// `get_user`.
    fn user(&self, o: &mut TestOptions) -> Result<Option<UserClaims>, Error>;
    /// `get_session`.
    fn session(&self, o: &mut TestOptions) -> Result<Option<Session>, Error>;
    /// `get_access_token` (no arguments).
    fn default_token(&self, o: &mut TestOptions) -> Result<AccessToken, Error>;
}

/// Options for building a client under test.
#[derive(Clone, Copy, Debug)]
pub struct ClientOptions {
    /// The HTTP timeout.
    pub timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: Duration::from_secs(10),
        }
    }
}

/// Builds a client for the emulator with a config.
pub type MakeClient = fn(Config, ClientOptions) -> Box<dyn Api>;

/// The form parameter `name` of a recorded request.
pub fn param(req: &auth0_emulator::RecordedRequest, name: &str) -> Option<String> {
    req.param(name).map(str::to_owned)
}

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

/// A valid stored token is served with no request to the emulator (not even discovery).
pub fn cache_hit(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu), ClientOptions::default());
    let mut session = expired_session(&emu, DEFAULT_AUDIENCE);
    session.token_sets[0].access_token = "cached-token".into();
    session.token_sets[0].expires_at = now() + 3600;
    let mut o = TestOptions::with("req-1", session);
    let token = client.default_token(&mut o).unwrap();
    assert_eq!(token.access_token.expose(), "cached-token");
    assert!(emu.requests().is_empty(), "{:?}", emu.requests());
}

/// An expired token is refreshed: exact form parameters (client_secret_post, the `default`
/// audience key sends no `audience`), session saved with the rotated refresh token, and the
/// next call is a cache hit.
pub fn refresh_when_expired_post(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(
        config_builder(&emu).build().unwrap(),
        ClientOptions::default(),
    );
    let session = expired_session(&emu, "default");
    let old_rt = session.refresh_token.clone().unwrap();
    let mut o = TestOptions::with("r", session);
    let before = now();
    let token = client.default_token(&mut o).unwrap();

    let reqs = emu.token_requests();
    assert_eq!(reqs.len(), 1);
    let form: Vec<(&str, &str)> = reqs[0]
        .form
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut names: Vec<&str> = form.iter().map(|(k, _)| *k).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "client_id",
            "client_secret",
            "grant_type",
            "refresh_token",
            "scope"
        ]
    );
    assert_eq!(
        param(&reqs[0], "grant_type").as_deref(),
        Some("refresh_token")
    );
    assert_eq!(
        param(&reqs[0], "refresh_token").as_deref(),
        Some(old_rt.expose())
    );
    assert_eq!(
        param(&reqs[0], "client_id").as_deref(),
        Some(emu.client_id())
    );
    assert_eq!(
        param(&reqs[0], "client_secret").as_deref(),
        Some(emu.client_secret())
    );
    assert_eq!(param(&reqs[0], "scope").as_deref(), Some(DEFAULT_SCOPE));
    assert_eq!(reqs[0].header("authorization"), None);

    let saved = o.session.clone().expect("session saved");
    let new_rt = saved.refresh_token.clone().unwrap();
    assert_ne!(new_rt, old_rt, "rotated refresh token saved");
    assert!(emu.refresh_token_is_live(new_rt.expose()));
    let set = saved
        .token_sets
        .iter()
        .find(|s| s.audience == "default")
        .unwrap();
    assert_eq!(set.access_token, token.access_token);
    assert!(set.expires_at >= before + 3600 && set.expires_at <= now() + 3600);
    assert_eq!(saved.token_sets.len(), 1, "replaced, not appended");

    let again = client.default_token(&mut o).unwrap();
    assert_eq!(again.access_token, token.access_token);
    assert_eq!(emu.token_requests().len(), 1, "second call is a cache hit");
}

/// client_secret_basic: Basic header, no secret in the body; `audience` sent for a named
/// default audience.
pub fn refresh_with_basic_auth(make: MakeClient) {
    use auth0_server::protocol::config::ClientAuthMethod;
    let emu = Emulator::start(Default::default());
    let cfg = config_builder(&emu)
        .audience(DEFAULT_AUDIENCE)
        .client_auth_method(ClientAuthMethod::ClientSecretBasic)
        .build()
        .unwrap();
    let client = make(cfg, ClientOptions::default());
    let mut o = TestOptions::with("b", expired_session(&emu, DEFAULT_AUDIENCE));
    client.default_token(&mut o).unwrap();
    let reqs = emu.token_requests();
    assert_eq!(reqs.len(), 1);
    assert!(
        reqs[0]
            .header("authorization")
            .unwrap()
            .starts_with("Basic "),
        "Basic auth header"
    );
    assert_eq!(param(&reqs[0], "client_secret"), None);
    assert_eq!(
        param(&reqs[0], "audience").as_deref(),
        Some(DEFAULT_AUDIENCE)
    );
}

/// MRRT: per-audience default scopes, a second audience, extra scopes merged; each token
/// cached under its own audience.
pub fn mrrt_scope_map(make: MakeClient) {
    use auth0_emulator::ANALYTICS_AUDIENCE;
    let emu = Emulator::start(Default::default());
    let cfg = config_builder(&emu)
        .audience(DEFAULT_AUDIENCE)
        .scope_for(
            DEFAULT_AUDIENCE,
            "openid profile email offline_access read:products",
        )
        .scope_for(ANALYTICS_AUDIENCE, "openid offline_access read:analytics")
        .build()
        .unwrap();
    let client = make(cfg, ClientOptions::default());
    let mut o = TestOptions::with("m", expired_session(&emu, DEFAULT_AUDIENCE));

    let default = client.default_token(&mut o).unwrap();
    let analytics = client
        .token(
            AccessTokenRequest::audience(ANALYTICS_AUDIENCE)
                .scope("write:analytics read:analytics"),
            &mut o,
        )
        .unwrap();
    let reqs = emu.token_requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        param(&reqs[0], "audience").as_deref(),
        Some(DEFAULT_AUDIENCE)
    );
    assert_eq!(
        param(&reqs[0], "scope").as_deref(),
        Some("openid profile email offline_access read:products")
    );
    assert_eq!(
        param(&reqs[1], "audience").as_deref(),
        Some(ANALYTICS_AUDIENCE)
    );
    assert_eq!(
        param(&reqs[1], "scope").as_deref(),
        Some("openid offline_access read:analytics write:analytics")
    );
    // The second refresh used the refresh token rotated by the first.
    assert_ne!(
        param(&reqs[0], "refresh_token"),
        param(&reqs[1], "refresh_token")
    );
    let claims = auth0_emulator::decode_payload(analytics.access_token.expose()).unwrap();
    let aud = &claims["aud"];
    assert!(
        aud == &json!(ANALYTICS_AUDIENCE)
            || aud
                .as_array()
                .is_some_and(|a| a.contains(&json!(ANALYTICS_AUDIENCE))),
        "{aud}"
    );
    assert_eq!(analytics.audience, ANALYTICS_AUDIENCE);

    // Both are now served from the session.
    let d2 = client.default_token(&mut o).unwrap();
    let a2 = client
        .token(
            AccessTokenRequest::audience(ANALYTICS_AUDIENCE).scope("write:analytics"),
            &mut o,
        )
        .unwrap();
    assert_eq!(d2.access_token, default.access_token);
    assert_eq!(a2.access_token, analytics.access_token);
    assert_eq!(emu.token_requests().len(), 2);
    let sets = o.session.unwrap().token_sets;
    assert!(sets.iter().any(|s| s.access_token == default.access_token
        && s.scope.as_deref() == Some("openid profile email offline_access read:products")));
    assert!(
        sets.iter()
            .any(|s| s.access_token == analytics.access_token && s.audience == ANALYTICS_AUDIENCE)
    );
}

/// An audience outside the refresh-token policy: Auth0 answers with a default-audience token;
/// the SDK returns `audience_mismatch`, caches nothing for that audience, keeps the rotated
/// refresh token.
pub fn audience_outside_policy(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu), ClientOptions::default());
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    let old_rt = session.refresh_token.clone().unwrap();
    let mut o = TestOptions::with("x", session);
    let err = client
        .token(
            AccessTokenRequest::audience("https://admin.example.com"),
            &mut o,
        )
        .unwrap_err();
    assert_eq!(err.code(), "audience_mismatch", "{err}");
    assert!(err.to_string().contains("refresh token policy"), "{err}");
    let saved = o.session.clone().unwrap();
    assert!(
        saved
            .token_sets
            .iter()
            .all(|s| s.audience != "https://admin.example.com"),
        "nothing cached for the mismatched audience"
    );
    let new_rt = saved.refresh_token.unwrap();
    assert_ne!(new_rt, old_rt);
    assert!(
        emu.refresh_token_is_live(new_rt.expose()),
        "rotated refresh token kept"
    );
}

/// A connection token is exchanged once (exact parameters), then served from the session.
pub fn connection_token_once(make: MakeClient) {
    use auth0_emulator::{FEDERATED_GRANT_TYPE, FEDERATED_TOKEN_TYPE, REFRESH_TOKEN_TYPE};
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu), ClientOptions::default());
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    let rt = session.refresh_token.clone().unwrap();
    let mut o = TestOptions::with("c", session);
    let req = ConnectionTokenRequest::new("google-oauth2").login_hint("me@example.com");
    let token = client.connection(req.clone(), &mut o).unwrap();
    assert_eq!(
        token.access_token.expose(),
        "ya29.emulator-google-access-token"
    );
    let reqs = emu.token_requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        param(r, "grant_type").as_deref(),
        Some(FEDERATED_GRANT_TYPE)
    );
    assert_eq!(
        param(r, "subject_token_type").as_deref(),
        Some(REFRESH_TOKEN_TYPE)
    );
    assert_eq!(param(r, "subject_token").as_deref(), Some(rt.expose()));
    assert_eq!(
        param(r, "requested_token_type").as_deref(),
        Some(FEDERATED_TOKEN_TYPE)
    );
    assert_eq!(param(r, "connection").as_deref(), Some("google-oauth2"));
    assert_eq!(param(r, "login_hint").as_deref(), Some("me@example.com"));
    assert_eq!(param(r, "client_id").as_deref(), Some(emu.client_id()));
    assert_eq!(
        param(r, "client_secret").as_deref(),
        Some(emu.client_secret())
    );

    let again = client.connection(req, &mut o).unwrap();
    assert_eq!(again.access_token, token.access_token);
    assert_eq!(emu.token_requests().len(), 1, "served from the session");
}

/// No usable token and no refresh token: `missing_refresh_token`, nothing sent.
pub fn missing_refresh_token(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu), ClientOptions::default());
    let mut session = expired_session(&emu, DEFAULT_AUDIENCE);
    session.refresh_token = None;
    let mut o = TestOptions::with("n", session);
    let err = client.default_token(&mut o).unwrap_err();
    assert_eq!(err.code(), "missing_refresh_token");
    let err = client
        .connection(ConnectionTokenRequest::new("google-oauth2"), &mut o)
        .unwrap_err();
    assert_eq!(err.code(), "missing_refresh_token");
    assert!(emu.requests().is_empty());
    // No session at all.
    let mut none = TestOptions::default();
    assert_eq!(
        client.default_token(&mut none).unwrap_err().code(),
        "missing_session"
    );
}

/// A refused refresh surfaces the OAuth error: `failed_to_refresh_token` + `invalid_grant`.
pub fn refresh_failure_surfaces_oauth_error(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu), ClientOptions::default());
    let mut session = expired_session(&emu, DEFAULT_AUDIENCE);
    session.refresh_token = Some("not-a-refresh-token-the-emulator-knows".into());
    let mut o = TestOptions::with("f", session.clone());
    let err = client.default_token(&mut o).unwrap_err();
    assert_eq!(err.code(), "failed_to_refresh_token");
    let oauth = err.oauth_error().expect("OAuth error surfaced");
    assert_eq!(oauth.error, "invalid_grant");
    assert_eq!(oauth.status, 403);
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("not-a-refresh-token"), "{shown}");
    assert_eq!(o.session, Some(session), "nothing saved");
}

/// `mfa_required` is its own error carrying the mfa_token (never displayed).
pub fn mfa_required(make: MakeClient) {
    use auth0_emulator::Failure;
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu), ClientOptions::default());
    emu.fail_next(
        "/oauth/token",
        Failure::OAuth {
            status: 403,
            body: json!({
                "error": "mfa_required",
                "error_description": "Multifactor authentication required",
                "mfa_token": "mfa-token-123",
                "mfa_requirements": {"challenge": [{"type": "otp"}]}
            }),
        },
        1,
    );
    let mut o = TestOptions::with("mfa", expired_session(&emu, DEFAULT_AUDIENCE));
    let err = client.default_token(&mut o).unwrap_err();
    assert_eq!(err.code(), "mfa_required");
    let Error::AccessToken(e) = &err else {
        panic!("not an access token error: {err:?}")
    };
    let auth0_server::protocol::access_token::AccessTokenError::MfaRequired {
        mfa_token,
        mfa_requirements,
        ..
    } = e.as_ref()
    else {
        panic!("not MfaRequired: {err:?}")
    };
    assert_eq!(mfa_token.expose(), "mfa-token-123");
    assert_eq!(
        mfa_requirements.as_ref().unwrap()["challenge"][0]["type"],
        json!("otp")
    );
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("mfa-token-123"), "{shown}");
}

/// `mfa_required` produced by the tenant's multi-factor policy for one API (not injected): the
/// error carries Auth0's `mfa_token` (never displayed) and `mfa_requirements`, the refresh
/// token is not spent, and the other API is not covered.
pub fn mfa_required_by_policy(make: MakeClient) {
    use auth0_emulator::{ANALYTICS_AUDIENCE, EmulatorConfig, MfaPolicy};
    let emu = Emulator::start(EmulatorConfig {
        mfa_policies: vec![MfaPolicy::for_audience(ANALYTICS_AUDIENCE)],
        ..Default::default()
    });
    let client = make(config(&emu), ClientOptions::default());
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    let rt = session.refresh_token.clone().unwrap();
    let mut o = TestOptions::with("mfa-policy", session);
    let err = client
        .token(AccessTokenRequest::audience(ANALYTICS_AUDIENCE), &mut o)
        .unwrap_err();
    assert_eq!(err.code(), "mfa_required", "{err}");
    let Error::AccessToken(e) = &err else {
        panic!("not an access token error: {err:?}")
    };
    let auth0_server::protocol::access_token::AccessTokenError::MfaRequired {
        mfa_token,
        mfa_requirements,
        ..
    } = e.as_ref()
    else {
        panic!("not MfaRequired: {err:?}")
    };
    assert!(!mfa_token.expose().is_empty());
    assert_eq!(
        mfa_requirements.as_ref().unwrap()["challenge"][0]["type"],
        json!("otp")
    );
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(mfa_token.expose()), "{shown}");
    assert!(
        emu.refresh_token_is_live(rt.expose()),
        "refresh token not spent"
    );
    client
        .default_token(&mut o)
        .expect("the default API needs no MFA");
}

/// Token Vault holds no token for the connection: Auth0's 401
/// `federated_connection_refresh_token_not_found` reaches the caller, nothing is saved.
pub fn connection_not_in_token_vault(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu), ClientOptions::default());
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    let mut o = TestOptions::with("vault", session.clone());
    let err = client
        .connection(ConnectionTokenRequest::new("github"), &mut o)
        .unwrap_err();
    let oauth = err.oauth_error().expect("OAuth error surfaced");
    assert_eq!(oauth.status, 401);
    assert_eq!(oauth.error, "federated_connection_refresh_token_not_found");
    assert_eq!(o.session, Some(session), "nothing saved");
}

/// A slow token endpoint and a short client timeout: `transport_timeout`, nothing saved.
pub fn timeout_is_typed(make: MakeClient) {
    use auth0_emulator::Failure;
    let emu = Emulator::start(Default::default());
    let client = make(
        config(&emu),
        ClientOptions {
            timeout: Duration::from_millis(300),
        },
    );
    emu.fail_next("/oauth/token", Failure::Slow(Duration::from_secs(3)), 1);
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    let mut o = TestOptions::with("t", session.clone());
    let err = client.default_token(&mut o).unwrap_err();
    assert_eq!(err.code(), "transport_timeout", "{err:?}");
    let Error::Transport(t) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(t.kind(), TransportErrorKind::Timeout);
    assert!(t.message().contains("/oauth/token"), "{t}");
    assert_eq!(o.session, Some(session), "nothing saved");
}

/// 500, an HTML error page, malformed JSON and an empty body are typed errors, and the next
/// call (the failure not remembered) succeeds.
pub fn bad_answers_are_typed(make: MakeClient) {
    use auth0_emulator::Failure;
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu), ClientOptions::default());
    let mut o = TestOptions::with("bad", expired_session(&emu, DEFAULT_AUDIENCE));
    for (failure, status) in [
        (Failure::Status(500), 500),
        (Failure::Html, 502),
        (Failure::MalformedJson, 200),
        (Failure::Empty, 200),
    ] {
        emu.fail_next("/oauth/token", failure.clone(), 1);
        let err = client.default_token(&mut o).unwrap_err();
        assert_eq!(err.code(), "failed_to_refresh_token", "{failure:?}: {err}");
        let Error::AccessToken(e) = &err else {
            panic!("{err:?}")
        };
        let auth0_server::protocol::access_token::AccessTokenError::FailedToRefresh(e) = e.as_ref()
        else {
            panic!("{err:?}")
        };
        assert_eq!(e.status(), status, "{failure:?}");
    }
    // A failing discovery is its own error.
    let fresh = make(config(&emu), ClientOptions::default());
    emu.fail_next("/.well-known/openid-configuration", Failure::Status(503), 1);
    assert_eq!(
        fresh.default_token(&mut o).unwrap_err().code(),
        "discovery_failed"
    );
    // Failures are not remembered: the refresh now goes through.
    let token = client.default_token(&mut o).unwrap();
    assert!(!token.access_token.expose().is_empty());
}

/// Every store call of an operation sees the caller's options, unchanged and in place.
pub fn store_options_reach_the_store(make_with_store: fn(Config, RecordingStore) -> Box<dyn Api>) {
    let emu = Emulator::start(Default::default());
    let store = RecordingStore::default();
    let client = make_with_store(config(&emu), store.clone());
    let mut o = TestOptions::with("request-42", expired_session(&emu, DEFAULT_AUDIENCE));
    client.default_token(&mut o).unwrap();
    client.user(&mut o).unwrap();
    client.session(&mut o).unwrap();
    let calls = store.calls();
    let ops: Vec<&str> = calls.iter().map(|c| c.op).collect();
    assert_eq!(ops, ["get", "update", "get", "get"]);
    assert!(calls.iter().all(|c| c.tag == "request-42"));
    assert_eq!(o.calls, 4, "the very options object reached every call");
}

/// `get_user` and `get_session`: the user's claims, the session without `internal`; `None`
/// without a session.
pub fn user_and_session(make: MakeClient) {
    let emu = Emulator::start(Default::default());
    let client = make(config(&emu), ClientOptions::default());
    let session = expired_session(&emu, DEFAULT_AUDIENCE);
    let mut o = TestOptions::with("u", session.clone());
    let u = client.user(&mut o).unwrap().unwrap();
    assert_eq!(u["sub"], json!("auth0|emulator-user"));
    let s = client.session(&mut o).unwrap().unwrap();
    assert_eq!(s.refresh_token, session.refresh_token);
    let json = serde_json::to_value(&s).unwrap();
    assert!(json.get("internal").is_none());
    let mut none = TestOptions::default();
    assert_eq!(client.user(&mut none).unwrap(), None);
    assert_eq!(client.session(&mut none).unwrap(), None);
    assert!(emu.requests().is_empty());
}

/// Half the callers (even `i`) ask for the default audience, half for the analytics API: with
/// one pre-rotation session, two refreshes that spend one refresh token (one lane).
pub fn lane_audience(i: usize) -> AccessTokenRequest {
    if i.is_multiple_of(2) {
        AccessTokenRequest::default()
    } else {
        AccessTokenRequest::audience(auth0_emulator::ANALYTICS_AUDIENCE)
    }
}

/// After `callers` concurrent [`lane_audience`] callers on a session holding `original`:
/// exactly two refreshes, the first spending `original` and the second the token it was
/// rotated to; no reuse detection; one token per audience, shared by all of its callers.
/// Returns the refresh tokens spent and the two access tokens (to look for in storage).
pub fn assert_two_refreshes_on_one_lane(
    emu: &Emulator,
    original: &str,
    tokens: &[(usize, String)],
    callers: usize,
) -> Vec<String> {
    let requests = emu.token_requests();
    let spent: Vec<_> = requests
        .iter()
        .map(|r| r.param("refresh_token").unwrap().to_owned())
        .collect();
    assert_eq!(requests.len(), 2, "one refresh per audience: {spent:?}");
    assert_eq!(
        spent[0], original,
        "the first refresh spent the session's token"
    );
    assert_ne!(
        spent[1], spent[0],
        "the second refresh spent the rotated token, not the old one"
    );
    assert_eq!(emu.reuse_detections(), 0, "no reuse detected");
    assert_eq!(emu.revoked_families(), 0, "no family revoked");
    assert_eq!(tokens.len(), callers);
    for parity in [0, 1] {
        let mine: Vec<_> = tokens
            .iter()
            .filter(|(i, _)| i % 2 == parity)
            .map(|(_, t)| t)
            .collect();
        assert_eq!(mine.len(), callers / 2);
        assert!(mine.iter().all(|t| *t == mine[0]), "one token per audience");
        assert_ne!(mine[0], "expired-access-token");
    }
    assert_ne!(tokens[0].1, tokens[1].1, "each audience has its own token");
    vec![
        spent[0].clone(),
        spent[1].clone(),
        tokens[0].1.clone(),
        tokens[1].1.clone(),
    ]
}

/// The blocking client over the memory stores (plain-http cookies), for end-to-end tests of
/// one operation.
#[allow(dead_code)]
pub fn memory_blocking(
    config: Config,
) -> auth0_server::blocking::ServerClient<
    auth0_server::store::memory::MemoryStateStore,
    auth0_server::store::memory::MemoryTransactionStore,
> {
    auth0_server::blocking::ServerClient::builder(
        config,
        auth0_server::store::memory::MemoryStateStore::new().secure(false),
        auth0_server::store::memory::MemoryTransactionStore::new().secure(false),
    )
    .build()
}

/// The async client (`reqwest`) over the memory stores, with the single-threaded tokio
/// runtime it runs on.
#[allow(dead_code)]
pub fn memory_async(
    config: Config,
) -> (
    auth0_server::nonblocking::ServerClient<
        auth0_server::store::memory::MemoryStateStore,
        auth0_server::store::memory::MemoryTransactionStore,
        ReqwestClient,
    >,
    tokio::runtime::Runtime,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // reqwest's client must be created inside the runtime it runs on.
    let http = rt.block_on(async { reqwest_client(Duration::from_secs(10)) });
    let client = auth0_server::nonblocking::ServerClient::builder(
        config,
        auth0_server::store::memory::MemoryStateStore::new().secure(false),
        auth0_server::store::memory::MemoryTransactionStore::new().secure(false),
        http,
    )
    .build();
    (client, rt)
}
