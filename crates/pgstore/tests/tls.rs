//! TLS to a real PostgreSQL: `sslmode` and `sslrootcert` in the store URL against a server
//! with `ssl=on` and a certificate signed by a CA the test makes (openssl CLI), and against a
//! server without TLS; `sslcert`/`sslkey` against a server whose `pg_hba.conf` demands a client
//! certificate; and the two-server layout's `postgres_fdw` link taking the shard URL's TLS
//! options and client certificate.

#[path = "../../../tests/support/postgres.rs"]
mod postgres_server;

// Only some of the shared helpers are used here.
#[allow(dead_code)]
#[path = "../../store/tests/support/vendored.rs"]
mod vendored;

use postgres_server::{Layout, TestCluster, TestPostgres};
use sandscope_pgstore::{PgStore, PgStoreError};
use sandscope_store::NewReport;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The role that logs in with a client certificate (its certificate's common name).
const CERT_USER: &str = "cert_user";

/// A CA, a server certificate it signed (for 127.0.0.1 only), an unrelated CA, and a client
/// certificate for [`CERT_USER`] from each CA (`client` and `other-client`).
struct Certificates {
    dir: tempfile::TempDir,
}

impl Certificates {
    fn make() -> Certificates {
        let dir = tempfile::Builder::new()
            .prefix("sandscope-tls-")
            .tempdir()
            .unwrap();
        let certs = Certificates { dir };
        certs.make_ca("ca");
        certs.make_ca("other-ca");
        certs.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(
            certs.path("server.ext"),
            "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        certs.openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ]);
        certs.make_client("client", "ca");
        certs.make_client("other-client", "other-ca");
        certs
    }

    /// `<name>.crt` and `<name>.key`: a client certificate for [`CERT_USER`] signed by `ca`.
    fn make_client(&self, name: &str, ca: &str) {
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={CERT_USER}"),
        ]);
        std::fs::write(
            self.path("client.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "client.ext",
            "-out",
            &format!("{name}.crt"),
        ]);
        // libpq (the shard link's, in the store's server) reads the key only when it is the
        // server user's and private.
        own_privately(&self.path(&format!("{name}.key")));
    }

    fn make_ca(&self, name: &str) {
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-subj",
            &format!("/CN=sandscope test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("openssl CLI");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The server (the `postgres` user when we are root) reads `key`: it must be its own and
/// private, in a directory it can reach.
fn own_privately(key: &std::path::Path) {
    let as_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if let Some(dir) = key.parent() {
        run(Command::new("chmod").arg("755").arg(dir));
    }
    run(Command::new("chmod").arg("600").arg(key));
    if as_root {
        run(Command::new("chown").arg("postgres").arg(key));
    }
}

/// Turn TLS on in a running server with `certs`' server certificate (a reload suffices).
fn enable_ssl(pg: &TestPostgres, certs: &Certificates) {
    let key = certs.path("server.key");
    own_privately(&key);
    let set = |name: &str, value: &str| {
        pg.psql(&format!("ALTER SYSTEM SET {name} = '{value}'"))
            .unwrap();
    };
    set(
        "ssl_cert_file",
        &certs.path("server.crt").display().to_string(),
    );
    set("ssl_key_file", &key.display().to_string());
    set("ssl", "on");
    pg.psql("SELECT pg_reload_conf()").unwrap();
    let start = Instant::now();
    loop {
        let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
        let on: String = client.query_one("SHOW ssl", &[]).unwrap().get(0);
        if on == "on" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "ssl not on after reload: {}",
            pg.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(command: &mut Command) {
    let status = command.status().unwrap();
    assert!(status.success(), "{command:?}");
}

/// A store URL on `host` with `options` (and an application name to find its sessions by).
fn url(pg: &TestPostgres, host: &str, application: &str, options: &str) -> String {
    format!(
        "postgres://postgres@{host}:{}/sandscope?application_name={application}&{options}",
        pg.port()
    )
}

/// Whether the store's sessions named `application` use TLS (`None`: it has none).
fn sessions_use_tls(pg: &TestPostgres, application: &str) -> Option<bool> {
    let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    let row = client
        .query_one(
            "SELECT count(*), bool_and(s.ssl) FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1",
            &[&application],
        )
        .unwrap();
    let sessions: i64 = row.get(0);
    (sessions > 0).then(|| row.get(1))
}

/// Open the store at `url` and keep one pooled session open (a read takes one).
fn open_and_read(url: &str) -> Result<PgStore, PgStoreError> {
    let store = PgStore::open(url)?;
    store.size_bytes()?;
    Ok(store)
}

fn expect_tls_error(url: &str, reason: &str) -> String {
    match PgStore::open(url) {
        Err(e @ PgStoreError::Tls { .. }) => {
            let m = e.to_string();
            assert!(m.contains("PostgreSQL") && m.contains(reason), "{m}");
            m
        }
        Err(other) => panic!("{url}: not a TLS error: {other}"),
        Ok(_) => panic!("{url}: connected"),
    }
}

fn root(certs: &Certificates, name: &str) -> String {
    format!("sslrootcert={}", certs.path(name).display())
}

#[test]
fn sslmode_require_and_verify_use_tls_and_check_the_server_certificate() {
    let pg = TestPostgres::start();
    let certs = Certificates::make();
    enable_ssl(&pg, &certs);
    PgStore::init(&pg.url()).unwrap();

    // Plaintext as before when the URL asks for nothing, or for `disable`.
    let _plain = open_and_read(&url(&pg, "127.0.0.1", "t_absent", "connect_timeout=10")).unwrap();
    assert_eq!(sessions_use_tls(&pg, "t_absent"), Some(false));
    let _off = open_and_read(&url(&pg, "127.0.0.1", "t_disable", "sslmode=disable")).unwrap();
    assert_eq!(sessions_use_tls(&pg, "t_disable"), Some(false));

    // `require` and `prefer` encrypt without checking the (here unknown) certificate.
    let _r = open_and_read(&url(&pg, "127.0.0.1", "t_require", "sslmode=require")).unwrap();
    assert_eq!(sessions_use_tls(&pg, "t_require"), Some(true));
    let _p = open_and_read(&url(&pg, "127.0.0.1", "t_prefer", "sslmode=prefer")).unwrap();
    assert_eq!(sessions_use_tls(&pg, "t_prefer"), Some(true));

    // verify-full with the CA that signed the certificate, for the name it carries.
    let good = root(&certs, "ca.crt");
    let full = url(
        &pg,
        "127.0.0.1",
        "t_full",
        &format!("sslmode=verify-full&{good}"),
    );
    let _f = open_and_read(&full).unwrap();
    assert_eq!(sessions_use_tls(&pg, "t_full"), Some(true));

    // Another CA: refused by verify-full, verify-ca and require-with-a-root alike.
    let wrong = root(&certs, "other-ca.crt");
    for mode in ["verify-full", "verify-ca", "require"] {
        let m = expect_tls_error(
            &url(
                &pg,
                "127.0.0.1",
                "t_wrong",
                &format!("sslmode={mode}&{wrong}"),
            ),
            "certificate",
        );
        assert!(m.contains("UnknownIssuer"), "{m}");
    }
    assert_eq!(sessions_use_tls(&pg, "t_wrong"), None);

    // The certificate names 127.0.0.1, not localhost: only verify-ca accepts it there.
    let m = expect_tls_error(
        &url(
            &pg,
            "localhost",
            "t_name",
            &format!("sslmode=verify-full&{good}"),
        ),
        "certificate",
    );
    assert!(m.contains("not valid for name \"localhost\""), "{m}");
    let ca = url(
        &pg,
        "localhost",
        "t_ca",
        &format!("sslmode=verify-ca&{good}"),
    );
    let _c = open_and_read(&ca).unwrap();
    assert_eq!(sessions_use_tls(&pg, "t_ca"), Some(true));

    // A root file that is not there is a clear error before any connection.
    let missing = format!("sslrootcert={}", certs.path("missing.crt").display());
    expect_tls_error(
        &url(
            &pg,
            "127.0.0.1",
            "t_missing",
            &format!("sslmode=verify-full&{missing}"),
        ),
        "missing.crt",
    );
}

#[test]
fn a_server_without_tls_refuses_require_and_prefer_falls_back_to_plaintext() {
    let pg = TestPostgres::start();
    PgStore::init(&pg.url()).unwrap();
    let m = expect_tls_error(
        &url(&pg, "127.0.0.1", "t_require", "sslmode=require"),
        "server does not support TLS",
    );
    assert!(m.contains("sslmode"), "{m}");
    let _p = open_and_read(&url(&pg, "127.0.0.1", "t_prefer", "sslmode=prefer")).unwrap();
    assert_eq!(sessions_use_tls(&pg, "t_prefer"), Some(false));
}

#[test]
fn unknown_sslmode_is_a_bad_url() {
    let url = "postgres://postgres@127.0.0.1:1/sandscope?sslmode=allow";
    match PgStore::open(url) {
        Err(e @ PgStoreError::BadUrl(_)) => {
            let m = e.to_string();
            assert!(
                m.contains("sslmode=allow") && m.contains("verify-full"),
                "{m}"
            );
        }
        other => panic!("sslmode=allow: {:?}", other.err()),
    }
}

/// Make `pg` demand a client certificate signed by `certs`' CA from [`CERT_USER`] (a
/// superuser), as a `hostssl … cert` line ahead of the test server's trust lines.
fn require_client_certificates(pg: &TestPostgres, certs: &Certificates) {
    let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    let hba_file: String = client.query_one("SHOW hba_file", &[]).unwrap().get(0);
    let hba = std::fs::read_to_string(&hba_file).unwrap();
    std::fs::write(
        &hba_file,
        format!("hostssl all {CERT_USER} 127.0.0.1/32 cert\n{hba}"),
    )
    .unwrap();
    pg.psql(&format!("CREATE ROLE {CERT_USER} LOGIN SUPERUSER"))
        .unwrap();
    pg.psql(&format!(
        "ALTER SYSTEM SET ssl_ca_file = '{}'",
        certs.path("ca.crt").display()
    ))
    .unwrap();
    pg.psql("SELECT pg_reload_conf()").unwrap();
    let start = Instant::now();
    loop {
        let ca: String = client.query_one("SHOW ssl_ca_file", &[]).unwrap().get(0);
        if !ca.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "ssl_ca_file not set after reload: {}",
            pg.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `sslcert`/`sslkey` for the client certificate `name`.
fn client_certificate(certs: &Certificates, name: &str) -> String {
    format!(
        "sslcert={}&sslkey={}",
        certs.path(&format!("{name}.crt")).display(),
        certs.path(&format!("{name}.key")).display()
    )
}

/// The TLS state of `pg`'s sessions named `application`: (sessions, all with TLS, the client
/// certificates' distinct subjects).
fn ssl_sessions(pg: &TestPostgres, application: &str) -> (i64, bool, Vec<String>) {
    let mut client = postgres::Client::connect(&pg.url(), postgres::NoTls).unwrap();
    let row = client
        .query_one(
            "SELECT count(*), coalesce(bool_and(s.ssl), false), \
             coalesce(array_agg(DISTINCT s.client_dn) FILTER (WHERE s.client_dn IS NOT NULL), '{}') \
             FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1",
            &[&application],
        )
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

#[test]
fn a_client_certificate_in_the_url_logs_in_where_pg_hba_demands_one() {
    let pg = TestPostgres::start();
    let certs = Certificates::make();
    enable_ssl(&pg, &certs);
    require_client_certificates(&pg, &certs);
    PgStore::init(&pg.url()).unwrap();
    let as_cert_user = |application: &str, options: &str| {
        format!(
            "postgres://{CERT_USER}@127.0.0.1:{}/sandscope?application_name={application}&sslmode=verify-full&{}&{options}",
            pg.port(),
            root(&certs, "ca.crt")
        )
    };

    let _store = open_and_read(&as_cert_user(
        "t_cert",
        &client_certificate(&certs, "client"),
    ))
    .unwrap();
    assert_eq!(
        ssl_sessions(&pg, "t_cert"),
        (1, true, vec![format!("/CN={CERT_USER}")])
    );

    // No certificate: the server refuses the login, and says so.
    match PgStore::open(&as_cert_user("t_none", "connect_timeout=10")) {
        Err(e @ PgStoreError::Authentication { .. }) => {
            // The server's reason, not the client's "db error".
            assert!(
                e.to_string()
                    .contains("requires a valid client certificate"),
                "{e}"
            )
        }
        Err(other) => panic!("without a certificate: {other}"),
        Ok(_) => panic!("logged in without a certificate"),
    }
    // A certificate from a CA the server does not trust: no session.
    let other = PgStore::open(&as_cert_user(
        "t_other",
        &client_certificate(&certs, "other-client"),
    ));
    assert!(other.is_err(), "a certificate of another CA was accepted");
    assert_eq!(ssl_sessions(&pg, "t_other").0, 0);
}

#[test]
fn the_shard_link_takes_the_shard_url_tls_options_and_client_certificate() {
    let cluster = TestCluster::start(Layout::TwoServers);
    let certs = Certificates::make();
    let second = cluster.shard_server();
    enable_ssl(second, &certs);
    require_client_certificates(second, &certs);
    // The second server only lets CERT_USER in over TLS with its certificate; the store's
    // server reaches it with what its URL says.
    let shard = format!(
        "postgres://{CERT_USER}@127.0.0.1:{}/sandscope?sslmode=verify-full&{}&{}",
        second.port(),
        root(&certs, "ca.crt"),
        client_certificate(&certs, "client")
    );
    PgStore::init_sharded(&cluster.url(), &[cluster.url(), shard]).unwrap();
    let store = PgStore::open(&cluster.url()).unwrap();
    let reports: Vec<NewReport> = vendored::vendored()
        .iter()
        .filter_map(|p| vendored::report_of(p))
        .collect();
    store.put_reports(reports.clone()).unwrap();
    for r in &reports {
        assert_eq!(
            store.report(&r.behaviour.id).unwrap().as_ref(),
            Some(&r.behaviour)
        );
    }
    let mut direct = postgres::Client::connect(&second.url(), postgres::NoTls).unwrap();
    let on_second: i64 = direct
        .query_one("SELECT count(*) FROM reports_p1", &[])
        .unwrap()
        .get(0);
    assert!(on_second > 0, "some reports are on the second server");

    // The store's server's link (postgres_fdw's sessions) runs over TLS with the certificate.
    let (sessions, ssl, subjects) = ssl_sessions(second, "postgres_fdw");
    assert!(sessions >= 1, "no link session on the second server");
    assert!(ssl, "the link is plaintext");
    assert_eq!(subjects, [format!("/CN={CERT_USER}")]);
    let options: Vec<String> = postgres::Client::connect(&cluster.url(), postgres::NoTls)
        .unwrap()
        .query_one(
            "SELECT srvoptions::text[] FROM pg_foreign_server WHERE srvname = 'sandscope_shard_1'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        options.contains(&"sslmode=verify-full".to_string()),
        "{options:?}"
    );
}
