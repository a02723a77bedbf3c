"""Fetching the arXiv snapshot from Kaggle with Kaggle's own client.

The snapshot (about 4 GB unpacked) is only published on
Kaggle, which wants an account and an API token; there is no anonymous URL
to fetch. So this module does not talk HTTP itself: it calls the official
``kaggle`` package (its Python API if importable, else its ``kaggle``
command), and when either the client or the token is missing it says
exactly what to set up instead of failing somewhere inside the client.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..errors import CharRNNError

DATASET = "Cornell-University/arxiv"
PAGE = "https://www.kaggle.com/datasets/Cornell-University/arxiv"
ARCHIVE = "arxiv.zip"  # the name Kaggle's client gives the download


class DownloadError(CharRNNError):
    """The snapshot cannot be fetched: no client, no token, or the client failed."""


def setup_steps(problem: str) -> str:
    """``problem`` followed by what to do about it, step by step: a person
    who cannot download should learn both why and how to fix it."""
    return (f"{problem}. To download the arXiv snapshot with Kaggle's client:\n"
            "  1. pip install kaggle            (or: pip install 'charrnn[kaggle]')\n"
            "  2. on kaggle.com: Settings -> API -> Create New Token; this downloads kaggle.json\n"
            "  3. put it at ~/.kaggle/kaggle.json (chmod 600 ~/.kaggle/kaggle.json), or set\n"
            "     KAGGLE_USERNAME and KAGGLE_KEY to the two values it holds\n"
            f"Or download it by hand from {PAGE} (the 'Download' button) and run\n"
            "  python -m charrnn prepare arxiv.zip --out data/arxiv")


def credential_locations() -> list[Path]:
    """Where Kaggle's client looks for kaggle.json."""
    places = []
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        places.append(Path(os.environ["KAGGLE_CONFIG_DIR"]) / "kaggle.json")
    home = Path.home()
    places += [home / ".kaggle" / "kaggle.json", home / ".config" / "kaggle" / "kaggle.json"]
    return places


def has_credentials() -> bool:
    """True when a token is configured: both environment variables, or a kaggle.json."""
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return True
    return any(p.is_file() for p in credential_locations())


def _python_api():
    """Kaggle's API object, or None when the package is not installed.
    (Importing ``kaggle`` authenticates at once, hence after the token check.)"""
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError:
        return None
    return KaggleApi


def download_snapshot(directory: str | os.PathLike = "data") -> Path:
    """Download Kaggle's ``arxiv.zip`` into ``directory``; returns its path.

    Uses the ``kaggle`` Python package if it is importable, else the
    ``kaggle`` command on PATH; raises :class:`DownloadError` with setup
    steps when neither is installed or no API token is configured.
    """
    directory = Path(directory)
    api_class = _python_api()
    command = shutil.which("kaggle")
    if api_class is None and command is None:
        raise DownloadError(setup_steps("Kaggle's client is not installed (no `kaggle` package "
                                        "or command)"))
    if not has_credentials():
        where = " or ".join(str(p) for p in credential_locations()[:2])
        raise DownloadError(setup_steps(f"no Kaggle API token (neither {where} nor "
                                        "KAGGLE_USERNAME/KAGGLE_KEY)"))
    directory.mkdir(parents=True, exist_ok=True)
    if api_class is not None:
        try:
            api = api_class()
            api.authenticate()
            api.dataset_download_files(DATASET, path=str(directory), quiet=False, unzip=False)
        except Exception as e:  # the client's own errors: network, 401, 403...
            raise DownloadError(f"Kaggle's client failed: {e}") from None
    else:
        argv = [command, "datasets", "download", DATASET, "-p", str(directory)]
        result = subprocess.run(argv)
        if result.returncode != 0:
            raise DownloadError(f"`{' '.join(argv)}` failed with exit status {result.returncode}")
    return directory / ARCHIVE
