#!/usr/bin/env bash
# Mosquitto ACL for one Ferry fleet: the cloud identity and each gateway get
# exactly the topics they use, keyed by the client certificate's CN (the
# broker needs `use_identity_as_username true`). See certs/README.md.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: certs/mkacl.sh --fleet F --gateway GW [--gateway GW ...]
                      [--cloud-identity NAME] > acl

  --fleet F              the fleet (topics ferry/v1/F/...)
  --gateway GW           a gateway id = the CN of its certificate (repeatable)
  --cloud-identity NAME  the CN of ferry-cloud's certificate (default ferry-cloud)

Writes a mosquitto 2.0 acl_file on stdout: one `user` section per identity,
no patterns. Anything not listed is denied.
EOF
}

die() {
    echo "mkacl: $*" >&2
    exit 1
}

# The identifier rule of proto/ferry_names.h: it keeps every name a single
# topic level with no wildcard, and a single ACL token with no space.
is_id() {
    [[ "$1" =~ ^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$ ]]
}

FLEET=
CLOUD=ferry-cloud
GATEWAYS=()
while [ $# -gt 0 ]; do
    case $1 in
    -h | --help)
        usage
        exit 0
        ;;
    --fleet | --gateway | --cloud-identity)
        [ $# -ge 2 ] || die "$1 needs a value"
        case $1 in
        --fleet) FLEET=$2 ;;
        --gateway) GATEWAYS+=("$2") ;;
        --cloud-identity) CLOUD=$2 ;;
        esac
        shift 2
        ;;
    *)
        die "unknown argument '$1' (see --help)"
        ;;
    esac
done
[ -n "$FLEET" ] || die "--fleet is required"
[ ${#GATEWAYS[@]} -gt 0 ] || die "at least one --gateway is required"
is_id "$FLEET" || die "--fleet: not a valid identifier: '$FLEET'"
is_id "$CLOUD" || die "--cloud-identity: not a valid identifier: '$CLOUD'"
declare -A seen=()
for gw in "${GATEWAYS[@]}"; do
    is_id "$gw" || die "--gateway: not a valid identifier: '$gw'"
    # Sections for one user name merge in mosquitto: a gateway named like the
    # cloud would get the cloud's rights.
    [ "$gw" != "$CLOUD" ] || die "--gateway '$gw' is also the cloud identity"
    [ -z "${seen[$gw]:-}" ] || die "--gateway '$gw' given twice"
    seen[$gw]=1
done

T="ferry/v1/$FLEET"

cat <<EOF
# Mosquitto 2.0 ACL for Ferry fleet '$FLEET', made by certs/mkacl.sh.
# User names are certificate CNs (use_identity_as_username true).
#
# Mosquitto 2.0's acl_file does not check SUBSCRIBE: every filter, \$share
# ones included, is granted, and each message is checked for 'read' against
# its own topic on delivery. So a 'read' rule names plain topics, never
# \$share/... (such a rule would match nothing), and an unauthorised PUBLISH
# is dropped (QoS 0) or answered "not authorised" (QoS 1, MQTT 5).

user $CLOUD
topic readwrite $T/release/+
topic readwrite $T/root/+
topic readwrite $T/timestamp/+
topic read $T/stream/req/+
topic write $T/stream/data/+
topic read $T/status/+
topic write $T/status-ack/+
topic read $T/node/+/+
topic read $T/config/+/+
topic read $T/presence/+
topic write $T/rollout/+/+
topic read $T/node-info/+/+
topic read $T/rollout-report/+
EOF

for gw in "${GATEWAYS[@]}"; do
    cat <<EOF

user $gw
topic read $T/release/+
topic read $T/root/+
topic read $T/timestamp/+
topic read $T/stream/data/$gw
topic write $T/stream/req/$gw
topic write $T/status/$gw
topic read $T/status-ack/$gw
topic readwrite $T/presence/$gw
topic write $T/node/$gw/+
topic write $T/config/$gw/+
topic read $T/rollout/$gw/+
topic write $T/node-info/$gw/+
topic write $T/rollout-report/$gw
EOF
done
