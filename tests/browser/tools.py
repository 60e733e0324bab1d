"""What the browser tests need besides Python packages, installed once per machine when missing: Debian's
Chromium (Playwright cannot download its own browsers here) and axe-core from npm (the accessibility checks).

Both are fetched by their ordinary clients (apt-get, npm) the first time; later runs find them and start at
once. Nothing is installed by hand: `make test` on a fresh machine gets here and installs them.
"""

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Flags for a headless Chromium in a container with no network beyond ours (docs/portal.md, "Browser tests").
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
AXE_VERSION = "4.14.1"  # pinned: a new release may add rules, and a new rule should arrive by a reviewed change
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "visiopass"


def ensure_chromium() -> Path:
    """/usr/bin/chromium, installed with apt-get when missing (as root, else through `sudo -n`)."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() == 0:
        prefix: list[str] = []
    elif shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        prefix = ["sudo", "-n"]
    else:
        raise RuntimeError(
            "The browser tests need Debian's Chromium (/usr/bin/chromium) and cannot install it: not root and no "
            "password-less sudo. Install it once with `apt-get install -y chromium`."
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    wait_for_lock = ["-o", "DPkg::Lock::Timeout=600"]  # another apt-get (e.g. a second suite) may hold the lock
    for command in (["apt-get", *wait_for_lock, "update"], ["apt-get", *wait_for_lock, "install", "-y", "chromium"]):
        done = subprocess.run(prefix + command, env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise RuntimeError(f"`{' '.join(command)}` failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr}")
    if not CHROMIUM.exists():
        raise RuntimeError(f"apt-get installed chromium but {CHROMIUM} is missing")
    return CHROMIUM


def ensure_axe() -> Path:
    """axe-core's `axe.min.js` at the pinned version, fetched once with `npm pack` into ~/.cache/visiopass."""
    target = CACHE / f"axe-core-{AXE_VERSION}" / "axe.min.js"
    if target.exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("The browser tests fetch axe-core with npm, which is missing: `apt-get install -y npm`.")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        # npm checks the tarball against the registry's integrity hash
        done = subprocess.run(
            [npm, "pack", f"axe-core@{AXE_VERSION}", "--pack-destination", work, "--silent"],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"npm pack axe-core@{AXE_VERSION} failed:\n{done.stderr[-2000:]}")
        [tarball] = Path(work).glob("axe-core-*.tgz")
        with tarfile.open(tarball) as archive:
            member = archive.extractfile("package/axe.min.js")
            assert member is not None
            partial = Path(work) / "axe.min.js"
            partial.write_bytes(member.read())
        partial.replace(target)  # atomic: a second suite never reads half a file
    return target


if __name__ == "__main__":  # `uv run python tests/browser/tools.py`: install both ahead of a test run
    print(ensure_chromium(), ensure_axe())
