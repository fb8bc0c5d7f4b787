#!/bin/bash
# The monitoring files in deploy/: promtool checks the alert rules and runs
# their unit tests; every PromQL expression of the Grafana dashboard parses
# (checked by promtool as recording rules, Grafana's variables filled in);
# every metric the rules and the dashboard name is one the agent exports.
set -eu -o pipefail
command -v promtool >/dev/null || { echo "SKIP: promtool is not installed"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
rules=deploy/prometheus/numafollow.rules.yml
dash=deploy/grafana/numafollow.json

promtool check rules "$rules"
(cd deploy/prometheus && promtool test rules numafollow.rules.test.yml)

jq -e '.panels | length > 0' "$dash" >/dev/null
jq -r '"groups:\n  - name: dashboard\n    rules:",
	(.panels[] | .id as $p | .targets[] |
	 "      - record: dashboard:panel_\($p)_\(.refId)\n        expr: \(.expr | gsub("\\$__rate_interval"; "5m")
	   | gsub("\\$instance"; ".*") | tojson)")' "$dash" >"$T/dash.rules.yml"
promtool check rules "$T/dash.rules.yml"

# Metric names, less a histogram's suffixes, against the exporter's source.
missing=0
for m in $(grep -oh 'numafollow_[a-z_]*' "$rules" "$dash" | sed -E 's/_(bucket|sum|count)$//' | sort -u); do
	grep -qE "\"$m[\"{ ]" plugin/agent/metrics.c || { echo "FAIL: $m is not exported (plugin/agent/metrics.c)"; missing=1; }
done
[ "$missing" = 0 ]
echo PASS
