//! HTTPS: `sandscope serve --tls-cert FILE --tls-key FILE`.
//!
//! VirusTotal's own CLI (`vt-cli`) only speaks HTTPS to `/api/v3/`, and analysts reach a lab
//! server from other machines, so the server terminates TLS itself with rustls (ring provider,
//! TLS 1.2 and 1.3) through `axum-server`; no proxy is needed.

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use std::path::Path;
use std::time::Duration;

/// A certificate chain and private key (PEM) that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("TLS certificate {cert} / key {key}: {reason}")]
pub struct TlsError {
    cert: String,
    key: String,
    reason: String,
}

/// Load the PEM certificate chain and private key (PKCS#8, PKCS#1 or SEC1) for HTTPS.
pub async fn load_tls(cert: &Path, key: &Path) -> Result<RustlsConfig, TlsError> {
    RustlsConfig::from_pem_file(cert, key)
        .await
        .map_err(|e| TlsError {
            cert: cert.display().to_string(),
            key: key.display().to_string(),
            reason: e.to_string(),
        })
}

/// Serve `app` over HTTPS on `listener` until `shutdown` completes; open connections then
/// get a few seconds to finish.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: RustlsConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let handle = axum_server::Handle::new();
    let on_shutdown = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        on_shutdown.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    axum_server::from_tcp_rustls(listener.into_std()?, tls)?
        .handle(handle)
        .serve(app.into_make_service())
        .await
}
