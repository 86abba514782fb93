# shellcheck shell=bash
# shellcheck disable=SC2034 # R1_*, T1_* and ROOT1 are for the tests to read
# Trust metadata for the integration tests: root and timestamp keys, and a
# root document version 1 naming the release key relay_lib.sh made. Source
# after relay_lib.sh.
#
#   ROOT1                 root v1: root key R1, release key $KEY, timestamp T1,
#                         signed by R1 and by $KEY (so that devices whose trust
#                         is the keyring $PUB, root version 0, take it)
#   R1_KEY, T1_KEY        their private keys (R1_PUB, T1_PUB the public ones)
#   new_key NAME ROLE     a fresh key in $TEST_TMP/keys-NAME; sets NEW_KEY, NEW_PUB
#   make_root OUT VERSION "SIGNER..." [root init flags...]
#                         writes a root document signed by each SIGNER (.key)

new_key() {
    ferry_keygen "$TEST_TMP/keys-$1" "$2" || die "keygen $1 failed"
    NEW_KEY=$FERRY_KEY
    NEW_PUB=$FERRY_PUB
}

make_root() {
    local out=$1 version=$2 signers=$3 k
    shift 3
    "$CLOUD" root init --out "$out" --version "$version" "$@" >/dev/null ||
        die "root init $version failed"
    for k in $signers; do
        "$CLOUD" root sign --key "$k" --in "$out" --out "$out" >/dev/null ||
            die "root sign $version with $k failed"
    done
}

new_key r1 root
R1_KEY=$NEW_KEY
R1_PUB=$NEW_PUB
new_key t1 timestamp
T1_KEY=$NEW_KEY
T1_PUB=$NEW_PUB
ROOT1="$TEST_TMP/root-1.json"
make_root "$ROOT1" 1 "$R1_KEY $KEY" --root-key "$R1_PUB" --release-key "$PUB" \
    --timestamp-key "$T1_PUB"
