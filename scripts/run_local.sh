#!/usr/bin/env bash
# macOS/Linux twin of run_local.bat: venv, install, sample knowledge, serve on the laptop.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet -r requirements.txt
[ -f .env ] || cp .env.example .env
# The port the app will serve on, as it reads it; a wrong configuration stops here.
PORT=$(.venv/bin/python scripts/serving_port.py)
.venv/bin/python -m flask --app app ingest knowledge/sample
cat <<MSG

The bot is starting on http://127.0.0.1:${PORT}
Try it from another terminal:
    .venv/bin/flask --app app chat "@agent who attended the UNEA meeting?"
To reach it from your phone (docs/TWILIO_SETUP.md):
    1. ngrok http ${PORT}
    2. In .env set PUBLIC_BASE_URL=https://YOUR-NGROK-HOST, TWILIO_AUTH_TOKEN=...
       and ALLOWED_SENDERS=+YOUR-NUMBER, each tester who joined the sandbox
    3. In the Twilio sandbox set "When a message comes in" to
       https://YOUR-NGROK-HOST/whatsapp/webhook (HTTP POST), then restart this script.

MSG
exec .venv/bin/python app.py
