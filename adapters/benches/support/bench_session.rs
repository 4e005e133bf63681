//! The benchmark session (`tests/data/session.json`) and the configuration it was written
//! for, shared by the cookie benchmarks.

use auth0_server::clock::Clock;
use auth0_server::protocol::config::Config;
use auth0_server::protocol::session::StateData;
use serde_json::Value;

/// The application secret (the side-by-side Python and JS programs use the same one).
pub const SECRET: &str = "benchmark-secret-benchmark-secret-0123456789";

/// The configuration (audience and per-audience scopes from the file), the session, and a
/// clock standing 30 s after the session was written: inside its lifetime, and too soon for
/// a rolling rewrite on read.
pub fn config_session_clock() -> (Config, StateData, Clock) {
    let file: Value = serde_json::from_str(include_str!("../../../tests/data/session.json"))
        .expect("session.json is JSON");
    let params = &file["authorization_params"];
    let mut builder = Config::builder("bench.local", "bench-client")
        .client_secret("bench-client-secret")
        .secret(SECRET)
        .audience(params["audience"].as_str().expect("audience"));
    for (audience, scope) in params["scope"].as_object().expect("scope map") {
        builder = builder.scope_for(audience.as_str(), scope.as_str().expect("scope"));
    }
    let config = builder.build().expect("valid config");
    let session = StateData::from_json(file["session"].to_string().as_bytes()).expect("a session");
    let now = session.internal.created_at + 30;
    (config, session, Clock::from_fn(move || now))
}
