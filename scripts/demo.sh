#!/usr/bin/env bash
# Sets up everything, starts the services, imports sample mail and serves the search API.
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
echo "== importing $COUNT generated messages (Chinese, English, mixed; GB2312/GBK/GB18030/Big5/UTF-8)"
mailvault import "$SAMPLE"
if [ -d ../shared/corpora ]; then
  echo "== importing the test corpora in ../shared/corpora"
  # The .eml files sit in subfolders beside their .json answer keys, which import skips (not mail).
  mailvault import ../shared/corpora/spamscope-mail-parser/tests/mails \
    ../shared/corpora/stalwart-mail-parser/resources/eml || true
fi
PORT=${MAILVAULT_API_PORT:-8080}
cat <<MSG

The archive is ready. Try:
  mailvault search 会议
  curl -s -G http://127.0.0.1:$PORT/api/search --data-urlencode 'q=合同 from:*@example.com' | python -m json.tool
  open http://127.0.0.1:$PORT/docs for the API documentation
Serving the API on http://127.0.0.1:$PORT (Ctrl-C to stop; 'bash scripts/services.sh down' stops the services).
MSG
exec mailvault serve --port "$PORT"
