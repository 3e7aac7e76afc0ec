#!/usr/bin/env bash
# The seed's real-world example, replayed with real commands against a throw-away database:
# a production bug in the YouTube ingestion service ("[object Object]" stored instead of the
# transcript) is fixed as an emergency change. The fix's plan really runs, on files in the
# demo's working directory: a first release candidate fails its smoke test and is rolled back
# automatically (the previous version is restored); the corrected release goes out; the CAB
# reviews the emergency afterwards.
set -euo pipefail
examples=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CORTEX_CHANGE_DB="$work/cortex-change.db"
unset CORTEX_CHANGE_USER CORTEX_CHANGE_URL CORTEX_CHANGE_CONFIG
cd "$work"

if [ -t 1 ]; then bold=$'\033[1m'; dim=$'\033[2m'; off=$'\033[0m'; else bold=; dim=; off=; fi
n=0
step() { n=$((n + 1)); printf '\n%s%d. %s%s\n' "$bold" "$n" "$1" "$off"; }
cmd() { printf '%s$ %s%s\n' "$dim" "$*" "$off"; }
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps(eval(sys.argv[1], {"d": d}), ensure_ascii=False, indent=2))' "$1"; }
service() { printf '  service/VERSION = %s; service/transcript.txt = %s\n' "$(cat service/VERSION)" "$(cat service/transcript.txt)"; }

# The "production" service and two releases of the fix; a smoke test that rejects the bug.
mkdir -p service releases/2.3.1-rc1 releases/2.3.1
echo 2.3.0 > service/VERSION; echo '[object Object]' > service/transcript.txt
echo 2.3.1-rc1 > releases/2.3.1-rc1/VERSION; echo '[object Object]' > releases/2.3.1-rc1/transcript.txt
echo 2.3.1 > releases/2.3.1/VERSION; echo 'Never gonna give you up' > releases/2.3.1/transcript.txt
cat > smoke-test.sh <<'SH'
#!/bin/sh
# Fails when the service still stores "[object Object]".
if grep -qF '[object Object]' "$1/transcript.txt"; then echo "smoke test: transcript is [object Object]"; exit 1; fi
echo "smoke test: transcript ok"
SH
chmod +x smoke-test.sh
# The integration's plan, as data (docs/catalog.md): deploy a release, smoke-test it; the
# rollback plan restores the copy taken first. Each step is a runbook: a named, versioned
# argument list (never a shell line with {version}) whose parameters must match their patterns,
# so an automatically approved change runs only what an admin defined (SPEC §11).
cat > cortex-change.toml <<'TOML'
IMPLEMENTATION_DELAY = 0   # an approved emergency is carried out at once (default 300 s, by the worker)

[runbooks.snapshot-service]
version = 1
description = "Keep a copy of the running service to restore on rollback"
run = ["sh", "-c", "rm -rf service.previous && cp -R service service.previous"]

[runbooks.deploy-release]
version = 1
description = "Copy a release over the service"
run = ["cp", "-R", "releases/{version}/.", "service/"]
params = { version = '[0-9]+\.[0-9]+\.[0-9]+(-rc[0-9]+)?' }

[runbooks.smoke-test]
version = 1
description = "Fail when the service still stores [object Object]"
run = ["./smoke-test.sh", "service"]
timeout = "30s"

[runbooks.restore-service]
version = 1
description = "Put back the copy snapshot-service kept"
run = ["sh", "-c", "rm -rf service && mv service.previous service"]

[runbooks.bump-generation]
version = 1
description = "Restart a pod: here, bump its generation file"
run = ["sh", "-c", "echo $(( $(cat \"pods/$0\" 2>/dev/null || echo 0) + 1 )) > \"pods/$0\"", "{target}"]
params = { target = '[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?' }

[integrations.youtube-ingestion.emergency_fix]
summary = "Emergency fix to the YouTube ingestion service: deploy a release, smoke-test it"
type = "emergency"
category = "deployment"
impact = "high"
urgency = "critical"
services = ["youtube-ingestion"]
title = "Deploy youtube-ingestion {version}: {text}"
implementation_plan = { steps = [
  { runbook = "snapshot-service" },
  { runbook = "deploy-release", params = { version = "{version}" } },
  { runbook = "smoke-test" },
] }
rollback_plan = { automated = true, max_duration = "1m", steps = [{ runbook = "restore-service" }] }

# The seed's standard change, pre-approved up to 3 restarts per worker per hour: here a
# "restart" bumps the pod's generation file.
[integrations.kubernetes.restart_pod]
summary = "Restart a pod or worker: standard up to the hourly limit"
type = "standard"
category = "infrastructure"
model = "worker-restart"
impact = "low"
text_field = "target"
title = "Restart {target}"
services = ["{target}"]
implementation_plan = { steps = [{ runbook = "bump-generation", params = { target = "{target}" } }] }
TOML
mkdir -p pods

step "Detect: transcripts arrive as '[object Object]'; the ingestion agent files an emergency RFC"
service
cmd "CHANGE_ID=\$(cortex-change integrate youtube-ingestion emergency_fix '{\"description\": \"Fix [object Object] serialization bug\", \"version\": \"2.3.1-rc1\"}')"
cortex-change integrate youtube-ingestion emergency_fix '{"description": "Fix [object Object] serialization bug", "version": "2.3.1-rc1"}' >"$work/id" || true
FIRST=$(tail -n 1 "$work/id")
echo "CHANGE_ID=$FIRST"

step "Assessment: scored like any change, approved by the emergency CAB route, carried out at once"
cmd "cortex-change show $FIRST | jq '{type, risk_score, risk_level, approval_required, state, closure_status}'"
cortex-change show "$FIRST" | field '{k: d[k] for k in ("type", "risk_score", "risk_level", "approval_required", "state", "closure_status")}'

step "The release candidate failed its smoke test: automated rollback restored the previous version"
service
cmd "cortex-change show $FIRST | jq -r '.audit_trail[] | select(.action | test(\"^(step_|roll)\")) | ...'"
cortex-change show "$FIRST" | python3 -c '
import json, sys
for e in json.load(sys.stdin)["audit_trail"]:
    if e["action"].startswith(("step_", "roll")):
        d = e["details"]
        code = "exit %s" % d["exit_code"] if "exit_code" in d else ""
        what = d.get("expanded") or d.get("what") or d.get("reason") or d.get("notes", "")
        print("  %-17s %s  %s" % (e["action"], what, code))
'

step "Second attempt with the corrected release"
cmd "CHANGE_ID=\$(cortex-change integrate youtube-ingestion emergency_fix '{\"description\": \"Fix [object Object] serialization bug\", \"version\": \"2.3.1\"}')"
cortex-change integrate youtube-ingestion emergency_fix '{"description": "Fix [object Object] serialization bug", "version": "2.3.1"}' >"$work/id"
CHANGE_ID=$(tail -n 1 "$work/id")
echo "CHANGE_ID=$CHANGE_ID"
service
cortex-change show "$CHANGE_ID" | field '{"approvals": d["approvals"], "review": d["review"], "state": d["state"], "closure_status": d["closure_status"]}'

step "Meanwhile, a standard change: the ingestion worker's pod is restarted (pre-approved model)"
cmd "cortex-change integrate kubernetes restart_pod youtube-worker-001"
cortex-change integrate kubernetes restart_pod youtube-worker-001 >/dev/null
printf '  pods/youtube-worker-001 generation = %s\n' "$(cat pods/youtube-worker-001)"

step "Segregation of duties: the requester cannot review its own emergency"
cmd "cortex-change review $CHANGE_ID youtube-ingestion accepted 'looks fine'"
cortex-change review "$CHANGE_ID" youtube-ingestion accepted "looks fine" || echo "  (refused, exit $?)"

step "Retrospective CAB review by the security lead"
cmd "cortex-change review $CHANGE_ID security-lead accepted 'Root cause: object passed to template literal; add a serializer test'"
cortex-change review "$CHANGE_ID" security-lead accepted "Root cause: object passed to template literal; add a serializer test"
cortex-change show "$CHANGE_ID" | field 'd["review"]'

step "The CMDB: what a change touches raises its risk (a 'low impact' cache tweak reaches the chat)"
cmd "cortex-change cmdb import examples/cortex-platform-cmdb.json"
cortex-change cmdb import "$examples/cortex-platform-cmdb.json" --as platform-team | tail -n 1
cmd "cortex-change cmdb impact redis-cache"
cortex-change cmdb impact redis-cache
cmd "cortex-change create normal configuration 'Raise Redis maxmemory to 4 GB' '...' platform-team low low --service redis-cache"
CACHE=$(cortex-change create normal configuration "Raise Redis maxmemory to 4 GB" "Evictions under load" \
  platform-team low low --service redis-cache --rollback-plan '{"steps": ["Set maxmemory back to 2 GB"]}' | tail -n 1)
cmd "cortex-change assess $CACHE"
cortex-change assess "$CACHE"

step "Audit trail (hash-chained) and compliance"
cmd "cortex-change audit log"
cortex-change audit log | grep -F "$CHANGE_ID" | cut -c1-160
cortex-change show "$CHANGE_ID" | field '{f: {r["control"]: r["status"] for r in rs} for f, rs in d["compliance"].items()}'
cmd "cortex-change audit verify"
cortex-change audit verify

step "Metrics"
cmd "cortex-change metrics today"
cortex-change metrics today
