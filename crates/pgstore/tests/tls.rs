//! TLS to a real PostgreSQL: `sslmode` and `sslrootcert` in the store URL against a server
//! with `ssl=on` and a certificate signed by a CA the test makes (openssl CLI), and against a
//! server without TLS.

#[path = "../../../tests/support/postgres.rs"]
mod postgres_server;

use postgres_server::TestPostgres;
use sandscope_pgstore::{PgStore, PgStoreError};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A CA, a server certificate it signed (for 127.0.0.1 only) and an unrelated CA.
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
        certs
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

/// Turn TLS on in a running server with `certs`' server certificate (a reload suffices).
fn enable_ssl(pg: &TestPostgres, certs: &Certificates) {
    let as_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let key = certs.path("server.key");
    // The server (the `postgres` user when we are root) reads the files; the key must be its
    // own and private.
    run(Command::new("chmod").arg("755").arg(certs.dir.path()));
    run(Command::new("chmod").arg("600").arg(&key));
    if as_root {
        run(Command::new("chown").arg("postgres").arg(&key));
    }
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
