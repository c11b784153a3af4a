"""Fixtures of the interop suite: a data directory holding real CAPE runs, the exports of
every stored sample made with the `sandscope` binary, and a `sandscope serve` over the same
data for the export endpoints.

`SANDSCOPE_BIN` names the binary (default: target/debug/sandscope of this checkout).
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
sys.path.insert(0, str(ROOT / "tests" / "support"))
from sandscope_serve import STARTUP_TIMEOUT_S, free_port, stop, wait_until_healthy  # noqa: E402,F401
BINARY = os.environ.get("SANDSCOPE_BIN", str(ROOT / "target" / "debug" / "sandscope"))
API_KEY = "interop-suite-key-51d2"

CAPE_SAMPLES = ROOT / "tests/data/cape/CybercentreCanada_assemblyline-service-cape/commit-6296081/tests/samples"
# Whole CAPE run folders (report + guest Sysmon log → two reports per sample).
CAPE_RUNS = [
    CAPE_SAMPLES / "b145e2ec11257461442f8a42e1b34b303ff7eba7b27a8b65cb0ae6ac67950d10",
    CAPE_SAMPLES / "9088f800b991f31f3e66cebf61514dd64d605eedbccc5c206bc3f05fb56bd788",
]
# CAPE lite reports alone (one report per sample): those of the two whole run folders above,
# and those of the two runs vendored without one.
LITE_REPORTS = sorted(
    [
        *(report for run in CAPE_RUNS for report in run.glob("Report/reports/lite.json*")),
        *(ROOT / "tests/data/CybercentreCanada_assemblyline-service-cape/tests/samples").glob("*/Report/reports/lite.json*"),
    ],
    key=lambda report: report.parents[2].name,
)
CAPE_RUN_SHA256 = CAPE_RUNS[0].name


def sandscope(*args, check=True, **kwargs):
    """Run the binary; return the CompletedProcess (stdout as bytes)."""
    result = subprocess.run([BINARY, *map(str, args)], capture_output=True, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(
            f"sandscope {' '.join(map(str, args))} exited {result.returncode}:\n"
            + result.stderr.decode(errors="replace")[-4000:]
        )
    return result


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    sandscope("ingest", "--data", data, *CAPE_RUNS)
    for report in LITE_REPORTS:
        sandscope("ingest", "--data", data, report)
    return data


@pytest.fixture(scope="session")
def samples(data_dir):
    """Every stored sample: the run folders' and the lite reports' targets."""
    found = set()
    for path in [*CAPE_RUNS, *LITE_REPORTS]:
        name = path.name if path.is_dir() else path.parents[2].name
        found.add(name)
    shown = [s for s in sorted(found) if sandscope("show", "--data", data_dir, s, check=False).returncode == 0]
    assert CAPE_RUN_SHA256 in shown
    return shown


@pytest.fixture(scope="session")
def reports(data_dir, samples):
    """sha256 → the stored behaviour reports (as `sandscope show` prints them)."""
    return {s: json.loads(sandscope("show", "--data", data_dir, s).stdout)["data"] for s in samples}


@pytest.fixture(scope="session")
def exports(data_dir, samples, tmp_path_factory):
    """(format, sha256) → path of the CLI export; every sample is exported twice to check
    that the bytes do not change."""
    folder = tmp_path_factory.mktemp("exports")
    paths = {}
    for fmt in ("misp", "stix"):
        for sha256 in samples:
            first = folder / f"{sha256}.{fmt}.json"
            sandscope("export", fmt, sha256, "--data", data_dir, "--out", first)
            again = sandscope("export", fmt, sha256, "--data", data_dir).stdout
            assert again == first.read_bytes(), f"{fmt} export of {sha256} is not deterministic"
            paths[(fmt, sha256)] = first
    return paths



@pytest.fixture(scope="session")
def sample_timeline(data_dir, tmp_path_factory):
    """The Timesketch timeline of the CAPE run's stored logs (`timeline --sample`)."""
    path = tmp_path_factory.mktemp("timeline") / "sample.jsonl"
    sandscope("timeline", "--sample", CAPE_RUN_SHA256, "--data", data_dir, "--out", path)
    return path


@pytest.fixture(scope="session")
def server(data_dir, exports, sample_timeline, tmp_path_factory):
    """`sandscope serve` over the data directory (started after the CLI exports: one process
    opens a data directory at a time)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp_path_factory.mktemp("server") / "server.log", "w+")
    process = subprocess.Popen(
        [BINARY, "serve", "--data", str(data_dir), "--listen", f"127.0.0.1:{port}", "--api-key", API_KEY],
        stdout=log, stderr=subprocess.STDOUT,
    )
    wait_until_healthy(process, url, log)
    yield url
    stop(process)


def get(url, path):
    """GET with the API key: (status, headers, body bytes)."""
    request = urllib.request.Request(url + path, headers={"x-apikey": API_KEY})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
