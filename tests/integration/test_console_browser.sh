#!/usr/bin/env bash
# The console's page in a real browser during a real rollout on loopback:
# mosquitto, ferry-cloud serve --http, a ferry-gateway and six ferry-edge
# nodes, a rollout of two waves (the canaries first, behind a soak).
# Headless Chromium, driven by console_browser.py, watches the rollout's bar
# move and the canaries finish without reloading, pauses the rollout with
# its button and sees it stay stopped, and saves a screenshot (copied to
# $FERRY_CONSOLE_SCREENSHOT when set: docs/console.png is one). Then the
# inventory grows to 10,000 nodes and the same browser checks the page still
# loads and keeps one page of rows, and that paging and a state filter work.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/fleet_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/rollout_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/console_lib.sh"

for tool in /usr/bin/chromium /usr/bin/chromedriver; do
    [ -x "$tool" ] || die "$tool is missing: make deps installs chromium and chromium-driver"
done
# Debian's python3, which python3-selenium belongs to (PATH may name another).
PY=/usr/bin/python3
"$PY" -c 'import selenium' 2>/dev/null || die "python3-selenium is missing: make deps installs it"

make_tokens
HTTP_PORT=$(free_port tcp)
start_console s1 --http "127.0.0.1:$HTTP_PORT" --http-token-file "$TEST_TMP/act.tokens"
S1_PID=$SERVE_PID
# 80 KiB/s shared by the two canaries: a 256 KiB download takes about six
# seconds, long enough to watch on the page.
start_gw --link-rate 81920
GW1_PID=$GW_PID
for n in c1 c2; do start_node "$n" m1 --tag ring=canary; done
for n in n3 n4 n5 n6; do start_node "$n" m1; done
described 6 60 || die "only $(described_count) of 6 nodes described themselves"
head -c $((256 * 1024)) /dev/urandom >"$TEST_TMP/v2.bin"
REL=$(release "$TEST_TMP/v2.bin" 2.0.0 2 --hw-model m1 --stage) || die "staging 2.0.0 failed"

# The page first, then the rollout, so that the page sees it from the start.
READY="$TEST_TMP/page.ready"
"$PY" "$FERRY_SOURCE_DIR/tests/integration/console_browser.py" \
    "http://127.0.0.1:$HTTP_PORT/" "$ACT_TOKEN" "$TEST_TMP/console.png" "$READY" "$DB" \
    >"$TEST_TMP/browser.out" 2>&1 &
BROWSER_PID=$!
kill_at_exit "$BROWSER_PID"
wait_until 60 test -e "$READY" || die "the page did not come up: $(tail -5 "$TEST_TMP/browser.out")"
expect_status 0 "rollout create" "$CLOUD" rollout create --db "$DB" --store "$STORE" \
    --release "$REL" --waves ring=canary,100 --success 100 --min-final 2 --soak 120s --halt 50 \
    --by carol --reason "browser test"
wait "$BROWSER_PID"
browser_rc=$?
while IFS= read -r line; do
    case $line in
    PASS:*) pass "${line#PASS: }" ;;
    FAIL:*) fail "${line#FAIL: }" ;;
    *) echo "browser: $line" ;;
    esac
done <"$TEST_TMP/browser.out"
check "the browser run ended cleanly (exit $browser_rc)" test "$browser_rc" = 0
check "wave 2's nodes never fetched the release" \
    test "$(fetchers gw1 | xargs)" = "c1 c2"
if [ -n "${FERRY_CONSOLE_SCREENSHOT:-}" ] && [ -s "$TEST_TMP/console.png" ]; then
    cp "$TEST_TMP/console.png" "$FERRY_CONSOLE_SCREENSHOT"
fi

stop_all "$S1_PID" "$GW1_PID"
check "serve and the gateway stop cleanly${STOP_BAD:+ (not: $STOP_BAD)}" test -z "$STOP_BAD"
check "no sanitizer report in any log" no_sanitizer_reports

finish
