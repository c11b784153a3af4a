"""Starting and stopping `sandscope serve` for the Python suites (tests/vt, tests/interop):
a free loopback port, the wait for its health check, and a clean stop."""

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

STARTUP_TIMEOUT_S = float(os.environ.get("SANDSCOPE_STARTUP_TIMEOUT", "600"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(process, url, log):
    """Wait for the `sandscope serve` started as `process` (its output going to the file `log`)
    to answer its health check at `url`; fail the test with its output if it exits or stays
    silent past SANDSCOPE_STARTUP_TIMEOUT seconds."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if process.poll() is not None:
            log.seek(0)
            pytest.fail(f"sandscope serve exited with {process.returncode}:\n{log.read()}")
        try:
            with urllib.request.urlopen(f"{url}/api/v3/sandscope/health", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("sandscope serve did not answer its health check in time")
        time.sleep(0.3)


def stop(process, timeout=30):
    """Stop a server as a service manager would (SIGTERM), killing it if it hangs."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
