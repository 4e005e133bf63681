//! Client certificates for mutual TLS (RFC 8705) and extra trusted root certificates, for
//! the shipped HTTP clients.
//!
//! Both are read from PEM and checked once, when they are made: a certificate chain whose
//! private key does not belong to its first certificate, or a key the TLS stack cannot sign
//! with, is a [`TlsError`] here, never a failure (or a panic) on the first request. The
//! parsing and the check are rustls's, with the ring provider the HTTP clients already use.
//!
//! ```no_run
//! use auth0_server::http::{ClientCertificate, RootCertificates};
//! let certificate = ClientCertificate::from_pem(
//!     std::fs::read("client-chain.pem")?, // the client certificate, then any intermediates
//!     std::fs::read("client-key.pem")?,   // its private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC)
//! )?;
//! println!("cnf.x5t#S256 of bound tokens: {}", certificate.x5t_s256());
//! // Only for a private PKI (the mTLS host's server certificate is not publicly trusted):
//! let roots = RootCertificates::from_pem(std::fs::read("private-ca.pem")?)?;
//! # let _ = roots;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use auth0_server_protocol::ErrorCode;
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;

/// Why a client certificate or a root certificate could not be used. Messages never quote
/// the PEM.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate PEM holds no `CERTIFICATE` section.
    #[error("the PEM holds no certificate")]
    NoCertificate,
    /// The PEM is not well formed, or holds something other than certificates where only
    /// certificates are expected.
    #[error("the certificate PEM cannot be read: {0}")]
    InvalidPem(&'static str),
    /// A certificate is not a well-formed X.509 certificate.
    #[error("a certificate cannot be parsed (not X.509 DER inside the PEM)")]
    InvalidCertificate,
    /// The key PEM holds no private key (`PRIVATE KEY`, `RSA PRIVATE KEY` or
    /// `EC PRIVATE KEY`), or more than one.
    #[error("the key PEM must hold exactly one private key (PKCS#8, PKCS#1 RSA or SEC1 EC)")]
    NoPrivateKey,
    /// The TLS stack cannot sign with the key (an unsupported algorithm or curve, a
    /// malformed or encrypted key).
    #[error("the private key cannot be used for TLS (unsupported algorithm or malformed)")]
    UnusableKey,
    /// The private key is not the one of the first certificate of the chain.
    #[error("the private key does not belong to the client certificate")]
    KeyMismatch,
}

impl TlsError {
    /// The stable error code: `invalid_configuration`.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::InvalidConfiguration
    }
}

/// A client certificate chain and its private key, for mutual TLS with the authorization
/// server (`tls_client_auth` / `self_signed_tls_client_auth`, RFC 8705). Give it to
/// `blocking::ServerClientBuilder::client_certificate` or
/// [`ReqwestClientBuilder::client_certificate`](crate::http::ReqwestClientBuilder::client_certificate).
///
/// Cheap to clone. Its `Debug` shows the number of certificates and the thumbprint, never the
/// key.
#[derive(Clone)]
pub struct ClientCertificate {
    chain: Arc<[CertificateDer<'static>]>,
    key: Arc<PrivateKeyDer<'static>>,
    x5t_s256: String,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("certificates", &self.chain.len())
            .field("x5t#S256", &self.x5t_s256)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl ClientCertificate {
    /// Reads the certificate chain (the client certificate first, then any intermediates; no
    /// other PEM sections) and its private key (one PKCS#8 `PRIVATE KEY`, PKCS#1
    /// `RSA PRIVATE KEY` or SEC1 `EC PRIVATE KEY`), and checks that the key can sign and
    /// belongs to the certificate.
    ///
    /// # Errors
    /// A [`TlsError`] saying which part is wrong.
    pub fn from_pem(
        chain_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> Result<Self, TlsError> {
        let chain = certificates(chain_pem.as_ref())?;
        let key = private_key(key_pem.as_ref())?;
        let provider = rustls::crypto::ring::default_provider();
        let checked =
            rustls::sign::CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider);
        match checked {
            Ok(_) => {}
            Err(rustls::Error::InconsistentKeys(_)) => return Err(TlsError::KeyMismatch),
            Err(rustls::Error::InvalidCertificate(_)) => return Err(TlsError::InvalidCertificate),
            Err(_) => return Err(TlsError::UnusableKey),
        }
        let x5t_s256 = thumbprint(&chain[0]);
        Ok(ClientCertificate {
            chain: chain.into(),
            key: Arc::new(key),
            x5t_s256,
        })
    }

    /// The certificate's SHA-256 thumbprint, base64url: the `x5t#S256` member of the `cnf`
    /// claim of access tokens bound to it (RFC 8705 §3.1).
    pub fn x5t_s256(&self) -> &str {
        &self.x5t_s256
    }

    /// The chain, client certificate first (DER).
    #[cfg(feature = "blocking")]
    pub(crate) fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The private key as PEM, labelled with its kind (what ureq reads).
    #[cfg(any(
        feature = "blocking",
        all(feature = "reqwest", not(feature = "reqwest-native-tls"))
    ))]
    pub(crate) fn key_pem(&self) -> Vec<u8> {
        let label = match &*self.key {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        pem_block(label, self.key.secret_der())
    }

    /// The chain then the key, as PEM (what `reqwest::Identity::from_pem` reads).
    #[cfg(all(feature = "reqwest", not(feature = "reqwest-native-tls")))]
    pub(crate) fn identity_pem(&self) -> Vec<u8> {
        let mut pem = self.chain_pem();
        pem.extend(self.key_pem());
        pem
    }

    /// The chain as PEM.
    #[cfg(feature = "reqwest")]
    pub(crate) fn chain_pem(&self) -> Vec<u8> {
        self.chain
            .iter()
            .flat_map(|c| pem_block("CERTIFICATE", c))
            .collect()
    }

    /// The key as PKCS#8 PEM, when it is PKCS#8.
    #[cfg(feature = "reqwest-native-tls")]
    pub(crate) fn pkcs8_key_pem(&self) -> Option<Vec<u8>> {
        match &*self.key {
            PrivateKeyDer::Pkcs8(k) => Some(pem_block("PRIVATE KEY", k.secret_pkcs8_der())),
            _ => None,
        }
    }
}

/// Root certificates to trust **in addition to** the client's usual ones (the Mozilla roots
/// by default), for an authorization server — usually its mTLS host — whose certificate comes
/// from a private certificate authority, or for tests.
#[derive(Clone, Debug, Default)]
pub struct RootCertificates {
    certs: Vec<CertificateDer<'static>>,
}

impl RootCertificates {
    /// Reads one or more `CERTIFICATE` sections, each a usable trust anchor.
    ///
    /// # Errors
    /// [`TlsError::NoCertificate`], [`TlsError::InvalidPem`] or
    /// [`TlsError::InvalidCertificate`].
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<Self, TlsError> {
        let certs = certificates(pem.as_ref())?;
        let mut store = rustls::RootCertStore::empty();
        for c in &certs {
            store
                .add(c.clone())
                .map_err(|_| TlsError::InvalidCertificate)?;
        }
        Ok(RootCertificates { certs })
    }

    /// These and `more`.
    pub fn and(mut self, more: RootCertificates) -> Self {
        self.certs.extend(more.certs);
        self
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// The certificates (DER).
    pub(crate) fn certs(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }
}

/// The TLS settings given to a shipped HTTP client's builder.
#[derive(Clone, Debug, Default)]
pub(crate) struct TlsSettings {
    /// The client certificate presented when a server asks for one.
    pub(crate) client_certificate: Option<ClientCertificate>,
    /// Extra trusted roots.
    pub(crate) extra_roots: RootCertificates,
}

/// Every section of `pem`, which must all be certificates (at least one).
fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    use rustls::pki_types::pem::SectionKind;
    let mut out = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
        match section {
            Ok((SectionKind::Certificate, der)) => out.push(CertificateDer::from(der)),
            Ok(_) => {
                return Err(TlsError::InvalidPem(
                    "only CERTIFICATE sections are allowed",
                ));
            }
            Err(_) => return Err(TlsError::InvalidPem("malformed PEM")),
        }
    }
    if out.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(out)
}

/// The one private key of `pem`.
fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    let mut keys = PrivateKeyDer::pem_slice_iter(pem);
    match (keys.next(), keys.next()) {
        (Some(Ok(key)), None) => Ok(key),
        _ => Err(TlsError::NoPrivateKey),
    }
}

/// SHA-256 of the DER certificate, base64url without padding.
fn thumbprint(cert: &CertificateDer<'_>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(cert.as_ref()))
}

/// One PEM block with 64-character lines.
fn pem_block(label: &str, der: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = include_str!("../../../tests/data/mtls/client.pem");
    const CLIENT_KEY: &str = include_str!("../../../tests/data/mtls/client.key");
    const OTHER_KEY: &str = include_str!("../../../tests/data/mtls/self_signed.key");
    const CA: &str = include_str!("../../../tests/data/mtls/ca.pem");

    #[test]
    fn a_matching_chain_and_key_are_accepted_and_the_key_is_never_shown() {
        let c = ClientCertificate::from_pem(CLIENT, CLIENT_KEY).unwrap();
        assert_eq!(c.chain.len(), 1);
        assert_eq!(c.x5t_s256().len(), 43);
        let shown = format!("{c:?}");
        let key_line = CLIENT_KEY.lines().nth(1).unwrap();
        assert!(!shown.contains(&key_line[..20]), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        let with_intermediate = format!("{CLIENT}{CA}");
        let c = ClientCertificate::from_pem(with_intermediate, CLIENT_KEY).unwrap();
        assert_eq!(c.chain.len(), 2);
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let cases: [(&str, &str, TlsError); 6] = [
            ("", CLIENT_KEY, TlsError::NoCertificate),
            (CLIENT, "", TlsError::NoPrivateKey),
            (CLIENT, OTHER_KEY, TlsError::KeyMismatch),
            (
                CLIENT_KEY,
                CLIENT_KEY,
                TlsError::InvalidPem("only CERTIFICATE sections are allowed"),
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                CLIENT_KEY,
                TlsError::InvalidCertificate,
            ),
            (
                CLIENT,
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                TlsError::UnusableKey,
            ),
        ];
        for (chain, key, expected) in cases {
            let err = ClientCertificate::from_pem(chain, key).unwrap_err();
            assert_eq!(err, expected);
            assert_eq!(err.code(), "invalid_configuration");
            assert!(!err.to_string().contains("BEGIN"), "{err}");
        }
        let two_keys = format!("{CLIENT_KEY}{OTHER_KEY}");
        assert_eq!(
            ClientCertificate::from_pem(CLIENT, two_keys).unwrap_err(),
            TlsError::NoPrivateKey
        );
        assert_eq!(
            RootCertificates::from_pem("junk").unwrap_err(),
            TlsError::NoCertificate
        );
        assert!(!RootCertificates::from_pem(CA).unwrap().is_empty());
    }
}
