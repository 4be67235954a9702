# Sourced by the stores_* tests after lib.sh's it_init: starts the Swift (+ s3api) test bed once
# for the script (scripts/testbed.sh, ~5-30 s) in the scratch directory and stops it on exit, by
# the PIDs it started. Exports the test bed's environment (SWIFT_*, S3_*, ST_*).
# Exits 77 (skip) when Swift cannot be had on this machine.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TB_DIR="$IT_TMP/testbed"
testbed_down() { TESTBED_DIR="$TB_DIR" "$ROOT/scripts/testbed.sh" down > /dev/null 2>&1 || true; }
trap 'rc=$?; testbed_down; (exit $rc); it_cleanup' EXIT
if ! TESTBED_DIR="$TB_DIR" "$ROOT/scripts/testbed.sh" up swift > "$IT_TMP/testbed.env" 2> "$IT_TMP/testbed.log"; then
  if ! command -v swift-proxy-server > /dev/null; then
    echo "SKIP  Swift is not installed and could not be (scripts/install-deps.sh)"; exit 77
  fi
  echo "FAIL  the Swift test bed did not start:"; tail -5 "$IT_TMP/testbed.log"; exit 1
fi
# shellcheck disable=SC1091
. "$IT_TMP/testbed.env"
it_log "# test bed: Swift $SWIFT_AUTH_URL, S3 $S3_ENDPOINT"
