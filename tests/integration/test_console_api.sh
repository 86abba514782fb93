#!/usr/bin/env bash
# The console's HTTP API against a real `ferry-cloud serve --http` with a real
# inventory, filled the way gateways fill it (status batches, node
# descriptions and presence through mosquitto) and a real rollout: every
# resource, every action and its decision log, the tokens (missing, wrong,
# read-only, right), HTTPS, bad input of every kind, and a client holding
# every event stream while serve keeps ingesting. Beside it, the flags serve
# refuses at start.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/fleet_lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/console_lib.sh"

make_tokens
serve_flags=(--broker "$BROKER" --fleet "$FLEET" --store "$STORE" --db "$DB")

# --- what serve refuses at start ------------------------------------------------------
expect_status 2 "plain HTTP on an address that is not loopback is refused" \
    "$CLOUD" serve "${serve_flags[@]}" --http 0.0.0.0:1
expect_output stderr "not a loopback address" "the error says why"
expect_output stderr "--http-insecure" "and how to ask for it anyway"
expect_status 2 "reads elsewhere need a token file" \
    "$CLOUD" serve "${serve_flags[@]}" --http 0.0.0.0:1 --http-insecure
expect_status 2 "--http-cert needs --http-key" \
    "$CLOUD" serve "${serve_flags[@]}" --http 127.0.0.1:1 --http-cert "$TEST_TMP/none.crt"
expect_status 2 "an address that is not one" "$CLOUD" serve "${serve_flags[@]}" --http 300.1.1.1:80
expect_output stderr "300.1.1.1" "the error names it"
expect_status 2 "an --http-* flag without --http" \
    "$CLOUD" serve "${serve_flags[@]}" --http-token-file "$TEST_TMP/act.tokens"
cp "$TEST_TMP/act.tokens" "$TEST_TMP/open.tokens"
chmod 644 "$TEST_TMP/open.tokens"
expect_status 1 "a token file others can read is refused" \
    "$CLOUD" serve "${serve_flags[@]}" --http 127.0.0.1:0 --http-token-file "$TEST_TMP/open.tokens"
expect_output stderr "chmod o-rwx" "the error says how to fix it"
printf 'ops:short\n' >"$TEST_TMP/short.tokens"
chmod 600 "$TEST_TMP/short.tokens"
expect_status 1 "a short token is refused" \
    "$CLOUD" serve "${serve_flags[@]}" --http 127.0.0.1:0 --http-token-file "$TEST_TMP/short.tokens"
expect_output stderr "line 1" "the error names the line"
expect_status 0 "serve --help lists the console's flags" "$CLOUD" serve --help
expect_output stdout "--http-read-token-file" "with the read tokens"

# --- a fleet: two gateways, six nodes, a staged release, a rollout ---------------------
HTTP_PORT=$(free_port tcp)
URL="http://127.0.0.1:$HTTP_PORT/api/v1"
start_console s1 --http "127.0.0.1:$HTTP_PORT" --http-token-file "$TEST_TMP/act.tokens" \
    --http-max-streams 4
S1_PID=$SERVE_PID
presence gw-a online
presence gw-b offline
describe gw-a a1 m1 '{"ring":"canary"}'
for n in a2 a3 a4; do describe gw-a "$n" m1; done
for n in b1 b2; do describe gw-b "$n" m2 '{"site":"depot-7"}'; done
send_batch gw-a "$(status_record a1 gw-a "" idle 0 0 1)" "$(status_record a2 gw-a "" idle 0 0 1)" \
    "$(status_record a3 gw-a "" idle 0 0 1)" "$(status_record a4 gw-a "" idle 0 0 1)"
send_batch gw-b "$(status_record b1 gw-b "" idle 0 0 1)" "$(status_record b2 gw-b "" idle 0 0 1)"
head -c 4096 /dev/urandom >"$TEST_TMP/v2.bin"
REL=$("$CLOUD" publish --broker "$BROKER" --fleet "$FLEET" --store "$STORE" --key "$KEY" \
    --artifact "$TEST_TMP/v2.bin" --version 2.0.0 --seq 2 --hw-model m1 --hw-model m2 --stage \
    2>>"$TEST_TMP/publish.log") || die "staging failed: $(cat "$TEST_TMP/publish.log")"
"$CLOUD" rollout create --db "$DB" --store "$STORE" --release "$REL" --waves ring=canary,100 \
    --success 100 --min-final 1 --halt 10 --by carol --reason "api test" >/dev/null ||
    die "rollout create failed"
targets_are() {
    api GET "$URL/rollouts/1"
    json_true "$API_BODY" 'j["totals"]["targets"] == 6'
}
wait_until 20 targets_are || die "the rollout never targeted 6 nodes: $(cat "$API_BODY")"
# The canary fails: the controller halts the rollout.
send_batch gw-a "$(status_record a1 gw-a "$REL" downloading 2048 4096 2)" \
    "$(status_record a1 gw-a "$REL" failed 4096 4096 3 hash-mismatch 'the image does not hash')"
send_batch gw-b "$(status_record b1 gw-b "$REL" downloading 1024 4096 2)"
halted() {
    api GET "$URL/rollouts/1"
    json_true "$API_BODY" 'j["state"] == "halted"'
}
wait_until 20 halted || die "the rollout did not halt: $(cat "$API_BODY")"

# --- every resource ------------------------------------------------------------------------
api GET "$URL"
expect_api 200 "the index lists the resources and the rights" \
    '"/api/v1/nodes" in j["resources"] and j["actions_enabled"] and not j["reads_need_token"]'
api GET "$URL/summary"
expect_api 200 "summary: six nodes, per state and version" \
    'j["nodes"] == 6 and j["states"]["idle"] == 4 and j["states"]["failed"] == 1 and j["states"]["downloading"] == 1 and {v["version"]: v["nodes"] for v in j["versions"]} == {"1.0.0": 4, "2.0.0": 2}'
expect_api 200 "summary: gateways known and online, rollouts active" \
    'j["gateways"] == {"known": 2, "online": 1} and j["rollouts"]["active"] == 1'
api GET "$URL/nodes"
expect_api 200 "nodes: every node in id order, with a total" \
    '[n["node"] for n in j["nodes"]] == ["a1","a2","a3","a4","b1","b2"] and j["total"] == 6 and j["next"] is None and j["prev"] is None'
expect_api 200 "a node carries its record and its description" \
    'j["nodes"][0]["state"] == "failed" and j["nodes"][0]["error"] == "hash-mismatch" and j["nodes"][0]["tags"] == {"ring": "canary"} and j["nodes"][0]["hw_model"] == "m1"'
api GET "$URL/nodes?limit=4"
expect_api 200 "a page of four says where the next starts" \
    'len(j["nodes"]) == 4 and j["next"] == "a4" and j["prev"] is None and j["total"] == 6'
api GET "$URL/nodes?limit=4&after=a4"
expect_api 200 "the next page holds the rest, and a way back" \
    '[n["node"] for n in j["nodes"]] == ["b1","b2"] and j["next"] is None and j["prev"] == "b1"'
api GET "$URL/nodes?limit=4&before=b1"
expect_api 200 "the page before b1 is the first four" \
    '[n["node"] for n in j["nodes"]] == ["a1","a2","a3","a4"] and j["prev"] is None and j["next"] == "a4"'
api GET "$URL/nodes?limit=2&before=a3"
expect_api 200 "a page before the middle has both directions" \
    '[n["node"] for n in j["nodes"]] == ["a1","a2"] and j["next"] == "a2" and j["prev"] is None'
for f in "state=failed:a1" "state=idle,downloading:a2,a3,a4,b1,b2" "gateway=gw-b:b1,b2" \
    "tag=ring%3Dcanary:a1" "tag=site%3Ddepot-7:b1,b2" "q=b:b1,b2" "version=1.0.0:a2,a3,a4,b2" \
    "release=$REL:a1,b1" "rollout=1%26wave=1:a1" "rollout=1%26wave=2:a2,a3,a4,b1,b2"; do
    query=${f%%:*}
    want=${f#*:}
    api GET "$URL/nodes?${query//%26/"&"}"
    expect_api 200 "filter ${query//%26/"&"} gives $want" \
        "\",\".join(n[\"node\"] for n in j[\"nodes\"]) == \"$want\" and j[\"total\"] == len(\"$want\".split(\",\"))"
done
api GET "$URL/nodes?gateway=gw-b&before=b2"
expect_api 200 "a gateway's page before a node" \
    '[n["node"] for n in j["nodes"]] == ["b1"] and j["total"] == 2'
api GET "$URL/nodes/a1"
expect_api 200 "one node: its records newest first, its binding" \
    '[h["state"] for h in j["history"]] == ["failed","downloading","idle"] and j["binding"]["gateway"] == "gw-a" and j["binding"]["how"] == "first-record" and j["history_before"] is None'
api GET "$URL/nodes/a1?history=2"
expect_api 200 "its history pages by seq" '[h["seq"] for h in j["history"]] == [3, 2] and j["history_before"] == 2'
api GET "$URL/nodes/a1?history=2&before_seq=2"
expect_api 200 "and the older page" '[h["seq"] for h in j["history"]] == [1] and j["history_before"] is None'
api GET "$URL/nodes/zz"
expect_api 404 "an unknown node is a 404 naming it" '"zz" in j["message"] and j["error"] == "not-found"'
api GET "$URL/gateways"
expect_api 200 "gateways with presence and their nodes" \
    '[(g["gateway"], g["presence"], g["nodes"], g["failed"]) for g in j["gateways"]] == [("gw-a","online",4,1),("gw-b","offline",2,0)] and j["online"] == 1'
api GET "$URL/releases"
expect_api 200 "releases: the staged one from the store, with its nodes" \
    "[(r['release'], r['in_store'], r['version'], r['nodes']['failed'], r['nodes']['downloading']) for r in j['releases']] == [('$REL', True, '2.0.0', 1, 1)] and j['releases'][0]['hw_models'] == ['m1','m2']"
api GET "$URL/rollouts"
expect_api 200 "rollouts: per-wave counts" \
    'j["rollouts"][0]["id"] == 1 and j["rollouts"][0]["state"] == "halted" and [w["targets"] for w in j["rollouts"][0]["waves"]] == [1, 5] and j["rollouts"][0]["waves"][0]["states"]["failed"] == 1 and "log" not in j["rollouts"][0]'
api GET "$URL/rollouts/1"
expect_api 200 "one rollout with its decision log" \
    '[e["action"] for e in j["log"]] == ["created","started","halted"] and j["log"][0]["actor"] == "operator:carol" and j["log_before"] is None'
api GET "$URL/rollouts/1/log?limit=2"
expect_api 200 "the log pages newest first" \
    '[e["action"] for e in j["log"]] == ["halted","started"] and j["before"] == j["log"][1]["id"]'
before=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["before"])' "$API_BODY")
api GET "$URL/rollouts/1/log?limit=2&before=$before"
expect_api 200 "and its older page" '[e["action"] for e in j["log"]] == ["created"] and j["before"] is None'
api GET "$URL/rollouts/9"
expect_api 404 "an unknown rollout is a 404" '"9" in j["message"]'
api HEAD "$URL/summary"
# curl -I writes the headers where the body would go: no JSON may follow them.
check "HEAD answers like GET without a body" test "$API_STATUS" = 200 -a "$(grep -c '{' "$API_BODY")" = 0
expect_header "Content-Type: application/json" "with the headers GET has"

# --- the page ------------------------------------------------------------------------------
api GET "http://127.0.0.1:$HTTP_PORT/"
check "the page is served" grep -q '<script src="/console.js"' "$API_BODY"
expect_header "Content-Security-Policy: default-src 'none'" "it may load nothing from elsewhere"
api GET "http://127.0.0.1:$HTTP_PORT/console.js"
check "its script is served" grep -q 'text/event-stream' "$API_BODY"
check "no asset names another origin" bash -c "! curl -s http://127.0.0.1:$HTTP_PORT/ http://127.0.0.1:$HTTP_PORT/console.js http://127.0.0.1:$HTTP_PORT/console.css | grep -Eo '(https?:)?//[a-z0-9.-]+\.[a-z]{2,}' | grep -v w3.org"

# --- the token ---------------------------------------------------------------------------------
api POST "$URL/rollouts/1/retry"
expect_api 401 "an action without a token is a 401" '"bearer token" in j["message"]'
expect_header 'WWW-Authenticate: Bearer realm="ferry"' "with the challenge"
api POST "$URL/rollouts/1/retry" -H "Authorization: Bearer ${ACT_TOKEN}x"
expect_api 401 "a wrong token is a 401" '"not one of" in j["message"]'
expect_header 'error="invalid_token"' "saying the token is invalid"
api POST "$URL/rollouts/1/retry" -H "Authorization: Basic b3BzOmZvbw=="
expect_api 401 "another scheme is a 401"

# --- every action, logged with who did it --------------------------------------------------------
auth=(-H "Authorization: Bearer $ACT_TOKEN")
api POST "$URL/rollouts/1/retry" "${auth[@]}" -H 'Content-Type: application/json' \
    --data '{"reason":"a1 had a bad disk","by":"alice"}'
expect_api 200 "retry with the right token" \
    'j["done"] == "running" and j["by"] == "http:ops (alice)" and j["rollout"]["state"] == "running"'
check "the CLI's log shows the same entry" bash -c "'$CLOUD' rollout show 1 --db '$DB' --json |
    python3 -c 'import json,sys; e = json.load(sys.stdin)[\"log\"][-1]; sys.exit(not (e[\"action\"] == \"retried\" and e[\"actor\"] == \"http:ops (alice)\" and e[\"reason\"] == \"running: a1 had a bad disk\"))'"
api POST "$URL/rollouts/1/pause" "${auth[@]}"
expect_api 200 "pause, without a body" 'j["done"] == "paused" and j["by"] == "http:ops"'
api POST "$URL/rollouts/1/pause" "${auth[@]}"
expect_api 409 "pause of a paused rollout is a conflict naming its state" '"paused" in j["message"]'
api POST "$URL/rollouts/1/resume" "${auth[@]}" --data '{"reason":"go on"}'
expect_api 200 "resume" 'j["done"] == "running"'
api POST "$URL/rollouts/1/next" "${auth[@]}"
expect_api 200 "next opens wave 2 by hand" 'j["done"] == "wave 2 of 2 opened by hand" and j["rollout"]["open_waves"] == 2'
api POST "$URL/rollouts/1/next" "${auth[@]}"
expect_api 409 "next with every wave open is a conflict" '"every wave is open" in j["message"]'
api POST "$URL/rollouts/1/cancel" "${auth[@]}" --data '{"reason":"enough"}'
expect_api 200 "cancel" 'j["done"] == "cancelled"'
api POST "$URL/rollouts/1/retry" "${auth[@]}"
expect_api 409 "nothing changes a cancelled rollout" '"cancelled" in j["message"]'
api GET "$URL/rollouts/1"
expect_api 200 "the log holds every action, by whom" \
    '[(e["action"], e["actor"]) for e in j["log"]][3:] == [("retried","http:ops (alice)"),("paused","http:ops"),("resumed","http:ops"),("wave-opened","http:ops"),("cancelled","http:ops")]'
api POST "$URL/rollouts/7/pause" "${auth[@]}"
expect_api 404 "an action on no rollout is a 404"
api GET "$URL/rollouts/1/pause"
expect_api 405 "an action is a POST" '"POST" in j["message"]'
expect_header "Allow: POST" "the answer says which method"

# --- bad input -------------------------------------------------------------------------------------
api POST "$URL/rollouts/1/pause" "${auth[@]}" --data '{"reason":'
expect_api 400 "a body that is not JSON is a 400" '"request body" in j["message"]'
api POST "$URL/rollouts/1/pause" "${auth[@]}" --data '{"reason":"x","force":true}'
expect_api 400 "an unknown field is named" '"unknown field '"'"'force'"'"'" in j["message"]'
api POST "$URL/rollouts/1/pause" "${auth[@]}" --data '{"by":"a\u001b[2Jb"}'
expect_api 400 "control characters are refused" '"control characters" in j["message"]'
head -c 1048576 /dev/zero | tr '\0' 'x' >"$TEST_TMP/big.body"
# With Expect: 100-continue curl sends the body only if asked: the answer
# cannot race a reset from a server that never reads it.
api POST "$URL/rollouts/1/pause" "${auth[@]}" -H "Expect: 100-continue" \
    --data-binary "@$TEST_TMP/big.body"
expect_api 413 "a 1 MiB body is refused by its length" '"4096" in j["message"]'
api POST "$URL/rollouts/1/pause" "${auth[@]}" -H "Transfer-Encoding: chunked" \
    --data-binary "@$TEST_TMP/big.body"
expect_api 413 "and without a length, once it passes the cap"
api POST "$URL/rollouts/1/pause" -H "Expect: 100-continue" --data-binary "@$TEST_TMP/big.body"
expect_api 401 "a large body without a token is refused before it is read"
for p in "/api/v1/nope:404" "/api/v2/nodes:404" "/api/v1/nodes/a1/more:404" \
    "/api/v1/nodes/.hidden:400" "/api/v1/rollouts/abc:400" "/api/v1/rollouts/0:400" \
    "/api/v1/rollouts/1/frobnicate:404" "/etc/passwd:404" "/api/v1//nodes:404"; do
    api GET "http://127.0.0.1:$HTTP_PORT${p%:*}"
    expect_api "${p##*:}" "GET ${p%:*} is a ${p##*:} with a message" '"message" in j and j["status"] == '"${p##*:}"
done
for q in "state=bogus:'bogus'" "limit=0:'limit'" "limit=1001:'limit'" "after=a1%26before=b1:'not both'" \
    "wave=1:'needs'" "tag=Ring%3Dx:'key must be'" "tag=ring:'key=value'" "colour=red:'colour'" \
    "state=idle%26state=failed:'twice'" "version=%01x:'printable'" "rollout=-1:'rollout'"; do
    query=${q%%:*}
    api GET "$URL/nodes?${query//%26/"&"}"
    expect_api 400 "filter ${query//%26/"&"} is a 400 naming it" "${q#*:} in j[\"message\"]"
done
many=$(printf 'p%d=1&' $(seq 1 20))
api GET "$URL/nodes?$many"
expect_api 400 "more than 16 parameters is a 400" '"more than 16" in j["message"]'
api GET "$URL/nodes/a1?history=5000"
expect_api 400 "a history beyond its cap is a 400" '"history" in j["message"]'
api DELETE "$URL/nodes"
expect_api 405 "DELETE is a 405" '"GET" in j["message"]'
api GET "$URL/summary" -H "Content-Type: application/json" --data '{"x":1}' -X GET
expect_api 400 "a read with a body is a 400"
api GET "$URL/nodes" -H "X-Junk: $(head -c 40000 /dev/zero | tr '\0' 'y')"
check "headers beyond 32 KiB are refused (HTTP $API_STATUS)" test "$API_STATUS" -ge 400 -a "$API_STATUS" -lt 500
reply=$(
    exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT"
    printf 'BREW /pot HTCPCP/1.0\r\n\r\n' >&3
    timeout 5 head -c 12 <&3
)
check "a request that is not HTTP gets a 4xx or 5xx status line ($reply)" \
    bash -c "[[ '$reply' =~ ^HTTP/1\.[01]\ [45] ]]"
api GET "$URL/summary"
expect_api 200 "and serve still answers" 'j["nodes"] == 6'

# --- reads with a token, and HTTPS -----------------------------------------------------------------------
PKI="$TEST_TMP/pki"
FERRY_CLOUD="$CLOUD" "$FERRY_SOURCE_DIR/certs/mkcerts.sh" "$PKI" >/dev/null 2>&1 ||
    die "mkcerts.sh failed"
TLS_PORT=$(free_port tcp)
TLS_URL="https://127.0.0.1:$TLS_PORT/api/v1"
start_console s2 --instance s2 --http "127.0.0.1:$TLS_PORT" --http-cert "$PKI/server.crt" \
    --http-key "$PKI/server.key" --http-token-file "$TEST_TMP/act.tokens" \
    --http-read-token-file "$TEST_TMP/read.tokens"
S2_PID=$SERVE_PID
tls=(--cacert "$PKI/ca.crt")
api GET "$TLS_URL/summary" "${tls[@]}"
expect_api 401 "with read tokens, a read without one is a 401 (over HTTPS)"
api GET "$TLS_URL/summary" "${tls[@]}" -H "Authorization: Bearer $READ_TOKEN"
expect_api 200 "a read token reads, over HTTPS the CA vouches for" 'j["nodes"] == 6'
api GET "$TLS_URL/nodes" "${tls[@]}" -H "Authorization: Bearer $ACT_TOKEN"
expect_api 200 "an action token reads too" 'j["total"] == 6'
api POST "$TLS_URL/rollouts/1/pause" "${tls[@]}" -H "Authorization: Bearer $READ_TOKEN"
expect_api 403 "a read token cannot act" '"may read, not act" in j["message"]'
api GET "http://127.0.0.1:$TLS_PORT/api/v1/summary"
check "plain HTTP to the HTTPS port gets no answer (curl status $API_STATUS)" test "$API_STATUS" = 000
check "TLS below 1.2 is refused" bash -c "! curl -s --cacert '$PKI/ca.crt' --tls-max 1.1 -o /dev/null '$TLS_URL/'"

# --- every event stream taken, and serve keeps ingesting -------------------------------------------------
STREAM_PIDS=()
for i in 1 2 3 4; do
    curl -s -N --max-time 60 -o "$TEST_TMP/stream$i.out" "$URL/events" &
    STREAM_PIDS+=("$!")
    kill_at_exit "$!"
done
streams_open() {
    [ "$(grep -c 'event stream opened' "$TEST_TMP/serve-s1.log")" -ge 4 ]
}
wait_until 10 streams_open || die "the four streams did not open"
api GET "$URL/events"
expect_api 503 "a fifth stream is refused while four are open" '"4 event streams" in j["message"]'
expect_header "Retry-After" "saying when to try again"
for i in $(seq 1 40); do
    send_batch gw-c "$(status_record "e$i" gw-c "" idle 0 0 1)" "$(status_record "e$i" gw-c "" idle 0 0 2)"
done
ingested() {
    api GET "$URL/summary"
    json_true "$API_BODY" 'j["nodes"] == 46'
}
if wait_until 20 ingested; then
    pass "serve ingested 40 batches while every stream was held"
else
    fail "serve did not ingest the 40 batches: $(head -c 300 "$API_BODY")"
fi
check "the records are all there" test "$("$CLOUD" status --db "$DB" --json | python3 -c \
    'import json,sys; print(sum(1 for r in json.load(sys.stdin) if r["node"].startswith("e") and r["seq"] == 2))')" = 40
# The summary's counts are kept as records arrive (node_counts, by triggers):
# after a burst that moves nodes between states and versions, and nodes
# removed behind serve's back, they are what a recount of the nodes says.
# sq ro|rw SQL: the rows, '|' between columns (SQLite: python3's sqlite3, the
# sqlite3 shell is not among the test's dependencies; PostgreSQL: psql).
sq() {
    if [ -n "${FERRY_TEST_PG:-}" ]; then
        psql -h "$FERRY_TEST_PG" -U ferry -d inventory -v ON_ERROR_STOP=1 -qtAF '|' -c "$2"
        return
    fi
    python3 - "$DB" "$@" <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=%s" % (sys.argv[1], sys.argv[2]), uri=True, timeout=10)
with db:
    for row in db.execute(sys.argv[3]):
        print("|".join(str(c) for c in row))
PY
}
for i in $(seq 1 15); do
    if [ "$i" -le 10 ]; then last=success; else last=failed; fi
    send_batch gw-c "$(status_record "e$i" gw-c "$REL" downloading 2048 4096 3)" \
        "$(status_record "e$i" gw-c "$REL" "$last" 4096 4096 4)"
done
for i in 16 17 18; do
    send_batch gw-c "$(status_record "e$i" gw-c "$REL" downloading 1024 4096 3)"
done
moved() {
    [ "$(sq ro "SELECT count(*), sum(CASE WHEN seq = 4 THEN 1 ELSE 0 END) FROM nodes
        WHERE substr(node, 1, 1) = 'e' AND substr(node, 2, 1) BETWEEN '0' AND '9'
        AND seq >= 3")" = "18|15" ]
}
wait_until 20 moved || die "serve did not store the burst of moves"
sq rw "DELETE FROM nodes WHERE node IN ('e17', 'e18', 'e19', 'e20')" ||
    die "removing four nodes failed"
recount() {
    sq ro "SELECT '$1', $1, count(*) FROM nodes GROUP BY $1 ORDER BY 2"
}
api GET "$URL/summary"
figures=$(python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
for s, n in sorted(j["states"].items()):
    if n: print("state|%s|%d" % (s, n))
for v in sorted(j["versions"], key=lambda v: v["version"]):
    print("version|%s|%d" % (v["version"], v["nodes"]))
print("nodes|%d" % j["nodes"])' "$API_BODY")
want=$(recount state; recount version; echo "nodes|$(sq ro "SELECT count(*) FROM nodes")")
check "after moves and removals the summary's counts are a recount's ($(echo "$figures" | xargs))" \
    test "$figures" = "$want"
# (PostgreSQL counts the nodes themselves: no node_counts table there.)
if [ -z "${FERRY_TEST_PG:-}" ]; then
    check "node_counts holds a recount of every (state, version)" test \
        "$(sq ro "SELECT state, version, nodes FROM node_counts WHERE nodes > 0 ORDER BY 1, 2")" = \
        "$(sq ro "SELECT state, version, count(*) FROM nodes GROUP BY 1, 2 ORDER BY 1, 2")"
fi
# /gateways and /releases read counts kept the same way (SQLite:
# gateway_counts and release_counts; PostgreSQL: indexes): after a node is
# moved to another gateway and release behind serve's back too, they are a
# recount's.
sq rw "UPDATE nodes SET gateway = 'gw-a', release = 'elsewhere-1' WHERE node = 'e16'" ||
    die "moving a node failed"
api GET "$URL/gateways"
figures=$(python3 -c 'import json, sys
for g in json.load(open(sys.argv[1]))["gateways"]:
    if g["nodes"]:
        print("%s|%d|%d|%d|%d" % (g["gateway"], g["nodes"], g["busy"], g["failed"], g["last_record_at"]))' \
    "$API_BODY")
want=$(sq ro "SELECT gateway, count(*),
    sum(CASE WHEN state IN ('downloading','verifying','installing','pending-reboot') THEN 1 ELSE 0 END),
    sum(CASE WHEN state IN ('failed','rolled-back') THEN 1 ELSE 0 END), max(updated_at)
    FROM nodes WHERE gateway != '' GROUP BY gateway ORDER BY gateway")
check "/gateways' counts are a recount's ($(echo "$figures" | xargs))" test "$figures" = "$want"
api GET "$URL/releases"
figures=$(python3 -c 'import json, sys
rows = ["%s|%s|%d" % (r["release"], s, n) for r in json.load(open(sys.argv[1]))["releases"]
        for s, n in r["nodes"].items() if n]
print("\n".join(sorted(rows)))' "$API_BODY")
want=$(sq ro "SELECT release, state, count(*) FROM nodes WHERE release != ''
    GROUP BY 1, 2 ORDER BY 1, 2")
check "/releases' counts are a recount's ($(echo "$figures" | xargs))" test "$figures" = "$want"
if [ -z "${FERRY_TEST_PG:-}" ]; then
    for g in gateway release; do
        check "${g}_counts holds a recount of every ($g, state)" test \
            "$(sq ro "SELECT $g, state, nodes FROM ${g}_counts WHERE nodes > 0 ORDER BY 1, 2")" = \
            "$(sq ro "SELECT $g, state, count(*) FROM nodes GROUP BY 1, 2 ORDER BY 1, 2")"
    done
fi
api GET "$URL/nodes?state=failed&version=2.0.0&limit=1"
expect_api 200 "a list filtered by state and version counts from node_counts too" \
    "j['total'] == $(sq ro "SELECT count(*) FROM nodes WHERE state = 'failed' AND version = '2.0.0'")"
streams_saw() {
    grep -q '"node":"e40"' "$TEST_TMP/stream1.out" && grep -q '"node":"e40"' "$TEST_TMP/stream4.out"
}
if wait_until 15 streams_saw; then
    pass "every stream got the new nodes as events"
else
    fail "a stream missed the new nodes: $(grep -c 'event: nodes' "$TEST_TMP"/stream*.out | xargs)"
fi
check "a stream starts with the summary, rollouts and gateways" \
    bash -c "grep -m3 '^event:' '$TEST_TMP/stream2.out' | tr '\n' ' ' | grep -q 'event: summary event: rollouts event: gateways'"
kill "${STREAM_PIDS[@]}" 2>/dev/null
wait "${STREAM_PIDS[@]}" 2>/dev/null
stream_back() {
    curl -s -N --max-time 2 "$URL/events" -o "$TEST_TMP/stream5.out"
    grep -q '^event: summary' "$TEST_TMP/stream5.out"
}
if wait_until 10 stream_back; then
    pass "once the clients hung up, a new stream is accepted"
else
    fail "the streams' places were not given back"
fi
api GET "$URL/events?x=1"
expect_api 400 "the stream takes no parameter"

stop_all "$S1_PID" "$S2_PID"
check "both serve instances stop cleanly${STOP_BAD:+ (not: $STOP_BAD)}" test -z "$STOP_BAD"
check "no sanitizer report in any log" no_sanitizer_reports

finish
