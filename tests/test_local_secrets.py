"""`make up` keeps its secrets from one run to the next (deploy/local/system.py, System.keep_secrets), as it keeps
its databases: the sealed tokens of mails not sent yet still open, and rooms keep their PINs."""

from pathlib import Path

from system import System


def test_a_second_run_takes_the_first_runs_secrets_and_nobody_else_reads_them(tmp_path: Path) -> None:
    kept = tmp_path / "state" / "secrets.json"
    first = System(stack=None, log_dir=tmp_path)
    first.keep_secrets(kept)
    assert kept.stat().st_mode & 0o077 == 0
    second = System(stack=None, log_dir=tmp_path)
    assert second.room_secret != first.room_secret  # each System draws its own ...
    second.keep_secrets(kept)
    for name in ("internal_token", "secret_key", "event_secret_keys", "webhook_secret", "room_secret", "link_key"):
        assert getattr(second, name) == getattr(first, name), name  # ... until it takes the kept ones
