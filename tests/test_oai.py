"""`charrnn download --source oai` (charrnn.scale.harvest) against a local
OAI-PMH server (tests/oai_server.py): no network, no waiting. Every record
is made up."""

from __future__ import annotations

import json
import sys

import pytest

pytest.importorskip("oaipmh_scythe")

from oai_server import Fault, OAIServer, Paper, header_xml, made_up_papers, record_xml  # noqa: E402

from charrnn.cli import main  # noqa: E402
from charrnn.data import format_record, load_records  # noqa: E402
from charrnn.scale.harvest import HarvestError, Pacer, Query, harvest, partial_paths  # noqa: E402

PAPERS = made_up_papers(10)  # 4 pages of 3


@pytest.fixture
def server():
    server = OAIServer(records=[record_xml(p) for p in PAPERS], page_size=3)
    server.url = server.start()
    yield server
    server.stop()


class FakeTime:
    """An injected sleep: records the waits instead of waiting."""

    def __init__(self):
        self.sleeps = []

    def pacer(self, pause: float = 0.0) -> Pacer:
        return Pacer(pause=pause, sleep=self.sleeps.append)


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run(server, out, fake=None, **kwargs):
    fake = fake or FakeTime()
    query = kwargs.pop("query", Query(url=server.url, set="cs"))
    return harvest(out, query, progress=False, pacer=fake.pacer(), **kwargs)


# ------------------------------------------------------------------ a full harvest
def test_full_harvest_writes_every_record_in_order(server, tmp_path):
    out = tmp_path / "oai.jsonl"
    stats = run(server, out)
    assert read_jsonl(out) == [p.expected() for p in PAPERS]
    assert stats.complete and stats.written == 10 and stats.pages == 4 and stats.malformed == 0
    assert not any(p.exists() for p in partial_paths(out))
    assert server.requests[0] == {"verb": "ListRecords", "metadataPrefix": "arXiv", "set": "cs"}
    assert all(set(r) == {"verb", "resumptionToken"} for r in server.requests[1:])
    assert server.max_in_flight == 1  # one request at a time
    assert all(ua.startswith("charrnn") for ua in server.user_agents)


def test_output_reads_as_a_corpus(server, tmp_path):
    """prepare and train --data read it unchanged: load_records keeps every
    record and format_record makes "title ; abstract" with whitespace folded."""
    out = tmp_path / "oai.jsonl"
    run(server, out)
    records = load_records(out)
    assert [r["id"] for r in records] == [p.id for p in PAPERS]
    assert format_record(records[0]) == ("On sparse attention in made-up setting 0 ; We invent result 0 about "
                                         "sparse attention & show it holds for all n < 2. It is not a real paper.")
    assert load_records(out, categories=["stat"]) == [r for r in records if "stat.ML" in r["categories"]]


def test_pause_between_requests(server, tmp_path):
    fake = FakeTime()
    clock = iter(range(0, 1000, 1)).__next__  # each request one "second" after the last
    harvest(tmp_path / "o.jsonl", Query(url=server.url), progress=False,
            pacer=Pacer(pause=3.0, sleep=fake.sleeps.append, clock=clock))
    assert len(fake.sleeps) == 3 and all(s > 0 for s in fake.sleeps)  # before pages 2, 3 and 4


def test_malformed_and_deleted_records_are_skipped_and_counted(server, tmp_path):
    good = made_up_papers(4)
    no_abstract = record_xml(Paper("2403.20001", "A title", "", "cs.AI"))
    blank_title = record_xml(Paper("2403.20002", "   ", "An abstract.", "cs.AI"))
    broken_xml = record_xml(Paper("2403.20003", "Broken", "An abstract.", "cs.AI")).replace(
        "</abstract>", "</abstrct>")
    other_format = (f"<record>{header_xml('2403.20004', '2024-03-02', 'cs')}<metadata><dc xmlns="
                    '"http://purl.org/dc/elements/1.1/"><title>Dublin Core</title></dc></metadata></record>')
    deleted = f"<record>{header_xml('2403.20005', '2024-03-02', 'cs', deleted=True)}</record>"
    server.records = [record_xml(good[0]), no_abstract, blank_title, record_xml(good[1]), broken_xml,
                      record_xml(good[2]), other_format, deleted, record_xml(good[3])]
    out = tmp_path / "o.jsonl"
    stats = run(server, out)
    # the records after the damaged one keep their "&" and "<" (lxml's recover mode would drop them)
    assert read_jsonl(out) == [p.expected() for p in good]
    assert (stats.malformed, stats.deleted) == (4, 1)
    assert "4 malformed record(s) skipped, 1 deleted" in stats.summary()


# --------------------------------------------------------------------- politeness
def test_rate_limited_harvest_waits_as_told(server, tmp_path):
    server.faults = {2: Fault("busy", retry_after="1"), 3: Fault("busy", retry_after="0")}
    fake, out = FakeTime(), tmp_path / "o.jsonl"
    stats = run(server, out, fake)
    assert read_jsonl(out) == [p.expected() for p in PAPERS]
    assert fake.sleeps == [1.0, 0.0] and stats.retries == 2
    assert server.requests[1] == server.requests[2] == server.requests[3]  # the same page asked again


def test_a_wait_longer_than_the_cap_stops_and_keeps_the_work(server, tmp_path):
    server.faults = {3: Fault("busy", retry_after="86400")}
    fake, out = FakeTime(), tmp_path / "o.jsonl"
    with pytest.raises(HarvestError, match=r"asks to wait 86400 s.*6 records .* kept .*run the same command"):
        run(server, out, fake)
    assert fake.sleeps == [] and not out.exists()
    server.faults = {}
    stats = run(server, out)
    assert read_jsonl(out) == [p.expected() for p in PAPERS] and stats.resumed_from == 6


def test_retries_are_bounded(server, tmp_path):
    server.faults = {n: Fault("busy") for n in range(2, 10)}  # no Retry-After: the default wait
    fake = FakeTime()
    with pytest.raises(HarvestError, match="HTTP 503, 3 times in a row"):
        run(server, tmp_path / "o.jsonl", fake, max_retries=2)
    assert fake.sleeps == [30.0, 30.0, 30.0] and len(server.requests) == 4


@pytest.mark.parametrize("kind", ["cut", "cut-unframed"])
def test_a_page_cut_mid_body_is_fetched_again(server, tmp_path, kind):
    """With or without Content-Length, half a page is never read as the end of the list."""
    server.faults = {2: Fault(kind)}
    out = tmp_path / "o.jsonl"
    stats = run(server, out)
    assert read_jsonl(out) == [p.expected() for p in PAPERS] and stats.retries == 1


# ------------------------------------------------------------------------ resuming
class Interrupt(Exception):
    pass


def interrupting_pacer(at_request: int, exc=KeyboardInterrupt) -> Pacer:
    """A pacer that raises (as Ctrl-C would) before request ``at_request``."""
    count = [0]

    def sleep(_):
        pass

    pacer = Pacer(pause=0.0, sleep=sleep)
    original = pacer.wait_turn

    def wait_turn():
        count[0] += 1
        if count[0] == at_request:
            raise exc()
        original()

    pacer.wait_turn = wait_turn
    return pacer


def interrupt_before_request(server, out, at_request: int) -> None:
    """A harvest of set cs stopped by Ctrl-C before request ``at_request``."""
    with pytest.raises(KeyboardInterrupt):
        harvest(out, Query(url=server.url, set="cs"), progress=False, pacer=interrupting_pacer(at_request))


def test_interrupted_harvest_resumes_without_loss_or_duplicates(server, tmp_path):
    out = tmp_path / "o.jsonl"
    partial, state = partial_paths(out)
    interrupt_before_request(server, out, 3)
    assert not out.exists()  # nothing at OUT looks complete
    assert len(read_jsonl(partial)) == 6 and json.loads(state.read_text())["token"]
    stats = run(server, out)
    assert read_jsonl(out) == [p.expected() for p in PAPERS]
    assert stats.resumed_from == 6 and stats.pages == 2 and stats.restarts == 0
    assert server.requests[-2]["resumptionToken"]  # it went on from the saved token
    assert not partial.exists() and not state.exists()


def test_a_torn_last_line_and_unsaved_records_are_dropped_on_resume(server, tmp_path):
    """A crash while writing: the partial file holds more than its state says
    (a whole page not yet recorded, and half a line). Resuming goes back to
    the last recorded page."""
    out = tmp_path / "o.jsonl"
    partial, _ = partial_paths(out)
    interrupt_before_request(server, out, 2)
    with open(partial, "a", encoding="utf-8") as f:
        f.write(json.dumps(PAPERS[3].expected()) + "\n" + '{"id": "2403.1000')
    run(server, out)
    assert read_jsonl(out) == [p.expected() for p in PAPERS]


def test_an_expired_token_restarts_the_list_and_skips_what_is_written(server, tmp_path):
    out = tmp_path / "o.jsonl"
    interrupt_before_request(server, out, 3)
    server.expire_tokens()  # the saved token is now refused: badResumptionToken
    stats = run(server, out)
    assert read_jsonl(out) == [p.expected() for p in PAPERS]
    assert stats.restarts == 1 and stats.repeated == 6
    assert "resumptionToken" not in server.requests[-4]  # the list asked again from its start


def test_a_lost_state_file_still_resumes_from_the_records(server, tmp_path):
    out = tmp_path / "o.jsonl"
    partial, state = partial_paths(out)
    interrupt_before_request(server, out, 3)
    state.unlink()
    with open(partial, "a", encoding="utf-8") as f:
        f.write('{"id": "torn')
    run(server, out)
    assert read_jsonl(out) == [p.expected() for p in PAPERS]


def test_other_parameters_refuse_to_resume_until_restart(server, tmp_path):
    out = tmp_path / "o.jsonl"
    interrupt_before_request(server, out, 2)
    with pytest.raises(HarvestError, match=r"unfinished harvest of set=cs .*not set=math.*--restart"):
        run(server, out, query=Query(url=server.url, set="math"))
    server.records = [record_xml(p) for p in made_up_papers(2, set_spec="math")]
    stats = run(server, out, query=Query(url=server.url, set="math"), restart=True)
    assert stats.written == 2 and [r["id"] for r in read_jsonl(out)] == [p.id for p in made_up_papers(2)]


def test_a_finished_output_is_not_harvested_over(server, tmp_path):
    out = tmp_path / "o.jsonl"
    run(server, out)
    with pytest.raises(HarvestError, match="already exists.*--restart"):
        run(server, out)


# --------------------------------------------------------------------------- limit
def test_limit_stops_mid_page_and_finishes_the_file(server, tmp_path):
    out = tmp_path / "o.jsonl"
    stats = run(server, out, limit=7)
    assert read_jsonl(out) == [p.expected() for p in PAPERS[:7]]
    assert stats.complete and stats.pages == 3 and not partial_paths(out)[1].exists()


# -------------------------------------------------------------------------- errors
@pytest.mark.parametrize("query,message", [
    ({"set": "math"}, "no record matched set=math"),
    ({"set": "cs", "from_date": "2030-01-01"}, "no record matched set=cs from=2030-01-01"),
    ({"set": "nonsense"}, r"refused the request \(badArgument: unknown set nonsense\)"),
])
def test_oai_errors_are_one_clear_line(server, tmp_path, query, message):
    out = tmp_path / "o.jsonl"
    with pytest.raises(HarvestError, match=message):
        run(server, out, query=Query(url=server.url, **query))
    assert not any(p.exists() for p in (out, *partial_paths(out)))  # nothing to resume


# ----------------------------------------------------------------------------- CLI
def cli(server, out, *extra) -> list[str]:
    return ["download", "--source", "oai", "--url", server.url, "--set", "cs", "--out", str(out),
            "--no-progress", "--pause", "0", *extra]


def test_cli_end_to_end(server, tmp_path, capsys):
    out = tmp_path / "data" / "oai-cs.jsonl"
    assert main(cli(server, out, "--from", "2024-01-01", "--until", "2024-12-31")) == 0
    printed = capsys.readouterr().out
    assert "10 records in 4 page(s); 0 malformed record(s) skipped" in printed and f"wrote {out}" in printed
    assert read_jsonl(out) == [p.expected() for p in PAPERS]
    assert server.requests[0]["from"] == "2024-01-01" and server.requests[0]["until"] == "2024-12-31"


def test_cli_limit_and_ctrl_c(server, tmp_path, capsys, monkeypatch):
    out = tmp_path / "o.jsonl"
    import charrnn.cli.download as command
    monkeypatch.setattr(command, "Pacer", lambda pause: interrupting_pacer(2))
    assert main(cli(server, out, "--limit", "5")) == 130
    assert "run the same command again to resume" in capsys.readouterr().err and not out.exists()
    monkeypatch.undo()
    assert main(cli(server, out, "--limit", "5")) == 0
    assert read_jsonl(out) == [p.expected() for p in PAPERS[:5]]


@pytest.mark.parametrize("argv,fragment", [
    (["--set", "math"], "no record matched set=math"),
    (["--from", "2024-05-01", "--until", "2024-04-01"], "--from 2024-05-01 is after --until 2024-04-01"),
])
def test_cli_errors_are_one_line(server, tmp_path, capsys, argv, fragment):
    assert main(cli(server, tmp_path / "o.jsonl", *argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("charrnn: error: ") and fragment in err and len(err.strip().splitlines()) == 1


def test_cli_needs_out_and_keeps_kaggle_flags_apart(tmp_path, capsys):
    assert main(["download", "--source", "oai"]) == 2
    assert "--source oai needs --out" in capsys.readouterr().err
    assert main(["download", "--set", "cs"]) == 2  # the default source is Kaggle
    assert "--set: for --source oai" in capsys.readouterr().err


def test_cli_bad_date_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        main(["download", "--source", "oai", "--out", "x.jsonl", "--from", "2024-13-01"])
    assert "not a date YYYY-MM-DD" in capsys.readouterr().err


def test_missing_client_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "oaipmh_scythe", None)  # as if not installed
    assert main(["download", "--source", "oai", "--url", "http://127.0.0.1:9/oai", "--out",
                 str(tmp_path / "o.jsonl"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'charrnn-course[oai]'" in err and len(err.strip().splitlines()) == 1
