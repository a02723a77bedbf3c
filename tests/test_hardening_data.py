"""Issue 14, the data half: nothing lost, nothing hangs, one line for every
bad input. Readers with a line-length cap, damaged zip members and JSON,
prepare's own input and its overwrite, lock and permissions, damaged
prepared directories, and a capped validation. Every input is invented
under tmp_path."""

from __future__ import annotations

import gzip
import json
import os
import signal
import stat
import tracemalloc
import warnings
import zipfile
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from helpers import TINY_RECORDS, to_jsonl_bytes

from charrnn import batches, data, files
from charrnn.batches import EncodedCorpus
from charrnn.cli import main
from charrnn.config import DataConfig
from charrnn.data import ReadStats, iter_records, load_records
from charrnn.errors import DataError
from charrnn.scale import prepared
from charrnn.scale.prepared import open_prepared, prepare_dataset
from charrnn.vocab import CharVocab


@contextmanager
def time_limit(seconds: int):
    """Fail instead of hanging (no pytest-timeout here)."""
    def stop(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")
    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("charrnn: error: "), err
    return lines[0]


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(to_jsonl_bytes(TINY_RECORDS))
    return path


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".partial-" in p.name)


# ------------------------------------------------------- 9: line-length cap
LONG = 5 * 1024 * 1024


def with_long_line(kind: str, tmp_path, filler: bytes = b"x"):
    """Two good records around one 5 MB line, as .jsonl, .gz or .zip."""
    good = to_jsonl_bytes(TINY_RECORDS[:1])
    body = good + b'{"title": "' + filler * LONG + b'"}\n' + to_jsonl_bytes(TINY_RECORDS[1:2])
    if kind == "jsonl":
        path = tmp_path / "long.jsonl"
        path.write_bytes(body)
    elif kind == "gz":
        path = tmp_path / "long.jsonl.gz"
        path.write_bytes(gzip.compress(body))
    else:
        path = tmp_path / "long.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("arxiv.json", body)
    return path


@pytest.mark.parametrize("kind", ["jsonl", "gz", "zip"])
def test_a_line_over_the_cap_is_skipped_in_bounded_memory(kind, tmp_path):
    path = with_long_line(kind, tmp_path)
    stats = ReadStats()
    tracemalloc.start()
    try:
        records = list(iter_records(path, stats=stats))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [r["id"] for r in records] == [TINY_RECORDS[0]["id"], TINY_RECORDS[1]["id"]]
    assert stats.too_long == 1 and stats.malformed == 0
    assert "1 line(s) over 1 MB skipped (first at line 2)" in stats.summary()
    assert peak < 4 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a 5 MB line"


def test_the_cap_is_a_module_constant_in_bytes():
    assert data.MAX_LINE_BYTES == 1024 * 1024


class Zeros:
    """A file-like object of NUL bytes without end, like /dev/zero."""

    def __init__(self):
        self.block = bytes(1 << 20)
        self.served = 0

    def read(self, n=-1):
        self.served += 1
        return self.block if n < 0 or n >= len(self.block) else self.block[:n]

    def readline(self, n=-1):
        return self.read(n)


def test_an_endless_line_ends_with_one_error_in_bounded_memory():
    stream = Zeros()
    tracemalloc.start()
    try:
        with time_limit(60), pytest.raises(DataError, match="no line break"):
            for _ in data.bounded_lines(stream, "zeros"):
                pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


def test_dev_zero_is_one_line_error(tmp_path, capsys):
    with time_limit(60):
        assert main(["prepare", "/dev/zero", "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "/dev/zero" in one_error_line(capsys)


def test_prepare_reports_long_lines(tmp_path, capsys):
    path = with_long_line("jsonl", tmp_path)
    assert main(["prepare", str(path), "--out", str(tmp_path / "p"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "1 line(s) over 1 MB skipped" in out
    assert json.loads((tmp_path / "p" / "meta.json").read_text())["long_lines"] == 1


def test_lines_split_like_before(tmp_path):
    """Blank lines, CRLF, a last line without newline, lines that straddle
    the read blocks: the records and line numbers of the old reader."""
    lines = [json.dumps(r) for r in TINY_RECORDS] + ["", "not json"]
    body = ("\r\n".join(lines[:5]) + "\n\n" + "\n".join(lines[5:])).encode()
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(body)
    stats = ReadStats()
    assert len(list(iter_records(path, stats=stats))) == len(TINY_RECORDS)
    assert stats.malformed == 1 and stats.first_bad_line == len(lines) + 1
    assert stats.bytes_read == len(body)
    small = list(data.bounded_lines(open(path, "rb"), "p", max_bytes=64 * 1024, chunk=7))
    assert small == body.split(b"\n")  # the last line has no line break


# ------------------------------------------------- 10: deep JSON, zip members
def test_deeply_nested_line_is_malformed_not_a_recursion_error(tmp_path):
    deep = '{"title": ' + "[" * 100_000 + "]" * 100_000 + ', "abstract": "x"}'
    path = tmp_path / "deep.jsonl"
    path.write_bytes(to_jsonl_bytes(TINY_RECORDS[:2] + [deep]))
    stats = ReadStats()
    assert len(list(iter_records(path, stats=stats))) == 2
    assert stats.malformed == 1 and stats.first_bad_line == 3


def test_deeply_nested_array_file_is_one_data_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataError, match="deep.json"):
        load_records(path)


def damaged_zip(tmp_path, flag_bits: int = 0, method: int | None = None):
    path = tmp_path / "arxiv.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("arxiv-metadata-oai-snapshot.json", to_jsonl_bytes(TINY_RECORDS))
    blob = bytearray(path.read_bytes())
    central = blob.rindex(b"PK\x01\x02")
    blob[central + 8] |= flag_bits
    if method is not None:
        blob[central + 10:central + 12] = method.to_bytes(2, "little")
    path.write_bytes(bytes(blob))
    return path


@pytest.mark.parametrize("damage, why", [({"flag_bits": 1}, "encrypted"),
                                         ({"method": 9}, "compression method 9")])
def test_unreadable_zip_member_is_one_error_naming_it(tmp_path, capsys, damage, why):
    path = damaged_zip(tmp_path, **damage)
    with pytest.raises(DataError, match=f"arxiv-metadata-oai-snapshot.json.*{why}"):
        load_records(path)
    assert main(["prepare", str(path), "--out", str(tmp_path / "p"), "--no-progress"]) == 2
    assert why in one_error_line(capsys)


# ------------------------------------------------ 20: unreadable, disk full
def test_unreadable_file_says_permission_denied(source, monkeypatch):
    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(data, "open", denied, raising=False)
    with pytest.raises(DataError, match="permission denied") as info:
        load_records(source)
    assert "line 0" not in str(info.value)


def test_full_disk_while_preparing_names_the_file(source, tmp_path, monkeypatch, capsys):
    real = prepared.write._create

    def full(path):
        return open("/dev/full", "wb") if path.name == "train.bin" else real(path)

    monkeypatch.setattr(prepared.write, "_create", full)
    assert main(["prepare", str(source), "--out", str(tmp_path / "p"), "--no-progress"]) == 2
    line = one_error_line(capsys)
    assert "no space left on device while writing" in line and "train.bin" in line
    assert not (tmp_path / "p").exists() and leftovers(tmp_path) == []


def test_full_disk_while_writing_a_sample(source, tmp_path, monkeypatch):
    real_open = open

    def full(path, mode="r", *args, **kwargs):
        if "w" in mode or "x" in mode:
            return real_open("/dev/full", mode.replace("x", "w"), *args, **kwargs)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(files, "open", full, raising=False)  # atomic_write's open
    with pytest.raises(DataError, match="no space left on device while writing .*out.jsonl"):
        data.write_records(TINY_RECORDS, tmp_path / "out.jsonl")
    assert list(tmp_path.iterdir()) == [source]


# ------------------------------------------------------- 3: output = input
def test_sample_refuses_to_write_over_its_input(source, capsys):
    before = source.read_bytes()
    assert main(["prepare", str(source), "--out", str(source), "--limit", "3"]) == 2
    assert "is the input" in one_error_line(capsys)
    assert source.read_bytes() == before


def test_sample_refuses_a_link_to_its_input(source, tmp_path, capsys):
    link = tmp_path / "link.jsonl"
    link.symlink_to(source)
    before = source.read_bytes()
    assert main(["prepare", str(link), "--out", str(source), "--limit", "3"]) == 2
    assert "is the input" in one_error_line(capsys)
    assert source.read_bytes() == before


def test_prepared_directory_refuses_to_replace_a_folder_holding_its_input(tmp_path):
    out = tmp_path / "p"
    prepare_dataset(to_file(tmp_path / "a.jsonl"), out, progress=False)
    inside = to_file(out / "inside.jsonl")
    with pytest.raises(DataError, match="holds the input"):
        prepare_dataset(inside, out, progress=False, overwrite=True)
    assert inside.exists() and (out / "meta.json").exists()


def to_file(path, records=TINY_RECORDS):
    path.write_bytes(to_jsonl_bytes(records))
    return path


# ------------------------------------------- 5: an overwrite killed anywhere
class Killed(BaseException):
    """Stands for SIGKILL: once raised, nothing else runs (no clean-up)."""


def kill_at(monkeypatch, step: str, number: int):
    """Let the first ``number - 1`` renames (or removals, by ``step``) run,
    then die at that one: it and every later rename or removal (clean-up,
    roll-back) raise :class:`Killed`."""
    state = {"rename": 0, "remove": 0, "dead": False}
    real = {"rename": prepared.transaction._rename, "remove": prepared.transaction._remove_tree}

    def step_of(kind):
        def run(*args):
            state[kind] += 1
            if state["dead"] or (kind == step and state[kind] >= number):
                state["dead"] = True
                raise Killed
            real[kind](*args)
        return run

    monkeypatch.setattr(prepared.transaction, "_rename", step_of("rename"))
    monkeypatch.setattr(prepared.transaction, "_remove_tree", step_of("remove"))
    return state


def records_at(out) -> int:
    corpus, _, meta = open_prepared(out)
    return meta["records"]


@pytest.mark.parametrize("step, number", [("rename", 1), ("rename", 2), ("remove", 1)],
                         ids=["before moving the old aside", "between the renames", "deleting the old"])
def test_an_overwrite_killed_anywhere_keeps_a_complete_dataset(tmp_path, monkeypatch, step, number):
    src, out = to_file(tmp_path / "a.jsonl"), tmp_path / "p"
    prepare_dataset(src, out, limit=4, progress=False)
    with monkeypatch.context() as m:
        state = kill_at(m, step, number)
        with pytest.raises(Killed):
            prepare_dataset(src, out, progress=False, overwrite=True)
        assert state["dead"]
    # the next run completes the overwrite (the new dataset was finished), says
    # so, and deletes only what is incomplete or replaced
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DataError, match="already there"):
            prepare_dataset(src, out, limit=2, progress=False)
    assert (step == "rename") == any("interrupted prepare" in str(w.message) for w in caught)
    assert records_at(out) == len(TINY_RECORDS)
    assert leftovers(tmp_path) == []


def test_the_next_run_restores_a_finished_dataset_left_aside(tmp_path):
    src, out = to_file(tmp_path / "a.jsonl"), tmp_path / "p"
    prepare_dataset(src, out, limit=5, progress=False)
    out.rename(tmp_path / ".p.partial-old-x1")                # killed between the renames:
    prepare_dataset(src, tmp_path / "q", progress=False)       # old aside, new finished
    (tmp_path / "q").rename(tmp_path / ".p.partial-x2")
    (tmp_path / ".p.partial-x3").mkdir()                       # an unfinished one
    (tmp_path / ".p.partial-x3" / "train.provisional").write_bytes(b"\0" * 8)
    with pytest.warns(UserWarning, match="interrupted"):
        meta = prepare_dataset(src, out, limit=3, progress=False, overwrite=True)
    assert meta["records"] == 3 and records_at(out) == 3 and leftovers(tmp_path) == []


def test_a_dataset_left_aside_alone_is_restored(tmp_path):
    src, out = to_file(tmp_path / "a.jsonl"), tmp_path / "p"
    prepare_dataset(src, out, limit=5, progress=False)
    out.rename(tmp_path / ".p.partial-old-x1")
    with pytest.raises(DataError, match="interrupted prepare left a dataset beside it"):
        open_prepared(out)  # training says where it is
    with pytest.warns(UserWarning, match="restored") as caught, pytest.raises(DataError, match="already there"):
        prepare_dataset(src, out, progress=False)
    assert records_at(out) == 5 and leftovers(tmp_path) == []
    assert caught[0].filename == __file__  # the warning points at the caller, not inside charrnn


def test_a_half_deleted_old_copy_is_removed(tmp_path):
    src, out = to_file(tmp_path / "a.jsonl"), tmp_path / "p"
    prepare_dataset(src, out, limit=5, progress=False)
    half = tmp_path / ".p.partial-old-x1"
    half.mkdir()
    (half / "meta.json").write_bytes((out / "meta.json").read_bytes())
    prepare_dataset(src, out, progress=False, overwrite=True)
    assert records_at(out) == len(TINY_RECORDS) and leftovers(tmp_path) == []


# ------------------------------------------------------------ 19: the lock
def test_a_second_prepare_on_the_same_out_fails_at_once(tmp_path, monkeypatch):
    src, out = to_file(tmp_path / "a.jsonl"), tmp_path / "p"
    real_parse, seen = data.parse_record, []

    def parse_and_race(line):
        if not seen:
            seen.append(1)
            with pytest.raises(DataError, match=f"another prepare .*process {os.getpid()}"):
                prepare_dataset(src, out, progress=False)
        return real_parse(line)

    monkeypatch.setattr(data, "parse_record", parse_and_race)
    assert prepare_dataset(src, out, progress=False)["records"] == len(TINY_RECORDS)
    assert seen


def test_the_lock_is_released_after_an_error(tmp_path):
    src, out = to_file(tmp_path / "a.jsonl"), tmp_path / "p"
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="no usable record"):
        prepare_dataset(empty, out, progress=False)
    assert prepare_dataset(src, out, progress=False)["records"] == len(TINY_RECORDS)


# -------------------------------------------------------- 21: permissions
def test_prepared_directory_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        prepare_dataset(to_file(tmp_path / "a.jsonl"), tmp_path / "p", progress=False)
        data.write_records(TINY_RECORDS, tmp_path / "s.jsonl")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "p").stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "p").iterdir()} == {0o644}
    assert stat.S_IMODE((tmp_path / "s.jsonl").stat().st_mode) == 0o644


# -------------------------------------------- 14: damaged prepared folders
def _meta(out):
    return json.loads((out / "meta.json").read_text())


def _set_meta(out, change):
    meta = _meta(out)
    change(meta)
    (out / "meta.json").write_text(json.dumps(meta))


def _write_offsets(out, change):
    offsets = np.load(out / "train.offsets.npy")
    np.save(out / "train.offsets.npy", change(offsets))


def _poke_id(out, value):
    ids = bytearray((out / "train.bin").read_bytes())
    ids[3] = value
    (out / "train.bin").write_bytes(bytes(ids))


DAMAGE = {
    "splits missing": (lambda o: _set_meta(o, lambda m: m.pop("splits")), "meta.json.*splits"),
    "dtype missing": (lambda o: _set_meta(o, lambda m: m.pop("dtype")), "meta.json.*dtype"),
    "dtype float": (lambda o: _set_meta(o, lambda m: m.update(dtype="float64")), "meta.json.*dtype"),
    "vocab_size missing": (lambda o: _set_meta(o, lambda m: m.pop("vocab_size")), "meta.json.*vocab_size"),
    "records a string": (lambda o: _set_meta(o, lambda m: m["splits"]["train"].update(records="7")),
                         "meta.json.*records"),
    "split missing": (lambda o: _set_meta(o, lambda m: m["splits"].pop("train")), "meta.json.*train"),
    "ids outside": (lambda o: _set_meta(o, lambda m: m["splits"]["train"].update(ids="../a.jsonl")),
                    "meta.json.*ids"),
    "vocab differs": (lambda o: _set_meta(o, lambda m: m.update(vocab_size=3)), "vocab.json.*3"),
    "offsets reversed": (lambda o: _write_offsets(o, lambda a: a[::-1].copy()), "train.offsets.npy"),
    "offsets not ascending": (lambda o: _write_offsets(o, lambda a: np.concatenate([a[:1], a[2:3], a[1:2],
                                                                                    a[3:]])),
                              "train.offsets.npy.*ascending"),
    "offset past the ids": (lambda o: _write_offsets(o, lambda a: np.concatenate([a[:-2], [10 ** 12], a[-1:]])),
                            "train.offsets.npy"),
    "offsets float": (lambda o: _write_offsets(o, lambda a: a.astype(np.float64)), "train.offsets.npy"),
    "offsets 2-d": (lambda o: _write_offsets(o, lambda a: np.stack([a, a])), "train.offsets.npy"),
    "offsets not npy": (lambda o: (o / "train.offsets.npy").write_bytes(b"junk"), "train.offsets.npy"),
    "id past the vocabulary": (lambda o: _poke_id(o, 250), "train.bin.*250"),
    "vocab junk": (lambda o: (o / "vocab.json").write_text("[1, 2"), "vocab.json"),
}


@pytest.mark.parametrize("name", list(DAMAGE))
def test_damaged_prepared_directory_is_one_data_error(tmp_path, name, capsys):
    out = tmp_path / "p"
    prepare_dataset(to_file(tmp_path / "a.jsonl"), out, val_fraction=0.3, progress=False)
    damage, message = DAMAGE[name]
    damage(out)
    with pytest.raises(DataError, match=message):
        open_prepared(out, "train")
    assert main(["train", "--data", str(out), "--steps", "1", "--no-progress",
                 "--out", str(tmp_path / "m.pt")]) == 2
    one_error_line(capsys)


# -------------------------------------------------- 8: capped validation
def test_encoded_corpus_head_cuts_at_a_token_count(corpus_vocab):
    corpus = EncodedCorpus.from_texts(["a" * 50, "b" * 50, "c" * 50], corpus_vocab)
    head = corpus.head(120)
    assert head.num_tokens == 120 and len(head) == 3
    assert torch.equal(head.record(2), corpus.record(2)[:120 - 104])
    assert corpus.head(10 ** 6) is corpus
    assert corpus.head(52).num_tokens == 52 and len(corpus.head(52)) == 1


def test_validation_of_a_json_file_is_capped_and_says_so(tmp_path, monkeypatch):
    from charrnn.cli import _training_corpora

    monkeypatch.setattr(batches, "VALIDATION_TOKENS", 300)
    path = to_file(tmp_path / "a.jsonl")
    config = DataConfig.from_dict({"data": str(path), "val_fraction": 0.5})
    _, val, _, summary = _training_corpora(config, None, None)
    assert val.num_tokens == 300
    assert "validation on the first 300 of" in summary


def test_validation_of_a_prepared_directory_is_capped_and_says_so(tmp_path, monkeypatch):
    from argparse import Namespace

    from charrnn.cli import _training_corpora

    out = tmp_path / "p"
    prepare_dataset(to_file(tmp_path / "a.jsonl"), out, val_fraction=0.5, progress=False)
    monkeypatch.setattr(batches, "VALIDATION_TOKENS", 300)
    config = DataConfig.from_dict({"data": str(out)})
    _, val, _, summary = _training_corpora(config, Namespace(), None)
    assert val.num_tokens == 300 and "validation on the first 300 of" in summary


def test_validation_cap_is_large_enough_for_the_closing_batches():
    assert batches.VALIDATION_TOKENS >= 1_000_000


def test_one_huge_record_does_not_make_validation_slow(tmp_path):
    huge = dict(TINY_RECORDS[0], abstract="word " * 400_000)  # 2 MB: over the line cap
    records = [dict(r) for r in TINY_RECORDS] + [huge]
    stats = ReadStats()
    kept = list(iter_records(to_file(tmp_path / "h.jsonl", records), stats=stats))
    assert len(kept) == len(TINY_RECORDS) and stats.too_long == 1


def test_vocab_of_a_prepared_directory_still_loads(tmp_path):
    out = tmp_path / "p"
    prepare_dataset(to_file(tmp_path / "a.jsonl"), out, progress=False)
    assert isinstance(open_prepared(out)[1], CharVocab)


def test_prepared_directory_over_its_own_input_file_is_refused_before_any_work(source, tmp_path, capsys):
    before = source.read_bytes()
    json_file = tmp_path / "in.json"
    json_file.write_bytes(before)
    assert main(["prepare", str(json_file), "--out", str(json_file), "--limit", "3", "--no-progress"]) == 2
    assert "not a directory" in one_error_line(capsys)
    assert json_file.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json", "in.jsonl"]  # not even a lock file


def test_a_link_loop_is_not_a_traceback_when_paths_are_compared(tmp_path):
    """``Path.resolve()`` raises RuntimeError on a link loop before Python
    3.13 (OSError after): the checks that compare an output with an input
    must answer "not the same" and leave the error to the open that follows."""
    from charrnn.data import same_file
    from charrnn.scale.prepared.transaction import _holds

    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    other = tmp_path / "records.jsonl"
    other.write_text("{}\n")
    assert same_file(loop, other) is False
    assert _holds(loop, other) is False
    assert _holds(tmp_path, loop / "x") is False


def test_nothing_usable_names_every_reason_at_once():
    from charrnn.data import ReadStats

    stats = ReadStats(path="x.jsonl", lines=5, malformed=3, too_long=2, first_long_line=4)
    message = str(stats.nothing_usable(None))
    assert message.startswith("x.jsonl: no usable record with a title and an abstract (")
    assert "3 malformed line(s)" in message and "2 line(s) over" in message and "first at line 4" in message
    nothing_read = ReadStats(path="y.jsonl").nothing_usable(None)
    assert str(nothing_read) == "y.jsonl: no usable record with a title and an abstract"
