#!/usr/bin/env bash
# The seed's real-world example, replayed with real commands against a throw-away database:
# a production bug in the YouTube ingestion service ("[object Object]" stored instead of the
# transcript) is fixed as an emergency change, implemented first and reviewed by the CAB after.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CORTEX_CHANGE_DB="$work/cortex-change.db"
unset CORTEX_CHANGE_USER

if [ -t 1 ]; then bold=$'\033[1m'; dim=$'\033[2m'; off=$'\033[0m'; else bold=; dim=; off=; fi
n=0
step() { n=$((n + 1)); printf '\n%s%d. %s%s\n' "$bold" "$n" "$1" "$off"; }
cmd() { printf '%s$ %s%s\n' "$dim" "$*" "$off"; }
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps(eval(sys.argv[1], {"d": d}), ensure_ascii=False, indent=2))' "$1"; }

step "Detect: transcripts arrive as '[object Object]'; the ingestion agent files an emergency RFC"
cmd 'CHANGE_ID=$(cortex-change integrate youtube-ingestion emergency_fix "Fix [object Object] serialization bug")'
CHANGE_ID=$(cortex-change integrate youtube-ingestion emergency_fix "Fix [object Object] serialization bug" 2>&1 >"$work/id" | sed 's/^/  /'; cat "$work/id")
CHANGE_ID=$(tail -n 1 "$work/id")
echo "CHANGE_ID=$CHANGE_ID"

step "Assessment: scored like any change, routed to the emergency CAB"
cmd "cortex-change show $CHANGE_ID | jq '{type, risk_score, risk_level, priority, approval_required, assigned_to, state}'"
cortex-change show "$CHANGE_ID" | field '{k: d[k] for k in ("type", "risk_score", "risk_level", "priority", "approval_required", "assigned_to", "state")}'
cortex-change show "$CHANGE_ID" | field '{k: v["reason"] for k, v in d["assessment"]["components"].items()}'

step "Emergency approval: implement first, review within EMERGENCY_CAB_REVIEW_SLA (24h)"
cortex-change show "$CHANGE_ID" | field '{"approvals": d["approvals"], "review": d["review"]}'

step "Implementation by the development master"
cmd "cortex-change implement $CHANGE_ID --as development-master"
cortex-change implement "$CHANGE_ID" --as development-master

step "Closure after the fix is verified"
cmd "cortex-change close $CHANGE_ID successful 'Transcripts serialize as text again; 0 [object Object] rows in 1h' --as development-master"
cortex-change close "$CHANGE_ID" successful "Transcripts serialize as text again; 0 [object Object] rows in 1h" --as development-master

step "Segregation of duties: the requester cannot review its own emergency"
cmd "cortex-change review $CHANGE_ID youtube-ingestion accepted 'looks fine'"
cortex-change review "$CHANGE_ID" youtube-ingestion accepted "looks fine" || echo "  (refused, exit $?)"

step "Retrospective CAB review by the security lead"
cmd "cortex-change review $CHANGE_ID security-lead accepted 'Root cause: object passed to template literal; add a serializer test'"
cortex-change review "$CHANGE_ID" security-lead accepted "Root cause: object passed to template literal; add a serializer test"
cortex-change show "$CHANGE_ID" | field 'd["review"]'

step "Audit trail (hash-chained) and compliance"
cmd "cortex-change audit log"
cortex-change audit log | grep -F "$CHANGE_ID" | cut -c1-160
cortex-change show "$CHANGE_ID" | field '{f: {r["control"]: r["status"] for r in rs} for f, rs in d["compliance"].items()}'
cmd "cortex-change audit verify"
cortex-change audit verify

step "Metrics"
cmd "cortex-change metrics today"
cortex-change metrics today
