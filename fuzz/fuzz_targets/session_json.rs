//! `StateData::from_json`: any bytes load as a session or fail with a typed error, and a
//! loaded session survives a round trip through its own JSON.
#![no_main]

use auth0_server_protocol::session::{MAX_SESSION_JSON, StateData};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match StateData::from_json(data) {
        Ok(state) => {
            assert!(data.len() <= MAX_SESSION_JSON);
            let json = state.to_json();
            let again = StateData::from_json(&json).expect("the SDK reads what it writes");
            assert_eq!(
                again.to_json(),
                json,
                "session JSON round trip is not stable"
            );
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
