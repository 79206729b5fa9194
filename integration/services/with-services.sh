#!/usr/bin/env bash
# Run a command with the real test servers (Cassandra, OpenSearch) up.
#
#   with-services.sh COMMAND [ARGS...]   start what is not running, run COMMAND with
#                                        STOA_TEST_CASSANDRA / STOA_TEST_OPENSEARCH set,
#                                        stop only what this call started (also on
#                                        failure or Ctrl-C), exit with COMMAND's status
#   with-services.sh --up                start both (in parallel) and leave them running
#   with-services.sh --down              stop both (only servers these scripts started)
#   with-services.sh --status
#
# STOA_SERVICES selects the servers (default "cassandra opensearch"; "" for none,
# e.g. when STOA_TEST_* point at servers of your own).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
read -r -a SERVICES <<<"${STOA_SERVICES-cassandra opensearch}"

services_up() {
	local s pids=() rc=0 i t0
	t0=$(now_ms)
	# Downloads first, one at a time: they share one Maven local repository.
	for s in "${SERVICES[@]}"; do
		"$DIR/$s.sh" fetch || return 1
	done
	# Start in parallel; each waits until its server is ready.
	for s in "${SERVICES[@]}"; do
		"$DIR/$s.sh" start &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || { log "${SERVICES[$i]} failed to start"; rc=1; }
	done
	((rc == 0)) && ((${#SERVICES[@]})) && log "services ready in $(elapsed "$t0")"
	return $rc
}

services_down() {
	local s pids=() rc=0 p
	for s in "$@"; do
		"$DIR/$s.sh" stop &
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p" || rc=1
	done
	return $rc
}

case "${1:-}" in
--up)
	services_up
	exit
	;;
--down)
	services_down "${SERVICES[@]}"
	exit
	;;
--status)
	rc=0
	for s in "${SERVICES[@]}"; do "$DIR/$s.sh" status || rc=1; done
	exit $rc
	;;
--) shift ;;
"" | --help | -h)
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac

mkdir -p "$STOA_RUN"
STOA_STARTED_LIST="$(mktemp "$STOA_RUN/.started.XXXXXX")"
export STOA_STARTED_LIST

# shellcheck disable=SC2329 # invoked by the EXIT trap
cleanup() {
	local rc=$? started=()
	trap - EXIT INT TERM
	if [[ -s $STOA_STARTED_LIST ]]; then
		mapfile -t started <"$STOA_STARTED_LIST"
	fi
	if ((${#started[@]})); then
		log "stopping what this run started: ${started[*]}"
		services_down "${started[@]}" || true
	fi
	rm -f "$STOA_STARTED_LIST"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

services_up || die "test servers did not start"

export STOA_TEST_CASSANDRA="${STOA_TEST_CASSANDRA:-${CASSANDRA_ADDR:-127.0.0.1}:${CASSANDRA_PORT:-9042}}"
export STOA_TEST_OPENSEARCH="${STOA_TEST_OPENSEARCH:-http://${OPENSEARCH_ADDR:-127.0.0.1}:${OPENSEARCH_PORT:-9200}}"
log "running: $* (STOA_TEST_CASSANDRA=$STOA_TEST_CASSANDRA STOA_TEST_OPENSEARCH=$STOA_TEST_OPENSEARCH)"
t0=$(now_ms)
set +e
"$@"
rc=$?
set -e
log "command exited with status $rc after $(elapsed "$t0")"
exit $rc
