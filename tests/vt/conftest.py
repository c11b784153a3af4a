"""Starts `sandscope serve` on generated Sysmon logs for the vt-py suite.

`SANDSCOPE_BIN` names the binary (default: target/debug/sandscope of this checkout); it is run
as `<bin> serve --data <tmp> --listen 127.0.0.1:<port> --ingest <logs> --api-key <key>`.

With `SANDSCOPE_TLS=1` the server serves HTTPS (`--tls-cert/--tls-key`) with a certificate
signed by a throw-away CA made here with openssl; the CA goes to `SSL_CERT_FILE`, which
Python's default TLS context (and so vt-py's aiohttp session and urllib) trusts, so vt-py
runs unchanged.
"""

import json
import os
import pathlib
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from sandscope_serve import STARTUP_TIMEOUT_S, free_port, stop, wait_until_healthy  # noqa: E402,F401
from sysmon_fixtures import write_fixtures  # noqa: E402

API_KEY = "vt-suite-key-7c1e9a"
# Ingest with the bundled Sigma rules can take a while on a busy CI machine.



TLS = os.environ.get("SANDSCOPE_TLS") == "1"


def make_certificate(folder):
    """A CA and a server certificate for 127.0.0.1 signed by it; returns (ca, cert, key)."""
    ca_key, ca = folder / "ca.key", folder / "ca.pem"
    key, csr, cert = folder / "server.key", folder / "server.csr", folder / "server.pem"
    ext = folder / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                   "basicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\n")

    def openssl(*args):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=sandscope test CA", "-keyout", ca_key, "-out", ca)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", key, "-out", csr)
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-days", "2", "-extfile", ext, "-out", cert)
    return ca, cert, key


# Made before any test module imports vt (aiohttp builds its default TLS context on import).
CERTIFICATE = None
if TLS:
    import tempfile
    CERTIFICATE = make_certificate(pathlib.Path(tempfile.mkdtemp(prefix="sandscope-tls-")))
    os.environ["SSL_CERT_FILE"] = str(CERTIFICATE[0])


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    binary = os.environ.get("SANDSCOPE_BIN", str(ROOT / "target" / "debug" / "sandscope"))
    logs = tmp_path_factory.mktemp("logs")
    manifest = write_fixtures(logs)
    data = tmp_path_factory.mktemp("data")
    port = free_port()
    command = [binary, "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}",
               "--ingest", str(logs), "--api-key", API_KEY]
    if CERTIFICATE:
        _, cert, key = CERTIFICATE
        command += ["--tls-cert", str(cert), "--tls-key", str(key)]
    url = f"{'https' if TLS else 'http'}://127.0.0.1:{port}"
    output = open(tmp_path_factory.mktemp("server") / "server.log", "w+")
    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    wait_until_healthy(process, url, output)
    yield {"url": url, "key": API_KEY, "manifest": manifest, "process": process, "tls": TLS}
    stop(process)
    output.seek(0)
    sys.stderr.write(output.read()[-4000:])


def raw_get(url, headers=None):
    """GET without vt-py, returning (status, content type, parsed JSON body)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.headers.get("Content-Type"), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), json.loads(e.read())
