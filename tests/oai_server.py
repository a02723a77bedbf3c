"""A small OAI-PMH server on localhost for the harvest tests (no network).

It answers ``ListRecords`` with ``metadataPrefix=arXiv`` in the format
arXiv's interface uses (OAI-PMH 2.0 envelope, records in the
``http://arxiv.org/OAI/arXiv/`` namespace), in pages joined by resumption
tokens that carry ``completeListSize``. Faults are scripted by request
number (:attr:`OAIServer.faults`): a 503 with Retry-After, a page cut off
mid-body, an error code. Every record is made up for these tests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape, quoteattr

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
ARXIV_NS = "http://arxiv.org/OAI/arXiv/"


@dataclass
class Paper:
    """A made-up paper, in the fields the arXiv format sends."""

    id: str
    title: str
    abstract: str
    categories: str
    set: str = "cs"
    created: str = "2024-03-01"
    updated: str | None = None
    datestamp: str = "2024-03-02"

    def expected(self) -> dict:
        """The JSON record the harvest should write for this paper."""
        record = {"id": self.id, "title": self.title, "abstract": self.abstract, "categories": self.categories,
                  "created": self.created}
        if self.updated:
            record["updated"] = self.updated
        record["datestamp"] = self.datestamp
        return record


def header_xml(identifier: str, datestamp: str, set_spec: str, deleted: bool = False) -> str:
    status = ' status="deleted"' if deleted else ""
    return (f"<header{status}><identifier>oai:arXiv.org:{escape(identifier)}</identifier>"
            f"<datestamp>{datestamp}</datestamp><setSpec>{escape(set_spec)}</setSpec></header>")


def record_xml(paper: Paper) -> str:
    """One ``<record>`` as arXiv's interface writes it (authors and license included)."""
    updated = f"<updated>{paper.updated}</updated>" if paper.updated else ""
    return (f"<record>{header_xml(paper.id, paper.datestamp, paper.set)}<metadata>"
            f'<arXiv xmlns="{ARXIV_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xsi:schemaLocation="{ARXIV_NS} http://arxiv.org/OAI/arXiv.xsd">'
            f"<id>{escape(paper.id)}</id><created>{paper.created}</created>{updated}"
            "<authors><author><keyname>Example</keyname><forenames>Ada</forenames></author></authors>"
            f"<title>{escape(paper.title)}</title><categories>{escape(paper.categories)}</categories>"
            "<license>http://creativecommons.org/licenses/by/4.0/</license>"
            f"<abstract>{escape(paper.abstract)}</abstract></arXiv></metadata></record>")


def made_up_papers(n: int, set_spec: str = "cs") -> list[Paper]:
    """``n`` invented papers with distinct ids, a line break and indent in
    the title and a leading space in the abstract (as arXiv sends them)."""
    topics = ["sparse attention", "lattice gases", "graph colouring", "tensor sketches", "spin glasses",
              "bandit feedback", "knot invariants", "optical lattices", "causal forests", "soliton trains"]
    return [Paper(id=f"2403.{10000 + i:05d}",
                  title=f"On {topics[i % len(topics)]}\n  in made-up setting {i}",
                  abstract=f"  We invent result {i} about {topics[i % len(topics)]} & show it holds "
                           f"for all n < {i + 2}.\nIt is not a real paper.\n",
                  categories="cs.LG stat.ML" if i % 2 else "cs.DS",
                  set=set_spec, updated="2024-03-05" if i % 3 == 0 else None)
            for i in range(n)]


@dataclass
class Fault:
    """What the server does instead of answering one request."""

    kind: str  # "busy" (503), "cut" (half a body, then close), "cut-unframed" (no Content-Length), "error"
    retry_after: str | None = None  # for "busy"
    code: str = ""  # for "error": an OAI error code


@dataclass
class OAIServer:
    """The served list: raw ``<record>`` strings, ``page_size`` to a page."""

    records: list[str] = field(default_factory=list)
    page_size: int = 3
    faults: dict[int, Fault] = field(default_factory=dict)  # request number (1-based) -> fault
    known_sets: tuple[str, ...] = ("cs", "math", "physics", "physics:hep-th")
    requests: list[dict] = field(default_factory=list)
    user_agents: list[str] = field(default_factory=list)
    tokens_epoch: int = 0  # tokens of an older epoch are refused (badResumptionToken)
    in_flight: int = 0
    max_in_flight: int = 0

    def expire_tokens(self) -> None:
        self.tokens_epoch += 1

    # ----------------------------------------------------------------- serving
    def start(self) -> str:
        """Serve in a thread; returns the base URL."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                server.handle(self)

            def log_message(self, *args):  # quiet
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01},
                                        daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/oai"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            params = {k: v[0] for k, v in parse_qs(urlparse(request.path).query).items()}
            self.requests.append(params)
            self.user_agents.append(request.headers.get("User-Agent", ""))
            number = len(self.requests)
        try:
            fault = self.faults.get(number)
            if fault is not None and fault.kind == "busy":
                self._send(request, 503, b"<html><body>Too many requests, slow down</body></html>",
                           {"Retry-After": fault.retry_after} if fault.retry_after is not None else {})
            elif fault is not None and fault.kind == "error":
                self._send(request, 200, self._error(fault.code, "scripted error").encode())
            elif fault is not None and fault.kind.startswith("cut"):
                body = self.answer(params).encode()
                request.send_response(200)
                request.send_header("Content-Type", "text/xml; charset=utf-8")
                if fault.kind == "cut":
                    request.send_header("Content-Length", str(len(body)))
                request.end_headers()
                request.wfile.write(body[: len(body) // 2])
                request.wfile.flush()
                request.close_connection = True
            else:
                self._send(request, 200, self.answer(params).encode())
        finally:
            with self._lock:
                self.in_flight -= 1

    @staticmethod
    def _send(request, status: int, body: bytes, headers: dict | None = None) -> None:
        request.send_response(status)
        request.send_header("Content-Type", "text/xml; charset=utf-8")
        request.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            request.send_header(key, value)
        request.end_headers()
        request.wfile.write(body)

    # ------------------------------------------------------------------ answers
    def _envelope(self, inner: str, params: dict) -> str:
        attributes = " ".join(f"{k}={quoteattr(v)}" for k, v in sorted(params.items()))
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<OAI-PMH xmlns="{OAI_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                f'xsi:schemaLocation="{OAI_NS} http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">\n'
                "<responseDate>2024-04-01T12:00:00Z</responseDate>\n"
                f"<request {attributes}>http://localhost/oai</request>\n{inner}\n</OAI-PMH>\n")

    def _error(self, code: str, text: str, params: dict | None = None) -> str:
        return self._envelope(f'<error code="{code}">{escape(text)}</error>', params or {})

    def _selected(self, params: dict) -> list[str]:
        """The records the list holds for this set and date range."""
        chosen = []
        for raw in self.records:
            set_spec = raw.split("<setSpec>", 1)[1].split("</setSpec>", 1)[0] if "<setSpec>" in raw else ""
            stamp = raw.split("<datestamp>", 1)[1][:10] if "<datestamp>" in raw else ""
            if params.get("set") and not (set_spec == params["set"] or set_spec.startswith(params["set"] + ":")):
                continue
            if params.get("from") and stamp < params["from"] or params.get("until") and stamp > params["until"]:
                continue
            chosen.append(raw)
        return chosen

    def answer(self, params: dict) -> str:
        if params.get("verb") != "ListRecords":
            return self._error("badVerb", "only ListRecords here", params)
        if "resumptionToken" in params:
            try:
                epoch, set_spec, start, end, offset = params["resumptionToken"].split("|")
                offset = int(offset)
            except ValueError:
                return self._error("badResumptionToken", "this token is not one of ours", params)
            if int(epoch) != self.tokens_epoch:
                return self._error("badResumptionToken", "the token has expired", params)
            query = {k: v for k, v in (("set", set_spec), ("from", start), ("until", end)) if v}
        else:
            if params.get("metadataPrefix") != "arXiv":
                return self._error("cannotDisseminateFormat", "only the arXiv format here", params)
            if params.get("set") and params["set"] not in self.known_sets:
                return self._error("badArgument", f"unknown set {params['set']}", params)
            query, offset = params, 0
        chosen = self._selected(query)
        if not chosen:
            return self._error("noRecordsMatch", "no records match", params)
        page = chosen[offset: offset + self.page_size]
        following = offset + self.page_size
        size = f'completeListSize="{len(chosen)}" cursor="{offset}"'
        if following < len(chosen):
            token = "|".join([str(self.tokens_epoch), query.get("set", ""), query.get("from", ""),
                              query.get("until", ""), str(following)])
            token_xml = f"<resumptionToken {size}>{escape(token)}</resumptionToken>"
        else:
            token_xml = f"<resumptionToken {size}/>"  # empty: the list is complete
        return self._envelope("<ListRecords>" + "".join(page) + token_xml + "</ListRecords>", params)
