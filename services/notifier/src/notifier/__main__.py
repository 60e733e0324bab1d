from notifier.main import app, settings
from servicekit.runtime import serve

if settings.keyring() is None:  # the links' tokens would not open: refuse to start rather than fail each mail
    raise SystemExit("NOTIFIER_EVENT_SECRET_KEYS is not set (contracts.secrets)")
if settings.unsubscribe_key is None or not settings.unsubscribe_key.get_secret_value().strip():
    raise SystemExit("NOTIFIER_UNSUBSCRIBE_KEY is not set: reminders could not carry their unsubscribe link")
serve(app, settings)
