//! End-to-end: the seed guide's "Retrieving Data" scenarios through the blocking
//! (`ureq`) client against the Auth0 emulator on 127.0.0.1.

mod adapter_support;

use adapter_support::{Api, ClientOptions, RecordingStore, TestOptions};
use auth0_server::blocking::ServerClient;
use auth0_server::protocol::session::{Session, UserClaims};
use auth0_server::{
    AccessToken, AccessTokenRequest, Config, ConnectionToken, ConnectionTokenRequest, Error,
};

type Client = ServerClient<RecordingStore, RecordingStore>;

impl Api for Client {
    fn token(&self, req: AccessTokenRequest, o: &mut TestOptions) -> Result<AccessToken, Error> {
        self.get_access_token_with(req, o)
    }
    fn connection(
        &self,
        req: ConnectionTokenRequest,
        o: &mut TestOptions,
    ) -> Result<ConnectionToken, Error> {
        self.get_access_token_for_connection(req, o)
    }
    fn user(&self, o: &mut TestOptions) -> Result<Option<UserClaims>, Error> {
        self.get_user(o)
    }
    fn session(&self, o: &mut TestOptions) -> Result<Option<Session>, Error> {
        self.get_session(o)
    }
    fn default_token(&self, o: &mut TestOptions) -> Result<AccessToken, Error> {
        self.get_access_token(o)
    }
}

fn with_store(config: Config, store: RecordingStore) -> Box<dyn Api> {
    Box::new(ServerClient::builder(config, store.clone(), store).build())
}

fn make(config: Config, opts: ClientOptions) -> Box<dyn Api> {
    let store = RecordingStore::default();
    Box::new(
        ServerClient::builder(config, store.clone(), store)
            .connect_timeout(opts.timeout)
            .read_timeout(opts.timeout)
            .build(),
    )
}

#[test]
fn valid_stored_token_is_served_without_any_request() {
    adapter_support::cache_hit(make);
}

#[test]
fn expired_token_is_refreshed_with_exact_form_parameters_then_cached() {
    adapter_support::refresh_when_expired_post(make);
}

#[test]
fn client_secret_basic_sends_a_basic_header_and_the_named_audience() {
    adapter_support::refresh_with_basic_auth(make);
}

#[test]
fn mrrt_uses_per_audience_scopes_and_merges_extra_scopes() {
    adapter_support::mrrt_scope_map(make);
}

#[test]
fn audience_outside_the_policy_is_audience_mismatch_and_keeps_the_rotated_refresh_token() {
    adapter_support::audience_outside_policy(make);
}

#[test]
fn connection_token_is_exchanged_once_then_served_from_the_session() {
    adapter_support::connection_token_once(make);
}

#[test]
fn without_refresh_token_the_error_is_missing_refresh_token() {
    adapter_support::missing_refresh_token(make);
}

#[test]
fn refused_refresh_surfaces_invalid_grant() {
    adapter_support::refresh_failure_surfaces_oauth_error(make);
}

#[test]
fn mfa_required_carries_the_mfa_token() {
    adapter_support::mfa_required(make);
}

#[test]
fn slow_token_endpoint_is_a_transport_timeout() {
    adapter_support::timeout_is_typed(make);
}

#[test]
fn server_errors_html_and_malformed_json_are_typed_errors() {
    adapter_support::bad_answers_are_typed(make);
}

#[test]
fn store_options_reach_every_store_call_unchanged() {
    adapter_support::store_options_reach_the_store(with_store);
}

#[test]
fn get_user_and_get_session_read_the_session() {
    adapter_support::user_and_session(make);
}

#[test]
fn oversized_response_is_response_too_large() {
    let emu = auth0_emulator::Emulator::start(Default::default());
    let store = RecordingStore::default();
    let client = ServerClient::builder(adapter_support::config(&emu), store.clone(), store)
        .max_response_body(64)
        .build();
    let mut o = TestOptions::with(
        "big",
        adapter_support::expired_session(&emu, auth0_emulator::DEFAULT_AUDIENCE),
    );
    let err = client.get_access_token(&mut o).unwrap_err();
    assert_eq!(err.code(), "response_too_large", "{err:?}");
}

#[test]
fn the_agent_reuses_one_connection() {
    let emu = auth0_emulator::Emulator::start(Default::default());
    let client = make(adapter_support::config(&emu), ClientOptions::default());
    for tag in ["a", "b", "c"] {
        let mut o = TestOptions::with(
            tag,
            adapter_support::expired_session(&emu, auth0_emulator::DEFAULT_AUDIENCE),
        );
        client.default_token(&mut o).unwrap();
    }
    let peers: std::collections::HashSet<_> = emu.requests().iter().map(|r| r.peer).collect();
    assert_eq!(emu.requests().len(), 4, "one discovery, three refreshes");
    assert_eq!(peers.len(), 1, "keep-alive connection reused: {peers:?}");
}
