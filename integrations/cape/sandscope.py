"""Sandscope reporting module for CAPE: sends each finished analysis to a Sandscope server.

Copy this file to CAPE's ``modules/reporting/sandscope.py`` and enable it in
``conf/reporting.conf`` (see ``reporting.conf`` beside this file). For every analysis of a
file it uploads, to ``POST /api/v3/sandscope/ingest`` with the sample's SHA-256 and an API key
of the ingest role, in one request that Sandscope takes as one run folder (as
``sandscope ingest <analysis folder>`` would):

* the CAPE report (``reports/report.json``, else ``reports/lite.json``; if neither was written,
  the results CAPE hands to reporting modules, as JSON), which Sandscope stores as the sample's
  ``CAPE Sandbox`` report;
* the guest's Sysmon logs (``evtx/``, ``sysmon/``), which Sandscope turns into the sample's
  ``Microsoft Sysinternals`` report (or the report's embedded ``sysmon`` array, if it holds more
  events);
* ``files.json``, CAPE's list of the files the analysis uploaded, from which a lite report's
  dropped files are read.

Uploads are gzip-compressed. A connection failure, a timeout, or an answer of 408, 429 or 5xx
is retried with exponential back-off; any other refusal (a bad key, a file Sandscope cannot
read) fails at once with the server's message. Only the Python standard library is used.
"""

import gzip
import json
import logging
import os
import time
import urllib.error
import urllib.request
import uuid

from lib.cuckoo.common.abstracts import Report
from lib.cuckoo.common.exceptions import CuckooReportError

log = logging.getLogger(__name__)

INGEST_PATH = "/api/v3/sandscope/ingest"
# The full report first: the lite one leaves out sections.
REPORT_FILES = ("report.json", "lite.json")
SYSMON_FOLDERS = ("evtx", "sysmon")
RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 507})
MAX_BACKOFF_S = 60.0


class Sandscope(Report):
    """Upload a finished analysis (report and Sysmon logs) to Sandscope."""

    # After the modules that write reports/report.json and reports/lite.json.
    order = 10000

    def run(self, results):
        url = str(self._option("url", "")).rstrip("/")
        key = str(self._option("apikey", ""))
        if not url or not key:
            raise CuckooReportError("sandscope: set url and apikey in reporting.conf [sandscope]")
        sha256 = _sample_sha256(results)
        if sha256 is None:
            log.info("sandscope: the analysis has no file target (URL task?); nothing sent")
            return
        files = [self._report(results)] + self._sysmon_logs() + self._files_json()
        answer = self._upload(url + INGEST_PATH, key, sha256, files)
        stored = [item.get("id") for item in answer.get("data", [])]
        log.info("sandscope: analysis of %s stored as %s", sha256, ", ".join(map(str, stored)))
        for warning in answer.get("meta", {}).get("warnings", []):
            log.warning("sandscope: %s", warning)

    def _option(self, name, default):
        options = self.options or {}
        value = options.get(name, default)
        return default if value is None else value

    def _report(self, results):
        """(relative name, gzip bytes) of the analysis's CAPE report."""
        for name in REPORT_FILES:
            path = os.path.join(self.analysis_path, "reports", name)
            if os.path.isfile(path):
                with open(path, "rb") as report:
                    return "reports/" + name + ".gz", gzip.compress(report.read())
        # CAPE's results hold a few values JSON does not know (dates): sent as text.
        text = json.dumps(results, default=str).encode("utf-8")
        return "reports/report.json.gz", gzip.compress(text)

    def _sysmon_logs(self):
        """[(relative name, bytes)] of the guest's Sysmon logs, gzipped unless compressed."""
        files = []
        for folder in SYSMON_FOLDERS:
            top = os.path.join(self.analysis_path, folder)
            for parent, dirs, names in os.walk(top):
                dirs.sort()
                files.extend(os.path.join(parent, n) for n in sorted(names) if not n.startswith("."))
        logs = []
        for path in files:
            with open(path, "rb") as log_file:
                data = log_file.read()
            name = os.path.relpath(path, self.analysis_path).replace(os.sep, "/")
            logs.append((name, data) if _is_compressed(data) else (name + ".gz", gzip.compress(data)))
        return logs

    def _files_json(self):
        """[("files.json", bytes)] when the analysis folder has one (a lite report's dropped files)."""
        path = os.path.join(self.analysis_path, "files.json")
        if not os.path.isfile(path):
            return []
        with open(path, "rb") as listing:
            return [("files.json", listing.read())]

    def _upload(self, endpoint, key, sha256, files):
        """POST the run's files in one request; the server's JSON answer. Retries what may pass
        later."""
        retries = int(self._option("retries", 5))
        delay = float(self._option("backoff", 2))
        timeout = float(self._option("timeout", 600))
        name = "the analysis of %s" % sha256
        boundary, body = _multipart({"sha256": sha256}, files)
        headers = {"x-apikey": key, "Content-Type": "multipart/form-data; boundary=" + boundary}
        attempt = 0
        while True:
            attempt += 1
            request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    return json.loads(response.read().decode("utf-8") or "{}")
            except urllib.error.HTTPError as error:
                message = _error_message(error)
                if error.code not in RETRIED_STATUSES or attempt > retries:
                    raise CuckooReportError(
                        "sandscope: %s refused %s (HTTP %d): %s" % (endpoint, name, error.code, message)
                    ) from error
                problem = "HTTP %d: %s" % (error.code, message)
            except (urllib.error.URLError, OSError) as error:
                if attempt > retries:
                    raise CuckooReportError(
                        "sandscope: could not send %s to %s: %s" % (name, endpoint, error)
                    ) from error
                problem = str(error)
            log.warning("sandscope: sending %s failed (%s); retrying in %.1f s", name, problem, delay)
            time.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)


def _sample_sha256(results):
    """The analysed file's SHA-256, or None for analyses of something else (a URL)."""
    target = results.get("target") or {}
    if target.get("category", "file") not in ("file", "static"):
        return None
    sha256 = str((target.get("file") or {}).get("sha256") or "").strip().lower()
    if len(sha256) == 64 and all(c in "0123456789abcdef" for c in sha256):
        return sha256
    return None


def _is_compressed(data):
    return data[:2] == b"\x1f\x8b" or data[:4] == b"PK\x03\x04"


def _multipart(fields, files):
    """(boundary, body) of a multipart/form-data upload of `fields` and `files`
    ([(relative name, bytes)], each a `file` part named by its path in the analysis folder)."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(
            ('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (boundary, name, value)).encode()
        )
    for file_name, data in files:
        safe_name = "".join(c for c in file_name if c not in '"\r\n\\') or "upload"
        parts.append(
            (
                '--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n" % (boundary, safe_name)
            ).encode("utf-8")
            + data
            + b"\r\n"
        )
    parts.append(("--%s--\r\n" % boundary).encode())
    return boundary, b"".join(parts)


def _error_message(error):
    """The `error.message` of a VirusTotal-style error answer, else its text."""
    try:
        text = error.read().decode("utf-8", "replace")
    except OSError:
        return error.reason
    try:
        return json.loads(text)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return text[:500] or str(error.reason)
