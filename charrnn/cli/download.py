"""``download``: getting real arXiv titles and abstracts, from one of two sources.

``--source kaggle`` (the default) fetches the whole snapshot, arxiv.zip,
with Kaggle's client (:mod:`charrnn.scale.download`; an account needed).
``--source oai`` harvests one subject or date range from arXiv's OAI-PMH
interface into a JSON-lines file (:mod:`charrnn.scale.harvest`; no
account, slower per record, resumable).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from ..errors import CharRNNError
from ..optional import DISTRIBUTION
from ..scale.download import download_snapshot
from ..scale.harvest import OAI_URL, PAUSE, Pacer, Query, harvest, partial_paths
from .flags import with_default

SOURCES = ("kaggle", "oai")
# the flags of --source oai and their defaults (a Kaggle download refuses any other value)
OAI_DEFAULTS = {"out": None, "set": None, "from_date": None, "until_date": None, "limit": None, "url": OAI_URL,
                "pause": PAUSE, "restart": False, "no_progress": False}


def _day(text: str) -> str:
    """An argparse type: a YYYY-MM-DD date, kept as text (what OAI-PMH sends)."""
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, 0 or more, got {text!r}")
    return value


def add_download_parser(sub) -> None:
    """The ``download`` command and its flags."""
    text = ("get real arXiv titles and abstracts: the whole Kaggle snapshot (arxiv.zip), or a subject or "
            "date range harvested from arXiv's OAI-PMH interface (--source oai)")
    p = sub.add_parser("download", help=text, description=text + (
        f". Kaggle needs `pip install '{DISTRIBUTION}[kaggle]'` and a Kaggle API token (KAGGLE_API_TOKEN, "
        "~/.kaggle/access_token, or a legacy ~/.kaggle/kaggle.json); OAI needs no account, only "
        f"`pip install '{DISTRIBUTION}[oai]'`, and resumes an interrupted harvest when run again."))
    p.add_argument("--source", choices=SOURCES, default="kaggle",
                   help=with_default("where from: kaggle (the full 4 GB snapshot, an account needed) or oai "
                                     "(arXiv's OAI-PMH interface, no account)", "kaggle"))
    g = p.add_argument_group("--source kaggle")
    g.add_argument("--dir", type=Path, default=Path("data"),
                   help=with_default("folder to put arxiv.zip in", "data/"))
    g = p.add_argument_group("--source oai", "one request at a time, in pages of 1,000 records or more")
    g.add_argument("--out", type=Path, help="the JSON-lines file to write, e.g. data/oai-cs.jsonl (required "
                   "with --source oai); records gather in OUT.partial until the harvest is complete")
    g.add_argument("--set", help="an arXiv set: cs, math, physics, q-bio, stat, ..., or an archive such as "
                                 "physics:hep-th (default: every set)")
    g.add_argument("--from", dest="from_date", type=_day, metavar="YYYY-MM-DD",
                   help="records changed on or after this day (default: from the first)")
    g.add_argument("--until", dest="until_date", type=_day, metavar="YYYY-MM-DD",
                   help="records changed on or before this day (default: to the last)")
    g.add_argument("--limit", type=_positive, help="stop after this many records (default: the whole list)")
    g.add_argument("--url", default=OAI_URL, help=with_default("the OAI-PMH base URL", OAI_URL))
    g.add_argument("--pause", type=_seconds, default=PAUSE,
                   help=with_default("seconds between requests (arXiv asks for at least 3)", PAUSE))
    g.add_argument("--restart", action="store_true",
                   help="discard an unfinished harvest at OUT.partial (or replace a finished OUT) and start over")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_download)


def cmd_download(args) -> int | None:
    """``download``: the Kaggle snapshot, or an OAI-PMH harvest."""
    if args.source == "oai":
        return _harvest(args)
    given = [f"--{name.replace('_date', '').replace('_', '-')}" for name, default in OAI_DEFAULTS.items()
             if getattr(args, name) != default]
    if given:
        raise CharRNNError(f"{', '.join(given)}: for --source oai; the Kaggle snapshot has no such choice "
                           "(prepare it with --categories/--limit instead)")
    path = download_snapshot(args.dir)
    print(f"downloaded {path}\nnext: python -m charrnn prepare {path} --out {args.dir / 'arxiv'}")
    return None


def _harvest(args) -> int | None:
    if args.out is None:
        raise CharRNNError("--source oai needs --out FILE.jsonl, the file to write (e.g. data/oai-cs.jsonl)")
    if args.dir != Path("data"):
        raise CharRNNError("--dir is for --source kaggle; with --source oai, --out names the file to write")
    if args.from_date and args.until_date and args.from_date > args.until_date:
        raise CharRNNError(f"--from {args.from_date} is after --until {args.until_date}")
    query = Query(url=args.url, set=args.set, from_date=args.from_date, until_date=args.until_date)
    try:
        stats = harvest(args.out, query, limit=args.limit, restart=args.restart,
                        progress=not args.no_progress, pacer=Pacer(pause=args.pause))
    except KeyboardInterrupt:
        partial, _ = partial_paths(args.out)
        print(f"charrnn: interrupted; the records harvested so far are kept in {partial}: run the same "
              "command again to resume", file=sys.stderr)
        return 130
    print(stats.summary())
    print(f"wrote {args.out}\nnext: python -m charrnn prepare {args.out} --out {args.out.with_suffix('')}  "
          f"(or train on it: python -m charrnn train --data {args.out})")
    return None
