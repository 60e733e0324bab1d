"""Prometheus and promtool from Debian's `prometheus` package, for the tests: the ones on PATH when installed, else
the package's binaries unpacked once into the cache (`apt-get download` + `dpkg-deb -x`: nothing is installed or
started system-wide). VISIOPASS_CACHE (default ~/.cache/visiopass) holds them."""

import os
import shutil
import subprocess
from pathlib import Path

PACKAGE = "prometheus"


def cache_dir() -> Path:
    return Path(os.environ.get("VISIOPASS_CACHE") or Path.home() / ".cache" / "visiopass") / "prometheus-deb"


def binary(name: str) -> Path:
    """`prometheus` or `promtool`."""
    found = shutil.which(name)
    if found:
        return Path(found)
    unpacked = cache_dir() / "root" / "usr" / "bin" / name
    if not unpacked.exists():
        _unpack()
    return unpacked


def _unpack() -> None:
    work = cache_dir()
    downloads = work / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    if not any(downloads.glob(f"{PACKAGE}_*.deb")):
        download = ["apt-get", "download", PACKAGE]
        if subprocess.run(download, cwd=downloads, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)  # package lists first
            subprocess.run(download, cwd=downloads, capture_output=True, check=True)
    (package,) = downloads.glob(f"{PACKAGE}_*.deb")
    staging = work / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    subprocess.run(["dpkg-deb", "-x", str(package), str(staging)], check=True)
    shutil.rmtree(work / "root", ignore_errors=True)
    staging.rename(work / "root")  # whole or not at all: an interrupted unpack is done again
