//! `login::parse_callback` on arbitrary strings, and `complete_interactive_login` stepped
//! once (the callback is parsed, then the transaction is looked up by `state`).
#![no_main]

use auth0_server_fuzz::{NOW, config};
use auth0_server_protocol::Core;
use auth0_server_protocol::effect::{Effect, Input, Operation, Step};
use auth0_server_protocol::login::{MAX_CALLBACK_URL, parse_callback};
use auth0_server_protocol::time::UnixTime;
use auth0_server_protocol::transaction::transaction_key;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(url) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_callback(url);
    if url.len() > MAX_CALLBACK_URL {
        assert!(parsed.is_err(), "an over-long callback URL was accepted");
    }
    let core = Core::new(config().clone());
    let mut op = core.complete_interactive_login(url);
    match op.step(Input::Start, UnixTime::from_secs(NOW)) {
        Step::Done(result) => assert!(result.is_err(), "a login completed without a code exchange"),
        Step::Effect(Effect::LoadTransaction { key }) => {
            // Only a parsed callback with a usable `state` gets this far, and the key is
            // derived from that state.
            let cb = parsed.expect("the operation accepted a callback parse_callback refused");
            let state = cb.state.expect("a transaction lookup without state");
            assert!(!state.is_empty() && state.len() <= 256);
            assert_eq!(key, transaction_key(&state));
            // No such transaction: the login fails, it does not panic.
            match op.step(Input::Transaction(None), UnixTime::from_secs(NOW)) {
                Step::Done(Err(_)) | Step::Effect(_) => {}
                Step::Done(Ok(_)) => panic!("a login completed without a transaction"),
            }
        }
        Step::Effect(other) => panic!("unexpected first effect {other:?}"),
    }
});
