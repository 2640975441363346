#!/usr/bin/env bash
# Sets up everything, starts the services, imports sample mail and sample users, and serves the
# web UI and the API.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/services.sh up
# shellcheck source=scripts/env.sh
source scripts/env.sh
COUNT=${MAILVAULT_DEMO_COUNT:-2000}
SAMPLE="$MAILVAULT_STATE_DIR/demo/sample-$COUNT.mbox"
mkdir -p "$(dirname "$SAMPLE")"
[ -f "$SAMPLE" ] || python -m bench.mailgen --count "$COUNT" --seed 7 --out "$SAMPLE" --format mbox
mailvault init
echo "== sample rules (departments by topic), retention policies, a legal hold, and users"
python scripts/demo_data.py
echo "== importing $COUNT generated messages (Chinese, English, mixed; GB2312/GBK/GB18030/Big5/UTF-8)"
mailvault import "$SAMPLE"
if [ -d ../shared/corpora ]; then
  echo "== importing the test corpora in ../shared/corpora"
  # The .eml files sit in subfolders beside their .json answer keys, which import skips (not mail).
  mailvault import ../shared/corpora/spamscope-mail-parser/tests/mails \
    ../shared/corpora/stalwart-mail-parser/resources/eml || true
fi
echo "== retention policies and the matter's hold (each message was decided as it arrived)"
mailvault retention policies
mailvault holds matters
echo "== an evidence export of the matter's holds: built, downloaded, verified offline"
MATTER=$(mailvault holds matters --json | python -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')
OUT="$MAILVAULT_STATE_DIR/demo/export"
rm -rf "$OUT"
mailvault export create --matter "$MATTER" --name "示例案件 export" --load-file --here \
  --out "$OUT" --extract
python3 -I "$OUT/package/verify.py" --public-key "$(mailvault export pubkey | cut -f1)"
PORT=${MAILVAULT_API_PORT:-8080}
API=http://127.0.0.1:$PORT
# plain HTTP on loopback: the session cookie may not insist on HTTPS here
export MAILVAULT_SESSION_COOKIE_SECURE=false
mailvault serve --port "$PORT" &
SERVER=$!
mailvault worker --concurrency 1 >"$MAILVAULT_STATE_DIR/demo/worker.log" 2>&1 &  # builds exports
WORKER=$!
trap 'kill $SERVER $WORKER 2>/dev/null' EXIT
for _ in $(seq 1 120); do
  curl -sf "$API/healthz" >/dev/null && break
  kill -0 $SERVER 2>/dev/null || { echo "the API did not start"; exit 1; }
  sleep 0.5
done
JAR=$(mktemp)
echo "== signing in as officer (compliance officer) and as lead-sales (department lead of 销售部)"
for who in officer lead-sales; do
  curl -sf -c "$JAR" -H 'content-type: application/json' \
    -d "{\"username\": \"$who\", \"password\": \"mailvault demo 2026\"}" "$API/api/session" >/dev/null
  total=$(curl -sf -b "$JAR" -G "$API/api/search" --data-urlencode 'q=合同' |
    python -c 'import json, sys; print(json.load(sys.stdin)["total"])')
  echo "  $who: q=合同 finds $total messages"
done
rm -f "$JAR"
curl -sf "$API/ui/sign-in" | grep -q 'id="sign-in-form"' || { echo "the web UI did not answer"; exit 1; }
UI=http://localhost:$PORT/ui/
cat <<MSG

The archive is ready. Open the web UI in a browser: $UI
Sign in with any of the sample users above (password: mailvault demo 2026):
  officer (searches everything), counsel (matters, holds, exports), auditor (the audit log),
  lead-sales / lead-finance (their department's mail), admin (users, rules, status).
The UI is in Chinese; the 中文 / English links at the top switch the language.

The JSON API is at $API (documentation: $API/docs). From a script, sign in first:
  curl -c jar -H 'content-type: application/json' \\
    -d '{"username": "officer", "password": "mailvault demo 2026"}' $API/api/session
  curl -b jar -G $API/api/search --data-urlencode 'q=合同 from:*@example.com' | python -m json.tool
Retention: GET $API/api/retention/policies, GET $API/api/messages/<id>/retention (as officer);
legal holds: GET $API/api/matters (as counsel); search has:hold.
Evidence exports (as counsel): POST $API/api/exports, GET $API/api/exports/<id>, .../parts/1;
the matter's export above is in $OUT (verify it again: mailvault export verify $OUT).
Every request is in the audit log (sign in as auditor: GET $API/api/audit, /api/audit/export?format=pdf).
Serving until Ctrl-C ('bash scripts/services.sh down' stops the services).
MSG
# on a desktop, open the UI; on a server, the address above is the way in
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && command -v xdg-open >/dev/null; then
  xdg-open "$UI" >/dev/null 2>&1 || true
fi
wait $SERVER
