#!/usr/bin/env bash
# demo.sh — a real rolling deploy to two local Tomcat 10 instances through a
# local baepo-agent. Every command is printed before it runs, so you can copy
# it. `make demo-stop` (demo.sh stop) leaves no process behind.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
demo="$top/demo"
bin="$top/bin"

say() { if [ -t 1 ]; then printf '\n\033[1m$ %s\033[0m\n' "$*"; else printf '\n$ %s\n' "$*"; fi; }
run() { say "$*"; "$@"; }

# free_port START: the first port from START on that nothing listens on.
free_port() {
	local p=$1
	while (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || grep -q ":$p\$" "$demo/.ports" 2>/dev/null; do
		p=$((p + 1))
	done
	echo "$p" >>"$demo/.ports"
	echo "$p"
}

stop() {
	[ -d "$demo" ] || return 0
	if [ -f "$demo/agent.pid" ] && kill -0 "$(cat "$demo/agent.pid")" 2>/dev/null; then
		"$bin/baepo" run stop --server local --service A --inventory "$demo/inventory.yaml" >/dev/null 2>&1 || true
		kill -TERM "$(cat "$demo/agent.pid")" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$(cat "$demo/agent.pid")" 2>/dev/null || break; sleep 0.1; done
	fi
	# Whatever is left: Tomcats by their pid files.
	for pidfile in "$demo"/data/instances/*/*/catalina.pid "$demo/agent.pid"; do
		[ -f "$pidfile" ] || continue
		pid=$(cat "$pidfile")
		kill -KILL "$pid" 2>/dev/null || true
		rm -f "$pidfile"
	done
	echo "demo stopped: no agent or Tomcat left running"
}

if [ "${1:-}" = stop ]; then
	stop
	exit 0
fi

stop
rm -rf "$demo"
mkdir -p "$demo/war"
: >"$demo/.ports"

echo "== Two Tomcat 10 instances of service A, bound to 127.0.0.1"
p1=$(free_port 18081); s1=$(free_port 18005)
p2=$(free_port $((p1 + 1))); s2=$(free_port $((s1 + 1)))
agent_port=$(free_port 17701)
for i in 1 2; do
	port=p$i; shut=s$i
	run tomcat10-instance-create -p "${!port}" -c "${!shut}" "$demo/tomcat/a$i"
	sed -i 's/<Connector port="'"${!port}"'"/<Connector address="127.0.0.1" port="'"${!port}"'"/' "$demo/tomcat/a$i/conf/server.xml"
done

echo "== A token, the agent's config and the client's inventory"
say "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > $demo/token"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$demo/token"
chmod 600 "$demo/token"
cat >"$demo/agent.yaml" <<YAML
listen: 127.0.0.1:$agent_port
token_file: token
data_dir: data
services:
  A:
    driver: tomcat
    context: /app
    health: { path: /app/health, timeout: 90s, interval: 100ms }
    instances:
      a1: { catalina_base: $demo/tomcat/a1, port: $p1 }
      a2: { catalina_base: $demo/tomcat/a2, port: $p2 }
YAML
cat >"$demo/inventory.yaml" <<YAML
servers:
  local: { agent: "http://127.0.0.1:$agent_port", token_file: token }
YAML
say "cat $demo/agent.yaml"; cat "$demo/agent.yaml"
say "cat $demo/inventory.yaml"; cat "$demo/inventory.yaml"

echo "== A sample WAR, built with jar"
cp -r "$top/examples/sample-war/." "$demo/war/"
echo "demo-$(date +%H%M%S)" >"$demo/war/version.txt"
run jar --create --file "$demo/app.war" -C "$demo/war" .

echo "== The agent"
say "$bin/baepo-agent --config $demo/agent.yaml > $demo/agent.log 2>&1 &"
"$bin/baepo-agent" --config "$demo/agent.yaml" >"$demo/agent.log" 2>&1 &
echo $! >"$demo/agent.pid"
for _ in $(seq 100); do
	(echo >"/dev/tcp/127.0.0.1/$agent_port") 2>/dev/null && break
	kill -0 "$(cat "$demo/agent.pid")" 2>/dev/null || { cat "$demo/agent.log"; exit 1; }
	sleep 0.1
done

export BAEPO_INVENTORY="$demo/inventory.yaml"
echo "== A rolling deploy: one instance at a time, each health-checked"
run "$bin/baepo" run deploy --server local --service A --artifact "$demo/app.war"
run "$bin/baepo" status --server local --service A
run curl -s "http://127.0.0.1:$p1/app/version.txt"
run curl -s "http://127.0.0.1:$p2/app/version.txt"
echo
echo "The agent keeps running (log: $demo/agent.log). Try:"
echo "  export BAEPO_INVENTORY=$demo/inventory.yaml"
echo "  $bin/baepo run restart --server local --service A"
echo "  $bin/baepo history --server local"
echo "  make demo-stop"
