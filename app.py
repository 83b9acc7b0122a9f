"""Entry point: `gunicorn -c gunicorn.conf.py app:app`, `flask --app app ...`, `python app.py`."""

import sys

from bot import create_app
from bot.settings import ConfigError, exit_for

# A gunicorn worker that exits with this status makes the master stop ("App failed to
# load.") instead of respawning it forever; everywhere else a bad config exits with 1.
GUNICORN_APP_LOAD_ERROR = 4

try:
    app = create_app()
except ConfigError as exc:
    exit_for(exc, GUNICORN_APP_LOAD_ERROR if "gunicorn.arbiter" in sys.modules else 1)

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=app.extensions["bot"].settings.port, threaded=True)
