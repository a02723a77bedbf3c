"""Fetching the arXiv snapshot from Kaggle with Kaggle's own client.

The snapshot (about 4 GB unpacked) is only published on
Kaggle, which wants an account and an API token; there is no anonymous URL
to fetch. So this module does not talk HTTP itself: it calls the official
``kaggle`` package (its Python API if installed, else its ``kaggle``
command). Whether credentials exist is the client's decision, not ours: it
knows every way Kaggle signs in today. When the client is missing, broken or
finds no credentials, this module says exactly what to set up instead of
failing somewhere inside the client.

Without a Kaggle account, :mod:`.harvest` gets records from arXiv itself
(``charrnn download --source oai``): one subject or date range at a time.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
from pathlib import Path

from ..errors import CharRNNError
from ..optional import DISTRIBUTION

DATASET = "Cornell-University/arxiv"
PAGE = "https://www.kaggle.com/datasets/Cornell-University/arxiv"
ARCHIVE = "arxiv.zip"  # the name Kaggle's client gives the download


class DownloadError(CharRNNError):
    """The snapshot cannot be fetched: no client, no token, or the client failed."""


def setup_steps(problem: str) -> str:
    """``problem`` followed by what to do about it, step by step: a person
    who cannot download should learn both why and how to fix it."""
    return (f"{problem}. To download the arXiv snapshot with Kaggle's client:\n"
            f"  1. pip install '{DISTRIBUTION}[kaggle]'   (Kaggle's client and what it imports)\n"
            "  2. on kaggle.com: Settings -> API -> Generate New Token, then one of:\n"
            "       export KAGGLE_API_TOKEN=<the token>, or save it to ~/.kaggle/access_token,\n"
            "       or `kaggle auth login`; a legacy ~/.kaggle/kaggle.json (or KAGGLE_USERNAME and\n"
            "       KAGGLE_KEY) works too\n"
            f"Or download it by hand from {PAGE} (the 'Download' button) and run\n"
            "  python -m charrnn prepare arxiv.zip --out data/arxiv\n"
            "Or, with no account, harvest one subject from arXiv itself (slower, resumable):\n"
            f"  pip install '{DISTRIBUTION}[oai]' && python -m charrnn download --source oai --set cs "
            "--limit 20000 --out data/oai-cs.jsonl")


def _python_client():
    """Kaggle's ``KaggleApi`` class, or None when the ``kaggle`` package is not
    installed. An installed client that fails to import (Kaggle's client has
    imported packages it does not declare, such as ``six``) is named as such,
    with the missing package, instead of passing for "not installed"."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # importing kaggle tries to sign in and prints help
            from kaggle.api.kaggle_api_extended import KaggleApi
    except ModuleNotFoundError as e:
        if e.name in (None, "kaggle") or e.name.startswith("kaggle."):
            return None
        raise DownloadError(f"Kaggle's client is installed but cannot be imported: it needs the package "
                            f"`{e.name}`, which is missing (pip install {e.name})") from None
    except ImportError as e:
        raise DownloadError(f"Kaggle's client is installed but cannot be imported: {e}") from None
    return KaggleApi


def _signed_in(api_class):
    """An authenticated client. Kaggle's own ``authenticate`` decides which
    credentials count (a token in KAGGLE_API_TOKEN or ~/.kaggle/access_token,
    cached OAuth, a legacy kaggle.json, ...), so new sign-in methods work as
    soon as the client supports them; it exits the process when none is
    found, which becomes a :class:`DownloadError` here."""
    api = api_class()
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said):
            api.authenticate()
    except (Exception, SystemExit) as e:
        why = str(e) if isinstance(e, Exception) and str(e) else "no credentials found"
        raise DownloadError(setup_steps(f"Kaggle's client could not sign in ({why})")) from None
    return api


def download_snapshot(directory: str | os.PathLike = "data") -> Path:
    """Download Kaggle's ``arxiv.zip`` into ``directory``; returns its path.

    Uses the ``kaggle`` Python package if it is installed, else the ``kaggle``
    command on PATH; raises :class:`DownloadError` with setup steps when
    neither is there, when the client cannot be imported, or when it finds no
    credentials.
    """
    directory = Path(directory)
    api_class = _python_client()
    command = shutil.which("kaggle")
    if api_class is None and command is None:
        raise DownloadError(setup_steps("Kaggle's client is not installed (no `kaggle` package "
                                        "or command)"))
    if api_class is not None:
        api = _signed_in(api_class)
        directory.mkdir(parents=True, exist_ok=True)
        try:
            api.dataset_download_files(DATASET, path=str(directory), quiet=False, unzip=False)
        except Exception as e:  # the client's own errors: network, 401, 403...
            raise DownloadError(f"Kaggle's client failed: {e}") from None
    else:
        directory.mkdir(parents=True, exist_ok=True)
        argv = [command, "datasets", "download", DATASET, "-p", str(directory)]
        result = subprocess.run(argv)  # the command checks its own credentials and says what is missing
        if result.returncode != 0:
            raise DownloadError(f"`{' '.join(argv)}` failed with exit status {result.returncode}")
    return directory / ARCHIVE
