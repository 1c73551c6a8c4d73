# Shared settings for tests/cluster/{build,up,down,status,load}. Sourced, not run.
# shellcheck shell=bash disable=SC2034
K8S_VERSION="${APPCOUP_K8S_VERSION:-v1.34.4}"
ETCD_VERSION="${APPCOUP_ETCD_VERSION:-v3.5.35}"
COREDNS_VERSION="${APPCOUP_COREDNS_VERSION:-v1.12.4}"
CACHE_ROOT="${APPCOUP_CLUSTER_CACHE:-/var/cache/appcoup-cluster}"
CACHE="$CACHE_ROOT/$K8S_VERSION"
BIN="$CACHE/bin"
IMAGES="$CACHE/images"
# A second (third...) cluster on the same machine: APPCOUP_CLUSTER_NAME=b (index 1; other names need
# APPCOUP_CLUSTER_INDEX=2..9). Its control plane listens on other ports; its node (containerd, kubelet,
# kube-proxy, CNI) runs in a network namespace of its own, so the two kube-proxies do not share iptables.
CLUSTER_NAME="${APPCOUP_CLUSTER_NAME:-}"
case "$CLUSTER_NAME" in
  "") IDX=0 ;;
  b) IDX="${APPCOUP_CLUSTER_INDEX:-1}" ;;
  *) IDX="${APPCOUP_CLUSTER_INDEX:?APPCOUP_CLUSTER_NAME=$CLUSTER_NAME needs APPCOUP_CLUSTER_INDEX (1-9)}" ;;
esac
SUFFIX="${CLUSTER_NAME:+-$CLUSTER_NAME}"
STATE="${APPCOUP_CLUSTER_STATE:-/var/lib/appcoup-cluster$SUFFIX}"
RUN="${APPCOUP_CLUSTER_RUN:-/run/appcoup-cluster$SUFFIX}"
LOGS="$STATE/logs"
PKI="$STATE/pki"
KUBECONFIG_ADMIN="$STATE/admin.kubeconfig"
CONTAINERD_SOCK="$RUN/containerd.sock"
PAUSE_IMAGE="appcoup.local/pause:3.10-appcoup"
COREDNS_IMAGE="appcoup.local/coredns:${COREDNS_VERSION#v}-appcoup"
SERVICE_CIDR="10.$((96 + IDX)).0.0/16"
SERVICE_API_IP="10.$((96 + IDX)).0.1"
DNS_IP="10.$((96 + IDX)).0.10"
POD_CIDR="10.$((244 + IDX)).0.0/16"
NODE_POD_CIDR="10.$((244 + IDX)).0.0/24"
CLUSTER_DOMAIN="cluster.local"
CNI_BRIDGE="appcoup-cni$IDX"
NODE_NAME="appcoup-cluster$SUFFIX"
APISERVER_PORT=$((6443 + IDX))
ETCD_PORT=$((12379 + 10 * IDX))
CM_PORT=$((10257 + 1000 * IDX))
SCHED_PORT=$((10259 + 1000 * IDX))
if [ "$IDX" = 0 ]; then
  NETNS=""; NX=""; NODE_EXEC=()
else
  NETNS="appcoup-cluster$SUFFIX"           # the node's network namespace
  NODE_LINK_HOST="appcoup${IDX}h"; NODE_LINK_NODE="appcoup${IDX}n"
  HOST_SIDE_IP="10.250.$IDX.1"; NODE_SIDE_IP="10.250.$IDX.2"
  NX="nsenter --net=/run/netns/$NETNS"     # for eval'd health checks
  NODE_EXEC=(nsenter "--net=/run/netns/$NETNS")
fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export GOTOOLCHAIN=local
# Never let the cluster daemons carry the local runtime's process mark (tests would take them for strays).
unset APPCOUP_APP

log() { printf '[appcoup-cluster] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
tail_log() { local f="$1"; if [ -f "$f" ]; then echo "----- last lines of $f -----" >&2; tail -n "${2:-40}" "$f" >&2; fi; }
