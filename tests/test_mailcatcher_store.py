"""The SMTP catcher's store (deploy/local/mailcatcher.py): what tests read as they poll it."""

import shutil
import time
from email.message import EmailMessage
from pathlib import Path

from mailcatcher import MailStore


def _mail(to: str, subject: str) -> bytes:
    message = EmailMessage()
    message["From"] = "no-reply@visiopass.localhost"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(f"{subject}: https://visiopass.localhost/verify-email?token=abc")
    return bytes(message)


def test_messages_are_found_by_recipient_newest_first_as_soon_as_they_are_saved(tmp_path: Path) -> None:
    store = MailStore(tmp_path)
    assert store.list("a@lycee.fr") == []
    first = store.save("no-reply@visiopass.localhost", ["a@lycee.fr"], _mail("a@lycee.fr", "one"))
    assert [m["id"] for m in store.list("A@Lycee.fr ")] == [first]
    # saved within the same clock tick as the last look: still seen at once
    second = store.save("no-reply@visiopass.localhost", ["a@lycee.fr", "b@lycee.fr"], _mail("a@lycee.fr", "two"))
    assert [m["subject"] for m in store.list("a@lycee.fr")] == ["two", "one"]
    assert [m["id"] for m in store.list("b@lycee.fr")] == [second]  # an envelope recipient (Bcc)
    assert [m["id"] for m in store.list()] == [second, first] == store.ids()
    assert store.get(first)["links"] == ["https://visiopass.localhost/verify-email?token=abc"]


def test_a_file_dropped_or_removed_by_hand_is_seen(tmp_path: Path) -> None:
    store = MailStore(tmp_path)
    kept = store.save(None, ["a@lycee.fr"], _mail("a@lycee.fr", "kept"))
    gone = store.save(None, ["a@lycee.fr"], _mail("a@lycee.fr", "gone"))
    assert len(store.list("a@lycee.fr")) == 2
    time.sleep(0.15)  # the folder's mtime is settled: the next look may skip reading it, until it changes
    (tmp_path / f"{gone}.eml").unlink()
    assert [m["id"] for m in store.list("a@lycee.fr")] == [kept]
    dropped = f"{time.time_ns() - 10**9:020d}-0123abcd"  # an older id than `kept`
    (tmp_path / f"{dropped}.eml").write_bytes(_mail("c@lycee.fr, a@lycee.fr", "by hand"))
    assert [m["id"] for m in store.list("a@lycee.fr")] == [kept, dropped]
    assert store.clear() == 2
    assert store.list() == [] and store.get(kept) is None


def test_a_new_store_reads_what_an_earlier_one_kept(tmp_path: Path) -> None:
    kept = MailStore(tmp_path / "mail").save(None, ["a@lycee.fr"], _mail("a@lycee.fr", "before a restart"))
    shutil.copytree(tmp_path / "mail", tmp_path / "copy")
    assert [m["id"] for m in MailStore(tmp_path / "copy").list("a@lycee.fr")] == [kept]
