from notifier.main import app, settings
from servicekit.runtime import serve

if settings.keyring() is None:  # the links' tokens would not open: refuse to start rather than fail each mail
    raise SystemExit("NOTIFIER_EVENT_SECRET_KEYS is not set (contracts.secrets)")
serve(app, settings)
