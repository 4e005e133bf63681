//! The small sessions the memory-store benchmarks fill their stores with, and the request
//! that reads one back by its id cookie.

use auth0_server::protocol::session::StateData;
use auth0_server::store::memory::MemoryStateStore;
use http::HeaderMap;
use serde_json::json;

/// The issuer of every benchmark session's user.
pub const ISSUER: &str = "https://bench.local/";

/// A session of user `sub` with session id `sid` (what back-channel logout finds it by).
pub fn session(sub: &str, sid: &str) -> StateData {
    let mut state = StateData::default();
    let serde_json::Value::Object(user) = json!({"sub": sub, "iss": ISSUER, "name": "Bench User"})
    else {
        unreachable!("an object")
    };
    state.user = Some(user);
    state.internal.sid = sid.to_owned();
    state
}

/// The headers of a request carrying the id cookie of the stored session `id`.
pub fn request_for(store: &MemoryStateStore, id: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let cookie = format!("{}={id}", store.cookie());
    headers.insert(http::header::COOKIE, cookie.parse().expect("a header"));
    headers
}
