#!/bin/sh
# Checks the alert rules: `promtool check rules` and `promtool test rules`.
# Installs Debian's prometheus package (which has promtool) if promtool is
# missing. Exits non-zero on any failure. Called by .ci/run.
set -eu
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v promtool >/dev/null 2>&1; then
	echo "check.sh: promtool missing; installing Debian's prometheus package" >&2
	if [ "$(id -u)" -eq 0 ]; then sudo=; else sudo=sudo; fi
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq prometheus >/dev/null
	# The package starts a Prometheus service where an init system runs;
	# only promtool is needed here.
fi

promtool --version 2>&1 | head -n 1
cd "$here"
promtool check config prometheus.yml
promtool check rules rules/disputesync.rules.yml
promtool test rules rules/disputesync.rules.test.yml

# The dashboard's expressions are checked for PromQL syntax by wrapping each
# in a recording rule. (JSON string escapes are valid in a YAML double-quoted
# scalar.) metrics/deploy_test.go checks the metric names they use.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dash="$here/../grafana/dashboards/disputesync.json"
{
	echo "groups:"
	echo "  - name: dashboard"
	echo "    rules:"
	grep -o '"expr": *"\([^"\\]\|\\.\)*"' "$dash" | sed 's/^"expr": *//' | awk '{ printf "      - record: dashboard_expr_%d\n        expr: %s\n", NR, $0 }'
} >"$tmp/dashboard.rules.yml"
n=$(grep -c 'record:' "$tmp/dashboard.rules.yml" || true)
if [ "$n" -lt 10 ]; then
	echo "check.sh: only $n expressions found in $dash" >&2
	exit 1
fi
echo "Checking the $n expressions of $dash"
promtool check rules "$tmp/dashboard.rules.yml"
