"""Entry point: `gunicorn -c gunicorn.conf.py app:app`, `flask --app app ...`, `python app.py`."""

import sys

from bot import create_app
from bot.settings import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    # One line naming the file, key, value and what is allowed; no traceback.
    sys.exit(f"Configuration error: {exc}")

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=app.extensions["bot"].settings.port, threaded=True)
