# shellcheck shell=bash
# Helpers for the progressive-rollout tests (test_rollout_*.sh). Source after
# lib.sh, start_mosquitto, relay_lib.sh and fleet_lib.sh.
#
#   wave_of ID NODE SHARES     the wave (0-based) a node falls into, computed
#                              here from PROTOCOL.md's formula, not by Ferry
#   rollout_get ID EXPR        a Python expression over `rollout show --json`
#                              (bound to r), printed
#   wait_rollout SECS ID EXPR  until that expression is true
#   fetchers GW                the nodes a gateway's log says fetched the
#                              rollout's release, one per line, sorted
#   described N                until the inventory holds N node descriptions

# wave_of ROLLOUT NODE SHARES: SHARES is "10,50,100" (percentages only).
wave_of() {
    python3 - "$1" "$2" "$3" <<'EOF'
import hashlib, sys
rid, node, shares = sys.argv[1], sys.argv[2], [float(s) for s in sys.argv[3].split(",")]
h = hashlib.sha256(b"ferry-rollout-wave\0" + rid.encode() + b"\0" + node.encode()).digest()
bucket = int.from_bytes(h[:8], "big") % 10000
print(next(i for i, s in enumerate(shares) if bucket < round(s * 100)))
EOF
}

rollout_get() {
    "$CLOUD" rollout show "$1" --db "$DB" --json 2>/dev/null |
        python3 -c 'import json, sys; r = json.load(sys.stdin); print(eval(sys.argv[1]))' "$2"
}

rollout_is() {
    [ "$(rollout_get "$1" "$2" 2>/dev/null)" = True ]
}

wait_rollout() {
    FERRY_POLL=0.5 FERRY_WAIT_PID='' ferry_wait_until "$1" rollout_is "$2" "$3"
}

fetchers() {
    grep -ho "rollouts: node [^ ]* fetches the rollout's release" "$TEST_TMP/$1.log" 2>/dev/null |
        awk '{print $3}' | sort -u
}

described_count() {
    python3 -c '
import sqlite3, sys
try:
    db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=5)
    print(db.execute("SELECT COUNT(*) FROM node_info").fetchone()[0])
except sqlite3.Error:
    print(0)
' "$DB"
}

described_at_least() {
    (($(described_count) >= $1))
}

described() {
    FERRY_POLL=0.5 FERRY_WAIT_PID='' ferry_wait_until "${2:-60}" described_at_least "$1"
}

# The log actions of a rollout, in order, space-separated.
rollout_actions() {
    rollout_get "$1" '" ".join(e["action"] for e in r["log"])'
}
