"""Starts `sandscope serve` on generated Sysmon logs for the vt-py suite.

`SANDSCOPE_BIN` names the binary (default: target/debug/sandscope of this checkout); it is run
as `<bin> serve --data <tmp> --listen 127.0.0.1:<port> --ingest <logs> --api-key <key>`.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from sysmon_fixtures import write_fixtures  # noqa: E402

API_KEY = "vt-suite-key-7c1e9a"
# Ingest with the bundled Sigma rules can take a while on a busy CI machine.
STARTUP_TIMEOUT_S = float(os.environ.get("SANDSCOPE_STARTUP_TIMEOUT", "600"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    binary = os.environ.get("SANDSCOPE_BIN", str(ROOT / "target" / "debug" / "sandscope"))
    logs = tmp_path_factory.mktemp("logs")
    manifest = write_fixtures(logs)
    data = tmp_path_factory.mktemp("data")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    output = open(tmp_path_factory.mktemp("server") / "server.log", "w+")
    process = subprocess.Popen(
        [binary, "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}",
         "--ingest", str(logs), "--api-key", API_KEY],
        stdout=output, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if process.poll() is not None:
            output.seek(0)
            pytest.fail(f"sandscope serve exited with {process.returncode}:\n{output.read()}")
        try:
            with urllib.request.urlopen(f"{url}/api/v3/sandscope/health", timeout=2) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("sandscope serve did not answer its health check in time")
        time.sleep(0.3)
    yield {"url": url, "key": API_KEY, "manifest": manifest, "process": process}
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
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
