"""Harvesting arXiv titles and abstracts over OAI-PMH, with no account.

Why a second source beside Kaggle (:mod:`.download`): the Kaggle snapshot
is every arXiv paper in one 4 GB file, but Kaggle wants an account and an
API token, and a course rarely needs 2.9 million abstracts. arXiv's own
OAI-PMH interface (the Open Archives Initiative Protocol for Metadata
Harvesting) needs neither: anyone may ask it for one subject (a *set*:
``cs``, ``math``, ``physics:hep-th``) or one range of dates, and it answers
in pages of XML, each ending with a *resumption token* that asks for the
next page. The price is speed: arXiv asks harvesters for one request at a
time with pauses between them, and answers ``503`` with ``Retry-After``
when it wants a harvester to slow down.

The protocol (HTTP session, OAI error codes, record headers) is handled by
the ``oaipmh-scythe`` client; this module drives the pages itself, because
what it adds lives at page boundaries:

- politeness: a pause between requests, ``Retry-After`` honoured (a wait
  longer than :data:`MAX_WAIT` stops the harvest instead), a bounded number
  of retries, a User-Agent that names charrnn;
- resuming: records go to ``OUT.partial`` and, after each page is on disk,
  the next page's token goes to a small JSON state file beside it
  (``OUT.partial.json``), so an interrupted harvest (Ctrl-C, a network cut,
  a crash) goes on where it stopped when the same command is run again.
  ``OUT`` itself appears only when the list is complete (or ``limit`` is
  reached), so a file at ``OUT`` never looks complete when it is not;
- checking: a page cut short by a broken connection is fetched again
  rather than read as the end of the list, and a record without a title or
  an abstract is skipped and counted.

Each record is written as one JSON line shaped like the Kaggle snapshot's
(``id``, ``title``, ``abstract``, ``categories`` separated by spaces, plus
the dates), so ``prepare`` and ``train --data`` read the output unchanged.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import CharRNNError
from ..files import atomic_write, writing
from ..optional import require

OAI_URL = "https://oaipmh.arxiv.org/oai"  # arXiv's base URL since 2025 (before: http://export.arxiv.org/oai2)
METADATA_PREFIX = "arXiv"  # arXiv's own format: id, dates, title, abstract, categories
OAI = "{http://www.openarchives.org/OAI/2.0/}"
ARXIV = "{http://arxiv.org/OAI/arXiv/}"
USER_AGENT = "charrnn (course library; https://github.com/charrnn/charrnn) oaipmh-scythe"

PAUSE = 3.0  # seconds between requests: arXiv's terms ask for at most one request every three seconds
MAX_WAIT = 300.0  # the longest Retry-After waited for; a longer one stops the harvest (rerun later)
MAX_RETRIES = 5  # tries after the first, per page, before the harvest stops (and can be resumed)
BUSY_WAIT = 30.0  # seconds to wait after a 503 that names no Retry-After
TIMEOUT = 180.0  # seconds for one page: arXiv can take minutes to answer a large one
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})  # "busy" or "not now": worth asking again
STATE_FORMAT = "charrnn-oai-harvest"


class HarvestError(CharRNNError):
    """The harvest cannot go on: the server refused the request, or kept
    failing. What was written so far is kept for the next run."""


@dataclass(frozen=True)
class Query:
    """What is harvested: one list of the server, the same on every page.
    A saved harvest resumes only under the same query."""

    url: str = OAI_URL
    set: str | None = None
    from_date: str | None = None  # YYYY-MM-DD, inclusive, the record's datestamp (last change)
    until_date: str | None = None
    metadata_prefix: str = METADATA_PREFIX

    def params(self) -> dict[str, str]:
        """The first request's parameters (later ones carry only the token)."""
        params = {"verb": "ListRecords", "metadataPrefix": self.metadata_prefix, "set": self.set,
                  "from": self.from_date, "until": self.until_date}
        return {k: v for k, v in params.items() if v is not None}

    def describe(self) -> str:
        """``set=cs from=2024-01-01`` (or ``every set, any date``)."""
        parts = [f"set={self.set}" if self.set else "every set",
                 *([f"from={self.from_date}"] if self.from_date else []),
                 *([f"until={self.until_date}"] if self.until_date else [])]
        if not (self.from_date or self.until_date):
            parts.append("any date")
        return " ".join(parts) + f" at {self.url}"


@dataclass
class HarvestStats:
    """What a harvest did, for its summary line."""

    written: int = 0  # records in the output, from earlier runs too
    malformed: int = 0  # records skipped: no title, no abstract, no id, or not arXiv's format
    deleted: int = 0  # records the server marks deleted (they have no metadata)
    repeated: int = 0  # records already written (a restarted list, or a record listed twice)
    pages: int = 0
    retries: int = 0
    restarts: int = 0  # lists started again after the server refused a saved token
    resumed_from: int = 0  # records already in OUT.partial when this run began
    complete: bool = False

    def summary(self) -> str:
        """One line for the end of ``charrnn download``: what was kept, and
        what was skipped and why, so a short output file is explained."""
        skipped = [f"{self.malformed:,} malformed record(s) skipped"]
        if self.deleted:
            skipped.append(f"{self.deleted:,} deleted")
        if self.repeated:
            skipped.append(f"{self.repeated:,} already written")
        resumed = f" (resumed after {self.resumed_from:,})" if self.resumed_from else ""
        return (f"{self.written:,} records{resumed} in {self.pages:,} page(s); " + ", ".join(skipped)
                + (f"; {self.retries:,} retried request(s)" if self.retries else ""))


@dataclass
class Pacer:
    """One request at a time, at least ``pause`` seconds apart. ``sleep``
    and ``clock`` are injectable so tests do not wait."""

    pause: float = PAUSE
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _last: float | None = field(default=None, repr=False)

    def wait_turn(self) -> None:
        """Sleep until ``pause`` seconds have passed since the last request:
        arXiv asks for at most one request every few seconds."""
        if self._last is not None:
            left = self.pause - (self.clock() - self._last)
            if left > 0:
                self.sleep(left)
        self._last = self.clock()


def partial_paths(out: str | os.PathLike) -> tuple[Path, Path]:
    """``OUT.partial`` (the records so far) and ``OUT.partial.json`` (where to go on)."""
    out = Path(out)
    return out.with_name(out.name + ".partial"), out.with_name(out.name + ".partial.json")


# --------------------------------------------------------------------- records
def record_from_xml(element) -> dict | str | None:
    """One ``<record>`` of a ListRecords page -> a record dict in the Kaggle
    snapshot's shape; ``"deleted"`` for a deleted record; None when it is
    malformed (no header, not in arXiv's format, no id, title or abstract)."""
    if element is None:
        return None
    header = element.find(f"{OAI}header")
    if header is None:
        return None
    if header.get("status") == "deleted":
        return "deleted"
    meta = element.find(f"{OAI}metadata/{ARXIV}arXiv")
    if meta is None:
        return None

    def text(tag: str) -> str:
        return (meta.findtext(f"{ARXIV}{tag}") or "").strip()

    identifier = text("id") or (header.findtext(f"{OAI}identifier") or "").strip().removeprefix("oai:arXiv.org:")
    title, abstract = meta.findtext(f"{ARXIV}title"), meta.findtext(f"{ARXIV}abstract")
    if not identifier or not (title or "").strip() or not (abstract or "").strip():
        return None
    record = {"id": identifier, "title": title, "abstract": abstract,  # kept as sent, like the snapshot's
              "categories": " ".join(text("categories").split())}
    for tag in ("created", "updated"):
        if text(tag):
            record[tag] = text(tag)
    datestamp = (header.findtext(f"{OAI}datestamp") or "").strip()
    if datestamp:
        record["datestamp"] = datestamp  # OAI's: the last change of the record's metadata
    return record


# ------------------------------------------------------------------------ pages
@dataclass
class Page:
    records: list  # elements of <record>; None for one too damaged to read
    token: str  # empty on the last page
    complete_list_size: int | None


def _retry_after(response, default: float) -> float:
    """Seconds the server asks us to wait: ``Retry-After`` as seconds or as
    an HTTP date; ``default`` when it says neither."""
    value = (response.headers.get("retry-after") or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class Harvester:
    """Fetches ListRecords pages one at a time, politely, through the
    ``oaipmh-scythe`` client; raises :class:`HarvestError` for anything
    the server refuses and :class:`BadToken` for an expired token."""

    def __init__(self, query: Query, *, pacer: Pacer | None = None, max_retries: int = MAX_RETRIES,
                 max_wait: float = MAX_WAIT, timeout: float = TIMEOUT):
        purpose = "`charrnn download --source oai`"
        self._scythe = require("oaipmh_scythe", "oai", purpose)  # the OAI-PMH client: session, errors
        self._httpx = require("httpx2", "oai", purpose)  # the HTTP library it is built on: its errors
        self._etree = require("lxml.etree", "oai", purpose)  # the XML parser it is built on
        self._damaged = False
        self.query = query
        self.pacer = pacer or Pacer()
        self.max_retries, self.max_wait = max_retries, max_wait
        # Retries are ours (see fetch): scythe's do not cap Retry-After and cannot be resumed.
        self.scythe = self._scythe.Scythe(query.url, http_config=self._scythe.HTTPConfig(
            user_agent=f"{USER_AGENT}/{_scythe_version()}", timeout=timeout))
        self.retries = 0

    def close(self) -> None:
        """Close the HTTP session, so its connections are not left open."""
        self.scythe.close()

    def fetch(self, token: str | None) -> Page:
        """The first page (``token`` None) or the one ``token`` names."""
        params = {"verb": "ListRecords", "resumptionToken": token} if token else self.query.params()
        problem = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.retries += 1
            self.pacer.wait_turn()
            try:
                response = self.scythe.client.get(self.query.url, params=params)
            except self._httpx.TransportError as e:  # refused, reset, cut mid-page, timed out
                problem = f"the connection failed ({type(e).__name__}: {e})"
                self.pacer.sleep(min(self.max_wait, max(self.pacer.pause, 2.0 ** attempt)))
                continue
            if response.status_code in RETRY_STATUS:
                wait = _retry_after(response, BUSY_WAIT if response.status_code in (429, 503) else 2.0 ** attempt)
                problem = f"the server answered HTTP {response.status_code}"
                if wait > self.max_wait:
                    raise HarvestError(f"{problem} and asks to wait {wait:.0f} s, more than {self.max_wait:.0f} s; "
                                       "try again later")
                self.pacer.sleep(wait)
                continue
            if response.status_code != 200:
                raise HarvestError(f"the server answered HTTP {response.status_code} to {response.url}; is --url "
                                   f"an OAI-PMH base URL (arXiv's is {OAI_URL})?")
            if b"OAI-PMH" not in response.content[:1000]:
                raise HarvestError(f"{response.url} did not answer in OAI-PMH; is --url an OAI-PMH base URL "
                                   f"(arXiv's is {OAI_URL})?")
            if not response.content.rstrip().endswith(b"OAI-PMH>"):  # cut short: no closing root element
                problem = "a page arrived cut short"
                continue
            return self._page(response, params)
        raise HarvestError(f"{problem}, {self.max_retries + 1} times in a row; try again later")

    def _page(self, response, params) -> Page:
        answer = self._scythe.OAIResponse(response, params=params)
        try:
            answer.raise_for_oaipmh_error()
        except self._scythe.BadResumptionToken as e:
            raise BadToken(str(e)) from None
        except self._scythe.NoRecordsMatch:
            raise HarvestError(f"no record matched {self.query.describe()}; widen the dates or check "
                               "the set") from None
        except self._scythe.OAIPMHException as e:
            code = type(e).__name__[0].lower() + type(e).__name__[1:]
            raise HarvestError(f"the server refused the request ({code}: {e or 'no details'}); check --set "
                               "(e.g. cs, math, physics:hep-th), --from/--until (YYYY-MM-DD) and --url") from None
        listing = self._listing(response.content)
        if listing is None:
            raise HarvestError(f"{response.url} did not answer with an OAI-PMH record list; is --url an OAI-PMH "
                               f"base URL (arXiv's is {OAI_URL})?")
        token = listing.find(f"{OAI}resumptionToken")
        size = token.get("completeListSize") if token is not None else None
        return Page(records=self._records(response.content, listing),
                    token=(token.text or "").strip() if token is not None else "",
                    complete_list_size=int(size) if size and size.isdigit() else None)

    def _listing(self, content: bytes):
        """The page's ``<ListRecords>`` element. A page that is whole but not
        well-formed (one damaged record) is read in lxml's recover mode,
        which repairs what it can; :meth:`_records` then reads its records
        one by one instead, because after an error that mode also drops
        entities (``&amp;``, ``&lt;``) in the records that follow."""
        etree = self._etree
        try:
            root = etree.fromstring(content, parser=etree.XMLParser(resolve_entities=False, no_network=True,
                                                                    huge_tree=True))
            self._damaged = False
        except etree.XMLSyntaxError:
            root = etree.fromstring(content, parser=etree.XMLParser(recover=True, resolve_entities=False,
                                                                    no_network=True, huge_tree=True))
            self._damaged = True
        return root.find(f"{OAI}ListRecords") if root is not None else None

    def _records(self, content: bytes, listing) -> list:
        """The ``<record>`` elements of a page; on a damaged page, each record
        parsed on its own (None for one that is not well-formed)."""
        if not self._damaged:
            return listing.findall(f"{OAI}record")
        etree, records = self._etree, []
        for chunk in re.findall(rb"<record>.*?</record>", content, flags=re.DOTALL):
            try:
                wrapper = etree.fromstring(b'<w xmlns="' + OAI[1:-1].encode() + b'">' + chunk + b"</w>",
                                           parser=etree.XMLParser(resolve_entities=False, no_network=True))
                records.append(wrapper[0])
            except etree.XMLSyntaxError:
                records.append(None)
        return records


class BadToken(Exception):
    """The server no longer knows the saved resumption token (they expire)."""


def _scythe_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("oaipmh-scythe")
    except PackageNotFoundError:
        return "unknown"


# ------------------------------------------------------------------- the state
def _load_state(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise HarvestError(f"{path}: is not a harvest state charrnn can read; add --restart to start over")
    return state


def _save_state(path: Path, query: Query, token: str | None, records: int, size: int,
                complete_list_size: int | None) -> None:
    state = {"format": STATE_FORMAT, "version": 1, "query": dataclasses.asdict(query), "token": token,
             "records": records, "bytes": size, "complete_list_size": complete_list_size}
    with writing(path), atomic_write(path, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=1)


def _recover_partial(partial: Path, state: dict | None) -> tuple[set[str], int]:
    """Bring ``OUT.partial`` back to its last complete page (what the state
    file says was on disk), or, without a usable state, to its last whole
    line (a torn last line is dropped). Returns the ids in it and its line
    count."""
    if not partial.exists():
        return set(), 0
    size = partial.stat().st_size
    keep = state.get("bytes") if state else None
    if not isinstance(keep, int) or keep > size:
        data = partial.read_bytes()
        keep = data.rfind(b"\n") + 1  # 0 when no line is whole
    if keep < size:
        os.truncate(partial, keep)
    ids, count = set(), 0
    with open(partial, "rb") as f:
        for line in f:
            count += 1
            try:
                ids.add(str(json.loads(line)["id"]))
            except (ValueError, KeyError, TypeError):
                pass
    return ids, count


# --------------------------------------------------------------------- harvest
def harvest(out: str | os.PathLike, query: Query = Query(), *, limit: int | None = None, restart: bool = False,
            progress: bool = True, pacer: Pacer | None = None, max_retries: int = MAX_RETRIES,
            max_wait: float = MAX_WAIT, timeout: float = TIMEOUT) -> HarvestStats:
    """Harvest ``query``'s records into the JSON-lines file ``out``.

    Records go to ``out.partial`` page by page; ``out`` appears (by a
    rename) only when the list is complete or ``limit`` records are
    written. Run again with the same query, an interrupted harvest resumes
    from its saved token; when the server no longer knows the token, the
    list starts again and the records already written are skipped.
    ``restart`` discards a saved harvest (and lets a finished ``out`` be
    replaced, once the new harvest is complete). Raises
    :class:`HarvestError` (the work so far kept) when the server refuses
    the request or keeps failing.
    """
    out = Path(out)
    partial, state_path = partial_paths(out)
    state = _saved_state(out, query, limit=limit, restart=restart)
    harvester = Harvester(query, pacer=pacer, max_retries=max_retries, max_wait=max_wait, timeout=timeout)
    out.parent.mkdir(parents=True, exist_ok=True)

    seen, written = _recover_partial(partial, state)
    stats = HarvestStats(written=written, resumed_from=written)
    token = state.get("token") if state else None
    size = state.get("complete_list_size") if state else None
    if state is None:  # before the first request, so a rerun knows the query even if nothing arrived
        _save_state(state_path, query, None, written, partial.stat().st_size if partial.exists() else 0, None)

    bar = tqdm(total=_total(size, limit), initial=written, unit=" records", disable=not progress,
               desc="harvesting", dynamic_ncols=True)
    try:
        with writing(partial), open(partial, "ab") as f:
            _harvest_pages(harvester, f, state_path, seen, stats, token, size, limit=limit, bar=bar)
        os.replace(partial, out)  # the list is complete, or the limit reached
        state_path.unlink(missing_ok=True)
        stats.complete = True
    except HarvestError as e:
        if stats.written:
            raise HarvestError(f"{e}. The {stats.written:,} records harvested so far are kept in {partial}: run "
                               "the same command again to resume") from None
        partial.unlink(missing_ok=True)  # nothing to resume
        state_path.unlink(missing_ok=True)
        raise
    finally:
        stats.retries = harvester.retries
        bar.close()
        harvester.close()
    return stats


def _saved_state(out: Path, query: Query, *, limit: int | None, restart: bool) -> dict | None:
    """The saved state to resume from (None to start afresh), after refusing,
    before any request is made, a harvest that would replace a finished
    ``out``, mix two queries' records in one ``OUT.partial``, or write into
    a folder: each is a mistake better reported than half done."""
    partial, state_path = partial_paths(out)
    if limit is not None and limit < 1:
        raise HarvestError(f"--limit must be at least 1, got {limit}")
    if restart:
        partial.unlink(missing_ok=True)
        state_path.unlink(missing_ok=True)
    state = _load_state(state_path)
    if state is None and not partial.exists() and out.exists():
        raise HarvestError(f"{out}: already exists (a finished harvest); add --restart to harvest again and "
                           "replace it when done, or choose another --out")
    if state is not None and state.get("query") != dataclasses.asdict(query):
        try:
            saved = Query(**state["query"]).describe()
        except TypeError:  # not a query this version writes
            saved = "another list"
        raise HarvestError(f"{partial}: holds an unfinished harvest of {saved}, not {query.describe()}; run that "
                           "command again to resume it, or add --restart to discard it and start over")
    if partial.exists() and partial.is_dir() or out.is_dir():
        raise HarvestError(f"{out}: is a folder; --out names the JSON-lines file to write")
    return state


def _harvest_pages(harvester: Harvester, f, state_path: Path, seen: set[str], stats: HarvestStats,
                   token: str | None, size: int | None, *, limit: int | None, bar) -> None:
    """Fetch and append pages until the list ends or ``limit`` records are
    written. Each page's records reach the disk before the state file
    names the next token, so an interruption at any point resumes without
    losing or repeating a page; ``stats.written`` is kept current because
    an error report tells how much was kept."""
    while not (limit is not None and stats.written >= limit):
        page = _fetch_page(harvester, token, stats)
        stats.pages += 1
        lines = _new_lines(page, seen, stats, limit)
        f.write("".join(lines).encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())  # the records are on disk before the state says so
        stats.written += len(lines)
        token, size = page.token, page.complete_list_size or size
        _save_state(state_path, harvester.query, token, stats.written, f.tell(), size)
        bar.total = _total(size, limit)
        bar.update(len(lines))
        if not token:
            break


def _fetch_page(harvester: Harvester, token: str | None, stats: HarvestStats) -> Page:
    """The page ``token`` names; when the server has forgotten the token
    (they expire), the list's first page instead, since records already
    written are skipped by id. Twice at most: a server that keeps refusing
    its own tokens would otherwise loop for ever."""
    while True:
        try:
            return harvester.fetch(token)
        except BadToken:
            if stats.restarts >= 2:
                raise HarvestError("the server refused its own resumption token again; try again "
                                   "later") from None
            stats.restarts += 1
            token = None  # the list again from its start; `seen` skips what is written


def _new_lines(page: Page, seen: set[str], stats: HarvestStats, limit: int | None) -> list[str]:
    """The JSON lines to append for ``page``: its readable records not yet
    written (a restarted list, or a record listed twice, would repeat
    them), up to ``limit`` in all; the rest are counted in ``stats`` so
    the summary can say why fewer records arrived than were listed."""
    lines = []
    for element in page.records:
        record = record_from_xml(element)
        if record == "deleted":
            stats.deleted += 1
        elif record is None:
            stats.malformed += 1
        elif record["id"] in seen:
            stats.repeated += 1
        elif limit is None or stats.written + len(lines) < limit:
            seen.add(record["id"])
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    return lines


def _total(size: int | None, limit: int | None) -> int | None:
    """The progress bar's total: the server's completeListSize, at most ``limit``."""
    if size is None:
        return limit
    return min(size, limit) if limit is not None else size
