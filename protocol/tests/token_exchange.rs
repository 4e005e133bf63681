//! Custom Token Exchange: the input checks (`TokenExchangeRequest::check`) as properties, and
//! the operation against scripted answers (what it sends, what it returns, what it saves).

mod common;

use auth0_server_protocol::effect::{Effect, Input, Operation, Step};
use auth0_server_protocol::login::TokenExchangeRequest;
use auth0_server_protocol::time::UnixTime;
use common::*;
use proptest::prelude::*;

const TYPE: &str = "urn:acme:legacy-token";

proptest! {
    /// A bare token of a custom type passes; the same token with surrounding whitespace or a
    /// `Bearer ` prefix (any case) is refused, and the refusal never shows the token.
    #[test]
    fn bare_tokens_pass_and_decorated_ones_are_refused(
        token in "[A-Za-z0-9._~-]{1,200}",
        pad in prop::sample::select(vec![" ", "\t", "\n", " \r\n"]),
        bearer in prop::sample::select(vec!["Bearer ", "bearer ", "BEARER "]),
    ) {
        prop_assert!(TokenExchangeRequest::new(token.clone(), TYPE).check().is_ok());
        for decorated in [format!("{pad}{token}"), format!("{token}{pad}"), format!("{bearer}{token}")] {
            let e = TokenExchangeRequest::new(decorated, TYPE).check().unwrap_err();
            prop_assert_eq!(e.code(), "invalid_parameter");
            prop_assert!(!e.to_string().contains(&token) || token.len() < 4);
        }
    }

    /// No input makes the check panic, and what it accepts has a non-blank bare subject token
    /// and a subject token type that is an absolute URI outside Auth0's reserved namespaces.
    #[test]
    fn the_check_is_total_and_sound(
        token in ".{0,64}",
        token_type in ".{0,64}",
        extra in prop::collection::vec(("[a-z_]{0,16}", ".{0,8}"), 0..25),
    ) {
        let mut request = TokenExchangeRequest::new(token.clone(), token_type.clone());
        for (k, v) in &extra {
            request = request.param(k.clone(), v.clone());
        }
        if request.check().is_ok() {
            prop_assert!(!token.trim().is_empty() && token.trim() == token);
            prop_assert!(!token.to_ascii_lowercase().starts_with("bearer "));
            prop_assert!(url::Url::parse(&token_type).is_ok());
            prop_assert!(!token_type.to_ascii_lowercase().starts_with("urn:ietf:"));
            prop_assert!(extra.len() <= 20);
            prop_assert!(extra.iter().all(|(k, _)| !k.is_empty() && k != "scope" && k != "grant_type"));
        }
    }
}

#[test]
fn reserved_types_and_parameters_and_unpaired_actors_are_refused() {
    for bad in [
        TokenExchangeRequest::new("t", "urn:ietf:params:oauth:token-type:jwt"),
        TokenExchangeRequest::new("t", "urn:auth0:something"),
        TokenExchangeRequest::new("t", "https://auth0.com/token"),
        TokenExchangeRequest::new("t", "relative/path"),
        TokenExchangeRequest::new("t", TYPE).actor("a", ""),
        TokenExchangeRequest::new("t", TYPE).actor("Bearer a", "urn:acme:agent"),
        TokenExchangeRequest::new("t", TYPE).param("client_secret", "x"),
        TokenExchangeRequest::new("t", TYPE).param("audience", "x"),
        TokenExchangeRequest::new("t", TYPE).organization(""),
    ] {
        assert_eq!(
            bad.check().unwrap_err().code(),
            "invalid_parameter",
            "{bad:?}"
        );
    }
    // An actor token type may be a standard one.
    assert!(
        TokenExchangeRequest::new("t", TYPE)
            .actor("a", "urn:ietf:params:oauth:token-type:id_token")
            .check()
            .is_ok()
    );
}

/// The request sent: the grant, the subject and actor tokens, the configured audience, the
/// scope as given, then the extra parameters; and without an ID token in the answer, the
/// tokens come back with no claims and nothing is saved.
#[test]
fn the_exchange_sends_the_rfc_8693_form_and_saves_nothing() {
    let core = core(config_builder().audience("https://api.example.com/"));
    let mut op = core.custom_token_exchange(
        TokenExchangeRequest::new("legacy", TYPE)
            .scope("read:data")
            .actor("agent", "urn:acme:agent")
            .param("device", "kiosk-7"),
    );
    let mut input = Input::Start;
    let mut sent = None;
    let result = loop {
        match op.step(input, UnixTime::from_secs(NOW)) {
            Step::Done(r) => break r,
            Step::Effect(Effect::LoadMetadata) => {
                input = Input::Metadata(Some(cached_metadata(NOW, 10)))
            }
            Step::Effect(Effect::Http(request)) => {
                sent = Some(String::from_utf8(request.request.body().clone()).unwrap());
                input = Input::Http(json(
                    200,
                    r#"{"access_token":"at","token_type":"Bearer","expires_in":60}"#,
                ));
            }
            Step::Effect(other) => panic!("unexpected {other:?}"),
        }
    };
    let result = result.expect("tokens");
    assert_eq!(result.access_token.expose(), "at");
    assert_eq!(result.expires_at, UnixTime::from_secs(NOW + 60));
    assert!(result.claims.is_none());
    let sent = sent.expect("one request");
    let params: Vec<(String, String)> = url::form_urlencoded::parse(sent.as_bytes())
        .into_owned()
        .collect();
    let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names[..8],
        [
            "grant_type",
            "subject_token",
            "subject_token_type",
            "audience",
            "scope",
            "actor_token",
            "actor_token_type",
            "device"
        ]
    );
    assert_eq!(
        params[0].1,
        "urn:ietf:params:oauth:grant-type:token-exchange"
    );
    assert_eq!(params[3].1, "https://api.example.com/");
}

/// An error answer that echoes the subject token does not put it in the error.
#[test]
fn an_echoed_subject_token_is_redacted() {
    let core = core(config_builder());
    let mut op = core.custom_token_exchange(TokenExchangeRequest::new("s3cr3t-subject", TYPE));
    let mut input = Input::Start;
    let e = loop {
        match op.step(input, UnixTime::from_secs(NOW)) {
            Step::Done(r) => break r.unwrap_err(),
            Step::Effect(Effect::LoadMetadata) => {
                input = Input::Metadata(Some(cached_metadata(NOW, 10)))
            }
            Step::Effect(Effect::Http(_)) => {
                input = Input::Http(json(
                    400,
                    r#"{"error":"invalid_request","error_description":"bad token s3cr3t-subject"}"#,
                ));
            }
            Step::Effect(other) => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(e.code(), "failed_to_exchange_token");
    assert!(!e.to_string().contains("s3cr3t-subject"), "{e}");
}
