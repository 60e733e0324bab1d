"""The gateway's own tests run its app in-process with no service behind it: its upstreams and its database
point at a port where nothing listens, so that a `make up` running on this machine (accounts on 8101,
PostgreSQL on 5433) never answers in their place."""

import os

NOWHERE = "127.0.0.1:9"  # the discard port: nothing listens there on these machines

for name, url in {
    "GATEWAY_ACCOUNTS_URL": f"http://{NOWHERE}",
    "GATEWAY_NOTIFIER_URL": f"http://{NOWHERE}",
    "GATEWAY_BILLING_URL": f"http://{NOWHERE}",
    "GATEWAY_CATALOGUE_URL": f"http://{NOWHERE}",
    "GATEWAY_ENROLLMENT_URL": f"http://{NOWHERE}",
    "GATEWAY_DATABASE_URL": f"postgresql+asyncpg://postgres@{NOWHERE}/gateway",
}.items():
    os.environ.setdefault(name, url)
