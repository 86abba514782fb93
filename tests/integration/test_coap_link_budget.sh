#!/usr/bin/env bash
# The gateway's link budget (--link-rate): ten nodes fetching at once with
# windows of non-confirmable block requests (tests/tools/coap_window_fetch.py,
# the request pattern D2 gives ferry-edge) share it fairly and never go
# faster than it; a stock coap-client -b 1024 (confirmable, one block at a
# time) behind a 40 ms link stays within its share and downloads correctly.
# Real mosquitto, ferry-cloud serve, ferry-gateway, ferry-udp-proxy.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_mosquitto
source "$(dirname "${BASH_SOURCE[0]}")/relay_lib.sh"

command -v coap-client-notls >/dev/null || die "coap-client-notls (libcoap3-bin) is needed"
PROXY=$(ferry_bin ferry-udp-proxy) || exit 1
FETCH="$FERRY_SOURCE_DIR/tests/tools/coap_window_fetch.py"
COAP_PORT=$(free_port udp)
export COAP_PORT
RATE=163840 # 160 KiB/s
NODES=10
KIB=1024

start_serve s1
head -c $((96 * KIB)) /dev/urandom >"$TEST_TMP/a.bin"
SHA=$(sha_of "$TEST_TMP/a.bin")
publish "$TEST_TMP/a.bin" 1 >/dev/null || die "publish failed"
start_gateway gw1 --max-downloads "$NODES" --link-rate "$RATE"
wait_until 60 cached gw1 "$SHA" || die "the gateway never cached the artifact"

# --- ten windows at once --------------------------------------------------------
# All start at one moment, once every interpreter is up.
pids=()
for i in $(seq 1 "$NODES"); do
    python3 "$FETCH" --port "$COAP_PORT" --sha "$SHA" --node "node-$i" --window 8 \
        --ready "$TEST_TMP/ready$i" --go "$TEST_TMP/go" \
        --out "$TEST_TMP/n$i.bin" >"$TEST_TMP/n$i.json" 2>"$TEST_TMP/n$i.err" &
    pids+=($!)
done
all_ready() { [ "$(find "$TEST_TMP" -maxdepth 1 -name 'ready*' | wc -l)" -eq "$NODES" ]; }
wait_until 60 all_ready || die "the fetchers did not start"
touch "$TEST_TMP/go"
ok=0
for p in "${pids[@]}"; do
    wait "$p" && ok=$((ok + 1))
done
check "all ten nodes finished" test "$ok" -eq "$NODES"
same=0
for i in $(seq 1 "$NODES"); do
    cmp -s "$TEST_TMP/n$i.bin" "$TEST_TMP/a.bin" && same=$((same + 1))
done
check "each node has the exact artifact" test "$same" -eq "$NODES"
# The budget counts each block's datagram as its 1024 bytes and 64 of headers.
python3 - "$RATE" "$NODES" "$TEST_TMP" >"$TEST_TMP/verdict" <<'PY'
import json, sys
rate, nodes, tmp = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
runs = [json.load(open(f"{tmp}/n{i}.json")) for i in range(1, nodes + 1)]
counted = sum(r["bytes"] // 1024 * (1024 + 64) for r in runs)
span = max(r["seconds"] for r in runs)
fastest = min(r["seconds"] for r in runs)
slowest = max(r["seconds"] for r in runs)
print(f"span {span:.2f} s, {counted / span:.0f} counted bytes/s for a budget of {rate}; "
      f"nodes took {fastest:.2f} .. {slowest:.2f} s")
# Not faster than the budget allows (one bucket of 200 ms is free).
print("within" if counted <= rate * (span + 0.2) else "OVER")
# Fair: started together with the same size, they end together.
print("fair" if slowest <= 1.35 * fastest else "UNFAIR")
PY
cat "$TEST_TMP/verdict"
check "the total stayed within --link-rate" grep -qx within "$TEST_TMP/verdict"
check "each node got a fair share" grep -qx fair "$TEST_TMP/verdict"

# --- a stock client within its share --------------------------------------------
PROXY_PORT=$(free_port udp)
"$PROXY" --listen "$PROXY_PORT" --target "127.0.0.1:$COAP_PORT" --delay-ms 20 \
    >"$TEST_TMP/proxy.out" 2>"$TEST_TMP/proxy.log" &
kill_at_exit $!
proxy_listening() { ss -Hlun "sport = :$PROXY_PORT" 2>/dev/null | grep -q .; }
wait_until 10 proxy_listening || die "ferry-udp-proxy did not bind port $PROXY_PORT"
rm -f "$TEST_TMP/stock.bin"
run coap-client-notls -B 30 -b 1024 -o "$TEST_TMP/stock.bin" \
    "coap://127.0.0.1:$PROXY_PORT/ferry/artifact/$SHA"
check "stock coap-client -b 1024 downloads correctly under the budget" \
    cmp "$TEST_TMP/stock.bin" "$TEST_TMP/a.bin"
check "the gateway is still running" kill -0 "$GW_PID"

finish
