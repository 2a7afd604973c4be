"""Production serving: gunicorn over one published store file.

Start it with `atvira serve --production` (which runs exactly
`gunicorn -c gunicorn.conf.py "app:create_app()"` from this directory), or that command by hand.

Every worker is a stateless reader: the app opens the store read-only (directory.db.ReaderPool,
one handle per thread, opened lazily after the fork), so adding readers means raising
`ATVIRA_WORKERS` here or starting the same command on more machines, each over its own copy of
the published file. Nothing in a worker is written back; an ingest writes the file elsewhere
(or in place, in one transaction, which WAL readers never see half-done).

Tunables are environment variables, like every Atvira setting:
  ATVIRA_HOST / ATVIRA_PORT     where to listen (default 127.0.0.1:5000; keep it on loopback
                                behind a reverse proxy)
  ATVIRA_WORKERS                processes (default: 2 x the CPUs this process may use)
  ATVIRA_THREADS                threads per process (default 2): requests are short SQLite reads
  ATVIRA_TIMEOUT                seconds before a stuck worker is killed and replaced (default 30)
  ATVIRA_FORWARDED_ALLOW_IPS    proxies trusted for X-Forwarded-Proto (default 127.0.0.1)
  ATVIRA_ACCESS_LOG             "-" for stdout, a file path, or empty for none (default none)
  ATVIRA_SECRET_KEY             required: signs the session cookie and the CSRF tokens
  ATVIRA_RATELIMIT_STORAGE      redis://127.0.0.1:6379 here: memory:// would count per worker

This file turns production mode on (ATVIRA_PRODUCTION=1, unless set otherwise): the server refuses
to start without ATVIRA_SECRET_KEY, and the session cookie is sent over https only.
"""

import os
import sys

from directory.config import Settings, check_production
from directory.errors import ConfigError

os.environ.setdefault("ATVIRA_PRODUCTION", "1")
try:
    # Checked here, before any worker forks, so the refusal is one clear line, not a traceback.
    check_production(Settings.from_env())
except ConfigError as exc:
    sys.exit(f"error: {exc}")

_cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

bind = f"{os.environ.get('ATVIRA_HOST', '127.0.0.1')}:{os.environ.get('ATVIRA_PORT', '5000')}"
workers = int(os.environ.get("ATVIRA_WORKERS") or 2 * _cpus)
worker_class = "gthread"
threads = int(os.environ.get("ATVIRA_THREADS") or 2)
# Load the app once in the master (imports, templates, folium) and fork: workers start fast and
# share those pages. No store handle exists yet at fork time; each thread opens its own.
preload_app = True
timeout = int(os.environ.get("ATVIRA_TIMEOUT") or 30)
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so no slow leak can grow without bound (jitter: not all at once).
max_requests = 50_000
max_requests_jitter = 5_000
# Refuse oversized request lines and headers early (the API takes only short query strings).
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190
# Behind nginx: trust X-Forwarded-Proto from the proxy only, so generated `next` links keep https.
forwarded_allow_ips = os.environ.get("ATVIRA_FORWARDED_ALLOW_IPS", "127.0.0.1")
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}
accesslog = os.environ.get("ATVIRA_ACCESS_LOG") or None
errorlog = "-"
loglevel = "info"
proc_name = "atvira"
# No runtime control socket: several instances on one machine would contend for one path.
control_socket_disable = True
