#!/bin/sh
# check-dev.sh: does every dashboard panel get data from a real Prometheus?
#
# Builds cmd/disputesync and runs `disputesync dev` (metrics on
# 127.0.0.1:9464), drives a little traffic through it (a few actions, a
# replay, a reused disputeRequestId, an unsigned webhook notification), runs a
# real Prometheus (Debian's package; installed if missing) scraping it every
# 5 s with the alert rules loaded, waits DURATION seconds (default 120), then
# queries the Prometheus HTTP API for every expression of every dashboard
# panel and prints, per panel, whether data came back. Exits non-zero if any
# panel has none.
#
# Dead letters, webhook notifications and the backlog gauges have data only
# if disputesync presets their series (metrics.Preset) and watches the
# worker consumer (Metrics.WatchConsumers); this script does not fake them.
#
# Environment: DURATION (s, default 120), PROM_ADDR (default 127.0.0.1:9091),
# METRICS_ADDR (default 127.0.0.1:9464), NATS_ADDR (default 127.0.0.1:4223),
# SANDBOX_ADDR (default 127.0.0.1:8086), WEBHOOK_ADDR (default 127.0.0.1:8087),
# KEEP=1 keeps the temp folder (logs, Prometheus data).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dash="$root/deploy/grafana/dashboards/disputesync.json"
DURATION=${DURATION:-120}
PROM_ADDR=${PROM_ADDR:-127.0.0.1:9091}
METRICS_ADDR=${METRICS_ADDR:-127.0.0.1:9464}
NATS_ADDR=${NATS_ADDR:-127.0.0.1:4223}
SANDBOX_ADDR=${SANDBOX_ADDR:-127.0.0.1:8086}
WEBHOOK_ADDR=${WEBHOOK_ADDR:-127.0.0.1:8087}

if ! command -v prometheus >/dev/null 2>&1; then
	echo "check-dev: prometheus missing; installing Debian's prometheus package" >&2
	if [ "$(id -u)" -eq 0 ]; then sudo=; else sudo=sudo; fi
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq prometheus >/dev/null
fi
for tool in curl awk; do
	command -v "$tool" >/dev/null 2>&1 || { echo "check-dev: $tool is required" >&2; exit 2; }
done

tmp=$(mktemp -d)
dev_pid=
prom_pid=
cleanup() {
	# Stop only the processes this script started, by their pids.
	if [ -n "$prom_pid" ]; then kill "$prom_pid" 2>/dev/null || true; prom_pid=; fi
	if [ -n "$dev_pid" ]; then
		# SIGTERM: a background job of a non-interactive shell ignores SIGINT.
		kill -TERM "$dev_pid" 2>/dev/null || true
		i=0
		while kill -0 "$dev_pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
		kill -KILL "$dev_pid" 2>/dev/null || true
		dev_pid=
	fi
	if [ "${KEEP:-}" = 1 ]; then echo "check-dev: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_http URL SECONDS: poll until URL answers 2xx, or fail.
wait_http() {
	i=0
	while ! curl -fsS -o /dev/null "$1" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt $(($2 * 5)) ]; then return 1; fi
		sleep 0.2
	done
}

echo "check-dev: building cmd/disputesync"
(cd "$root" && go build -o "$tmp/disputesync" ./cmd/disputesync)
bin="$tmp/disputesync"

echo "check-dev: starting disputesync dev (log: $tmp/dev.log)"
"$bin" dev --data-dir "$tmp/dev" --metrics-addr "$METRICS_ADDR" --nats-addr "$NATS_ADDR" \
	--sandbox-addr "$SANDBOX_ADDR" --webhook-addr "$WEBHOOK_ADDR" >"$tmp/dev.out" 2>"$tmp/dev.log" &
dev_pid=$!
if ! wait_http "http://$METRICS_ADDR/metrics" 60; then
	echo "check-dev: disputesync dev did not serve http://$METRICS_ADDR/metrics within 60 s" >&2
	tail -n 30 "$tmp/dev.log" >&2
	exit 1
fi

cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files:
  - $here/rules/disputesync.rules.yml
scrape_configs:
  - job_name: disputesync
    static_configs:
      - targets: ["$METRICS_ADDR"]
EOF
echo "check-dev: starting prometheus on $PROM_ADDR (log: $tmp/prometheus.log)"
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prom" \
	--web.listen-address="$PROM_ADDR" >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!
if ! wait_http "http://$PROM_ADDR/-/ready" 60; then
	echo "check-dev: prometheus not ready within 60 s" >&2
	tail -n 30 "$tmp/prometheus.log" >&2
	exit 1
fi
start=$(date +%s)

# Traffic. The dev banner names a sandbox dispute that accepts actions.
i=0
while ! grep -q -- '--dispute-id' "$tmp/dev.out" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
dispute=$(sed -n 's/.*action alipay accept_dispute .*--dispute-id \([^ ]*\).*/\1/p' "$tmp/dev.out" | head -n 1)
nats_url="nats://$NATS_ADDR"
act() { "$bin" action "$@" --nats-url "$nats_url" --wait 30s --json >>"$tmp/actions.log" 2>&1 || true; }
if [ -n "$dispute" ]; then
	# Each command has its own disputeRequestId: JetStream drops a repeat
	# of one within its duplicate window before any worker sees it.
	echo "check-dev: traffic: accept_dispute $dispute twice, and once on a dispute the provider does not know"
	act alipay accept_dispute --dispute-id "$dispute" --request-id "check-dev-$start-1"
	act alipay accept_dispute --dispute-id "$dispute" --request-id "check-dev-$start-2"
	act alipay accept_dispute --dispute-id "2099000000000000000000000000" --request-id "check-dev-$start-3"
else
	echo "check-dev: no sandbox dispute id in the dev banner; no action traffic" >&2
fi
echo "check-dev: traffic: an unsigned webhook notification (expect 401)"
curl -s -o /dev/null -w '  webhook answered %{http_code}\n' -X POST -H 'Content-Type: application/json' \
	--data '{"notify_id":"check-dev","event_code":"CHARGEBACK","data":{}}' \
	"http://$WEBHOOK_ADDR/webhooks/disputeapi/notify" || true

# Let Prometheus scrape for DURATION seconds in all (a fixed observation
# window, not a synchronisation).
left=$((DURATION - ($(date +%s) - start)))
if [ $left -gt 0 ]; then
	echo "check-dev: scraping for another ${left}s"
	sleep "$left"
fi

# query EXPR: prints the number of series an instant query returns, or
# "error: ..." when Prometheus refuses it.
query() {
	out=$(curl -sS -G "http://$PROM_ADDR/api/v1/query" --data-urlencode "query=$1" 2>&1) || { echo "error: $out"; return; }
	case $out in
	*'"status":"success"'*) ;;
	*) echo "error: $out"; return ;;
	esac
	# Each series of a vector result carries a "metric" object.
	echo "$out" | grep -o '"metric":' | wc -l | tr -d ' '
}

# Panels and their expressions, one "title<TAB>expr" line each. The
# dashboard JSON has one key per line; a panel's title precedes its targets,
# and rows have no targets.
awk '
	/"title": "/ { t = $0; sub(/^[^"]*"title": "/, "", t); sub(/",?[ \t]*$/, "", t) }
	/"expr": "/ {
		e = $0; sub(/^[^"]*"expr": "/, "", e); sub(/",?[ \t]*$/, "", e)
		gsub(/\\"/, "\"", e); gsub(/\\\\/, "\\", e)
		print t "\t" e
	}' "$dash" >"$tmp/panels.tsv"

echo
echo "Panels of $dash after ${DURATION}s of 5 s scrapes:"
status=0
panels=$(cut -f1 "$tmp/panels.tsv" | awk '!seen[$0]++')
IFS='
'
for title in $panels; do
	total=0
	detail=
	while IFS='	' read -r t expr; do
		[ "$t" = "$title" ] || continue
		n=$(query "$expr")
		case $n in
		error:*) detail="$detail
      ERROR $expr: $n" ;;
		*) total=$((total + n)); detail="$detail
      $n series: $expr" ;;
		esac
	done <"$tmp/panels.tsv"
	if [ "$total" -gt 0 ]; then
		printf '  ok       %s (%s series)\n' "$title" "$total"
	else
		printf '  NO DATA  %s%s\n' "$title" "$detail"
		status=1
	fi
done
unset IFS

echo
echo "Alerts in Prometheus at the end:"
# Each alert object has its labels (alertname first) before its state.
curl -sS "http://$PROM_ADDR/api/v1/alerts" | grep -o '"alertname":"[^"]*"\|"state":"[^"]*"' |
	sed 's/"alertname":"\(.*\)"/\1/; s/"state":"\(.*\)"/(\1)/' | paste -d' ' - - | sed 's/^/  /' || true
if [ -s "$tmp/actions.log" ]; then
	echo
	echo "Action results:"
	grep -o '"outcome":"[^"]*"\|"code":"[^"]*"\|"replayed":true' "$tmp/actions.log" | tr '\n' ' ' | sed 's/^/  /'
	echo
fi
if [ $status -ne 0 ]; then
	echo "check-dev: FAILED: some panels have no data (see above; logs with KEEP=1)" >&2
fi
exit $status
