# shellcheck shell=bash
# Shared helpers for the test-service scripts (cassandra.sh, opensearch.sh,
# with-services.sh). Source it; do not run it.
#
# Environment (all optional):
#   STOA_CACHE         downloads, default <repo>/.cache/services
#   STOA_RUN           run data (one folder per service), default <repo>/.cache/run
#   STOA_MAVEN_REPO    Maven local repository for downloads (e.g. ~/.m2/repository to
#                      share one); if unset, a temporary one under $STOA_CACHE is used
#                      and deleted after each fetch, so the cache holds only the servers
#   STOA_STARTED_LIST  if set, `start` appends the name of each service it really
#                      started (not ones found already running) to this file, so a
#                      caller can later stop only what it started.

set -euo pipefail
# useradd and friends live in sbin, which a non-login root shell may lack.
PATH="$PATH:/usr/sbin:/sbin"

STOA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STOA_CACHE="${STOA_CACHE:-$STOA_ROOT/.cache/services}"
STOA_RUN="${STOA_RUN:-$STOA_ROOT/.cache/run}"

log() { printf '[%s] %s\n' "${SERVICE:-services}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || die "'$c' is required but not installed"
	done
}

now_ms() { date +%s%3N; }

# elapsed START_MS -> "12.3s"
elapsed() {
	local d=$(($(now_ms) - $1))
	printf '%d.%ds' $((d / 1000)) $(((d % 1000) / 100))
}

# tcp_open HOST PORT: true if something accepts TCP connections there.
tcp_open() {
	timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# mvn_begin: choose the Maven local repository ($MVN_REPO) for a fetch.
mvn_begin() {
	need mvn
	mkdir -p "$STOA_CACHE"
	if [[ -n ${STOA_MAVEN_REPO:-} ]]; then
		MVN_REPO="$STOA_MAVEN_REPO"
		MVN_REPO_TEMP=0
	else
		MVN_REPO="$STOA_CACHE/.m2-$SERVICE"
		MVN_REPO_TEMP=1
		rm -rf "$MVN_REPO"
	fi
	mkdir -p "$MVN_REPO"
}

# mvn_end: drop the temporary Maven local repository, if one was used.
mvn_end() {
	if [[ ${MVN_REPO_TEMP:-0} == 1 ]]; then
		rm -rf "$MVN_REPO"
	fi
}

# mvn_quiet ARGS...: run Maven in batch mode against $MVN_REPO, showing the
# output only if it fails.
mvn_quiet() {
	local out
	out="$(mktemp "$STOA_CACHE/.mvn-log.XXXXXX")"
	if ! mvn -B -q -Dmaven.repo.local="$MVN_REPO" "$@" >"$out" 2>&1; then
		tail -n 40 "$out" >&2
		rm -f "$out"
		mvn_end
		die "maven failed: mvn $*"
	fi
	rm -f "$out"
}

# pid_alive PIDFILE: true if the PID file names a live process.
pid_alive() {
	local pid
	[[ -s $1 ]] || return 1
	pid="$(cat "$1")"
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# stop_pidfile PIDFILE [GRACE_SECONDS]: TERM the process, KILL it after the
# grace period, wait until it is gone, remove the PID file.
stop_pidfile() {
	local pidfile=$1 grace=${2:-30} pid i
	if ! pid_alive "$pidfile"; then
		if [[ -e $pidfile ]]; then
			log "not running (stale PID file removed)"
			rm -f "$pidfile"
		else
			log "not running (no PID file: nothing that we started)"
		fi
		return 0
	fi
	pid="$(cat "$pidfile")"
	local t0
	t0=$(now_ms)
	log "stopping pid $pid"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < grace * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "still alive after ${grace}s, sending KILL"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	fi
	kill -0 "$pid" 2>/dev/null && die "pid $pid would not die"
	rm -f "$pidfile"
	log "stopped in $(elapsed "$t0")"
}

# wait_ready TIMEOUT_SECONDS PIDFILE LOGFILE CHECK_FUNCTION [ARGS...]
# Polls CHECK_FUNCTION until it succeeds. Fails (with the last 50 log lines)
# if the process dies or the timeout passes.
wait_ready() {
	local timeout=$1 pidfile=$2 logfile=$3
	shift 3
	local t0 deadline
	t0=$(now_ms)
	deadline=$((t0 + timeout * 1000))
	while :; do
		if "$@"; then
			log "ready in $(elapsed "$t0")"
			return 0
		fi
		if ! pid_alive "$pidfile"; then
			log "process exited before becoming ready; last 50 lines of $logfile:"
			tail -n 50 "$logfile" >&2 || true
			rm -f "$pidfile"
			return 1
		fi
		if (($(now_ms) > deadline)); then
			log "not ready after ${timeout}s; last 50 lines of $logfile:"
			tail -n 50 "$logfile" >&2 || true
			return 1
		fi
		sleep 0.5
	done
}

# record_started NAME: tell the caller (with-services.sh) we started NAME.
record_started() {
	if [[ -n ${STOA_STARTED_LIST:-} ]]; then
		echo "$1" >>"$STOA_STARTED_LIST"
	fi
}

# java_home: the JDK that `java` on PATH belongs to (or $JAVA_HOME).
java_home() {
	if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
		echo "$JAVA_HOME"
		return
	fi
	need java
	local j
	j="$(readlink -f "$(command -v java)")"
	dirname "$(dirname "$j")"
}

# java_major JAVA_HOME: the Java feature version (17, 21, ...), without starting a JVM if possible.
java_major() {
	local v=""
	if [[ -r $1/release ]]; then
		v="$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release")"
	fi
	if [[ -z $v ]]; then
		v="$("$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)"
	fi
	echo "${v:-0}"
}

# bytes SIZE: "512m" -> 536870912 (k, m, g suffixes, as in -Xmx).
bytes() {
	local n=${1%[kKmMgG]}
	case "$1" in
	*[kK]) echo $((n * 1024)) ;;
	*[mM]) echo $((n * 1024 * 1024)) ;;
	*[gG]) echo $((n * 1024 * 1024 * 1024)) ;;
	*) echo "$n" ;;
	esac
}

# dispatch: common entry point; the sourcing script defines
# do_fetch, do_start, do_stop, do_status.
dispatch() {
	case "${1:-}" in
	fetch) do_fetch ;;
	start) do_start ;;
	stop) do_stop ;;
	status) do_status ;;
	*)
		echo "usage: $0 fetch|start|stop|status" >&2
		exit 2
		;;
	esac
}
