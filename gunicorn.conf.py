"""gunicorn settings: `gunicorn -c gunicorn.conf.py app:app` (Render's start command).

The app is I/O-bound: a request spends seconds waiting on the model and milliseconds
computing, so a few processes with many threads each (gthread) serve far more
conversations than one process per core would.
"""

import sys
from dataclasses import replace

from bot.settings import ConfigError, exit_for, load_settings, shared_limits_warning

# The configuration is checked here, in the master, before the port is bound: a wrong value
# stops gunicorn with its one line instead of workers failing (and being respawned) forever.
try:
    settings = load_settings()
except ConfigError as exc:
    exit_for(exc)

# Render sets PORT (a PORT in .env counts too); bind every interface because its proxy
# connects from outside.
bind = f"0.0.0.0:{settings.port}"
worker_class = "gthread"
# Two workers with 128 threads each hold 200 conversations in flight on a 512 MB instance:
# a thread waiting for the model costs little, and a worker measured 150-170 MB at 200 in
# flight (docs/PERFORMANCE.md). gthread does not spread requests evenly over the workers, so
# each needs more than half of the conversations' threads.
workers = settings.web_concurrency or 2
threads = settings.gunicorn_threads
# The reply budget is at most 14 s (Twilio gives up at 15 s); a worker silent for longer
# than this is stuck, not busy.
timeout = settings.gunicorn_timeout
# On SIGTERM (a deploy), in-flight requests get this long to finish their replies.
graceful_timeout = 20
keepalive = 5
accesslog = "-"
errorlog = "-"
# Access lines carry no query string or body, so no phone number reaches them.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
if warning := shared_limits_warning(replace(settings, web_concurrency=workers)):
    print(f"WARNING {warning}", file=sys.stderr, flush=True)


def post_fork(server, worker):
    """Drop connections a preloaded app opened in the master: sockets must not be shared."""
    app = getattr(worker, "wsgi", None)
    services = getattr(app, "extensions", {}).get("bot") if app is not None else None
    if services is not None:
        services.after_fork()
