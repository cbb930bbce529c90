#!/usr/bin/env bash
# The hand-written deploy baepo is measured against: for each Tomcat
# instance in turn, stop it by PID, copy the WAR, start it, and poll its
# health URL every 50 ms. Usage: baseline.sh WAR CONTEXT BASE:PORT:PIDFILE...
set -euo pipefail
war=$1 context=$2
shift 2
for spec in "$@"; do
	IFS=: read -r base port pidfile <<<"$spec"
	if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		pid=$(cat "$pidfile")
		kill -TERM "$pid"
		while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	fi
	rm -f "$pidfile"
	rm -rf "$base/webapps/$context"
	cp "$war" "$base/webapps/.$context.tmp"
	mv "$base/webapps/.$context.tmp" "$base/webapps/$context.war"
	CATALINA_BASE=$base CATALINA_PID=$pidfile /usr/share/tomcat10/bin/catalina.sh start >/dev/null
	until curl -fs -o /dev/null "http://127.0.0.1:$port/$context/health"; do sleep 0.05; done
done
