#!/usr/bin/env bash
# `make test-multidc`: start a two-DC Cassandra cluster (one node in dc1, one
# in dc2, GossipingPropertyFileSnitch) with integration/services/cassandra.sh,
# run the multi-DC tests of storage/cassandra against it, and stop the nodes
# this script started, whatever the outcome.
#
# Addresses default to 127.0.0.1 (dc1) and 127.0.0.2 (dc2) (any 127.x
# address works on Linux loopback). If something already answers on the dc1
# address (e.g. the single test node of `make test`), it is left alone and
# 127.0.0.3/127.0.0.4 are used instead. The cluster has its own name, run
# folders and JMX ports, so it never gossips with another test node.
#
#   MULTIDC_DC1_ADDR, MULTIDC_DC2_ADDR   node addresses
#   MULTIDC_KEEP=1                        leave the nodes running afterwards
#   GO                                    go command (default go)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
SVC="$ROOT/integration/services/cassandra.sh"
GO="${GO:-go}"

answers() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/9042" 2>/dev/null; }

DC1="${MULTIDC_DC1_ADDR:-127.0.0.1}"
DC2="${MULTIDC_DC2_ADDR:-127.0.0.2}"
RUN="${STOA_RUN:-$ROOT/.cache/run}"
ours() { # ours NAME ADDR: a node of this script (its PID file) listens there
	grep -qx "listen_address: $2" "$RUN/$1/conf/cassandra.yaml" 2>/dev/null &&
		CASSANDRA_NAME="$1" CASSANDRA_ADDR="$2" "$SVC" status 2>/dev/null | grep -q "running (pid"
}
if [[ -z ${MULTIDC_DC1_ADDR:-} ]] && answers "$DC1" && ! ours cassandra-mdc1 "$DC1"; then
	echo "[multidc] $DC1:9042 is taken by another Cassandra; using 127.0.0.3 and 127.0.0.4" >&2
	DC1=127.0.0.3
	DC2="${MULTIDC_DC2_ADDR:-127.0.0.4}"
fi

node() { # node NAME ADDR DC JMXPORT COMMAND
	CASSANDRA_NAME="$1" CASSANDRA_ADDR="$2" CASSANDRA_DC="$3" CASSANDRA_SEEDS="$DC1" \
		CASSANDRA_JMX_PORT="$4" CASSANDRA_CLUSTER=stoa-multidc CASSANDRA_HEAP="${MULTIDC_HEAP:-768m}" "$SVC" "$5"
}
# The run folders cassandra-mdc1/2 belong to this script alone: stopping by
# their PID files stops only nodes this script started.
stop_nodes() {
	node cassandra-mdc2 "$DC2" dc2 7499 stop || true
	node cassandra-mdc1 "$DC1" dc1 7399 stop || true
}
cleanup() {
	local rc=$?
	if [[ ${MULTIDC_KEEP:-} != 1 ]]; then
		stop_nodes
	fi
	exit $rc
}
trap cleanup EXIT INT TERM

if ! { ours cassandra-mdc1 "$DC1" && ours cassandra-mdc2 "$DC2" && [[ ${MULTIDC_KEEP:-} == 1 ]]; }; then
	stop_nodes >/dev/null 2>&1 # leftovers of an interrupted run: start a fresh cluster
fi
t0=$(date +%s)
node cassandra-mdc1 "$DC1" dc1 7399 start
node cassandra-mdc2 "$DC2" dc2 7499 start
echo "[multidc] dc1 $DC1, dc2 $DC2 up in $(($(date +%s) - t0))s" >&2

cd "$ROOT"
STOA_TEST_MULTIDC="$DC1:9042,$DC2:9042" "$GO" test -count=1 -timeout 15m -run 'TestMultiDC' -v ./storage/cassandra/
