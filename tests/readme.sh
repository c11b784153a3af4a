#!/usr/bin/env bash
# The README's two commands, exactly as README.md writes them (issue 13).
#
#   tests/readme.sh test-command   print the README's test command (.ci/run runs what it prints)
#   tests/readme.sh main           run the README's main command as written, in this checkout,
#                                  wait until it serves, then check that the API answers the
#                                  seed query with the README's key (or the key the server
#                                  prints when the README gives none), that a read command
#                                  works beside the running server, and that the UI loads
#
# The commands are the indented lines of the README's "## Two commands" section: the first is
# the main job, the second the tests. Nothing of them is changed. Screens and the server's
# output go to $ARTEFACTS_DIR (default target/e2e-artefacts).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

readme_commands() {
    awk '/^## /{section=$0; next} section=="## Two commands" && /^    [^ ]/{sub(/^    /, ""); print}' README.md
}

main_command=$(readme_commands | sed -n 1p)
test_command=$(readme_commands | sed -n 2p)
if [[ -z "$main_command" || -z "$test_command" ]]; then
    echo "readme: README.md has no '## Two commands' section with two indented commands" >&2
    exit 1
fi

case "${1:-}" in
test-command)
    echo "$test_command"
    exit 0
    ;;
main) ;;
*)
    echo "usage: tests/readme.sh test-command|main" >&2
    exit 2
    ;;
esac

artefacts="${ARTEFACTS_DIR:-$root/target/e2e-artefacts}"
mkdir -p "$artefacts"
log="$artefacts/readme-main.log"
timeout_s="${README_TIMEOUT:-1800}"

echo "readme: main command, as written: $main_command"
# Its own session, so the whole group (cargo and the server it runs) is stopped at the end.
setsid bash -c "exec $main_command" >"$log" 2>&1 </dev/null &
server_pid=$!
stop() {
    kill -INT -- "-$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$server_pid" 2>/dev/null || return 0
        sleep 0.2
    done
    kill -KILL -- "-$server_pid" 2>/dev/null || true
}
trap stop EXIT

url=""
deadline=$((SECONDS + timeout_s))
while [[ -z "$url" ]]; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "readme: FAILED — the main command exited before serving:" >&2
        tail -40 "$log" >&2
        exit 1
    fi
    url=$(sed -n 's|^Sandscope is serving at \(http[^ ]*\)/ .*|\1|p' "$log" | head -1)
    if ((SECONDS > deadline)); then
        echo "readme: FAILED — not serving after ${timeout_s}s" >&2
        tail -40 "$log" >&2
        exit 1
    fi
    sleep 1
done

key=$(sed -n 's/.*--api-key[ =]\([^ ]*\).*/\1/p' <<<"$main_command")
if [[ -z "$key" ]]; then
    key=$(sed -n 's/^API key for this run[^:]*: \([^ ]*\)$/\1/p' "$log" | head -1)
fi
if [[ -z "$key" ]]; then
    echo "readme: FAILED — the README gives no key and the server printed none" >&2
    exit 1
fi

query='behaviour_files:@tutanota.com'
answer=$(curl -sS --fail-with-body -H "x-apikey: $key" \
    "$url/api/v3/intelligence/search?query=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$query")")
hits=$(python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print(" ".join(x["id"] for x in d["data"]))' "$answer")
expected=8c18288195245660d3836693ec97509d43df8e25d52ff3858b9778aa2c4725e1
if [[ " $hits " != *" $expected "* ]]; then
    echo "readme: FAILED — the seed query found [$hits], not the seed sample $expected" >&2
    exit 1
fi
echo "readme: the API answers the seed query with the README's key: $hits"

# A read command beside the running server (it goes through the server's control socket).
data=$(sed -n 's/.*--data[ =]\([^ ]*\).*/\1/p' <<<"$main_command")
data=${data:-sandscope-data}
binary="$root/target/release/sandscope"
[[ -x "$binary" ]] || binary="$root/target/debug/sandscope"
cli=$("$binary" search --data "$data" --format json "$query")
if ! grep -q "$expected" <<<"$cli"; then
    echo "readme: FAILED — 'sandscope search --data $data' beside the server did not find the seed sample:" >&2
    echo "$cli" >&2
    exit 1
fi
echo "readme: 'sandscope search --data $data' works beside the server"

page=$(curl -sS --fail "$url/")
if ! grep -q '<title>Sandscope' <<<"$page"; then
    echo "readme: FAILED — the UI at $url/ did not load" >&2
    exit 1
fi
script=$(sed -n 's/.*<script[^>]*src="\([^"]*\)".*/\1/p' <<<"$page" | head -1)
if [[ -n "$script" ]]; then
    curl -sS --fail -o /dev/null "$url/${script#/}"
fi
echo "readme: the UI loads at $url/"
echo "readme: passed"
