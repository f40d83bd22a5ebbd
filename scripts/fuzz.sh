#!/usr/bin/env bash
# Runs every Fuzz target in the module for a short time each (default 3s).
# make test calls it; nightly runs can pass a longer time: scripts/fuzz.sh 10m
set -euo pipefail
fuzztime=${1:-3s}
cd "$(dirname "$0")/.."
status=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' || true)
	for t in $targets; do
		echo "fuzz $pkg $t ($fuzztime)"
		if ! go test -run='^$' -fuzz="^$t\$" -fuzztime="$fuzztime" "$pkg" >/tmp/musubi-fuzz.log 2>&1; then
			cat /tmp/musubi-fuzz.log
			status=1
		fi
	done
done
exit $status
