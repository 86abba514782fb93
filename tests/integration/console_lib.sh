# shellcheck shell=bash
# Helpers for the console tests (test_console_*.sh): requests to `ferry-cloud
# serve --http` with curl, checks on their JSON, and an inventory filled the
# way gateways fill it (status batches, node descriptions and presence on
# the broker). Source after lib.sh, start_mosquitto and relay_lib.sh.
#
#   make_tokens                 ACT_TOKEN and READ_TOKEN in $TEST_TMP/act.tokens
#                               ("ops") and read.tokens ("viewer"), mode 0600
#   start_console NAME FLAGS... start_serve with them; waits for its
#                               subscriptions and its listener
#   api METHOD URL [curl...]    one request: API_STATUS, API_BODY, API_HEADERS
#   expect_api CODE DESC [EXPR] the last answer had CODE and its JSON body j
#                               makes the Python expression EXPR true
#   json_true FILE EXPR         the JSON in FILE, as j, makes EXPR true
#   expect_header TEXT DESC     the last answer's headers hold TEXT
#   status_record NODE GW REL STATE BYTES TOTAL SEQ [ERROR MESSAGE]
#   send_batch GW RECORD...     one status batch on GW's topic
#   describe GW NODE MODEL [TAGS_JSON]  a node's description, retained
#   presence GW online|offline  a gateway's presence, retained

API_BODY="$TEST_TMP/api.body"
API_HEADERS="$TEST_TMP/api.headers"
API_STATUS=0

make_tokens() {
    ACT_TOKEN=$(openssl rand -hex 32)
    READ_TOKEN=$(openssl rand -hex 24)
    (
        umask 077
        printf '# who may act on rollouts\nops:%s\n' "$ACT_TOKEN" >"$TEST_TMP/act.tokens"
        printf 'viewer:%s\n' "$READ_TOKEN" >"$TEST_TMP/read.tokens"
    )
}

# start_console NAME FLAGS...: the flags include --http; sets SERVE_PID.
start_console() {
    start_serve "$@"
    serve_subscribed || die "serve $1 did not subscribe: $(tail -5 "$SERVE_LOG")"
    wait_log 10 "$SERVE_LOG" "$SERVE_LOG_FROM" "http: console and API on" ||
        die "serve $1 did not listen: $(tail -5 "$SERVE_LOG")"
}

api() {
    local method=$1 url=$2
    shift 2
    local -a how=(-X "$method")
    [ "$method" = HEAD ] && how=(-I)
    API_STATUS=$(curl -s -o "$API_BODY" -D "$API_HEADERS" -w '%{http_code}' --max-time 20 \
        "${how[@]}" "$@" "$url")
}

# One python3 judges every answer: on a loaded machine starting one per check
# costs more than the requests themselves.
coproc JSON_EVAL {
    python3 -u -c '
import json, sys
for line in sys.stdin:
    path, expr = line.rstrip("\n").split("\t", 1)
    try:
        j = json.load(open(path))
        ok = bool(eval(expr))
    except Exception:
        ok = False
    print(1 if ok else 0)
'
}
kill_at_exit "$JSON_EVAL_PID"

# json_true FILE EXPR: the JSON document in FILE, as j, makes the Python
# expression EXPR (one line) true.
json_true() {
    local answer
    printf '%s\t%s\n' "$1" "$2" >&"${JSON_EVAL[1]}"
    read -r answer <&"${JSON_EVAL[0]}" || die "the JSON checker stopped"
    [ "$answer" = 1 ]
}

expect_api() {
    local want=$1 desc=$2 expr=${3:-True}
    if [ "$API_STATUS" != "$want" ]; then
        fail "$desc (HTTP $API_STATUS, expected $want): $(head -c 300 "$API_BODY")"
    elif json_true "$API_BODY" "$expr"; then
        pass "$desc"
    else
        fail "$desc ($expr is false of: $(head -c 400 "$API_BODY"))"
    fi
}

expect_header() {
    if grep -qiF -- "$1" "$API_HEADERS"; then
        pass "$2"
    else
        fail "$2 (headers lack '$1': $(tr -d '\r' <"$API_HEADERS" | xargs))"
    fi
}

# A status record as a gateway relays it (release "" for none; version
# 1.0.0 without a release, else REL's version given in REL_VERSION).
status_record() {
    local rel="" err="" version=${REL_VERSION:-2.0.0}
    if [ -n "$3" ]; then
        rel=",\"release\":\"$3\",\"version\":\"$version\""
    else
        rel=",\"version\":\"1.0.0\""
    fi
    [ $# -ge 9 ] && err=",\"error\":\"$8\",\"message\":\"$9\""
    printf '{"format":1,"node":"%s","gateway":"%s"%s,"state":"%s",' "$1" "$2" "$rel" "$4"
    printf '"bytes":%s,"total":%s,"seq":%s,"ts":%s%s}' "$5" "$6" "$7" "$(date +%s)" "$err"
}

describe() {
    local gw=$1 node=$2 model=$3 tags=${4:-"{}"}
    mosquitto_pub -p "$MOSQ_PORT" -q 1 -r -t "ferry/v1/$FLEET/node-info/$gw/$node" \
        -m "{\"format\":1,\"node\":\"$node\",\"product\":\"firmware\",\"hw_model\":\"$model\",\"tags\":$tags}" ||
        die "mosquitto_pub failed"
}

presence() {
    mosquitto_pub -p "$MOSQ_PORT" -q 1 -r -t "ferry/v1/$FLEET/presence/$1" -m "$2" ||
        die "mosquitto_pub failed"
}
