//! End-to-end: the seed guide's "Retrieving Data" scenarios through the blocking
//! (`ureq`) client against the Auth0 emulator on 127.0.0.1.

#[macro_use]
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

scenarios!(make, with_store);

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
    // The refreshes return ID tokens, verified against the keys (fetched once).
    assert_eq!(
        emu.requests().len(),
        5,
        "one discovery, one JWKS, three refreshes"
    );
    assert_eq!(peers.len(), 1, "keep-alive connection reused: {peers:?}");
}
