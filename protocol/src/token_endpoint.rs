//! The token endpoint: building grant requests with client authentication. What it answers
//! is read by [`crate::token_response`] (re-exported here).

use crate::config::{ClientAuthMethod, Config};
use crate::effect::{AtSend, HttpRequest};
use crate::secret::Secret;
use base64::Engine;

pub use crate::token_response::*;

/// Builds a form POST to `endpoint` (one of `metadata`'s, chosen with
/// [`Metadata::endpoint`](crate::discovery::Metadata::endpoint) for the client's transport)
/// with the client's authentication applied: the secret (post or basic); for
/// `private_key_jwt`, `client_id` and the mark that the driver adds a fresh assertion for the
/// discovered issuer when it sends it; for mTLS, `client_id` alone. With a DPoP key
/// configured, the request is also marked for a DPoP proof made at sending.
pub(crate) fn form_post(
    config: &Config,
    metadata: &crate::discovery::Metadata,
    endpoint: &str,
    params: &[(&str, &str)],
) -> HttpRequest {
    // Room for the parameters and the client's credentials without growing (an encoded
    // refresh token or secret is usually as long as it is raw).
    let room = params
        .iter()
        .map(|(k, v)| k.len() + v.len() + 2)
        .sum::<usize>()
        + config.client_id().len()
        + config.client_secret().map_or(0, |s| s.expose().len())
        + 32;
    let mut form = url::form_urlencoded::Serializer::new(String::with_capacity(room));
    for (k, v) in params {
        form.append_pair(k, v);
    }
    let mut builder = http::Request::post(endpoint)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::ACCEPT, "application/json");
    let secret = config.client_secret().map_or("", Secret::expose);
    let mut at_send = Vec::new();
    match config.client_auth_method() {
        ClientAuthMethod::PrivateKeyJwt => {
            form.append_pair("client_id", config.client_id());
            at_send.push(AtSend::ClientAssertion {
                audience: metadata.issuer.clone(),
            });
        }
        ClientAuthMethod::ClientSecretPost => {
            form.append_pair("client_id", config.client_id());
            form.append_pair("client_secret", secret);
        }
        // RFC 8705 §2: the certificate in the TLS handshake authenticates; the form only
        // names the client.
        ClientAuthMethod::TlsClientAuth | ClientAuthMethod::SelfSignedTlsClientAuth => {
            form.append_pair("client_id", config.client_id());
        }
        ClientAuthMethod::ClientSecretBasic => {
            // RFC 6749 §2.3.1: both parts form-urlencoded before base64.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let creds = format!("{}:{}", enc(config.client_id()), enc(secret));
            let value = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(creds)
            );
            builder = builder.header(http::header::AUTHORIZATION, value);
            form.append_pair("client_id", config.client_id());
        }
    }
    if config.dpop_key().is_some() {
        at_send.push(AtSend::DpopProof { nonce: None });
    }
    // Endpoints come from validated configuration or parsed discovery metadata, so the
    // request always builds; fall back to an empty request rather than panic.
    HttpRequest {
        request: builder.body(form.finish().into_bytes()).unwrap_or_default(),
        coalesce: None,
        at_send,
    }
}

/// The request revoking a refresh token (RFC 7009) at the discovered `revocation_endpoint`
/// (its mTLS alias for an mTLS client), with the client's authentication; `None` when the
/// server advertises none. Revoking a rotating refresh token revokes its whole family at
/// Auth0.
pub fn revocation_request(
    config: &Config,
    metadata: &crate::discovery::Metadata,
    refresh_token: &Secret,
) -> Option<crate::effect::HttpRequest> {
    let endpoint = metadata.endpoint(
        crate::discovery::Endpoint::Revocation,
        config.client_auth_method().transport(),
    )?;
    let mut request = form_post(
        config,
        metadata,
        endpoint,
        &[
            ("token", refresh_token.expose()),
            ("token_type_hint", "refresh_token"),
        ],
    );
    // RFC 9449 defines proofs for the token endpoint, PAR and resources, not revocation.
    request
        .at_send
        .retain(|a| !matches!(a, AtSend::DpopProof { .. }));
    Some(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::UnixTime;

    fn resp(status: u16, body: &str) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    #[test]
    fn full_and_partial_success() {
        let r = parse_token_response(&resp(
            200,
            r#"{"access_token":"at","expires_in":3600,"scope":"a b","refresh_token":"rt","id_token":"it","token_type":"Bearer"}"#,
        ))
        .unwrap();
        assert_eq!(r.access_token.expose(), "at");
        assert_eq!(r.expires_in, Some(3600));
        assert_eq!(r.refresh_token.unwrap().expose(), "rt");
        let r = parse_token_response(&resp(200, r#"{"access_token":"at"}"#)).unwrap();
        assert_eq!(
            (r.expires_in, r.scope, r.refresh_token, r.id_token),
            (None, None, None, None)
        );
        let r =
            parse_token_response(&resp(200, r#"{"access_token":"at","expires_in":"60"}"#)).unwrap();
        assert_eq!(r.expires_in, Some(60));
    }

    #[test]
    fn oauth_errors_keep_code_description_and_mfa_details() {
        let e = parse_token_response(&resp(
            403,
            r#"{"error":"invalid_grant","error_description":"Unknown or invalid refresh token."}"#,
        ))
        .unwrap_err();
        let o = e.oauth().unwrap();
        assert_eq!((o.status, o.error.as_str()), (403, "invalid_grant"));
        let e = parse_token_response(&resp(
            403,
            r#"{"error":"mfa_required","error_description":"Multifactor authentication required","mfa_token":"mfa-tok","mfa_requirements":{"challenge":[{"type":"otp"}]}}"#,
        ))
        .unwrap_err();
        let o = e.oauth().unwrap();
        assert_eq!(o.mfa_token.as_ref().unwrap().expose(), "mfa-tok");
        assert!(o.mfa_requirements.is_some());
        assert!(!format!("{e:?} {e}").contains("mfa-tok"));
    }

    #[test]
    fn non_json_bodies_are_typed_errors() {
        for (status, body, reason) in [
            (200, "", "empty body"),
            (200, "<html>oops</html>", "HTML instead of JSON"),
            (200, r#"{"access_token": "abc", "#, "malformed JSON"),
            (
                200,
                r#"{"token_type":"Bearer"}"#,
                "no access_token in the response",
            ),
            (200, "[1,2]", "malformed JSON"),
            (500, "", "error status with an empty body"),
            (
                502,
                "<!doctype html><h1>Bad gateway</h1>",
                "error status with an HTML body",
            ),
            (
                500,
                r#"{"message":"boom"}"#,
                "error status without an OAuth error body",
            ),
        ] {
            match parse_token_response(&resp(status, body)) {
                Err(ResponseError::Invalid {
                    status: s,
                    reason: r,
                }) => {
                    assert_eq!((s, r), (status, reason), "{body}")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn huge_bodies_are_refused() {
        let body = vec![b' '; MAX_RESPONSE_BODY + 1];
        let r = http::Response::builder().status(200).body(body).unwrap();
        assert_eq!(
            parse_token_response(&r),
            Err(ResponseError::TooLarge { status: 200 })
        );
    }

    #[test]
    fn a_scope_beyond_the_limit_is_refused() {
        let body = |len: usize| {
            let scope: String = "s ".repeat(len / 2);
            resp(
                200,
                &format!(r#"{{"access_token":"at","scope":"{scope}"}}"#),
            )
        };
        let at_limit = parse_token_response(&body(MAX_SCOPE_LEN)).unwrap();
        assert_eq!(at_limit.scope.map(|s| s.len()), Some(MAX_SCOPE_LEN));
        assert_eq!(
            parse_token_response(&body(MAX_SCOPE_LEN + 2)),
            Err(ResponseError::ScopeTooLarge { status: 200 })
        );
    }

    #[test]
    fn private_key_jwt_sends_the_client_id_and_a_fresh_assertion_never_the_secret() {
        use crate::config::AssertionAlg;
        let config = Config::builder("t.auth0.com", "cid")
            .client_secret("the-client-secret")
            .private_key_jwt(
                include_str!("../../tests/data/client_keys/rsa.pem"),
                AssertionAlg::Rs256,
            )
            .secret("0123456789abcdef0123456789abcdef")
            .build()
            .unwrap();
        let metadata: crate::discovery::Metadata = serde_json::from_value(serde_json::json!({
            "issuer": "https://t.auth0.com/",
            "authorization_endpoint": "https://t.auth0.com/authorize",
            "token_endpoint": "https://t.auth0.com/oauth/token",
        }))
        .unwrap();
        let req = form_post(
            &config,
            &metadata,
            &metadata.token_endpoint,
            &[("grant_type", "refresh_token"), ("refresh_token", "rt")],
        );
        assert!(
            req.request
                .headers()
                .get(http::header::AUTHORIZATION)
                .is_none()
        );
        assert_eq!(
            req.request.body(),
            b"grant_type=refresh_token&refresh_token=rt&client_id=cid"
        );
        let at_send = req.at_send[0].clone();
        assert_eq!(
            at_send,
            AtSend::ClientAssertion {
                audience: "https://t.auth0.com/".into()
            }
        );
        let now = UnixTime::from_secs(1_000);
        let sent = at_send
            .apply(req.request.clone(), &config, now, &[9; 48], None)
            .unwrap();
        let form: Vec<(String, String)> = url::form_urlencoded::parse(sent.body())
            .into_owned()
            .collect();
        let names: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "grant_type",
                "refresh_token",
                "client_id",
                "client_assertion_type",
                "client_assertion"
            ]
        );
        assert_eq!(form[3].1, crate::client_assertion::ASSERTION_TYPE);
        assert!(!String::from_utf8_lossy(sent.body()).contains("the-client-secret"));
        // Each sending signs with its own randomness: another jti, another assertion.
        let again = at_send
            .apply(req.request.clone(), &config, now, &[8; 48], None)
            .unwrap();
        assert_ne!(again.body(), sent.body());
        assert_eq!(
            at_send
                .apply(req.request, &config, now, &[9; 8], None)
                .unwrap_err(),
            crate::client_assertion::ClientAssertionError::NotEnoughRandom.into()
        );
        // A configuration without a key cannot complete it (a driver bug, as an error).
        let secret_only = Config::builder("t.auth0.com", "cid")
            .client_secret("s")
            .secret("0123456789abcdef0123456789abcdef")
            .build()
            .unwrap();
        let plain = form_post(&secret_only, &metadata, &metadata.token_endpoint, &[]);
        assert!(plain.at_send.is_empty());
        assert_eq!(
            at_send
                .apply(plain.request, &secret_only, now, &[9; 48], None)
                .unwrap_err(),
            crate::client_assertion::ClientAssertionError::NoKey.into()
        );
    }

    #[test]
    fn error_messages_never_quote_the_body() {
        let e = parse_token_response(&resp(200, r#"{"access_token": 12345, "secret":"leak-me""#))
            .unwrap_err();
        assert!(!e.to_string().contains("leak-me"));
    }
}
