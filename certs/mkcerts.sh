#!/usr/bin/env bash
# Development PKI for Ferry: a CA, the broker's server certificate, one client
# certificate per gateway and one for the cloud, and a release-signing key.
# For tests and demos only; see certs/README.md.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: certs/mkcerts.sh OUT_DIR [--fleet F] [--gateway GW ...] [--days N]
                        [--server-name NAME ...] [--expired] [--force]

  OUT_DIR        where to write (created, mode 0700)
  --fleet F      fleet named in the client certificates' OU (default: dev)
  --gateway GW   make gw-GW.crt/.key with CN=GW (repeatable; default: gw1)
  --days N       validity of every certificate (default: 365)
  --server-name NAME  also name NAME in the broker's certificate (a DNS name
                 the programs reach it by, e.g. a compose service; repeatable)
  --expired      also make expired.crt/.key, a client certificate that
                 expired yesterday (CN=expired-client), for rejection tests
  --force        replace existing certificates (the release key is kept)

Writes ca.crt/ca.key, server.crt/server.key (CN and SAN localhost,
IP 127.0.0.1 and ::1, and each --server-name), gw-<GW>.crt/.key, cloud.crt/cloud.key (CN ferry-cloud)
and a release-signing key release-<kid>.key/.pub made by `ferry-cloud keygen`
($FERRY_CLOUD, else ./build/cloud-bridge/ferry-cloud); without that binary,
release-signing.key/.pub from openssl (no key id is computed then).
Private keys are mode 0600.
EOF
}

die() {
    echo "mkcerts: $*" >&2
    exit 1
}

is_id() {
    [[ "$1" =~ ^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$ ]]
}

OUT=
FLEET=dev
GATEWAYS=()
SERVER_NAMES=()
DAYS=365
EXPIRED=0
FORCE=0
while [ $# -gt 0 ]; do
    case $1 in
    -h | --help)
        usage
        exit 0
        ;;
    --fleet)
        [ $# -ge 2 ] || die "--fleet needs a value"
        FLEET=$2
        shift 2
        ;;
    --gateway)
        [ $# -ge 2 ] || die "--gateway needs a value"
        GATEWAYS+=("$2")
        shift 2
        ;;
    --server-name)
        [ $# -ge 2 ] || die "--server-name needs a value"
        [[ "$2" =~ ^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$ ]] ||
            die "--server-name: not a DNS name: '$2'"
        SERVER_NAMES+=("$2")
        shift 2
        ;;
    --days)
        [ $# -ge 2 ] || die "--days needs a value"
        DAYS=$2
        shift 2
        ;;
    --expired)
        EXPIRED=1
        shift
        ;;
    --force)
        FORCE=1
        shift
        ;;
    -*)
        die "unknown option '$1' (see --help)"
        ;;
    *)
        [ -z "$OUT" ] || die "one OUT_DIR only, got '$OUT' and '$1'"
        OUT=$1
        shift
        ;;
    esac
done
[ -n "$OUT" ] || {
    usage >&2
    exit 2
}
[[ "$DAYS" =~ ^[1-9][0-9]{0,4}$ ]] || die "--days: expected a positive number, got '$DAYS'"
is_id "$FLEET" || die "--fleet: not a valid identifier: '$FLEET'"
[ ${#GATEWAYS[@]} -gt 0 ] || GATEWAYS=(gw1)
for gw in "${GATEWAYS[@]}"; do
    is_id "$gw" || die "--gateway: not a valid identifier: '$gw'"
done
command -v openssl >/dev/null || die "openssl not found"

# Every file this run would write; refuse to clobber any of them.
TARGETS=(ca.crt ca.key server.crt server.key cloud.crt cloud.key)
for gw in "${GATEWAYS[@]}"; do
    TARGETS+=("gw-$gw.crt" "gw-$gw.key")
done
[ "$EXPIRED" = 1 ] && TARGETS+=(expired.crt expired.key)
if [ "$FORCE" = 0 ]; then
    for f in "${TARGETS[@]}"; do
        [ -e "$OUT/$f" ] && die "$OUT/$f exists; pass --force to replace the certificates"
    done
fi

mkdir -p "$OUT"
chmod 700 "$OUT"
WORK=$(mktemp -d "$OUT/.work-XXXXXX")
trap 'rm -rf "$WORK"' EXIT

new_key() {
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$1" 2>/dev/null)
    chmod 600 "$1"
}

# Extensions for each kind of certificate, by section name.
cat >"$WORK/ext.cnf" <<'EOF'
[req]
distinguished_name = dn
[dn]

[ca_ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
for name in "${SERVER_NAMES[@]+"${SERVER_NAMES[@]}"}"; do
    sed -i "/^subjectAltName = DNS:localhost/s/\$/, DNS:$name/" "$WORK/ext.cnf"
done

serial() {
    echo "0x$(openssl rand -hex 16)"
}

# issue NAME SUBJECT EXT_SECTION: NAME.key and NAME.crt signed by the CA.
issue() {
    local name=$1 subj=$2 ext=$3
    new_key "$WORK/$name.key"
    openssl req -new -key "$WORK/$name.key" -subj "$subj" -out "$WORK/$name.csr"
    openssl x509 -req -in "$WORK/$name.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" \
        -set_serial "$(serial)" -days "$DAYS" -sha256 \
        -extfile "$WORK/ext.cnf" -extensions "$ext" -out "$WORK/$name.crt" 2>/dev/null
}

# An already-expired client certificate: `openssl x509` cannot back-date
# (OpenSSL 3.0 has no -not_before), `openssl ca` can, through a throwaway
# CA database.
issue_expired() {
    local db="$WORK/ca-db"
    mkdir -p "$db"
    : >"$db/index.txt"
    cat >"$WORK/ca.cnf" <<EOF
[ca]
default_ca = dev_ca

[dev_ca]
database = $db/index.txt
new_certs_dir = $db
serial = $db/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none

[policy_any]
organizationName = optional
organizationalUnitName = optional
commonName = supplied

[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
EOF
    openssl rand -hex 16 >"$db/serial"
    new_key "$WORK/expired.key"
    openssl req -new -key "$WORK/expired.key" -subj "/O=ferry/OU=$FLEET/CN=expired-client" \
        -out "$WORK/expired.csr"
    openssl ca -batch -notext -config "$WORK/ca.cnf" -cert "$WORK/ca.crt" \
        -keyfile "$WORK/ca.key" -in "$WORK/expired.csr" -out "$WORK/expired.crt" \
        -extensions client_ext \
        -startdate "$(date -u -d '-2 days' +%Y%m%d%H%M%SZ)" \
        -enddate "$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)" 2>/dev/null ||
        die "openssl ca failed to issue the expired certificate"
}

new_key "$WORK/ca.key"
openssl req -x509 -new -key "$WORK/ca.key" -subj "/O=ferry/CN=ferry dev CA" -days "$DAYS" \
    -sha256 -set_serial "$(serial)" -config "$WORK/ext.cnf" -extensions ca_ext \
    -out "$WORK/ca.crt" ||
    die "could not make the CA certificate"

issue server "/O=ferry/CN=localhost" server_ext
issue cloud "/O=ferry/OU=$FLEET/CN=ferry-cloud" client_ext
for gw in "${GATEWAYS[@]}"; do
    issue "gw-$gw" "/O=ferry/OU=$FLEET/CN=$gw" client_ext
done
[ "$EXPIRED" = 1 ] && issue_expired

for f in "${TARGETS[@]}"; do
    mv -f "$WORK/$f" "$OUT/$f"
done
chmod 644 "$OUT"/*.crt

# The release key is a trust anchor, not a TLS credential: never replaced.
shopt -s nullglob
existing=("$OUT"/release-*.key)
shopt -u nullglob
if [ ${#existing[@]} -gt 0 ]; then
    echo "mkcerts: keeping release key ${existing[0]}"
else
    cloud=${FERRY_CLOUD:-./build/cloud-bridge/ferry-cloud}
    if [ -x "$cloud" ]; then
        kid=$("$cloud" keygen --out-dir "$OUT") || die "ferry-cloud keygen failed"
        echo "mkcerts: release key id $kid ($OUT/release-$kid.key)"
    else
        new_key "$OUT/release-signing.key"
        openssl pkey -in "$OUT/release-signing.key" -pubout -out "$OUT/release-signing.pub"
        echo "mkcerts: $cloud not found; wrote release-signing.key with openssl (no key id)"
    fi
fi
echo "mkcerts: wrote ${TARGETS[*]} in $OUT"
