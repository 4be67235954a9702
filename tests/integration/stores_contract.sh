#!/usr/bin/env bash
# The store contract (src/store/testing/contract_test.cc) against real object stores: starts the
# Swift test bed (Swift with s3api and SLO, scripts/testbed.sh) and runs the contract binary, whose
# Swift and S3 cases need it (without the test bed they skip).
# Usage: stores_contract.sh PATH-TO-store_contract_test
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"
BIN="${1:?usage: stores_contract.sh PATH-TO-store_contract_test}"
IT_NAME=stores_contract
IT_TMP="$(mktemp -d "${TMPDIR:-/tmp}/ingot-it-stores_contract.XXXXXX")"
trap it_cleanup EXIT
. "$HERE/stores_testbed.sh"
if "$BIN" --gtest_brief=1 > "$IT_TMP/contract.out" 2>&1; then
  pass "store contract on file, Swift and S3 ($(grep -oE '[0-9]+ tests? from' "$IT_TMP/contract.out" | head -1 | cut -d' ' -f1) tests)"
else
  fail "store contract" "$(grep -E 'FAILED|Failure|error' "$IT_TMP/contract.out" | head -10 | tr '\n' ' ')"
  sed 's/^/      /' "$IT_TMP/contract.out" | tail -40
fi
if grep -q "SKIPPED.*/swift\|SKIPPED.*/s3" "$IT_TMP/contract.out"; then
  fail "Swift and S3 cases ran" "$(grep SKIPPED "$IT_TMP/contract.out" | head -3 | tr '\n' ' ')"
else
  pass "Swift and S3 cases ran (none skipped)"
fi
it_finish
