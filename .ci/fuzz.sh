#!/usr/bin/env bash
# fuzz.sh SECONDS [REGEXP]: runs every Go fuzz target of the module (every
# func FuzzX(f *testing.F) in a *_test.go file), or those whose name
# matches REGEXP, for SECONDS seconds each, one after the other: go test
# fuzzes one target per run. `make test` runs it for a few seconds per
# target, `make fuzz` for longer. The seed corpora (f.Add and
# testdata/fuzz/FuzzX/) run as plain tests in `go test ./...` anyway.
#
# A failing input is written by go test to the package's
# testdata/fuzz/FuzzX/ and fails the run: commit it with the fix, it is
# then a regression test. Go 1.26's fuzzer can also end a run with a bare
# "context deadline exceeded" when -fuzztime expires while a worker is
# busy (golang/go#75804, fixed in Go 1.27): that run wrote no input, so it
# is tried once more, and counted as a flake, not a failure, if it ends
# that way again.
set -uo pipefail
cd "$(dirname "$0")/.."

secs=${1:?usage: fuzz.sh SECONDS [REGEXP]}
secs=${secs%s} # 60 or 60s
case $secs in '' | *[!0-9]*)
	echo "fuzz.sh: $1 is not a number of seconds" >&2
	exit 2
	;;
esac
filter=${2:-.}
GO=${GO:-go}

# "dir name" lines, one per target, in a stable order.
targets=$(git ls-files --cached --others --exclude-standard '*_test.go' 2>/dev/null || find . -name '*_test.go' -not -path './examples/*')
targets=$(grep -H -o '^func Fuzz[A-Za-z0-9_]*(f \*testing\.F)' $targets /dev/null |
	sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*#\1 \2#; s#^[^/ ]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*#. \1#' |
	awk -v re="$filter" '$1 !~ /^examples\// && $2 ~ re' | sort)
if [ -z "$targets" ]; then
	echo "fuzz.sh: no fuzz target matches $filter" >&2
	exit 1
fi

failed="" flaked="" n=0
bin=$(mktemp -d)
log="$bin/log"
trap 'rm -rf "$bin"' EXIT
cache="$("$GO" env GOCACHE)/fuzz"

# One instrumented test binary per package (what go test -fuzz builds),
# built up front, as many at a time as there are CPUs, and run once per
# target: go test -fuzz would link it again for every target.
build() {
	local out="$bin/$(echo "$1" | tr / _)"
	if "$GO" test -c -fuzz . -ldflags='-s -w' -o "$out.test" "./$1" >"$out.log" 2>&1; then
		"$GO" list "./$1" >"$out.pkg"
	fi
}
cpus=$(nproc 2>/dev/null || echo 2)
running=0
for dir in $(echo "$targets" | awk '{ print $1 }' | uniq); do
	build "$dir" &
	running=$((running + 1))
	if [ $running -ge "$cpus" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait

while read -r dir name; do
	n=$((n + 1))
	out="$bin/$(echo "$dir" | tr / _)"
	test="$out.test"
	if [ ! -s "$out.pkg" ]; then
		if [ ! -e "$out.reported" ]; then
			cat "$out.log"
			echo "FAIL $dir: does not build"
			failed="$failed $dir"
			touch "$out.reported"
		fi
		continue
	fi
	pkg=$(cat "$out.pkg")
	for try in 1 2; do
		start=$(date +%s)
		(cd "$dir" && "$test" -test.run '^$' -test.fuzz "^$name\$" -test.fuzztime "${secs}s" \
			-test.fuzzcachedir "$cache/$pkg" -test.timeout 30m -test.paniconexit0) >"$log" 2>&1
		rc=$?
		took=$(($(date +%s) - start))
		if [ $rc -eq 0 ]; then
			echo "ok   $dir $name (${took}s)"
			break
		fi
		if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written to' "$log"; then
			if [ $try -eq 1 ]; then
				echo "...  $dir $name: fuzzer deadline race (golang/go#75804), no input written; once more"
				continue
			fi
			echo "FLAKE $dir $name: deadline race twice, no failing input (not counted as a failure)"
			flaked="$flaked $name"
			break
		fi
		cat "$log"
		echo "FAIL $dir $name: the failing input is in $dir/testdata/fuzz/$name/ (go test -run '$name' ./$dir replays it)"
		failed="$failed $name"
		break
	done
done <<<"$targets"

echo "fuzz.sh: $n targets, ${secs}s each; failed:${failed:- none}; flaked:${flaked:- none}"
[ -z "$failed" ]
