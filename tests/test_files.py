"""Safe file writing (charrnn.files): a file is replaced whole or not at all,
no temporary file outlives a failure, and a full disk is one line."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from charrnn import files
from charrnn.errors import DataError
from charrnn.files import atomic_write, disk_full_message, is_disk_full, writing


class Boom(Exception):
    """A failure in the middle of a write."""


def test_a_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old", encoding="utf-8")
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write("new")
        assert path.read_text(encoding="utf-8") == "old"  # nothing shows until the block ends
    assert path.read_text(encoding="utf-8") == "new"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(Boom), atomic_write(path) as f:
        f.write(b"half of the new")
        raise Boom
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_a_failed_first_write_leaves_nothing(tmp_path):
    with pytest.raises(Boom), atomic_write(tmp_path / "out.bin") as f:
        f.write(b"half")
        raise Boom
    assert os.listdir(tmp_path) == []


def test_a_failed_rename_leaves_the_target_and_no_temporary_file(tmp_path):
    target = tmp_path / "folder"
    (target / "inside").mkdir(parents=True)  # os.replace cannot put a file over a folder
    with pytest.raises(OSError), atomic_write(target) as f:
        f.write(b"data")
    assert sorted(os.listdir(tmp_path)) == ["folder"] and os.listdir(target) == ["inside"]


def test_the_temporary_file_is_hidden_beside_the_target_and_never_shared(tmp_path):
    path = tmp_path / "out.txt"
    with atomic_write(path, "w", encoding="utf-8") as a, atomic_write(path, "w", encoding="utf-8") as b:
        names = {Path(a.name).name, Path(b.name).name}
        assert len(names) == 2 and all(n.startswith(".out.txt.") and n.endswith(".tmp") for n in names)
        assert Path(a.name).parent == tmp_path
        a.write("a")
        b.write("b")
    assert path.read_text(encoding="utf-8") == "a"  # the last to finish wins, whole
    assert os.listdir(tmp_path) == ["out.txt"]


def test_a_named_temporary_file_is_used_and_removed(tmp_path):
    path, temp = tmp_path / "m.pt", tmp_path / ".m.pt.mine"
    with atomic_write(path, temp=temp) as f:
        assert Path(f.name) == temp
        f.write(b"x")
    assert os.listdir(tmp_path) == ["m.pt"]


def test_the_new_file_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "out.txt", "w", encoding="utf-8") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o644


def test_only_writing_modes_are_accepted(tmp_path):
    with pytest.raises(ValueError, match="mode must start with 'w'"), atomic_write(tmp_path / "x", "ab"):
        pass


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_full_disk_is_one_line_naming_the_file(tmp_path, monkeypatch):
    real_open = open

    def full(path, mode="r", *args, **kwargs):
        return real_open("/dev/full", mode.replace("x", "w"), *args, **kwargs)

    monkeypatch.setattr(files, "open", full, raising=False)
    path = tmp_path / "out.jsonl"
    path.write_text("old\n", encoding="utf-8")
    with pytest.raises(DataError) as info, writing(path), atomic_write(path, "w", encoding="utf-8") as f:
        f.write("x" * 100_000)
    assert str(info.value) == f"no space left on device while writing {path}"
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert path.read_text(encoding="utf-8") == "old\n" and os.listdir(tmp_path) == ["out.jsonl"]


@pytest.mark.parametrize("error, full", [
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (OSError(getattr(errno, "EDQUOT", errno.ENOSPC), "Disk quota exceeded"), True),
    (OSError("100 requested and 40 written"), True),  # numpy's tofile on a short write
    (OSError(errno.EACCES, "Permission denied"), False),
    (OSError("something else"), False),
])
def test_what_counts_as_a_full_disk(error, full):
    assert is_disk_full(error) is full


def test_numpy_s_short_write_keeps_its_own_words():
    error = OSError("100 requested and 40 written")
    assert disk_full_message("a.bin", error) == ("no space left on device while writing a.bin "
                                                 "(100 requested and 40 written)")


def test_other_errors_pass_through_writing_unchanged(tmp_path):
    with pytest.raises(PermissionError), writing(tmp_path / "x"):
        raise PermissionError(errno.EACCES, "Permission denied")
