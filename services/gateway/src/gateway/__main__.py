import gc

from gateway.headers import start_metrics_listener
from gateway.main import app, settings
from servicekit.runtime import serve

start_metrics_listener(settings.metrics_host, settings.metrics_port)  # not on the public port
# What was built at start-up lives as long as the process: kept out of the collector's full passes, which would
# otherwise walk it all and stall every request for tens of milliseconds (p99 of /api/v1/me: docs/accounts.md).
gc.freeze()
serve(app, settings)
