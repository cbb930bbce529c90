#!/bin/sh
# deploy.sh SERVERS SERVICE ARTIFACT — the Jenkins side of a deploy.
# Exit codes are baepo's: 0 ok, 1 rolled back, 2 usage or refused (nothing changed),
# 3 unhealthy, 4 unreachable, 130/143 aborted.
set -eu
exec baepo run deploy --server "$1" --service "$2" --artifact "$3" \
	--junit baepo-junit.xml --report-json baepo-report.json
