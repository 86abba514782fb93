#!/usr/bin/env bash
# ferry-cloud keygen/sign/verify as an operator runs them, plus the dev PKI
# from certs/mkcerts.sh, all with the real binaries and real openssl.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLOUD=$(ferry_bin ferry-cloud) || exit 1
T=$TEST_TMP

# ---- keygen ----
expect_status 0 "keygen succeeds" "$CLOUD" keygen --out-dir "$T/keys"
KID=$(cat "$RUN_STDOUT")
if [[ "$KID" =~ ^[0-9a-f]{16}$ ]]; then
    pass "keygen prints a 16-hex-digit key id"
else
    fail "keygen printed '$KID', not a key id"
fi
KEY=$T/keys/release-$KID.key
PUB=$T/keys/release-$KID.pub
check "keygen wrote release-<kid>.key and .pub" test -f "$KEY" -a -f "$PUB"
check "private key is mode 600" test "$(stat -c %a "$KEY")" = 600
check "openssl reads the private key as EC P-256" \
    bash -c "openssl pkey -in '$KEY' -noout -text | grep -q 'NIST CURVE: P-256'"

expect_status 0 "a second keygen succeeds" "$CLOUD" keygen --out-dir "$T/other"
OTHER_KID=$(cat "$RUN_STDOUT")
check "the second key has its own id" test "$OTHER_KID" != "$KID"
OTHER_PUB=$T/other/release-$OTHER_KID.pub

# ---- sign and verify ----
ART=$T/artifact.bin
head -c 1048576 /dev/urandom >"$ART"
ENV=$T/release.env
expect_status 0 "sign a 1 MiB artifact" "$CLOUD" sign --key "$KEY" --artifact "$ART" \
    --version 1.0.0 --seq 1 --hw-model board-a --hw-model board-b --out "$ENV"
expect_output stdout "firmware-1.0.0-1" "sign reports the default release id"

expect_status 0 "verify the untouched release" "$CLOUD" verify --trust "$PUB" \
    --manifest "$ENV" --artifact "$ART" --hw-model board-b
expect_output stdout "ok: release firmware-1.0.0-1 version 1.0.0 seq 1" \
    "verify prints release, version and seq"

# The envelope as a third party reads it: openssl checks the signature over
# the embedded manifest bytes, and the manifest's hash is the artifact's.
check "decode the envelope (python3)" python3 - "$ENV" "$T" <<'EOF'
import base64, json, sys
env = json.load(open(sys.argv[1]))
out = sys.argv[2]
manifest = base64.b64decode(env["manifest"])
sig = base64.b64decode(env["sig"])
open(out + "/manifest.json", "wb").write(manifest)
def der_int(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80:
        b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b
body = der_int(sig[:32]) + der_int(sig[32:])
open(out + "/sig.der", "wb").write(b"\x30" + bytes([len(body)]) + body)
m = json.loads(manifest)
open(out + "/manifest.sha256", "w").write(m["artifact"]["sha256"] + "\n")
open(out + "/manifest.kid", "w").write(env["kid"] + "\n")
EOF
check "openssl verifies the ES256 signature" openssl dgst -sha256 -verify "$PUB" \
    -signature "$T/sig.der" "$T/manifest.json"
check "the manifest's sha256 is the artifact's" \
    test "$(cat "$T/manifest.sha256")" = "$(sha256sum "$ART" | cut -d' ' -f1)"
check "the envelope names the signing key" test "$(cat "$T/manifest.kid")" = "$KID"

# ---- what verify must refuse ----
cp "$ART" "$T/flipped.bin"
check "flip one artifact byte" python3 - "$T/flipped.bin" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(524288)
    b = f.read(1)[0]
    f.seek(524288)
    f.write(bytes([b ^ 0x01]))
EOF
expect_status 1 "a flipped artifact byte fails" "$CLOUD" verify --trust "$PUB" \
    --manifest "$ENV" --artifact "$T/flipped.bin"
expect_output stderr "hash" "the message names the hash"
expect_output stderr "ferry-cloud verify:" "the message starts with the subcommand"

head -c 1000 "$ART" >"$T/short.bin"
expect_status 1 "a truncated artifact fails" "$CLOUD" verify --trust "$PUB" \
    --manifest "$ENV" --artifact "$T/short.bin"
expect_output stderr "1000 bytes" "the message gives the artifact's size"

# A changed manifest under the original signature.
check "raise seq inside the signed manifest" python3 - "$ENV" "$T/tampered.env" <<'EOF'
import base64, json, sys
env = json.load(open(sys.argv[1]))
m = json.loads(base64.b64decode(env["manifest"]))
m["seq"] = m["seq"] + 100
env["manifest"] = base64.b64encode(json.dumps(m, separators=(",", ":")).encode()).decode()
json.dump(env, open(sys.argv[2], "w"))
EOF
expect_status 1 "a tampered manifest fails" "$CLOUD" verify --trust "$PUB" \
    --manifest "$T/tampered.env" --artifact "$ART"
expect_output stderr "does not verify" "the message says the signature does not verify"

sed 's/"alg"/"alg_"/' "$ENV" >"$T/broken.env"
expect_status 1 "a broken envelope fails" "$CLOUD" verify --trust "$PUB" \
    --manifest "$T/broken.env" --artifact "$ART"
expect_output stderr "alg" "the message names the broken field"

expect_status 1 "another key's keyring fails" "$CLOUD" verify --trust "$OTHER_PUB" \
    --manifest "$ENV" --artifact "$ART"
expect_output stderr "not in the keyring" "the message says the key is unknown"
expect_output stderr "$KID" "the message names the signing key"

expect_status 1 "wrong hardware model fails" "$CLOUD" verify --trust "$PUB" \
    --manifest "$ENV" --artifact "$ART" --hw-model board-z
expect_output stderr "hardware" "the message says incompatible hardware"

expect_status 1 "a sequence below --min-seq fails" "$CLOUD" verify --trust "$PUB" \
    --manifest "$ENV" --artifact "$ART" --min-seq 2
expect_output stderr "below the minimum" "the message says downgrade"

SHORT=$T/short-lived.env
expect_status 0 "sign with --expires 1s" "$CLOUD" sign --key "$KEY" --artifact "$ART" \
    --version 1.0.1 --seq 2 --hw-model board-a --expires 1s --out "$SHORT"
sleep 2
expect_status 1 "an expired release fails" "$CLOUD" verify --trust "$PUB" \
    --manifest "$SHORT" --artifact "$ART"
expect_output stderr "expired" "the message says expired"

# ---- sign options and its refusals ----
expect_status 0 "sign with revisions, constraints and a release id" "$CLOUD" sign \
    --key "$KEY" --artifact "$ART" --version 2.0.0-rc.1 --seq 3 --hw-model board-a \
    --hw-revision r1 --hw-revision r2 --product gateway-fw --component boot \
    --media-type application/x-firmware --must-be-idle --window-start 1700000000 \
    --window-end 4000000000 --max-deferral 2d --release rel-3 --out "$T/full.env"
expect_status 0 "it verifies for a listed revision" "$CLOUD" verify --trust "$PUB" \
    --manifest "$T/full.env" --artifact "$ART" --hw-model board-a --hw-revision r2
expect_output stdout "ok: release rel-3 version 2.0.0-rc.1 seq 3" "verify reports rel-3"
expect_status 1 "it fails for an unlisted revision" "$CLOUD" verify --trust "$PUB" \
    --manifest "$T/full.env" --artifact "$ART" --hw-model board-a --hw-revision r9
expect_output stderr "r9" "the message names the revision"

expect_status 1 "sign refuses a version that is not semver" "$CLOUD" sign --key "$KEY" \
    --artifact "$ART" --version 1.x --seq 4 --hw-model board-a --out "$T/bad.env"
expect_output stderr "--version" "the message names --version"
check "no envelope was written for it" test ! -e "$T/bad.env"

expect_status 1 "sign refuses a repeated --hw-model" "$CLOUD" sign --key "$KEY" \
    --artifact "$ART" --version 1.0.0 --seq 4 --hw-model board-a --hw-model board-a \
    --out "$T/bad.env"
expect_output stderr "given twice" "the message says it is repeated"

expect_status 1 "sign with a public key fails" "$CLOUD" sign --key "$PUB" \
    --artifact "$ART" --version 1.0.0 --seq 4 --hw-model board-a --out "$T/bad.env"
expect_output stderr "public key" "the message says it is a public key"

: >"$T/empty.bin"
expect_status 1 "sign refuses an empty artifact" "$CLOUD" sign --key "$KEY" \
    --artifact "$T/empty.bin" --version 1.0.0 --seq 4 --hw-model board-a --out "$T/bad.env"
expect_output stderr "empty" "the message says the artifact is empty"

echo '{"version": "3.1.4", "seq": 5, "hw-model": ["board-a"]}' >"$T/sign.json"
expect_status 0 "sign takes settings from --config" "$CLOUD" sign --config "$T/sign.json" \
    --key "$KEY" --artifact "$ART" --out "$T/config.env"
expect_status 0 "and that release verifies" "$CLOUD" verify --trust "$PUB" \
    --manifest "$T/config.env" --artifact "$ART" --hw-model board-a
expect_output stdout "version 3.1.4 seq 5" "with the config file's version and seq"

# ---- usage ----
expect_status 0 "ferry-cloud --help" "$CLOUD" --help
for sub in keygen sign verify; do
    expect_status 0 "$sub --help" "$CLOUD" "$sub" --help
    expect_output stdout "--log-level" "$sub --help lists --log-level"
done
expect_status 2 "no subcommand is a usage error" "$CLOUD"
expect_status 2 "an unknown subcommand is a usage error" "$CLOUD" frobnicate
expect_output stderr "frobnicate" "the message names it"
expect_status 2 "sign without --out" "$CLOUD" sign --key "$KEY" --artifact "$ART" \
    --version 1.0.0 --seq 1 --hw-model board-a
expect_output stderr "--out" "the message names --out"
expect_status 2 "verify without --trust" "$CLOUD" verify --manifest "$ENV" --artifact "$ART"
expect_output stderr "--trust" "the message names --trust"
expect_status 2 "keygen without --out-dir" "$CLOUD" keygen
expect_output stderr "--out-dir" "the message names --out-dir"
expect_status 2 "an unknown flag" "$CLOUD" verify --trust "$PUB" --manifest "$ENV" \
    --artifact "$ART" --colour blue
expect_output stderr "--colour" "the message names the flag"
expect_status 2 "a bad --seq value" "$CLOUD" sign --key "$KEY" --artifact "$ART" \
    --version 1.0.0 --seq -1 --hw-model board-a --out "$T/bad.env"
expect_output stderr "--seq" "the message names --seq"

# ---- dev PKI ----
MK=$FERRY_SOURCE_DIR/certs/mkcerts.sh
PKI=$T/pki
expect_status 0 "mkcerts.sh makes a PKI" env FERRY_CLOUD="$CLOUD" bash "$MK" "$PKI" \
    --fleet f1 --gateway gw1 --gateway gw2 --days 30 --expired
check "openssl verifies server, cloud and gateway certificates" openssl verify \
    -CAfile "$PKI/ca.crt" "$PKI/server.crt" "$PKI/cloud.crt" "$PKI/gw-gw1.crt" "$PKI/gw-gw2.crt"
check "the server certificate covers 127.0.0.1 and localhost" \
    bash -c "openssl x509 -in '$PKI/server.crt' -noout -ext subjectAltName |
             grep -q 'IP Address:127.0.0.1' &&
             openssl x509 -in '$PKI/server.crt' -noout -checkhost localhost | grep -q 'does match'"
check "a gateway certificate's CN is its id" \
    bash -c "openssl x509 -in '$PKI/gw-gw2.crt' -noout -subject | grep -q 'CN *= *gw2'"
check "the cloud certificate's CN is ferry-cloud" \
    bash -c "openssl x509 -in '$PKI/cloud.crt' -noout -subject | grep -q 'CN *= *ferry-cloud'"
run openssl verify -CAfile "$PKI/ca.crt" "$PKI/expired.crt"
if [ "$RUN_RC" -ne 0 ] && grep -qi "certificate has expired" "$RUN_STDOUT" "$RUN_STDERR"; then
    pass "the expired certificate fails openssl verify as expired"
else
    fail "the expired certificate: openssl verify exit $RUN_RC"
    _show_last_run
fi
bad_modes=$(find "$PKI" -name '*.key' ! -perm 600)
check "every private key is mode 600 ($bad_modes)" test -z "$bad_modes"
shopt -s nullglob
release_keys=("$PKI"/release-*.key)
shopt -u nullglob
check "mkcerts made a release key with ferry-cloud" test ${#release_keys[@]} -eq 1
expect_status 1 "a second run refuses to overwrite" bash "$MK" "$PKI" --gateway gw1
expect_output stderr "--force" "and says how to force it"
expect_status 0 "--force replaces the certificates" env FERRY_CLOUD="$CLOUD" bash "$MK" "$PKI" \
    --gateway gw1 --force
check "the new gateway certificate verifies against the new CA" openssl verify \
    -CAfile "$PKI/ca.crt" "$PKI/gw-gw1.crt"
check "--force kept the one release key" bash -c "ls '$PKI'/release-*.key | wc -l | grep -qx 1"
if [ ${#release_keys[@]} -eq 1 ]; then
    expect_status 0 "the mkcerts release key signs" "$CLOUD" sign --key "${release_keys[0]}" \
        --artifact "$ART" --version 1.0.0 --seq 1 --hw-model board-a --out "$T/pki.env"
fi

finish
