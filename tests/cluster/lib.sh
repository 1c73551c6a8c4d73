# Shared settings for tests/cluster/{build,up,down,status,load}. Sourced, not run.
# shellcheck shell=bash disable=SC2034
K8S_VERSION="${APPCOUP_K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${APPCOUP_ETCD_VERSION:-v3.5.35}"
COREDNS_VERSION="${APPCOUP_COREDNS_VERSION:-v1.12.4}"
CACHE_ROOT="${APPCOUP_CLUSTER_CACHE:-/var/cache/appcoup-cluster}"
CACHE="$CACHE_ROOT/$K8S_VERSION"
BIN="$CACHE/bin"
IMAGES="$CACHE/images"
STATE="${APPCOUP_CLUSTER_STATE:-/var/lib/appcoup-cluster}"
RUN="${APPCOUP_CLUSTER_RUN:-/run/appcoup-cluster}"
LOGS="$STATE/logs"
PKI="$STATE/pki"
KUBECONFIG_ADMIN="$STATE/admin.kubeconfig"
CONTAINERD_SOCK="$RUN/containerd.sock"
PAUSE_IMAGE="appcoup.local/pause:3.10-appcoup"
COREDNS_IMAGE="appcoup.local/coredns:${COREDNS_VERSION#v}-appcoup"
SERVICE_CIDR="10.96.0.0/16"
POD_CIDR="10.244.0.0/16"
NODE_POD_CIDR="10.244.0.0/24"
DNS_IP="10.96.0.10"
CLUSTER_DOMAIN="cluster.local"
CNI_BRIDGE="appcoup-cni0"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export GOTOOLCHAIN=local
# Never let the cluster daemons carry the local runtime's process mark (tests would take them for strays).
unset APPCOUP_APP

log() { printf '[appcoup-cluster] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
tail_log() { local f="$1"; if [ -f "$f" ]; then echo "----- last lines of $f -----" >&2; tail -n "${2:-40}" "$f" >&2; fi; }
