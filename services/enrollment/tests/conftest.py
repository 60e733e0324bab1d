import os

from contracts.examples import EXAMPLE_KEYRING

# enrollment makes its links' tokens with this key and seals the tokens of its events with this keyring; the tests
# open them with it
os.environ.setdefault("ENROLLMENT_LINK_KEY", "test-link-key-0123456789abcdef0123456789abcdef")
os.environ.setdefault("ENROLLMENT_EVENT_SECRET_KEYS", EXAMPLE_KEYRING.to_text())
