//! Store URLs, the first connection (whose failure is told apart: unreachable, refused login,
//! missing database) and the bounded pool every later call takes its connection from.

use crate::{PgStoreError, Result};
use postgres::error::SqlState;
use postgres::{Client, Config, NoTls};
use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::time::Duration;

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
}

impl r2d2::ManageConnection for Manager {
    type Connection = Connection;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Connection, postgres::Error> {
        Ok(Connection {
            client: self.config.connect(NoTls)?,
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
}

pub(crate) fn parse(url: &str) -> Result<Target> {
    if !is_store_url(url) {
        return Err(PgStoreError::BadUrl(
            "it does not start with postgres://".into(),
        ));
    }
    let mut config = Config::from_str(url).map_err(|e| PgStoreError::BadUrl(e.to_string()))?;
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
    Ok(Target {
        shown: format!("{host}:{port}/{db}"),
        config,
    })
}

/// One connection, its failure classified.
pub(crate) fn connect(target: &Target) -> Result<Client> {
    target
        .config
        .connect(NoTls)
        .map_err(|e| connect_error(target, e))
}

/// A bounded pool over `target` (connections are made when first needed).
pub(crate) fn pool(target: &Target) -> Pool {
    let manager = Manager {
        config: target.config.clone(),
    };
    r2d2::Pool::builder()
        .max_size(POOL_SIZE)
        .min_idle(Some(0))
        .connection_timeout(CONNECT_TIMEOUT)
        .build_unchecked(manager)
}

fn connect_error(target: &Target, error: postgres::Error) -> PgStoreError {
    let detail = error.to_string();
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
        // No answer from a server at all: refused, timed out, no such host.
        None => PgStoreError::Unreachable {
            target: shown,
            detail,
        },
    }
}
