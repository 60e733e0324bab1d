from accounts.main import app, settings
from accounts.sealing import keyring
from servicekit.runtime import serve

keyring()  # refuses to start (SecretError) without ACCOUNTS_EVENT_SECRET_KEYS: no event could be written
serve(app, settings)
