#!/usr/bin/env bash
# End-to-end suites of issue 7 against a real `sandscope serve`:
#   tests/vt       — VirusTotal's vt-py client, unchanged (pytest), over HTTP and over HTTPS
#   tests/browser  — the web UI in headless Chromium (playwright-core driving Debian's chromium)
# Installs what is missing (vt-py, pytest, chromium, the npm lock), runs both, exits non-zero
# if either fails. Screenshots and the server log go to $ARTEFACTS_DIR (default
# target/e2e-artefacts).
#
# SANDSCOPE_BIN overrides the binary (any build of `sandscope`, e.g. target/release/sandscope).
# Without it, the `sandscope` binary is built and used — and the suites are skipped, with a
# message, while it has no `serve` subcommand yet.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [[ -z "${SANDSCOPE_BIN:-}" ]]; then
    cargo build -p sandscope
    SANDSCOPE_BIN="$root/target/debug/sandscope"
fi
export SANDSCOPE_BIN
if ! "$SANDSCOPE_BIN" serve --help >/dev/null 2>&1; then
    echo "e2e: SKIPPED — '$SANDSCOPE_BIN serve' does not exist yet (the store is not wired into the CLI)."
    exit 0
fi

export ARTEFACTS_DIR="${ARTEFACTS_DIR:-$root/target/e2e-artefacts}"
mkdir -p "$ARTEFACTS_DIR"

if ! python3 -c 'import vt, pytest' 2>/dev/null; then
    # Debian's own python refuses user installs (PEP 668) unless told otherwise.
    python3 -m pip install --quiet vt-py pytest \
        || python3 -m pip install --quiet --break-system-packages vt-py pytest
fi
if [[ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]]; then
    if [[ $(id -u) -eq 0 ]]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
fi
(cd tests/browser && npm ci --no-audit --no-fund --silent)

status=0
echo "e2e: vt-py suite"
python3 -m pytest -q tests/vt || status=1
echo "e2e: vt-py suite over HTTPS (serve --tls-cert/--tls-key, a throw-away CA)"
SANDSCOPE_TLS=1 python3 -m pytest -q -p no:cacheprovider tests/vt || status=1
echo "e2e: browser suite"
node tests/browser/run.mjs || status=1
if [[ $status -ne 0 ]]; then
    echo "e2e: FAILED (artefacts in $ARTEFACTS_DIR)"
else
    echo "e2e: passed (artefacts in $ARTEFACTS_DIR)"
fi
exit $status
