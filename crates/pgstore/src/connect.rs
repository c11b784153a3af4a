//! Store URLs, the first connection (whose failure is told apart: unreachable, refused login,
//! missing database) and the bounded pool every later call takes its connection from.
//! `sslmode`/`sslrootcert` in a URL choose TLS, `sslcert`/`sslkey` a client certificate (see
//! `tls`).

mod tls;

use crate::{PgStoreError, Result};
use postgres::config::SslMode;
use postgres::error::SqlState;
use postgres::{Client, Config, NoTls};
use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres_rustls::MakeRustlsConnect;

pub(crate) type Pool = r2d2::Pool<Manager>;

/// A pooled connection, which a search that sent a cancel request discards: the request may
/// reach the server late and must not cancel another caller's statement.
pub(crate) struct Connection {
    pub(crate) client: Client,
    discard: bool,
}

impl Connection {
    pub(crate) fn discard(&mut self) {
        self.discard = true;
    }
}

impl Deref for Connection {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for Connection {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// Makes and checks the pool's connections.
pub(crate) struct Manager {
    config: Config,
    tls: Tls,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Connection;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Connection, postgres::Error> {
        Ok(Connection {
            client: self.tls.connect(&self.config)?,
            discard: false,
        })
    }

    fn is_valid(&self, conn: &mut Connection) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        conn.discard || conn.client.is_closed()
    }
}

/// Most connections one process holds: the server's blocking threads share them.
const POOL_SIZE: u32 = 16;
/// How long a connection attempt may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// True when `text` names a PostgreSQL store rather than a data directory.
pub fn is_store_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// A parsed store URL and the place it points at, without its password (for messages).
pub(crate) struct Target {
    pub(crate) config: Config,
    pub(crate) shown: String,
    tls: Tls,
    /// The URL's TLS options as given (libpq's names and meanings).
    pub(crate) tls_options: TlsOptions,
}

/// Plaintext, or TLS as the URL's `sslmode` asks.
#[derive(Clone)]
enum Tls {
    Plain,
    Rustls(MakeRustlsConnect),
}

impl Tls {
    fn connect(&self, config: &Config) -> Result<Client, postgres::Error> {
        match self {
            Tls::Plain => config.connect(NoTls),
            Tls::Rustls(connector) => config.connect(connector.clone()),
        }
    }
}

/// The TLS options of a store URL, which the client's own parser does not know
/// (`verify-ca`, `verify-full`, `sslrootcert`, `sslcert`, `sslkey`), taken out of it. Kept in
/// the [`Target`]: `db init --shards` hands them on to the `postgres_fdw` link.
#[derive(Clone, Default)]
pub(crate) struct TlsOptions {
    pub(crate) sslmode: Option<String>,
    pub(crate) sslrootcert: Option<String>,
    pub(crate) sslcert: Option<String>,
    pub(crate) sslkey: Option<String>,
}

impl TlsOptions {
    /// The options given, as libpq names them, in a fixed order.
    pub(crate) fn given(&self) -> Vec<(&'static str, &str)> {
        [
            ("sslmode", &self.sslmode),
            ("sslrootcert", &self.sslrootcert),
            ("sslcert", &self.sslcert),
            ("sslkey", &self.sslkey),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
        .collect()
    }
}

/// `url` without its TLS options, and their (percent-decoded) values.
fn take_tls_options(url: &str) -> Result<(String, TlsOptions)> {
    let mut options = TlsOptions::default();
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), options));
    };
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match key {
            "sslmode" => &mut options.sslmode,
            "sslrootcert" => &mut options.sslrootcert,
            "sslcert" => &mut options.sslcert,
            "sslkey" => &mut options.sslkey,
            _ => {
                kept.push(pair);
                continue;
            }
        };
        let value = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .map_err(|e| PgStoreError::BadUrl(format!("{key}: {e}")))?;
        *slot = Some(value.into_owned());
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, options))
}

/// The connector and the client's TLS mode for the URL's options.
fn tls_of(options: &TlsOptions, config: &mut Config, shown: &str) -> Result<Tls> {
    use tls::Verify;
    let root_file = options.sslrootcert.as_deref();
    let client_auth = match (options.sslcert.as_deref(), options.sslkey.as_deref()) {
        (Some(cert), Some(key)) => Some(tls::ClientAuth { cert, key }),
        (None, None) => None,
        _ => {
            return Err(PgStoreError::BadUrl(
                "sslcert and sslkey go together: give both (the client certificate and its key)"
                    .into(),
            ));
        }
    };
    let (mode, verify) = match options.sslmode.as_deref() {
        // A client certificate is sent over TLS only, which plaintext (sslmode absent, as
        // before TLS was supported, or `disable`) never starts.
        None | Some("disable") if client_auth.is_some() => {
            return Err(PgStoreError::BadUrl(
                "sslcert needs TLS: add sslmode=require, verify-ca or verify-full".into(),
            ));
        }
        // Absent: plaintext, as before TLS was supported (libpq would try TLS first).
        None => return Ok(Tls::Plain),
        Some("disable") => {
            config.ssl_mode(SslMode::Disable);
            return Ok(Tls::Plain);
        }
        Some("prefer") => (SslMode::Prefer, Verify::Nothing),
        Some("require") if root_file.is_some() => (SslMode::Require, Verify::Chain),
        Some("require") => (SslMode::Require, Verify::Nothing),
        Some("verify-ca") => (SslMode::Require, Verify::Chain),
        Some("verify-full") => (SslMode::Require, Verify::ChainAndName),
        Some(other) => {
            return Err(PgStoreError::BadUrl(format!(
                "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
            )));
        }
    };
    config.ssl_mode(mode);
    let connector =
        tls::connector(verify, root_file, client_auth).map_err(|detail| PgStoreError::Tls {
            target: shown.to_string(),
            detail,
        })?;
    Ok(Tls::Rustls(connector))
}

pub(crate) fn parse(url: &str) -> Result<Target> {
    if !is_store_url(url) {
        return Err(PgStoreError::BadUrl(
            "it does not start with postgres://".into(),
        ));
    }
    let (url, tls_options) = take_tls_options(url)?;
    let mut config = Config::from_str(&url).map_err(|e| PgStoreError::BadUrl(e.to_string()))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("sandscope");
    }
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres")
        .to_string();
    let shown = format!("{host}:{port}/{db}");
    let tls = tls_of(&tls_options, &mut config, &shown)?;
    Ok(Target {
        shown,
        config,
        tls,
        tls_options,
    })
}

/// One connection, its failure classified.
pub(crate) fn connect(target: &Target) -> Result<Client> {
    target
        .tls
        .connect(&target.config)
        .map_err(|e| connect_error(target, e))
}

/// A bounded pool over `target` (connections are made when first needed).
pub(crate) fn pool(target: &Target) -> Pool {
    let manager = Manager {
        config: target.config.clone(),
        tls: target.tls.clone(),
    };
    r2d2::Pool::builder()
        .max_size(POOL_SIZE)
        .min_idle(Some(0))
        .connection_timeout(CONNECT_TIMEOUT)
        .build_unchecked(manager)
}

fn connect_error(target: &Target, error: postgres::Error) -> PgStoreError {
    // The server's own words (a wrong password, a missing client certificate), not "db error".
    let detail = match error.as_db_error() {
        Some(db) => db.message().to_string(),
        None => error.to_string(),
    };
    let shown = target.shown.clone();
    match error.code() {
        Some(c)
            if *c == SqlState::INVALID_PASSWORD
                || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            PgStoreError::Authentication {
                target: shown,
                detail,
            }
        }
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => PgStoreError::NoDatabase {
            target: shown,
            detail,
        },
        Some(_) => PgStoreError::Sql(error),
        // The client's TLS failures show only their kind; the reason is the cause.
        None if detail.starts_with("error performing TLS handshake") => PgStoreError::Tls {
            target: shown,
            detail: with_causes(&error),
        },
        // No answer from a server at all: refused, timed out, no such host.
        None => PgStoreError::Unreachable {
            target: shown,
            detail,
        },
    }
}

/// An error and its causes, outermost first.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_options_are_taken_out_and_the_rest_kept() {
        let (url, options) = take_tls_options(
            "postgres://u@h:5/db?application_name=a&sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20x.crt&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(
            url,
            "postgres://u@h:5/db?application_name=a&connect_timeout=3"
        );
        assert_eq!(options.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(options.sslrootcert.as_deref(), Some("/etc/ca x.crt"));
        let (url, options) = take_tls_options("postgres://u@h/db?sslmode=require").unwrap();
        assert_eq!(url, "postgres://u@h/db");
        assert_eq!(options.sslmode.as_deref(), Some("require"));
        assert!(options.sslrootcert.is_none());
        assert!(take_tls_options("postgres://u@h/db?sslrootcert=%FF").is_err());
        let (url, options) =
            take_tls_options("postgres://u@h/db?sslcert=%2Fc%2Fme.crt&sslmode=require&sslkey=k")
                .unwrap();
        assert_eq!(url, "postgres://u@h/db");
        assert_eq!(
            options.given(),
            [
                ("sslmode", "require"),
                ("sslcert", "/c/me.crt"),
                ("sslkey", "k")
            ]
        );
    }

    #[test]
    fn a_client_certificate_needs_its_key_and_tls() {
        for url in [
            "postgres://u@127.0.0.1/db?sslmode=require&sslcert=/c.crt",
            "postgres://u@127.0.0.1/db?sslmode=require&sslkey=/c.key",
            "postgres://u@127.0.0.1/db?sslcert=/c.crt&sslkey=/c.key",
            "postgres://u@127.0.0.1/db?sslmode=disable&sslcert=/c.crt&sslkey=/c.key",
        ] {
            match parse(url) {
                Err(PgStoreError::BadUrl(m)) => assert!(m.contains("sslcert"), "{url}: {m}"),
                Err(other) => panic!("{url}: {other}"),
                Ok(_) => panic!("{url}: accepted"),
            }
        }
        // A file that is not there is named before any connection.
        match parse(
            "postgres://u@127.0.0.1/db?sslmode=require&sslcert=/nonexistent/c.crt&sslkey=/nonexistent/c.key",
        ) {
            Err(PgStoreError::Tls { detail, .. }) => {
                assert!(detail.contains("/nonexistent/c.crt"), "{detail}")
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("a missing client certificate was accepted"),
        }
    }

    #[test]
    fn sslmode_chooses_plaintext_or_demanded_tls() {
        let plain = parse("postgres://u@127.0.0.1/db").unwrap();
        assert!(matches!(plain.tls, Tls::Plain));
        let required = parse("postgres://u@127.0.0.1/db?sslmode=require").unwrap();
        assert!(matches!(required.tls, Tls::Rustls(_)));
        assert_eq!(required.config.get_ssl_mode(), SslMode::Require);
        let missing =
            parse("postgres://u@127.0.0.1/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.crt");
        assert!(matches!(missing, Err(PgStoreError::Tls { .. })));
    }
}
