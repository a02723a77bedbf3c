"""Issue 14, the checkpoint half: nothing the user did not name is
overwritten, a failed or killed save loses nothing and leaves nothing behind,
and every damaged or hostile checkpoint is one line naming the file and the
field, found before a model is built or memory allocated."""

from __future__ import annotations

import dataclasses
import errno
import io
import os
import re
import signal
import subprocess
import sys
import zipfile

import pytest
import torch
from helpers import run_cli as run

import charrnn
from charrnn import CharVocab, CheckpointError, checkpoint_schema, load_checkpoint, load_model, save_checkpoint
from charrnn.rng import capture_rng_state
from charrnn.training import History

pytestmark = pytest.mark.filterwarnings("ignore:.*not in the vocabulary:UserWarning")

TEXT = "We propose a character model; $x^2$ < 1."
TINY = ["--hidden-size", "8", "--embed-dim", "4", "--seq-len", "16", "--batch-size", "4",
        "--eval-every", "2", "--eval-batches", "1", "--no-progress", "--device", "cpu", "--steps", "2"]


def one_line_error(rc, err, *fragments) -> str:
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("charrnn: error: "), err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.fixture
def vocab():
    return CharVocab.from_texts([TEXT])


@pytest.fixture
def model(make_model, vocab):
    return make_model(len(vocab), "lstm", hidden=16, embed=8, layers=2)


@pytest.fixture
def full(tmp_path, model, vocab):
    """A checkpoint as training writes it: optimizer state after one Adam
    step, random-number state, history and configs."""
    optimizer = torch.optim.Adam(model.parameters())
    inputs = torch.tensor([vocab.encode(TEXT, add_bos=True)])
    model(inputs)[0].sum().backward()
    optimizer.step()
    path = tmp_path / "full.pt"
    save_checkpoint(path, model, vocab, optimizer=optimizer, step=3,
                    history=dataclasses.asdict(History(steps=[1], train_loss=[2.0], grad_norm=[0.5])),
                    train_config={"steps": 10}, data_config={"seed": 0, "world_size": 1},
                    rng=capture_rng_state())
    return path


@pytest.fixture
def trained(tmp_path):
    path = tmp_path / "run.pt"
    rc, _, err = run(["train", *TINY, "--out", path])
    assert rc == 0, err
    return path


# ------------------------------------------------- 1, 18: the --out of train
def test_train_refuses_to_replace_an_existing_checkpoint(trained):
    before = trained.read_bytes()
    rc, out, err = run(["train", *TINY, "--steps", "3", "--out", trained])
    one_line_error(rc, err, str(trained), "--overwrite")
    assert out == ""  # refused before any data was read
    assert trained.read_bytes() == before


def test_train_overwrite_replaces_it(trained):
    rc, _, err = run(["train", *TINY, "--steps", "3", "--out", trained, "--overwrite"])
    assert rc == 0, err
    assert load_checkpoint(trained)["step"] == 3


def test_resume_continues_into_its_own_file(trained):
    rc, _, err = run(["train", "--resume", trained, "--steps", "3", "--no-progress"])
    assert rc == 0, err
    rc, _, err = run(["train", "--resume", trained, "--steps", "4", "--no-progress", "--out", trained])
    assert rc == 0, err
    assert load_checkpoint(trained)["step"] == 4


def test_resume_into_another_existing_file_needs_overwrite(trained, tmp_path):
    other = tmp_path / "other.pt"
    other.write_bytes(trained.read_bytes())
    rc, _, err = run(["train", "--resume", trained, "--steps", "3", "--no-progress", "--out", other])
    one_line_error(rc, err, str(other), "--overwrite")
    assert load_checkpoint(other)["step"] == 2


def test_default_run_names_do_not_collide(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = []
    for _ in range(2):
        rc, out, err = run(["train", *TINY])
        assert rc == 0, err
        names.append(re.search(r"writing checkpoints to (\S+)", out).group(1))
    assert names[0] != names[1]
    for name in names:
        assert re.fullmatch(r"runs/charrnn-lstm-\d{8}-\d{6}(-\d+)?\.pt", name), name
        assert load_checkpoint(name)["step"] == 2
    assert f"checkpoint {names[1]}" in out  # and again at the end


def test_demo_replaces_its_own_file_but_not_a_named_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):  # `make demo` twice
        rc, _, err = run(["demo", *TINY])
        assert rc == 0, err
    assert load_checkpoint("runs/demo.pt")["step"] == 2
    rc, _, err = run(["demo", *TINY, "--out", "runs/demo.pt"])  # named by the user: asked first
    one_line_error(rc, err, "runs/demo.pt", "--overwrite")


def test_out_that_is_a_folder_is_refused_before_training(tmp_path):
    rc, out, err = run(["train", *TINY, "--out", tmp_path])
    one_line_error(rc, err, str(tmp_path), "folder")
    assert out == "" and ".tmp" not in err


def test_out_under_a_file_is_refused_before_training(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    target = tmp_path / "notes.txt" / "x.pt"
    rc, out, err = run(["train", *TINY, "--out", target])
    one_line_error(rc, err, str(target))
    assert out == ""


def test_out_in_a_read_only_folder_is_refused_before_training(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    real_open = os.open

    def denied(path, *args, **kwargs):  # what a read-only folder does, even for root
        if os.path.dirname(os.fspath(path)) == str(folder):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    rc, out, err = run(["train", *TINY, "--out", folder / "x.pt"])
    monkeypatch.undo()
    one_line_error(rc, err, str(folder / "x.pt"), "Permission denied")
    assert out == "" and ".tmp" not in err and "charrnn-tmp" not in err


# ----------------------------------------------------------------- 2: export
def test_export_onto_its_own_input_is_refused(trained, tmp_path, monkeypatch):
    before = trained.read_bytes()
    monkeypatch.chdir(tmp_path)
    for out in (trained, f"./{trained.name}"):
        for extra in ([], ["--overwrite"]):
            rc, _, err = run(["export", trained, "--out", out, "--fp16", *extra])
            one_line_error(rc, err, "is the checkpoint it reads")
    assert trained.read_bytes() == before


def test_export_over_an_existing_file_needs_overwrite(trained, tmp_path):
    out = tmp_path / "small.pt"
    out.write_bytes(b"keep me")
    rc, _, err = run(["export", trained, "--out", out])
    one_line_error(rc, err, str(out), "--overwrite")
    assert out.read_bytes() == b"keep me"
    assert run(["export", trained, "--out", out, "--overwrite"])[0] == 0
    assert load_checkpoint(out)["optimizer_state"] is None


def test_resuming_an_export_is_refused(trained, tmp_path):
    small = tmp_path / "small.pt"
    assert run(["export", trained, "--out", small, "--fp16"])[0] == 0
    before = small.read_bytes()
    rc, out, err = run(["train", "--resume", small, "--steps", "4", "--no-progress"])
    one_line_error(rc, err, str(small), "export", "cannot be resumed")
    assert out == "" and small.read_bytes() == before


# --------------------------------------------------------- 13: disk full
def _disk_full(obj, f, *args, **kwargs):
    f.write(b"PK\x03\x04 half a checkpoint")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_is_one_line_and_keeps_the_previous_checkpoint(full, model, vocab, monkeypatch):
    before = full.read_bytes()
    monkeypatch.setattr(torch, "save", _disk_full)
    with pytest.raises(CheckpointError) as info:
        save_checkpoint(full, model, vocab, step=8)
    monkeypatch.undo()
    message = str(info.value)
    assert str(full) in message and "No space left on device" in message and "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert full.read_bytes() == before
    assert sorted(p.name for p in full.parent.iterdir()) == [full.name]


def test_disk_full_during_training_is_one_line(tmp_path, monkeypatch):
    out = tmp_path / "x.pt"
    monkeypatch.setattr(torch, "save", _disk_full)
    rc, _, err = run(["train", *TINY, "--out", out])
    one_line_error(rc, err, str(out), "No space left on device")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------- 17: stale temp files
def test_stale_temp_files_of_the_same_checkpoint_are_removed(full, model, vocab):
    folder = full.parent
    dead = folder / f".{full.name}.999999999.charrnn-tmp"  # left by a save killed with -9
    alive = folder / f".{full.name}.{os.getppid()}.charrnn-tmp"  # a save still running
    others = [folder / ".other.pt.999999999.charrnn-tmp", folder / f"{full.name}.bak",
              folder / f".{full.name}.notes.charrnn-tmp"]
    for path in [dead, alive, *others]:
        path.write_bytes(b"partial")
    save_checkpoint(full, model, vocab, step=9)
    assert not dead.exists()
    assert alive.exists() and all(p.exists() for p in others)
    assert load_checkpoint(full)["step"] == 9


def test_temp_file_name_is_recognisable(tmp_path, model, vocab, monkeypatch):
    seen = []
    real_save = torch.save

    def spy(obj, f, *args, **kwargs):
        seen.append(os.path.basename(f.name))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", spy)
    save_checkpoint(tmp_path / "m.pt", model, vocab)
    assert seen == [f".m.pt.{os.getpid()}.charrnn-tmp"]


# --------------------------------------------------- 14: damaged contents
def _set(*keys, value):
    def mutate(ckpt):
        target = ckpt
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return mutate


def _first_param_state(ckpt):
    return ckpt["optimizer_state"]["state"][0]


DAMAGED = {
    "version a string": (_set("version", value="1"), "version"),
    "version zero": (_set("version", value=0), "version"),
    "model_config a list": (_set("model_config", value=[1, 2]), "model_config"),
    "hidden_size a float": (_set("model_config", "hidden_size", value=16.0), "hidden_size"),
    "hidden_size huge": (_set("model_config", "hidden_size", value=200_000), "hidden_size"),
    "hidden_size a bool": (_set("model_config", "hidden_size", value=True), "hidden_size"),
    "embed_dim a string": (_set("model_config", "embed_dim", value="8"), "embed_dim"),
    "num_layers huge": (_set("model_config", "num_layers", value=10**6), "num_layers"),
    "vocab_size huge": (_set("model_config", "vocab_size", value=10**9), "vocab_size"),
    "cell a number": (_set("model_config", "cell", value=5), "cell"),
    "dropout a string": (_set("model_config", "dropout", value="0.1"), "dropout"),
    "model_state a list": (_set("model_state", value=[1, 2]), "model_state"),
    "model_state holds a string": (_set("model_state", "head.weight", value="w"), "head.weight"),
    "model_state lacks a key": (lambda c: c["model_state"].pop("head.bias"), "head.bias"),
    "model_state extra key": (_set("model_state", "spare", value=torch.zeros(1)), "spare"),
    "model_state wrong shape": (_set("model_state", "head.weight", value=torch.zeros(3, 3)), "head.weight"),
    "declared bigger than weights": (_set("model_config", "hidden_size", value=4096), "hidden_size"),
    "vocab None": (_set("vocab", value=None), "'vocab'"),
    "vocab chars a string": (_set("vocab", "chars", value="abc"), "'vocab'"),
    "step a string": (_set("step", value="3"), "step"),
    "step negative": (_set("step", value=-1), "step"),
    "history a list": (_set("history", value=[1.0]), "history"),
    "history loss a string": (_set("history", "train_loss", value="low"), "train_loss"),
    "history counter negative": (_set("history", "chars_trained", value=-5), "chars_trained"),
    "optimizer_state a list": (_set("optimizer_state", value=[]), "optimizer_state"),
    "param_groups a string": (_set("optimizer_state", "param_groups", value="x"), "optimizer_state"),
    "optimizer moment of wrong shape": (lambda c: _first_param_state(c).__setitem__("exp_avg", torch.zeros(2)),
                                        "optimizer_state"),
    "optimizer for fewer parameters": (lambda c: c["optimizer_state"]["param_groups"][0]["params"].pop(),
                                       "optimizer_state"),
    "rng a list": (_set("rng", value=[]), "rng"),
    "torch rng of wrong size": (_set("rng", "torch", value=torch.zeros(7, dtype=torch.uint8)), "rng"),
    "python rng garbage": (_set("rng", "python", value=(3, [1, 2], None)), "rng"),
    "train_config steps a string": (_set("train_config", "steps", value="5"), "train_config"),
    "data_config a list": (_set("data_config", value=[]), "data_config"),
}


@pytest.mark.parametrize("name", DAMAGED)
def test_damaged_contents_are_one_line_naming_the_field(full, name):
    mutate, field = DAMAGED[name]
    ckpt = torch.load(full, weights_only=True)
    mutate(ckpt)
    torch.save(ckpt, full)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(full)
    message = str(info.value)
    assert message.startswith(f"{full}: ") and field in message and "\n" not in message, message


@pytest.mark.parametrize("name", ["hidden_size huge", "model_state a list", "rng a list"])
def test_damaged_contents_on_resume_are_one_line(full, name):
    mutate, field = DAMAGED[name]
    ckpt = torch.load(full, weights_only=True)
    mutate(ckpt)
    torch.save(ckpt, full)
    rc, out, err = run(["train", "--resume", full, "--no-progress", "--device", "cpu"])
    one_line_error(rc, err, str(full), field)


def test_a_full_checkpoint_passes_and_resumes(full):
    ckpt = load_checkpoint(full)
    assert ckpt["step"] == 3 and ckpt["optimizer_state"]["state"]


def test_history_fields_match_the_trainers():
    assert set(checkpoint_schema.HISTORY_FIELDS) == {f.name for f in dataclasses.fields(History)}


# ----------------------------------------------------------- 20: messages
def _leave_a_mark(path):
    return path


class Payload:
    def __reduce__(self):
        return _leave_a_mark, ("x",)


def test_a_refused_pickle_is_a_whole_sentence(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "charrnn-checkpoint", "payload": Payload()}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message and "\x1b" not in message
    assert "_leave_a_mark" in message and "refused" in message and "damaged" not in message
    assert message.endswith(".") or message.endswith(")"), message


# -------------------------------------------------------- 21: zip bombs
def _compress(path):
    """The same archive with every member deflated: torch writes them stored."""
    data = io.BytesIO(path.read_bytes())
    with zipfile.ZipFile(data) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))


def test_a_compressed_giant_tensor_is_refused_before_loading(tmp_path, model, vocab, monkeypatch):
    path = tmp_path / "bomb.pt"
    save_checkpoint(path, model, vocab)
    ckpt = torch.load(path, weights_only=True)
    ckpt["model_state"]["spare"] = torch.zeros(16 * 2**20 // 4)  # 16 MB of zeros
    torch.save(ckpt, path)
    _compress(path)
    assert path.stat().st_size < 200_000

    def never(*args, **kwargs):
        raise AssertionError("torch.load ran on a zip bomb")

    monkeypatch.setattr(torch, "load", never)
    with pytest.raises(CheckpointError, match="uncompressed") as info:
        load_checkpoint(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_stored_checkpoints_pass_the_size_check(full, tmp_path, model, vocab):
    half = tmp_path / "half.pt"
    save_checkpoint(half, model, vocab, weights_dtype=torch.float16)
    assert load_model(half)[1] == vocab
    assert load_checkpoint(full)["step"] == 3
    assert load_checkpoint(charrnn.pretrained_path())["format"] == "charrnn-checkpoint"


def test_history_entries_of_other_versions_are_ignored(full):
    ckpt = torch.load(full, weights_only=True)
    ckpt["history"]["from_a_later_version"] = {"any": "thing"}
    torch.save(ckpt, full)
    assert load_checkpoint(full)["step"] == 3


def test_a_save_killed_with_sigkill_leaves_nothing_after_the_next_save(full, model, vocab):
    """The real thing: a process killed mid-save leaves its temporary file,
    the checkpoint stays loadable, and the next save removes the leftover."""
    code = ("import sys, time, torch\n"
            "from charrnn.checkpoint import atomic_torch_save\n"
            "def slow(obj, f, *a, **k):\n"
            "    f.write(b'PK half'); f.flush(); print('writing', flush=True); time.sleep(60)\n"
            "torch.save = slow\n"
            "atomic_torch_save({'x': 1}, sys.argv[1])\n")
    before = full.read_bytes()
    child = subprocess.Popen([sys.executable, "-c", code, str(full)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "writing"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
    left = [p.name for p in full.parent.iterdir() if p.name != full.name]
    assert left == [f".{full.name}.{child.pid}.charrnn-tmp"]
    assert full.read_bytes() == before
    save_checkpoint(full, model, vocab, step=11)
    assert sorted(p.name for p in full.parent.iterdir()) == [full.name]
    assert load_checkpoint(full)["step"] == 11
