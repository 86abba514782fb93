#!/usr/bin/env python3
"""A CoAP client that fetches one artifact the way D2 describes ferry-edge:
non-confirmable Block2 GETs, each for one block with its own token and the
node's n= query, a fixed window of them in flight, each retransmitted after
a fixed timeout, 5.03 honoured (Max-Age). For the gateway's link-budget
test and bench, where many such nodes share one --link-rate; it is no model
of ferry-edge's adaptive timers.

  coap_window_fetch.py --port P --sha HEX --node ID --out FILE
                       [--window 8] [--rto-ms 2000] [--timeout-s 120]
                       [--ready FILE --go FILE]

Writes FILE (each block at its offset) and prints one JSON line:
{"node", "bytes", "seconds", "requests", "retransmits", "busy"}. With --ready
and --go (when several must start together) it creates the first file once
it is up, waits for the second to exist, and counts its seconds from the
moment the second file was made. Exits 1
on a timeout or an error answer other than 5.03."""
import argparse
import json
import os
import select
import socket
import struct
import sys
import time

SZX = 6
BLOCK = 16 << SZX


def option(delta_base, number, value):
    """One CoAP option after option number delta_base."""
    delta = number - delta_base

    def nib(v):
        if v < 13:
            return v, b""
        if v < 269:
            return 13, bytes([v - 13])
        return 14, struct.pack(">H", v - 269)

    dn, dx = nib(delta)
    ln, lx = nib(len(value))
    return bytes([dn << 4 | ln]) + dx + lx + value


def uint_bytes(v):
    out = b""
    while v:
        out = bytes([v & 0xFF]) + out
        v >>= 8
    return out


def request(mid, token, sha, node, num):
    msg = bytes([0x50 | len(token), 0x01]) + struct.pack(">H", mid) + token
    opts = [(11, b"ferry"), (11, b"artifact"), (11, sha.encode()),
            (15, b"n=" + node.encode()), (23, uint_bytes(num << 4 | SZX))]
    last = 0
    for number, value in opts:
        msg += option(last, number, value)
        last = number
    return msg


def parse(data):
    """(code, token, {option: [values]}, payload) of a response, or None."""
    if len(data) < 4 or data[0] >> 6 != 1:
        return None
    tkl = data[0] & 0x0F
    code = data[1]
    token = data[4:4 + tkl]
    i, number, opts = 4 + tkl, 0, {}
    while i < len(data) and data[i] != 0xFF:
        d, ln = data[i] >> 4, data[i] & 0x0F
        i += 1
        if d == 13:
            d, i = data[i] + 13, i + 1
        elif d == 14:
            d, i = struct.unpack(">H", data[i:i + 2])[0] + 269, i + 2
        if ln == 13:
            ln, i = data[i] + 13, i + 1
        elif ln == 14:
            ln, i = struct.unpack(">H", data[i:i + 2])[0] + 269, i + 2
        number += d
        opts.setdefault(number, []).append(data[i:i + ln])
        i += ln
    payload = data[i + 1:] if i < len(data) else b""
    return code, token, opts, payload


def as_uint(b):
    return int.from_bytes(b, "big") if b else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sha", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--window", type=int, default=8)
    ap.add_argument("--rto-ms", type=int, default=2000)
    ap.add_argument("--timeout-s", type=float, default=120)
    ap.add_argument("--ready")
    ap.add_argument("--go")
    a = ap.parse_args()
    t0 = None
    if a.ready and a.go:
        open(a.ready, "w").close()
        while not os.path.exists(a.go):
            time.sleep(0.005)
        t0 = os.stat(a.go).st_mtime

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((a.host, a.port))
    fd = os.open(a.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    start = time.monotonic()
    deadline = start + a.timeout_s
    mid = int.from_bytes(os.urandom(2), "big")
    size = None          # known from the first Size2
    have = set()         # block numbers written
    out = {}             # token -> (block, sent at)
    next_block = 0
    not_before = 0.0     # after a 5.03, until Max-Age
    stats = {"requests": 0, "retransmits": 0, "busy": 0}

    def send(num, again=False):
        nonlocal mid
        mid = (mid + 1) & 0xFFFF
        token = struct.pack(">I", (mid << 16) | (num & 0xFFFF)) + os.urandom(2)
        sock.send(request(mid, token, a.sha, a.node, num))
        out[token] = (num, time.monotonic())
        stats["requests"] += 1
        stats["retransmits"] += again

    def total_blocks():
        return None if size is None else max(1, (size + BLOCK - 1) // BLOCK)

    while True:
        now = time.monotonic()
        if now > deadline:
            print(f"{a.node}: timed out with {len(have)} blocks", file=sys.stderr)
            return 1
        n = total_blocks()
        if n is not None and len(have) == n:
            break
        if now >= not_before:
            # Retransmit what timed out, then fill the window with new blocks.
            for token, (num, sent) in list(out.items()):
                if now - sent >= a.rto_ms / 1000:
                    del out[token]
                    if num not in have:
                        send(num, again=True)
            while len(out) < (a.window if size is not None else 1):
                if n is not None and next_block >= n:
                    break
                if next_block not in have:
                    send(next_block)
                next_block += 1
        ready, _, _ = select.select([sock], [], [], 0.01)
        if not ready:
            continue
        resp = parse(sock.recv(2048))
        if resp is None:
            continue
        code, token, opts, payload = resp
        if token not in out:
            continue  # a late duplicate
        num, _ = out.pop(token)
        if code == 0xA3:  # 5.03
            stats["busy"] += 1
            max_age = as_uint(opts.get(14, [b"\x3c"])[0])
            not_before = time.monotonic() + max_age
            out.clear()
            next_block = min([b for b in range(next_block) if b not in have], default=next_block)
            continue
        if code != 0x45:  # 2.05
            print(f"{a.node}: block {num}: answer {code >> 5}.{code & 31:02d}", file=sys.stderr)
            return 1
        size = as_uint(opts.get(28, [b""])[0])
        blk = as_uint(opts.get(23, [b""])[0])
        if blk >> 4 != num or blk & 7 != SZX:
            continue
        if num not in have:
            os.pwrite(fd, payload, num * BLOCK)
            have.add(num)
    os.close(fd)
    seconds = time.time() - t0 if t0 else time.monotonic() - start
    print(json.dumps({"node": a.node, "bytes": size, "seconds": round(seconds, 3),
                      **stats}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
