"""The CAPE reporting module (integrations/cape/sandscope.py) run as CAPE runs it — options
set, then `run(results)` on a finished analysis folder — against a real `sandscope serve`:
the sample's CAPE and Sysmon reports arrive under its SHA-256; a server that is not up yet is
waited for with retries; a refused key fails at once with the server's message.

CAPE itself cannot be installed here; `cape_shim/` stands in for the two names the module
imports from it.
"""

import gzip
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from conftest import BINARY, CAPE_SAMPLES, HERE, ROOT, STARTUP_TIMEOUT_S, free_port, stop, wait_until_healthy

sys.path.insert(0, str(HERE / "cape_shim"))
sys.path.insert(0, str(ROOT / "integrations" / "cape"))

import sandscope as cape_module  # noqa: E402  (CAPE's modules/reporting/sandscope.py)
from lib.cuckoo.common.exceptions import CuckooReportError  # noqa: E402

KEY = "cape-module-ingest-key-7a1c"
LITE_RUN = "b145e2ec11257461442f8a42e1b34b303ff7eba7b27a8b65cb0ae6ac67950d10"
GZIP_RUN = "9088f800b991f31f3e66cebf61514dd64d605eedbccc5c206bc3f05fb56bd788"
# A lite report whose dropped file is listed only in the analysis folder's files.json.
DROPPING_RUN = "491f359c0cf2588e4aa76a527317406927b0900cfc5c24a4736c92d372073b1e"
DROPPING_SAMPLES = ROOT / "tests/data/CybercentreCanada_assemblyline-service-cape/tests/samples"


class Server:
    """`sandscope serve` on a fresh data directory, on a given port."""

    def __init__(self, data, port, log_path):
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(log_path, "w+")
        self.process = subprocess.Popen(
            [BINARY, "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}", "--api-key", KEY, "--no-sigma"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )

    def wait_healthy(self):
        wait_until_healthy(self.process, self.url, self.log)

    def get(self, path):
        request = urllib.request.Request(self.url + path, headers={"x-apikey": KEY})
        with urllib.request.urlopen(request, timeout=60) as r:
            return json.loads(r.read())

    def stop(self):
        stop(self.process)
        self.log.close()


@pytest.fixture
def start_server(tmp_path):
    started = []

    def start(port):
        server = Server(tmp_path / f"data-{port}", port, tmp_path / f"server-{port}.log")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def analysis_folder(tmp_path, run, task_id, samples=CAPE_SAMPLES):
    """A CAPE analysis folder (storage/analyses/<id>/: reports/, evtx/, files.json) holding a
    real run's files, and the results CAPE would hand to the module (its report, parsed)."""
    folder = tmp_path / "storage" / "analyses" / str(task_id)
    shutil.copytree(samples / run / "Report", folder)
    reports = sorted((folder / "reports").iterdir())
    with (gzip.open if reports[0].suffix == ".gz" else open)(reports[0], "rb") as report:
        results = json.load(report)
    if reports[0].suffix == ".gz":
        # CAPE writes plain JSON; this copy of the run came compressed.
        reports[0].with_suffix("").write_text(json.dumps(results))
        reports[0].unlink()
    return folder, results


def reporting_module(folder, url, **options):
    module = cape_module.Sandscope()
    module.set_path(str(folder))
    module.set_options({"enabled": True, "url": url, "apikey": KEY, **options})
    return module


def stored_reports(server, sha256):
    body = server.get(f"/api/v3/files/{sha256}/behaviours")
    return {item["id"]: item["attributes"] for item in body["data"]}


def test_a_finished_analysis_arrives_as_the_samples_cape_and_sysmon_reports(tmp_path, start_server):
    server = start_server(free_port())
    server.wait_healthy()
    folder, results = analysis_folder(tmp_path, LITE_RUN, 17)
    reporting_module(folder, server.url).run(results)

    reports = stored_reports(server, LITE_RUN)
    assert sorted(reports) == [f"{LITE_RUN}_CAPE Sandbox", f"{LITE_RUN}_Microsoft Sysinternals"]
    assert reports[f"{LITE_RUN}_CAPE Sandbox"]["sandbox_name"] == "CAPE Sandbox"
    # The Sysmon report was built from the guest's EVTX log: what the sample wrote is there.
    sysmon = reports[f"{LITE_RUN}_Microsoft Sysinternals"]
    assert sysmon.get("has_evtx") and sysmon.get("files_written"), sysmon
    # Sent again (CAPE re-processing the task): replaced, not doubled.
    reporting_module(folder, server.url).run(results)
    assert sorted(stored_reports(server, LITE_RUN)) == sorted(reports)


def test_files_json_goes_with_the_report_so_a_lite_report_keeps_its_dropped_files(tmp_path, start_server):
    server = start_server(free_port())
    server.wait_healthy()
    folder, results = analysis_folder(tmp_path, DROPPING_RUN, 20, samples=DROPPING_SAMPLES)
    reporting_module(folder, server.url).run(results)
    reports = stored_reports(server, DROPPING_RUN)
    cape = reports[f"{DROPPING_RUN}_CAPE Sandbox"]
    listed = [json.loads(line) for line in (folder / "files.json").read_text().splitlines() if line.strip()]
    dropped = [entry for entry in listed if entry.get("category") == "files"]
    assert dropped, "the vendored run lists a dropped file"
    assert len(cape.get("files_dropped", [])) == len(dropped), cape.get("files_dropped")


def test_a_server_not_up_yet_is_waited_for(tmp_path, start_server, caplog):
    port = free_port()
    folder, results = analysis_folder(tmp_path, GZIP_RUN, 18)
    module = reporting_module(folder, f"http://127.0.0.1:{port}", retries=12, backoff=0.5)
    outcome = {}

    def report():
        try:
            module.run(results)
            outcome["done"] = True
        except Exception as error:  # noqa: BLE001 - shown by the assertion below
            outcome["error"] = error

    thread = threading.Thread(target=report)
    thread.start()
    # The module's first attempts find nothing listening; then the server comes up.
    time.sleep(1)
    server = start_server(port)
    server.wait_healthy()
    thread.join(timeout=STARTUP_TIMEOUT_S)
    assert outcome.get("done"), outcome
    assert any("retrying in" in record.getMessage() for record in caplog.records), caplog.text
    assert sorted(stored_reports(server, GZIP_RUN)) == [f"{GZIP_RUN}_CAPE Sandbox", f"{GZIP_RUN}_Microsoft Sysinternals"]


def test_a_refused_key_fails_at_once_with_the_servers_message(tmp_path, start_server):
    server = start_server(free_port())
    server.wait_healthy()
    folder, results = analysis_folder(tmp_path, LITE_RUN, 19)
    module = reporting_module(folder, server.url, retries=5, backoff=30)
    module.options["apikey"] = "not-the-key-at-all"
    started = time.monotonic()
    with pytest.raises(CuckooReportError) as raised:
        module.run(results)
    # No back-off (30 s) was slept: a refusal is not retried.
    assert time.monotonic() - started < 30
    assert "HTTP 401" in str(raised.value), raised.value
