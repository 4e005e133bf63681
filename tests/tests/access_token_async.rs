//! End-to-end: the seed guide's "Retrieving Data" scenarios through the async client
//! (`HttpClient` implemented for `reqwest`, on tokio) against the Auth0 emulator.

#[macro_use]
mod adapter_support;

use adapter_support::{Api, ClientOptions, RecordingStore, ReqwestClient, TestOptions};
use auth0_server::nonblocking::ServerClient;
use auth0_server::protocol::session::{Session, UserClaims};
use auth0_server::{
    AccessToken, AccessTokenRequest, Config, ConnectionToken, ConnectionTokenRequest, Error,
};
use std::time::Duration;

/// The async client, driven from a synchronous scenario on its own runtime.
struct Async {
    client: ServerClient<RecordingStore, RecordingStore, ReqwestClient>,
    rt: tokio::runtime::Runtime,
}

impl Api for Async {
    fn token(&self, req: AccessTokenRequest, o: &mut TestOptions) -> Result<AccessToken, Error> {
        self.rt.block_on(self.client.get_access_token_with(req, o))
    }
    fn connection(
        &self,
        req: ConnectionTokenRequest,
        o: &mut TestOptions,
    ) -> Result<ConnectionToken, Error> {
        self.rt
            .block_on(self.client.get_access_token_for_connection(req, o))
    }
    fn user(&self, o: &mut TestOptions) -> Result<Option<UserClaims>, Error> {
        self.rt.block_on(self.client.get_user(o))
    }
    fn session(&self, o: &mut TestOptions) -> Result<Option<Session>, Error> {
        self.rt.block_on(self.client.get_session(o))
    }
    fn default_token(&self, o: &mut TestOptions) -> Result<AccessToken, Error> {
        self.rt.block_on(self.client.get_access_token(o))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn build(config: Config, store: RecordingStore, timeout: Duration) -> Box<dyn Api> {
    let rt = runtime();
    // reqwest's client must be created inside the runtime it runs on.
    let http = rt.block_on(async { adapter_support::reqwest_client(timeout) });
    Box::new(Async {
        client: ServerClient::builder(config, store.clone(), store, http).build(),
        rt,
    })
}

fn with_store(config: Config, store: RecordingStore) -> Box<dyn Api> {
    build(config, store, Duration::from_secs(10))
}

fn make(config: Config, opts: ClientOptions) -> Box<dyn Api> {
    build(config, RecordingStore::default(), opts.timeout)
}

scenarios!(make, with_store);

/// The client's futures are `Send`: they can be spawned on a multi-threaded runtime.
#[test]
fn futures_are_send() {
    fn assert_send<F: std::future::Future + Send>(_: &F) {}
    let emu = auth0_emulator::Emulator::start(Default::default());
    let rt = runtime();
    let http = rt.block_on(async { adapter_support::reqwest_client(Duration::from_secs(5)) });
    let store = RecordingStore::default();
    let client =
        ServerClient::builder(adapter_support::config(&emu), store.clone(), store, http).build();
    let mut o = TestOptions::default();
    let fut = client.get_access_token(&mut o);
    assert_send(&fut);
    assert_eq!(rt.block_on(fut).unwrap_err().code(), "missing_session");
}
