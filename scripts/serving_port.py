"""Print the port the app will serve on, read as the app reads it (environment, .env, 8000).

run_local.sh and run_local.bat print it in their hints; a wrong configuration stops them
here with its one line.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.settings import ConfigError, exit_for, load_settings  # noqa: E402 (path set above)

try:
    print(load_settings().port)
except ConfigError as exc:
    exit_for(exc)
