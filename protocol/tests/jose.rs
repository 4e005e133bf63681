//! Behaviour of the JOSE layer: JWE interop with the Python SDK, RS256 verification, ID token
//! and logout token claim validation, and "no input panics".

use std::sync::LazyLock;
use std::time::Duration;

use auth0_server_protocol::__internals::b64;
use auth0_server_protocol::__internals::claims::{
    BACKCHANNEL_LOGOUT_EVENT, IdTokenExpectations, LogoutTokenClaims, LogoutTokenExpectations,
    validate_id_token, validate_logout_token,
};
use auth0_server_protocol::__internals::jwk::Jwks;
use auth0_server_protocol::__internals::jws::Jws;
use auth0_server_protocol::jose::JoseError;
use auth0_server_protocol::jose::jwe::{self, JweKey};
use auth0_server_protocol::time::UnixTime;
use proptest::prelude::*;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Map, Value, json};
use sha2::Sha256;

// ---------------------------------------------------------------------------------------------
// JWE (encrypted cookies)
// ---------------------------------------------------------------------------------------------

fn python_vectors() -> Vec<(String, String, String, Value)> {
    let doc: Value =
        serde_json::from_str(include_str!("data/python-jwe.json")).expect("vector file is JSON");
    doc["vectors"]
        .as_array()
        .expect("vectors array")
        .iter()
        .map(|v| {
            (
                v["secret"].as_str().unwrap().to_owned(),
                v["salt"].as_str().unwrap().to_owned(),
                v["jwe"].as_str().unwrap().to_owned(),
                v["plaintext_json"].clone(),
            )
        })
        .collect()
}

#[test]
fn jwe_decrypts_every_python_sdk_vector() {
    let vectors = python_vectors();
    assert!(vectors.len() >= 16, "vector file unexpectedly small");
    for (secret, salt, token, plaintext) in vectors {
        let key = JweKey::derive(secret.as_bytes(), salt.as_bytes());
        let bytes = jwe::decrypt(&[key], &token).expect("python vector decrypts");
        let decoded: Value = serde_json::from_slice(&bytes).expect("plaintext is JSON");
        assert_eq!(decoded, plaintext);
    }
}

#[test]
fn jwe_python_vector_rejects_wrong_secret_and_wrong_salt() {
    let (secret, salt, token, _) = python_vectors().remove(0);
    let wrong_salt = JweKey::derive(secret.as_bytes(), b"_a0_tx");
    let wrong_secret = JweKey::derive(b"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", salt.as_bytes());
    assert_eq!(
        jwe::decrypt(&[wrong_salt, wrong_secret], &token),
        Err(JoseError::DecryptionFailed)
    );
    assert_eq!(jwe::decrypt(&[], &token), Err(JoseError::DecryptionFailed));
}

#[test]
fn jwe_own_output_round_trips_and_uses_the_python_header() {
    let key = JweKey::derive(b"a-secret-of-at-least-32-bytes-long!!", b"_a0_session");
    let plaintext = br#"{"user":{"sub":"auth0|1"}}"#;
    let token = jwe::encrypt(&key, plaintext, [9u8; 16]);
    assert!(token.starts_with("eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2Q0JDLUhTNTEyIn0.."));
    assert_eq!(token.split('.').count(), 5);
    assert!(!token.contains("auth0"));
    let again = JweKey::derive(b"a-secret-of-at-least-32-bytes-long!!", b"_a0_session");
    assert_eq!(jwe::decrypt(&[again], &token).unwrap(), plaintext);
    // A different IV gives a different token for the same plaintext.
    assert_ne!(token, jwe::encrypt(&key, plaintext, [8u8; 16]));
}

#[test]
fn jwe_rotation_second_key_decrypts() {
    let old = JweKey::derive(b"old-secret-old-secret-old-secret", b"_a0_session");
    let new = JweKey::derive(b"new-secret-new-secret-new-secret", b"_a0_session");
    let token = jwe::encrypt(&old, b"payload", [1u8; 16]);
    assert_eq!(
        jwe::decrypt(&[new.clone(), old], &token).unwrap(),
        b"payload"
    );
    assert_eq!(
        jwe::decrypt(&[new], &token),
        Err(JoseError::DecryptionFailed)
    );
}

#[test]
fn jwe_flipping_any_byte_is_an_error() {
    let key = JweKey::derive(b"flip-secret-flip-secret-flip-secret", b"_a0_session");
    let token = jwe::encrypt(&key, b"{\"a\":1}", [3u8; 16]);
    let bytes = token.as_bytes();
    for i in 0..bytes.len() {
        for mask in [0x01u8, 0x20] {
            let mut flipped = bytes.to_vec();
            flipped[i] ^= mask;
            let flipped = String::from_utf8(flipped).unwrap();
            assert!(
                jwe::decrypt(std::slice::from_ref(&key), &flipped).is_err(),
                "flip at {i} with {mask:#x} accepted"
            );
        }
    }
    // Truncations are errors too.
    for end in 0..bytes.len() {
        assert!(jwe::decrypt(std::slice::from_ref(&key), &token[..end]).is_err());
    }
}

#[test]
fn jwe_header_checks() {
    let key = JweKey::derive(b"header-secret-header-secret-header", b"_a0_session");
    let token = jwe::encrypt(&key, b"x", [5u8; 16]);
    let rest = token.split_once('.').unwrap().1;
    let with_header = |h: &str| format!("{}.{rest}", b64::encode(h.as_bytes()));
    // Extra members (a JS-style kid) are tolerated by the header check; the tag (whose AAD is
    // the header) then fails.
    assert_eq!(
        jwe::decrypt(
            std::slice::from_ref(&key),
            &with_header(r#"{"alg":"dir","enc":"A256CBC-HS512","kid":"k"}"#)
        ),
        Err(JoseError::DecryptionFailed)
    );
    for (header, code) in [
        (
            r#"{"alg":"A256KW","enc":"A256CBC-HS512"}"#,
            "unsupported_algorithm",
        ),
        (r#"{"alg":"dir","enc":"A256GCM"}"#, "unsupported_algorithm"),
        (r#"{"enc":"A256CBC-HS512"}"#, "unsupported_algorithm"),
        (
            r#"{"alg":"dir","enc":"A256CBC-HS512","zip":"DEF"}"#,
            "malformed_token",
        ),
        ("[]", "malformed_token"),
    ] {
        let err = jwe::decrypt(std::slice::from_ref(&key), &with_header(header)).unwrap_err();
        assert_eq!(err.code(), code, "{header}");
    }
    // A non-empty encrypted-key part is refused.
    let (h, after) = token.split_once("..").unwrap();
    assert_eq!(
        jwe::decrypt(&[key], &format!("{h}.AAAA.{after}"))
            .unwrap_err()
            .code(),
        "malformed_token"
    );
}

#[test]
fn jwe_size_limit_is_a_typed_error() {
    let key = JweKey::derive(b"size-secret-size-secret-size-secret", b"_a0_session");
    let big = "A".repeat(jwe::MAX_JWE_LEN + 1);
    assert_eq!(
        jwe::decrypt(&[key], &big),
        Err(JoseError::TooLarge {
            limit: jwe::MAX_JWE_LEN
        })
    );
}

// ---------------------------------------------------------------------------------------------
// JWKS and RS256
// ---------------------------------------------------------------------------------------------

static KEY_A: LazyLock<RsaPrivateKey> =
    LazyLock::new(|| RsaPrivateKey::from_pkcs8_pem(include_str!("data/rs256-a.pem")).unwrap());
static KEY_B: LazyLock<RsaPrivateKey> =
    LazyLock::new(|| RsaPrivateKey::from_pkcs8_pem(include_str!("data/rs256-b.pem")).unwrap());
static KEY_SMALL: LazyLock<RsaPrivateKey> = LazyLock::new(|| {
    RsaPrivateKey::from_pkcs8_pem(include_str!("data/rs256-small-1024.pem")).unwrap()
});

fn jwk(key: &RsaPublicKey, kid: &str) -> Value {
    json!({
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
        "n": b64::encode(&key.n().to_bytes_be()),
        "e": b64::encode(&key.e().to_bytes_be()),
    })
}

fn jwks_of(keys: &[Value]) -> Jwks {
    Jwks::from_slice(json!({ "keys": keys }).to_string().as_bytes()).unwrap()
}

/// The tenant's key set: key A as `kid-a`, key B as `kid-b`.
fn tenant_jwks() -> Jwks {
    jwks_of(&[
        jwk(&KEY_A.to_public_key(), "kid-a"),
        jwk(&KEY_B.to_public_key(), "kid-b"),
    ])
}

fn sign(key: &RsaPrivateKey, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.to_string().as_bytes()),
        b64::encode(claims.to_string().as_bytes())
    );
    let sig = SigningKey::<Sha256>::new(key.clone()).sign(input.as_bytes());
    format!("{input}.{}", b64::encode(&sig.to_bytes()))
}

fn rs256(kid: &str) -> Value {
    json!({"alg": "RS256", "typ": "JWT", "kid": kid})
}

#[test]
fn jwks_keeps_rsa_signature_keys_and_skips_the_rest() {
    let a = KEY_A.to_public_key();
    let mut enc = jwk(&a, "enc");
    enc["use"] = json!("enc");
    let mut hs = jwk(&a, "hs");
    hs["alg"] = json!("HS256");
    let mut bad_n = jwk(&a, "bad-n");
    bad_n["n"] = json!("not base64!");
    let mut no_verify = jwk(&a, "no-verify");
    no_verify["key_ops"] = json!(["encrypt"]);
    let jwks = jwks_of(&[
        json!({"kty": "EC", "crv": "P-256", "kid": "ec", "x": "AA", "y": "AA"}),
        enc,
        hs,
        bad_n,
        no_verify,
        jwk(&KEY_SMALL.to_public_key(), "small"),
        json!("not an object"),
        jwk(&a, "good"),
    ]);
    assert_eq!(jwks.len(), 1);
    let good = jwks.find("good").expect("RSA signing key kept");
    assert_eq!(good.kid(), Some("good"));
    assert_eq!(good.bits(), 2048);
    for skipped in ["ec", "enc", "hs", "bad-n", "no-verify", "small"] {
        assert!(jwks.find(skipped).is_none(), "{skipped} kept");
    }
    // Clones share the parsed keys.
    let clone = jwks.clone();
    assert!(std::ptr::eq(clone.keys().as_ptr(), jwks.keys().as_ptr()));
}

#[test]
fn jwks_key_size_bounds() {
    let modulus = |bytes: usize| {
        let mut n = vec![0xffu8; bytes];
        n[bytes - 1] = 0x01;
        json!({"kty": "RSA", "kid": format!("n{bytes}"), "n": b64::encode(&n), "e": "AQAB"})
    };
    let jwks = jwks_of(&[modulus(512), modulus(1024), modulus(1025)]);
    assert!(jwks.find("n512").is_some(), "4096-bit key kept");
    assert!(jwks.find("n1024").is_some(), "8192-bit key kept");
    assert!(jwks.find("n1025").is_none(), "8200-bit key skipped");
}

#[test]
fn jwks_document_errors() {
    for bad in [&b"not json"[..], b"[]", b"{}", br#"{"keys": {}}"#] {
        assert_eq!(Jwks::from_slice(bad).unwrap_err().code(), "invalid_jwks");
    }
    assert!(Jwks::from_slice(br#"{"keys": []}"#).unwrap().is_empty());
    let big = vec![b' '; 256 * 1024 + 1];
    assert_eq!(Jwks::from_slice(&big).unwrap_err().code(), "too_large");
}

#[test]
fn rs256_valid_token_verifies_with_its_kid() {
    let token = sign(&KEY_B, &rs256("kid-b"), &id_claims());
    let jws = Jws::parse(&token).unwrap();
    assert_eq!(jws.verify_rs256(&tenant_jwks()), Ok(()));
}

#[test]
fn rs256_bad_signature_is_rejected() {
    // Signed by A but claims to be B.
    let token = sign(&KEY_A, &rs256("kid-b"), &id_claims());
    assert_eq!(
        Jws::parse(&token).unwrap().verify_rs256(&tenant_jwks()),
        Err(JoseError::InvalidSignature)
    );
    // Payload swapped after signing.
    let good = sign(&KEY_A, &rs256("kid-a"), &id_claims());
    let mut other = id_claims();
    other["sub"] = json!("auth0|attacker");
    let forged = sign(&KEY_A, &rs256("kid-a"), &other);
    let parts: Vec<&str> = good.split('.').collect();
    let forged_parts: Vec<&str> = forged.split('.').collect();
    let spliced = format!("{}.{}.{}", parts[0], forged_parts[1], parts[2]);
    assert_eq!(
        Jws::parse(&spliced).unwrap().verify_rs256(&tenant_jwks()),
        Err(JoseError::InvalidSignature)
    );
    // Truncated signature (one byte short of the modulus size).
    let sig = b64::decode(parts[2]).unwrap();
    let short = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        b64::encode(&sig[..sig.len() - 1])
    );
    assert_eq!(
        Jws::parse(&short).unwrap().verify_rs256(&tenant_jwks()),
        Err(JoseError::InvalidSignature)
    );
}

#[test]
fn rs256_flipping_any_byte_is_an_error() {
    let token = sign(&KEY_A, &rs256("kid-a"), &json!({"sub": "a"}));
    let jwks = tenant_jwks();
    for i in 0..token.len() {
        let mut flipped = token.as_bytes().to_vec();
        flipped[i] ^= 0x01;
        let flipped = String::from_utf8(flipped).unwrap();
        let outcome = Jws::parse(&flipped).and_then(|jws| jws.verify_rs256(&jwks));
        assert!(outcome.is_err(), "flip at {i} accepted");
    }
}

#[test]
fn rs256_alg_none_and_hs256_are_rejected() {
    let claims = id_claims();
    let unsigned = format!(
        "{}.{}.",
        b64::encode(br#"{"alg":"none"}"#),
        b64::encode(claims.to_string().as_bytes())
    );
    assert_eq!(
        Jws::parse(&unsigned).unwrap().verify_rs256(&tenant_jwks()),
        Err(JoseError::UnsupportedAlgorithm { alg: "none".into() })
    );
    // HS256 "signed" with the public modulus: the classic key-confusion attack.
    let hs = sign(&KEY_A, &json!({"alg": "HS256", "kid": "kid-a"}), &claims);
    assert_eq!(
        Jws::parse(&hs).unwrap().verify_rs256(&tenant_jwks()),
        Err(JoseError::UnsupportedAlgorithm {
            alg: "HS256".into()
        })
    );
    let rs512 = sign(&KEY_A, &json!({"alg": "RS512", "kid": "kid-a"}), &claims);
    assert_eq!(
        Jws::parse(&rs512)
            .unwrap()
            .verify_rs256(&tenant_jwks())
            .unwrap_err()
            .code(),
        "unsupported_algorithm"
    );
}

#[test]
fn rs256_unknown_kid_asks_for_a_refetch() {
    let token = sign(&KEY_A, &rs256("rotated"), &id_claims());
    let err = Jws::parse(&token)
        .unwrap()
        .verify_rs256(&tenant_jwks())
        .unwrap_err();
    assert_eq!(err, JoseError::UnknownKid(Some("rotated".into())));
    assert_eq!(err.code(), "unknown_kid");
    assert!(!err.to_string().contains("rotated"));
    // After the refetch the new key is there.
    let refetched = jwks_of(&[jwk(&KEY_A.to_public_key(), "rotated")]);
    assert_eq!(Jws::parse(&token).unwrap().verify_rs256(&refetched), Ok(()));
}

#[test]
fn rs256_without_kid_uses_the_only_key() {
    let token = sign(&KEY_A, &json!({"alg": "RS256"}), &id_claims());
    let jws = Jws::parse(&token).unwrap();
    let one = jwks_of(&[jwk(&KEY_A.to_public_key(), "kid-a")]);
    assert_eq!(jws.verify_rs256(&one), Ok(()));
    assert_eq!(
        jws.verify_rs256(&tenant_jwks()),
        Err(JoseError::UnknownKid(None))
    );
    assert_eq!(
        jws.verify_rs256(&Jwks::default()),
        Err(JoseError::UnknownKid(None))
    );
}

// ---------------------------------------------------------------------------------------------
// ID token claims
// ---------------------------------------------------------------------------------------------

const ISS: &str = "https://tenant.example.com/";
const CLIENT: &str = "client-123";
const NOW: u64 = 1_700_000_000;

fn id_claims() -> Value {
    json!({
        "iss": ISS, "sub": "auth0|user", "aud": CLIENT,
        "exp": NOW + 3600, "iat": NOW, "nonce": "nonce-1",
        "org_id": "org_abc123", "org_name": "acme",
    })
}

fn expect<'a>() -> IdTokenExpectations<'a> {
    IdTokenExpectations {
        issuer: ISS,
        client_id: CLIENT,
        nonce: Some("nonce-1"),
        max_age: None,
        organization: None,
        now: UnixTime::from_secs(NOW),
        clock_tolerance: Duration::from_secs(60),
    }
}

fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

/// `id_claims()` with `edit` applied, validated against `exp`.
fn id_check(
    edit: impl FnOnce(&mut Map<String, Value>),
    exp: IdTokenExpectations,
) -> Result<(), JoseError> {
    let mut claims = map(id_claims());
    edit(&mut claims);
    validate_id_token(&claims, &exp)
}

#[test]
fn id_token_valid_end_to_end() {
    let token = sign(&KEY_A, &rs256("kid-a"), &id_claims());
    let jws = Jws::parse(&token).unwrap();
    jws.verify_rs256(&tenant_jwks()).unwrap();
    assert_eq!(validate_id_token(jws.claims(), &expect()), Ok(()));
}

#[test]
fn id_token_wrong_issuer() {
    for iss in [
        json!("https://tenant.example.com"),
        json!("https://evil.example.com/"),
        json!(1),
    ] {
        assert_eq!(
            id_check(|c| drop(c.insert("iss".into(), iss)), expect())
                .unwrap_err()
                .code(),
            "invalid_issuer"
        );
    }
    assert_eq!(
        id_check(|c| drop(c.remove("iss")), expect()),
        Err(JoseError::InvalidIssuer {
            expected: ISS.to_owned(),
            actual: None
        })
    );
}

#[test]
fn id_token_subject_required() {
    assert_eq!(
        id_check(|c| drop(c.insert("sub".into(), json!(""))), expect()),
        Err(JoseError::InvalidSubject)
    );
    assert_eq!(
        id_check(|c| drop(c.remove("sub")), expect()),
        Err(JoseError::InvalidSubject)
    );
}

#[test]
fn id_token_audience_must_contain_client() {
    assert_eq!(
        id_check(|c| drop(c.insert("aud".into(), json!("other"))), expect()),
        Err(JoseError::InvalidAudience)
    );
    assert_eq!(
        id_check(
            |c| drop(c.insert("aud".into(), json!(["other", "x"]))),
            expect()
        ),
        Err(JoseError::InvalidAudience)
    );
    assert_eq!(
        id_check(|c| drop(c.insert("aud".into(), json!([]))), expect()),
        Err(JoseError::InvalidAudience)
    );
    assert_eq!(
        id_check(|c| drop(c.remove("aud")), expect()),
        Err(JoseError::InvalidAudience)
    );
    // A one-element array needs no azp.
    assert_eq!(
        id_check(|c| drop(c.insert("aud".into(), json!([CLIENT]))), expect()),
        Ok(())
    );
}

#[test]
fn id_token_several_audiences_need_azp() {
    let several = |c: &mut Map<String, Value>| {
        c.insert("aud".into(), json!([CLIENT, "https://api.example.com"]));
    };
    assert_eq!(id_check(several, expect()), Err(JoseError::InvalidAzp));
    assert_eq!(
        id_check(
            |c| {
                several(c);
                c.insert("azp".into(), json!(CLIENT));
            },
            expect()
        ),
        Ok(())
    );
}

#[test]
fn id_token_azp_mismatch() {
    assert_eq!(
        id_check(|c| drop(c.insert("azp".into(), json!("other"))), expect()),
        Err(JoseError::InvalidAzp)
    );
    assert_eq!(
        id_check(
            |c| {
                c.insert("aud".into(), json!([CLIENT, "x"]));
                c.insert("azp".into(), json!("x"));
            },
            expect()
        ),
        Err(JoseError::InvalidAzp)
    );
}

#[test]
fn id_token_expiry_with_tolerance() {
    let at = |now| IdTokenExpectations {
        now: UnixTime::from_secs(now),
        ..expect()
    };
    let exp = NOW + 3600;
    assert_eq!(id_check(|_| {}, at(exp - 1)), Ok(()));
    assert_eq!(id_check(|_| {}, at(exp)), Ok(()), "within tolerance");
    assert_eq!(id_check(|_| {}, at(exp + 59)), Ok(()), "within tolerance");
    assert_eq!(id_check(|_| {}, at(exp + 60)), Err(JoseError::TokenExpired));
    assert_eq!(
        id_check(
            |_| {},
            IdTokenExpectations {
                clock_tolerance: Duration::ZERO,
                ..at(exp)
            }
        ),
        Err(JoseError::TokenExpired)
    );
    assert_eq!(
        id_check(|c| drop(c.remove("exp")), expect()),
        Err(JoseError::MissingExp)
    );
    assert_eq!(
        id_check(|c| drop(c.insert("exp".into(), json!("never"))), expect()),
        Err(JoseError::MissingExp)
    );
}

#[test]
fn id_token_missing_iat() {
    assert_eq!(
        id_check(|c| drop(c.remove("iat")), expect()),
        Err(JoseError::MissingIat)
    );
    assert_eq!(
        id_check(|c| drop(c.insert("iat".into(), json!("now"))), expect()),
        Err(JoseError::MissingIat)
    );
    assert_eq!(
        id_check(|c| drop(c.insert("iat".into(), json!(NOW + 60))), expect()),
        Ok(())
    );
    assert_eq!(
        id_check(|c| drop(c.insert("iat".into(), json!(NOW + 61))), expect()),
        Err(JoseError::IssuedInFuture)
    );
}

#[test]
fn id_token_nonce() {
    assert_eq!(
        id_check(|c| drop(c.remove("nonce")), expect()),
        Err(JoseError::InvalidNonce)
    );
    assert_eq!(
        id_check(
            |c| drop(c.insert("nonce".into(), json!("nonce-2"))),
            expect()
        ),
        Err(JoseError::InvalidNonce)
    );
    // Not expected: ignored either way.
    let no_nonce = IdTokenExpectations {
        nonce: None,
        ..expect()
    };
    assert_eq!(id_check(|c| drop(c.remove("nonce")), no_nonce), Ok(()));
    assert_eq!(id_check(|_| {}, no_nonce), Ok(()));
}

#[test]
fn id_token_organization_id_and_name() {
    let org = |o| IdTokenExpectations {
        organization: Some(o),
        ..expect()
    };
    assert_eq!(id_check(|_| {}, org("org_abc123")), Ok(()));
    assert_eq!(
        id_check(|_| {}, org("org_ABC123")),
        Err(JoseError::OrganizationMismatch),
        "org ids compare exactly"
    );
    assert_eq!(
        id_check(|_| {}, org("org_other")),
        Err(JoseError::OrganizationMismatch)
    );
    assert_eq!(
        id_check(|c| drop(c.remove("org_id")), org("org_abc123")),
        Err(JoseError::OrganizationMismatch)
    );
    assert_eq!(
        id_check(|_| {}, org("ACME")),
        Ok(()),
        "names compare case-insensitively"
    );
    assert_eq!(
        id_check(|_| {}, org("globex")),
        Err(JoseError::OrganizationMismatch)
    );
    assert_eq!(
        id_check(|c| drop(c.remove("org_name")), org("acme")),
        Err(JoseError::OrganizationMismatch)
    );
    // A name is never matched against org_id.
    assert_eq!(
        id_check(
            |c| drop(c.insert("org_id".into(), json!("acme"))),
            org("acme")
        ),
        Ok(())
    );
    assert_eq!(
        id_check(
            |c| {
                c.remove("org_name");
                c.insert("org_id".into(), json!("acme"));
            },
            org("acme")
        ),
        Err(JoseError::OrganizationMismatch)
    );
}

#[test]
fn errors_have_stable_codes_and_no_token_contents() {
    let err = id_check(
        |c| drop(c.insert("iss".into(), json!("https://evil/"))),
        expect(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "invalid_issuer");
    assert!(!err.to_string().contains("evil"));
    assert_eq!(JoseError::TokenExpired.code(), "token_expired");
    assert_eq!(JoseError::DecryptionFailed.code(), "decryption_failed");
    assert_eq!(
        JoseError::OrganizationMismatch.code(),
        "organization_mismatch"
    );
}

// ---------------------------------------------------------------------------------------------
// Logout token claims
// ---------------------------------------------------------------------------------------------

fn logout_claims() -> Map<String, Value> {
    map(json!({
        "iss": ISS, "aud": CLIENT, "iat": NOW, "exp": NOW + 120, "jti": "j1",
        "sub": "auth0|user", "sid": "sid-1",
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    }))
}

fn logout_check(
    edit: impl FnOnce(&mut Map<String, Value>),
) -> Result<LogoutTokenClaims, JoseError> {
    let mut claims = logout_claims();
    edit(&mut claims);
    validate_logout_token(
        &claims,
        &LogoutTokenExpectations {
            issuer: ISS,
            client_id: CLIENT,
            now: UnixTime::from_secs(NOW),
            clock_tolerance: Duration::from_secs(60),
        },
    )
}

#[test]
fn logout_token_valid_with_sid_only_and_sub_only() {
    assert_eq!(
        logout_check(|c| drop(c.remove("sub"))),
        Ok(LogoutTokenClaims {
            iss: ISS.into(),
            sub: None,
            sid: Some("sid-1".into())
        })
    );
    assert_eq!(
        logout_check(|c| drop(c.remove("sid"))),
        Ok(LogoutTokenClaims {
            iss: ISS.into(),
            sub: Some("auth0|user".into()),
            sid: None
        })
    );
}

#[test]
fn logout_token_valid_end_to_end() {
    let token = sign(
        &KEY_B,
        &json!({"alg": "RS256", "kid": "kid-b", "typ": "logout+jwt"}),
        &Value::Object(logout_claims()),
    );
    let jws = Jws::parse(&token).unwrap();
    jws.verify_rs256(&tenant_jwks()).unwrap();
    let got = validate_logout_token(
        jws.claims(),
        &LogoutTokenExpectations {
            issuer: ISS,
            client_id: CLIENT,
            now: UnixTime::from_secs(NOW),
            clock_tolerance: Duration::from_secs(60),
        },
    )
    .unwrap();
    assert_eq!(got.sid.as_deref(), Some("sid-1"));
}

#[test]
fn logout_token_events_required() {
    let code = |r: Result<LogoutTokenClaims, JoseError>| r.unwrap_err().code();
    assert_eq!(
        code(logout_check(|c| drop(c.remove("events")))),
        "invalid_logout_token"
    );
    assert_eq!(
        code(logout_check(|c| drop(
            c.insert("events".into(), json!({"other": {}}))
        ))),
        "invalid_logout_token"
    );
    assert_eq!(
        code(logout_check(|c| {
            c.insert("events".into(), json!({ BACKCHANNEL_LOGOUT_EVENT: "yes" }));
        })),
        "invalid_logout_token"
    );
    assert_eq!(
        code(logout_check(|c| drop(
            c.insert("events".into(), json!([BACKCHANNEL_LOGOUT_EVENT]))
        ))),
        "invalid_logout_token"
    );
}

#[test]
fn logout_token_nonce_forbidden() {
    assert_eq!(
        logout_check(|c| drop(c.insert("nonce".into(), json!("n")))),
        Err(JoseError::InvalidLogoutToken("nonce present"))
    );
}

#[test]
fn logout_token_needs_sub_or_sid() {
    assert_eq!(
        logout_check(|c| {
            c.remove("sub");
            c.remove("sid");
        }),
        Err(JoseError::InvalidLogoutToken("neither sub nor sid"))
    );
    assert_eq!(
        logout_check(|c| {
            c.remove("sub");
            c.insert("sid".into(), json!(42));
        })
        .unwrap_err()
        .code(),
        "invalid_logout_token"
    );
}

#[test]
fn logout_token_standard_claims() {
    assert_eq!(
        logout_check(|c| drop(c.insert("iss".into(), json!("https://evil/")))),
        Err(JoseError::InvalidIssuer {
            expected: ISS.to_owned(),
            actual: Some("https://evil/".to_owned())
        })
    );
    assert_eq!(
        logout_check(|c| drop(c.insert("aud".into(), json!("other")))),
        Err(JoseError::InvalidAudience)
    );
    assert_eq!(
        logout_check(|c| drop(c.remove("iat"))),
        Err(JoseError::MissingIat)
    );
    assert_eq!(
        logout_check(|c| drop(c.insert("exp".into(), json!(NOW - 61)))),
        Err(JoseError::TokenExpired)
    );
    assert!(logout_check(|c| drop(c.insert("exp".into(), json!(NOW + 10)))).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

static PROP_KEY: LazyLock<JweKey> =
    LazyLock::new(|| JweKey::derive(b"property-secret-property-secret!", b"_a0_session"));

proptest! {
    #[test]
    fn prop_jwe_encrypt_then_decrypt_is_identity(
        plaintext in proptest::collection::vec(any::<u8>(), 0..2048),
        iv in any::<[u8; 16]>(),
    ) {
        let token = jwe::encrypt(&PROP_KEY, &plaintext, iv);
        prop_assert_eq!(jwe::decrypt(std::slice::from_ref(&*PROP_KEY), &token).unwrap(), plaintext);
    }

    #[test]
    fn prop_jwe_decrypt_never_panics(token in ".{0,400}") {
        let _ = jwe::decrypt(std::slice::from_ref(&*PROP_KEY), &token);
    }

    #[test]
    fn prop_jwe_decrypt_rejects_mutated_tokens(
        plaintext in proptest::collection::vec(any::<u8>(), 0..64),
        pos in any::<prop::sample::Index>(),
        replacement in "[A-Za-z0-9_.=+/-]",
    ) {
        let token = jwe::encrypt(&PROP_KEY, &plaintext, [0u8; 16]);
        let i = pos.index(token.len());
        let mut mutated = token.clone();
        mutated.replace_range(i..=i, &replacement);
        prop_assume!(mutated != token);
        prop_assert!(jwe::decrypt(std::slice::from_ref(&*PROP_KEY), &mutated).is_err());
    }

    #[test]
    fn prop_jws_parse_never_panics(token in ".{0,400}") {
        let _ = Jws::parse(&token);
    }

    #[test]
    fn prop_jws_parse_of_jose_shaped_strings_never_panics(token in "[A-Za-z0-9_.-]{0,300}") {
        if let Ok(jws) = Jws::parse(&token) {
            let _ = jws.verify_rs256(&Jwks::default());
        }
    }

    #[test]
    fn prop_jwks_from_slice_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Jwks::from_slice(&bytes);
    }

    #[test]
    fn prop_jwks_from_json_shaped_input_never_panics(
        kty in "(RSA|EC|rsa)", n in "[A-Za-z0-9_=-]{0,400}", e in "[A-Za-z0-9_=-]{0,12}",
    ) {
        let doc = json!({"keys": [{"kty": kty, "n": n, "e": e, "kid": "k"}]}).to_string();
        let _ = Jwks::from_slice(doc.as_bytes());
    }
}
