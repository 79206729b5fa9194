#!/usr/bin/env bash
# OpenSearch for tests: the integ-test zip from Maven Central (no security
# plugin, no bundled JDK; uses the system Java) plus the lang-painless module.
#
#   opensearch.sh fetch|start|stop|status
#
# Environment:
#   OPENSEARCH_VERSION        2.19.6
#   OPENSEARCH_NAME           opensearch   run folder $STOA_RUN/$OPENSEARCH_NAME, PID file there
#   OPENSEARCH_ADDR           127.0.0.1
#   OPENSEARCH_PORT           9200         HTTP port (transport port is OPENSEARCH_PORT+100)
#   OPENSEARCH_HEAP           512m
#   OPENSEARCH_START_TIMEOUT  120          seconds
#   OPENSEARCH_USER           stoa-test    OpenSearch refuses to run as root: when run as
#                                          root, this system user is created if missing and
#                                          the server runs as it.
#   OPENSEARCH_LAUNCHER       java         "java": start the JVM directly (faster);
#                                          "script": through the distribution's bin/opensearch
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OPENSEARCH_VERSION="${OPENSEARCH_VERSION:-2.19.6}"
OPENSEARCH_NAME="${OPENSEARCH_NAME:-opensearch}"
OPENSEARCH_ADDR="${OPENSEARCH_ADDR:-127.0.0.1}"
OPENSEARCH_PORT="${OPENSEARCH_PORT:-9200}"
OPENSEARCH_HEAP="${OPENSEARCH_HEAP:-512m}"
OPENSEARCH_START_TIMEOUT="${OPENSEARCH_START_TIMEOUT:-120}"
OPENSEARCH_USER="${OPENSEARCH_USER:-stoa-test}"
OPENSEARCH_LAUNCHER="${OPENSEARCH_LAUNCHER:-java}"
# shellcheck disable=SC2034 # used by lib.sh
SERVICE="$OPENSEARCH_NAME"

ARTIFACT="org.opensearch.distribution.integ-test-zip:opensearch:$OPENSEARCH_VERSION:zip"
HOME_DIR="$STOA_CACHE/opensearch-$OPENSEARCH_VERSION"
RUN_DIR="$STOA_RUN/$OPENSEARCH_NAME"
PID_FILE="$RUN_DIR/opensearch.pid"
URL="http://$OPENSEARCH_ADDR:$OPENSEARCH_PORT"
# Where the server's files live. Normally HOME_DIR and RUN_DIR; see use_fallback_dirs.
OS_HOME="$HOME_DIR"
OS_RUN="$RUN_DIR"
FALLBACK_DIR="${TMPDIR:-/tmp}/stoa-test-$OPENSEARCH_NAME"

# Modules the integ-test zip leaves out that the real distribution (and so
# the docker-compose image) has, and Stoa uses: lang-painless, for the IMAP
# SEARCH aggregation that returns large UID sets compactly (ADR 0008).
# group:artifact:version of the module's jars, fetched without dependencies.
PAINLESS_JARS=(
	"org.opensearch.plugin:lang-painless:$OPENSEARCH_VERSION"
	"org.opensearch.plugin:opensearch-scripting-painless-spi:$OPENSEARCH_VERSION"
	"org.antlr:antlr4-runtime:4.13.1"
	"org.ow2.asm:asm:9.7" "org.ow2.asm:asm-util:9.7" "org.ow2.asm:asm-tree:9.7"
	"org.ow2.asm:asm-commons:9.7" "org.ow2.asm:asm-analysis:9.7"
)

fetch_painless() {
	local dir="$HOME_DIR/modules/lang-painless"
	[[ -e $dir/.complete ]] && return 0
	log "adding the lang-painless module"
	rm -rf "$dir" "$dir.pom"
	mkdir -p "$dir" "$dir.pom"
	# One Maven run (a JVM start costs seconds): a pom listing the jars,
	# each without its own dependencies.
	{
		echo '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
		echo '<groupId>stoa.test</groupId><artifactId>painless-module</artifactId><version>1</version><packaging>pom</packaging><dependencies>'
		local a g n v
		for a in "${PAINLESS_JARS[@]}"; do
			IFS=: read -r g n v <<<"$a"
			echo "<dependency><groupId>$g</groupId><artifactId>$n</artifactId><version>$v</version>"
			echo '<exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId></exclusion></exclusions></dependency>'
		done
		echo '</dependencies></project>'
	} >"$dir.pom/pom.xml"
	mvn_quiet -f "$dir.pom/pom.xml" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
		-DoutputDirectory="$dir"
	rm -rf "$dir.pom"
	[[ -e $dir/lang-painless-$OPENSEARCH_VERSION.jar ]] || die "lang-painless jar missing after fetch"
	cat >"$dir/plugin-descriptor.properties" <<EOF
description=Painless scripting (added by integration/services/opensearch.sh)
version=$OPENSEARCH_VERSION
name=lang-painless
classname=org.opensearch.painless.PainlessPlugin
java.version=11
opensearch.version=$OPENSEARCH_VERSION
extended.plugins=
has.native.controller=false
EOF
	# The compiler defines classes at run time.
	cat >"$dir/plugin-security.policy" <<EOF
grant {
  permission java.lang.RuntimePermission "createClassLoader";
  permission java.lang.RuntimePermission "getClassLoader";
};
EOF
	chmod -R a+rX "$dir"
	touch "$dir/.complete"
}

do_fetch() {
	if [[ -e $HOME_DIR/.complete ]]; then
		if [[ ! -e $HOME_DIR/modules/lang-painless/.complete ]]; then
			mvn_begin
			fetch_painless
			mvn_end
		fi
		return 0
	fi
	need unzip
	local t0 zip
	t0=$(now_ms)
	log "fetching $ARTIFACT from Maven Central"
	mvn_begin
	mvn_quiet org.apache.maven.plugins:maven-dependency-plugin:3.8.1:get -Dartifact="$ARTIFACT" -Dtransitive=false
	zip="$MVN_REPO/org/opensearch/distribution/integ-test-zip/opensearch/$OPENSEARCH_VERSION/opensearch-$OPENSEARCH_VERSION.zip"
	[[ -s $zip ]] || { mvn_end; die "download missing: $zip"; }
	local zipsize
	zipsize="$(du -h "$zip" | cut -f1)"
	rm -rf "$HOME_DIR" "$HOME_DIR.tmp"
	mkdir -p "$HOME_DIR.tmp"
	unzip -q "$zip" -d "$HOME_DIR.tmp"
	mv "$HOME_DIR.tmp/opensearch-$OPENSEARCH_VERSION" "$HOME_DIR"
	rm -rf "$HOME_DIR.tmp"
	fetch_painless
	mvn_end
	chmod -R a+rX "$HOME_DIR"
	touch "$HOME_DIR/.complete"
	log "fetched $zipsize zip, unpacked $(du -sh "$HOME_DIR" | cut -f1), in $(elapsed "$t0")"
}

http_ready() {
	curl -fsS -o /dev/null --max-time 5 "$URL/_cluster/health?wait_for_status=yellow&timeout=2s" 2>/dev/null
}

http_answers() {
	curl -fsS -o /dev/null --max-time 3 "$URL/" 2>/dev/null
}

# as_user CMD...: run CMD as the unprivileged user when we are root.
as_user() {
	if ((EUID == 0)); then
		setpriv --reuid="$OPENSEARCH_USER" --regid="$OPENSEARCH_USER" --init-groups -- "$@"
	else
		"$@"
	fi
}

ensure_user() {
	((EUID == 0)) || return 0
	need setpriv
	if ! id -u "$OPENSEARCH_USER" >/dev/null 2>&1; then
		log "creating system user $OPENSEARCH_USER (OpenSearch refuses to run as root)"
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin "$OPENSEARCH_USER"
	fi
}

# If the unprivileged user cannot reach the repository (for example a clone
# under /root, mode 0700), run from a copy under $TMPDIR instead; stop removes it.
use_fallback_dirs() {
	OS_HOME="$FALLBACK_DIR/home"
	OS_RUN="$FALLBACK_DIR/run"
}

write_config() {
	local conf="$OS_RUN/config"
	mkdir -p "$conf/jvm.options.d" "$OS_RUN/data" "$OS_RUN/logs" "$OS_RUN/tmp"
	cp "$OS_HOME/config/log4j2.properties" "$conf/"
	cat >"$conf/opensearch.yml" <<EOF
# Generated by integration/services/opensearch.sh for tests. Not for production.
cluster.name: stoa-test
node.name: $OPENSEARCH_NAME
discovery.type: single-node
network.host: $OPENSEARCH_ADDR
http.port: $OPENSEARCH_PORT
transport.port: $((OPENSEARCH_PORT + 100))
path.data: $OS_RUN/data
path.logs: $OS_RUN/logs
# A full-ish CI disk must not flip test indices to read-only.
cluster.routing.allocation.disk.threshold_enabled: false
# One node: replicas can never be assigned, so default to none (indices go green).
cluster.default_number_of_replicas: 0
EOF
	cat >"$conf/jvm.options" <<EOF
-Xms$OPENSEARCH_HEAP
-Xmx$OPENSEARCH_HEAP
-XX:+UseG1GC
-XX:G1ReservePercent=25
-XX:InitiatingHeapOccupancyPercent=30
-Djava.io.tmpdir=\${OPENSEARCH_TMPDIR}
-XX:+HeapDumpOnOutOfMemoryError
-XX:HeapDumpPath=$OS_RUN/logs
-XX:ErrorFile=$OS_RUN/logs/hs_err_pid%p.log
-XX:+PerfDisableSharedMem
18-:-Djava.security.manager=allow
20-:--add-modules=jdk.incubator.vector
-Djava.util.concurrent.ForkJoinPool.common.threadFactory=org.opensearch.secure_sm.SecuredForkJoinWorkerThreadFactory
EOF
}

do_start() {
	if http_answers; then
		log "already running on $URL (not started by this command; it will not be stopped by it)"
		return 0
	fi
	if pid_alive "$PID_FILE"; then
		die "pid $(cat "$PID_FILE") from $PID_FILE is alive but $URL does not answer; run '$0 stop' first"
	fi
	if tcp_open "$OPENSEARCH_ADDR" "$OPENSEARCH_PORT"; then
		die "port $OPENSEARCH_ADDR:$OPENSEARCH_PORT is taken by something that does not answer HTTP"
	fi
	need curl
	do_fetch
	ensure_user
	local jhome
	jhome="$(java_home)"

	rm -rf "$RUN_DIR" "$FALLBACK_DIR"
	mkdir -p "$RUN_DIR/logs"
	if ((EUID == 0)); then
		chown "$OPENSEARCH_USER:" "$RUN_DIR"
		if ! as_user test -r "$HOME_DIR/lib" -a -w "$RUN_DIR" -a -x "$jhome/bin/java"; then
			log "user $OPENSEARCH_USER cannot reach $HOME_DIR or $RUN_DIR; running from a copy in $FALLBACK_DIR"
			use_fallback_dirs
			mkdir -p "$OS_RUN"
			cp -a "$HOME_DIR" "$OS_HOME"
			chmod 755 "$FALLBACK_DIR"
		fi
	fi
	write_config
	((EUID == 0)) && chown -R "$OPENSEARCH_USER:" "$OS_RUN"

	local out="$RUN_DIR/logs/stdout.log"
	local -a runner=()
	if ((EUID == 0)); then
		runner=(setpriv --reuid="$OPENSEARCH_USER" --regid="$OPENSEARCH_USER" --init-groups --)
	fi
	local -a cmd
	if [[ $OPENSEARCH_LAUNCHER == script ]]; then
		cmd=("$OS_HOME/bin/opensearch")
	else
		# What bin/opensearch ends up running, minus the four helper JVMs it starts
		# first (version checks, keystore check, options parser): those cost
		# seconds on a quiet machine and a minute on a busy one.
		local major
		major="$(java_major "$jhome")"
		# shellcheck disable=SC2054 # "SPI,COMPAT" is one value
		cmd=("$jhome/bin/java" -Xshare:auto
			# OpenSearch's built-in system options (JvmOptionsParser), minus AlwaysPreTouch.
			-Dopensearch.networkaddress.cache.ttl=60 -Dopensearch.networkaddress.cache.negative.ttl=10
			-Xss1m -Djava.awt.headless=true -Dfile.encoding=UTF-8 -Djna.nosys=true
			-XX:-OmitStackTraceInFastThrow -XX:+ShowCodeDetailsInExceptionMessages
			-Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true
			-Dio.netty.recycler.maxCapacityPerThread=0 -Dio.netty.allocator.numDirectArenas=0
			-Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true -Djava.locale.providers=SPI,COMPAT
			# Our config/jvm.options, as the parser would apply it.
			-Xms"$OPENSEARCH_HEAP" -Xmx"$OPENSEARCH_HEAP" -XX:MaxDirectMemorySize=$(($(bytes "$OPENSEARCH_HEAP") / 2))
			-XX:+UseG1GC -XX:G1ReservePercent=25 -XX:InitiatingHeapOccupancyPercent=30
			-Djava.io.tmpdir="$OS_RUN/tmp" -XX:+HeapDumpOnOutOfMemoryError -XX:HeapDumpPath="$OS_RUN/logs"
			-XX:ErrorFile="$OS_RUN/logs/hs_err_pid%p.log" -XX:+PerfDisableSharedMem
			-Djava.util.concurrent.ForkJoinPool.common.threadFactory=org.opensearch.secure_sm.SecuredForkJoinWorkerThreadFactory)
		((major >= 18)) && cmd+=(-Djava.security.manager=allow)
		((major >= 20)) && cmd+=(--add-modules=jdk.incubator.vector)
		cmd+=(-Dopensearch.path.home="$OS_HOME" -Dopensearch.path.conf="$OS_RUN/config"
			-Dopensearch.distribution.type=zip -Dopensearch.bundled_jdk=false
			-cp "$OS_HOME/lib/*" org.opensearch.bootstrap.OpenSearch)
	fi
	log "starting OpenSearch $OPENSEARCH_VERSION on $URL in $OS_RUN"
	(
		cd "$OS_RUN" || exit 1
		exec env -i PATH="/usr/local/bin:/usr/bin:/bin" HOME="$OS_RUN" LANG=C.UTF-8 \
			OPENSEARCH_JAVA_HOME="$jhome" \
			OPENSEARCH_PATH_CONF="$OS_RUN/config" \
			OPENSEARCH_TMPDIR="$OS_RUN/tmp" \
			OPENSEARCH_JAVA_OPTS="-Xms$OPENSEARCH_HEAP -Xmx$OPENSEARCH_HEAP" \
			"${runner[@]}" "${cmd[@]}" </dev/null >"$out" 2>&1
	) &
	echo $! >"$PID_FILE"
	if ! wait_ready "$OPENSEARCH_START_TIMEOUT" "$PID_FILE" "$out" http_ready; then
		do_stop >/dev/null 2>&1 || true
		exit 1
	fi
	record_started opensearch
}

do_stop() {
	stop_pidfile "$PID_FILE" 30
	# Clean up a fallback copy outside the repository, keeping its logs.
	if [[ -d $FALLBACK_DIR ]]; then
		cp -a "$FALLBACK_DIR/run/logs/." "$RUN_DIR/logs/" 2>/dev/null || true
		rm -rf "$FALLBACK_DIR"
	fi
}

do_status() {
	if http_answers; then
		local health
		health="$(curl -fsS --max-time 3 "$URL/_cat/health?h=status" 2>/dev/null || true)"
		if pid_alive "$PID_FILE"; then
			echo "$OPENSEARCH_NAME: running (pid $(cat "$PID_FILE")) on $URL, status ${health:-unknown}"
		else
			echo "$OPENSEARCH_NAME: running on $URL (not started by these scripts), status ${health:-unknown}"
		fi
		return 0
	fi
	if pid_alive "$PID_FILE"; then
		echo "$OPENSEARCH_NAME: starting or unhealthy (pid $(cat "$PID_FILE")), $URL not answering"
		return 1
	fi
	echo "$OPENSEARCH_NAME: stopped"
	return 3
}

dispatch "$@"
