#!/usr/bin/env bash
# The seed's Quick Start lifecycle against a throw-away database:
# create -> assess -> approve -> implement -> close -> show -> metrics.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CORTEX_CHANGE_DB="$work/demo.db"
export CORTEX_CHANGE_USER=alice

step() { printf '\n\033[1m$ %s\033[0m\n' "$*" >&2; }
run() { step "$*"; "$@"; }

step 'CHANGE_ID=$(cortex-change create normal deployment "Deploy new feature X" "Detailed description of the change")'
CHANGE_ID=$(cortex-change create normal deployment "Deploy new feature X" "Detailed description of the change" \
  --service cortex-chat --rollback-plan '{"steps": ["Revert to previous image tag"]}')
echo "$CHANGE_ID"
run cortex-change assess "$CHANGE_ID"
step "cortex-change approve $CHANGE_ID alice 'Approving my own change'   # segregation of duties refuses"
cortex-change approve "$CHANGE_ID" alice "Approving my own change" || echo "(refused, exit $?)"
run cortex-change approve "$CHANGE_ID" tech-lead "Approved for deployment"
run cortex-change implement "$CHANGE_ID"
run cortex-change close "$CHANGE_ID" successful "Change deployed successfully"
step "cortex-change show $CHANGE_ID | head -n 30"
cortex-change show "$CHANGE_ID" | head -n 30
run cortex-change list closed
run cortex-change metrics today
run cortex-change audit verify
