#!/usr/bin/env bash
# The operator's side of rollouts, without a broker: the fleet's
# configuration makes publish stage releases; rollout create refuses what it
# cannot roll out (a release or artifact the store lacks, bad waves, windows
# or selections, a second rollout of a product); the state changes an
# operator can make, and those it cannot; everything lands in the log.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLOUD=$(ferry_bin ferry-cloud)
STORE="$TEST_TMP/store"
DB="$TEST_TMP/inventory.db"
NOBROKER=mqtt://127.0.0.1:1 # nothing listens: a publish that connects fails
"$CLOUD" keygen --out-dir "$TEST_TMP/keys" >/dev/null || die "keygen failed"
KEY=$(ls "$TEST_TMP"/keys/release-*.key)

publish() {
    "$CLOUD" publish --broker "$NOBROKER" --fleet f1 --store "$STORE" --key "$KEY" \
        --artifact "$1" --version "$2" --seq "$3" --hw-model m1 --timeout 2s "${@:4}"
}
show_json() {
    "$CLOUD" rollout show "$1" --db "$DB" --json | python3 -c "import json,sys; r=json.load(sys.stdin); print($2)"
}

head -c 4096 /dev/urandom >"$TEST_TMP/a.bin"
head -c 4096 /dev/urandom >"$TEST_TMP/b.bin"

# --- the fleet's configuration -------------------------------------------------------
expect_status 0 "fleet shows the default" "$CLOUD" fleet --store "$STORE" --fleet f1
expect_output stdout "require-rollout no" "rollouts are not required by default"
expect_status 1 "without the requirement, publish tries the broker" publish "$TEST_TMP/a.bin" 1.0.1 1
expect_status 0 "fleet --require-rollout yes" "$CLOUD" fleet --store "$STORE" --fleet f1 \
    --require-rollout yes
expect_status 0 "with it, publish stages and does not connect" publish "$TEST_TMP/a.bin" 1.0.1 1
expect_output stdout "firmware-1.0.1-1" "it prints the release id"
expect_output stderr "the fleet requires a rollout" "and says why it only staged"
expect_status 2 "fleet refuses a bad value" "$CLOUD" fleet --store "$STORE" --fleet f1 \
    --require-rollout maybe
expect_status 0 "publish --stage" publish "$TEST_TMP/b.bin" 2.0.0 2 --stage
REL=firmware-2.0.0-2

# --- create refuses what it cannot roll out ----------------------------------------------
create() {
    "$CLOUD" rollout create --db "$DB" --store "$STORE" "$@"
}
expect_status 1 "no such release" create --release firmware-9.9.9-9 --waves 100
expect_output stderr "has no release firmware-9.9.9-9" "the error names it"
mv "$STORE/$(sha256sum "$TEST_TMP/b.bin" | cut -d' ' -f1)" "$TEST_TMP/aside"
expect_status 1 "its artifact is not in the store" create --release "$REL" --waves 100
expect_output stderr "is not in the store" "the error says so"
mv "$TEST_TMP/aside" "$STORE/$(sha256sum "$TEST_TMP/b.bin" | cut -d' ' -f1)"
expect_status 2 "waves must end at 100" create --release "$REL" --waves 10,50
expect_output stderr "the last wave must be 100" "the error says so"
expect_status 2 "groups come first" create --release "$REL" --waves 10,ring=canary,100
expect_status 2 "a window in no known zone" create --release "$REL" --waves 100 \
    --window 'Mon-Fri 01:00-04:00 Mars/Olympus'
expect_output stderr "Mars/Olympus" "the error names the zone"
expect_status 2 "a window with a bad range" create --release "$REL" --waves 100 \
    --window 'Mon 25:00-26:00 UTC'
expect_status 2 "a selection on an unknown key form" create --release "$REL" --waves 100 \
    --select 'Ring=canary'
expect_status 2 "success is a percentage" create --release "$REL" --waves 100 --success 101
expect_status 2 "a bad start time" create --release "$REL" --waves 100 --start-at tomorrow

# --- a scheduled rollout, moved by hand ---------------------------------------------------
expect_status 0 "create, starting in an hour" create --release "$REL" --waves ring=canary,10,100 \
    --select hw-model=m1 --window 'site=a: Sat,Sun 00:00-06:00 Europe/Berlin' \
    --window 'daily 22:00-02:00 UTC' --rate 5 --start-at +1h --by alice --reason "test"
check "it is scheduled" test "$(show_json 1 'r["state"]')" = scheduled
check "show --json has the rules" test "$(show_json 1 'r["rules"]["waves"]')" = \
    "['ring=canary', '10', '100']"
check "and the windows as text" test "$(show_json 1 'r["rules"]["windows"][0]')" = \
    "site=a: Sat,Sun 00:00-06:00 Europe/Berlin"
check "and who created it" test "$(show_json 1 'r["created_by"]')" = operator:alice
expect_status 1 "a second rollout of the product waits for the first" \
    create --release "$REL" --waves 100
expect_output stderr "cancel it first" "the error says what to do"
act() {
    "$CLOUD" rollout "$1" 1 --db "$DB" --by bob "${@:2}"
}
expect_status 0 "pause a scheduled rollout" act pause --reason "not yet"
expect_status 1 "next on a paused one" act next
expect_output stderr "resume or retry it first" "the error says what to do"
expect_status 0 "resume" act resume
check "back to scheduled" test "$(show_json 1 'r["state"]')" = scheduled
expect_status 0 "next starts it by hand" act next
check "running, one wave open" test "$(show_json 1 'r["state"], r["open_waves"]')" = "running 1"
expect_status 0 "next again" act next
expect_status 0 "next a third time" act next
expect_status 1 "no wave left to open" act next
expect_output stderr "every wave is open" "the error says so"
expect_status 1 "retry wants a halted rollout" act retry
expect_status 1 "resume wants a paused one" act resume
expect_status 0 "cancel" act cancel --reason "changed my mind"
expect_status 1 "nothing changes a cancelled rollout" act pause
check "the log holds every step, by whom" test "$(show_json 1 \
    '" ".join(e["action"] + "/" + e["actor"] for e in r["log"])')" = \
    "created/operator:alice paused/operator:bob resumed/operator:bob wave-opened/operator:bob wave-opened/operator:bob wave-opened/operator:bob cancelled/operator:bob"
expect_status 0 "list" "$CLOUD" rollout list --db "$DB"
expect_output stdout "cancelled" "list shows the state"
expect_status 0 "list --json" "$CLOUD" rollout list --db "$DB" --json
cp "$RUN_STDOUT" "$TEST_TMP/list.json"
check "list --json is an array of rollouts" python3 -c \
    "import json; r = json.load(open('$TEST_TMP/list.json')); assert r[0]['id'] == 1 and r[0]['state'] == 'cancelled'"
expect_status 1 "show of an unknown id" "$CLOUD" rollout show 7 --db "$DB"
expect_status 2 "show without an id" "$CLOUD" rollout show --db "$DB"
expect_status 2 "an unknown action" "$CLOUD" rollout frobnicate 1 --db "$DB"
expect_status 0 "rollout --help" "$CLOUD" rollout --help
expect_status 0 "rollout create --help" "$CLOUD" rollout create --help
expect_output stdout "--revert-manifest" "create's help lists its flags"
expect_status 2 "status --rollout takes no --release" "$CLOUD" status --db "$DB" --rollout 1 \
    --release "$REL"
expect_status 0 "status --rollout lists its nodes (none reported)" "$CLOUD" status --db "$DB" \
    --rollout 1
expect_status 3 "status --rollout --wait: cancelled" "$CLOUD" status --db "$DB" --rollout 1 \
    --wait --timeout 5
expect_status 1 "rollout list on a missing inventory" "$CLOUD" rollout list --db "$TEST_TMP/none.db"
expect_output stderr "no inventory" "the error says so"

finish
