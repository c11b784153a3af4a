//! TLS to PostgreSQL from the store URL's `sslmode` and `sslrootcert`, with libpq's meanings:
//!
//! * absent or `disable` — plaintext (what the store always did);
//! * `prefer` — TLS when the server offers it, plaintext otherwise; the certificate is not
//!   checked (libpq's `prefer`: protection against passive listeners only);
//! * `require` — TLS or no connection; the certificate is not checked, unless `sslrootcert`
//!   is given, when it is `verify-ca` (as libpq does);
//! * `verify-ca` — TLS, the server's certificate chain must end at a root of `sslrootcert`
//!   (a PEM file; the system's roots when absent or `system`);
//! * `verify-full` — `verify-ca`, and the certificate must name the URL's host.
//!
//! `sslcert=FILE&sslkey=FILE` (PEM: the client's certificate, then any intermediates; its
//! private key, PKCS#8, SEC1 or PKCS#1) are sent when the server asks for a client certificate
//! (a `cert` line of `pg_hba.conf`, or `clientcert=verify-ca|verify-full`).
//!
//! rustls on the `ring` provider (the workspace's other TLS users use it), plugged into the
//! client by `tokio-postgres-rustls`.

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How much of the server's certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verify {
    /// Encryption only.
    Nothing,
    /// The chain ends at a trusted root; any host name.
    Chain,
    /// The chain, and the certificate names the host.
    ChainAndName,
}

/// The client certificate's files (`sslcert`, `sslkey`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientAuth<'a> {
    pub(crate) cert: &'a str,
    pub(crate) key: &'a str,
}

/// A TLS connector for `verify`, trusting the roots in `root_file` (PEM) or the system's, and
/// presenting `client_auth`'s certificate when the server asks for one.
pub(crate) fn connector(
    verify: Verify,
    root_file: Option<&str>,
    client_auth: Option<ClientAuth<'_>>,
) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match verify {
        Verify::Nothing => Arc::new(AnyCertificate(provider.clone())),
        Verify::Chain | Verify::ChainAndName => {
            let roots = Arc::new(roots(root_file)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| format!("cannot use the trusted roots: {e}"))?;
            if verify == Verify::Chain {
                Arc::new(AnyName(webpki))
            } else {
                webpki
            }
        }
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match client_auth {
        None => builder.with_no_client_auth(),
        Some(auth) => {
            let (chain, key) = client_certificate(auth)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("sslcert={} with sslkey={}: {e}", auth.cert, auth.key))?
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

/// The client's certificate chain and private key, read from their PEM files.
fn client_certificate(
    auth: ClientAuth<'_>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let chain = CertificateDer::pem_file_iter(auth.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("sslcert={}: {e}", auth.cert))?;
    if chain.is_empty() {
        return Err(format!(
            "sslcert={}: no PEM certificate in the file",
            auth.cert
        ));
    }
    let key =
        PrivateKeyDer::from_pem_file(auth.key).map_err(|e| format!("sslkey={}: {e}", auth.key))?;
    Ok((chain, key))
}

/// The trusted roots: every certificate of a PEM file, or the system's store.
fn roots(root_file: Option<&str>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match root_file {
        Some(path) if path != "system" => {
            let certificates = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("sslrootcert={path}: {e}"))?;
            if certificates.is_empty() {
                return Err(format!(
                    "sslrootcert={path}: no PEM certificate in the file"
                ));
            }
            for certificate in certificates {
                store
                    .add(certificate)
                    .map_err(|e| format!("sslrootcert={path}: {e}"))?;
            }
        }
        _ => {
            let certificates = rustls_native_certs::load_native_certs()
                .map_err(|e| format!("the system's trusted roots: {e}"))?;
            store.add_parsable_certificates(certificates);
            if store.is_empty() {
                return Err(
                    "the system has no trusted roots; give the server's CA as sslrootcert=FILE"
                        .into(),
                );
            }
        }
    }
    Ok(store)
}

/// `require`/`prefer`: any certificate, but the handshake's signatures are still checked.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the full check but for the host name (webpki checks the name last, so a
/// name mismatch means the chain was good).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
