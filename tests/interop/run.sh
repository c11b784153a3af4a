#!/usr/bin/env bash
# Interop suite of issue 18: Sandscope's MISP, STIX 2.1 and Timesketch exports checked by the
# ecosystem's own tools (PyMISP, stix2-validator, the stix2 library, Python's csv/json readers)
# against real CAPE runs from tests/data, and the CAPE reporting module (integrations/cape)
# sending real CAPE runs to a real `sandscope serve`. Installs what is missing, runs pytest, exits non-zero
# if a test fails. SANDSCOPE_BIN overrides the binary (default: target/debug/sandscope, built).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

if [[ -z "${SANDSCOPE_BIN:-}" ]]; then
    cargo build -p sandscope
    SANDSCOPE_BIN="$root/target/debug/sandscope"
fi
export SANDSCOPE_BIN

if ! python3 -c 'import pymisp, stix2, stix2validator, pytest' 2>/dev/null; then
    # Debian's own python refuses user installs (PEP 668) unless told otherwise.
    python3 -m pip install --quiet pymisp stix2 stix2-validator pytest \
        || python3 -m pip install --quiet --break-system-packages pymisp stix2 stix2-validator pytest
fi

echo "interop: MISP, STIX 2.1 and Timesketch exports; the CAPE reporting module"
python3 -m pytest -q -p no:cacheprovider tests/interop
