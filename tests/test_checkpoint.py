"""Checkpoints: round trip, atomic writes, and clear errors for bad files."""

from __future__ import annotations

import os
from dataclasses import asdict

import pytest
import torch

import charrnn
from charrnn import CharVocab, CheckpointError, load_checkpoint, load_model, save_checkpoint

TEXT = "We propose a character model; $x^2$ < 1."


@pytest.fixture
def vocab():
    return CharVocab.from_texts([TEXT])


@pytest.fixture
def model(make_model, vocab):
    return make_model(len(vocab), "lstm", hidden=16, embed=8, layers=2).eval()


@pytest.fixture
def saved(tmp_path, model, vocab):
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, vocab, step=7, history={"train_loss": [1.0]})
    return path


def logits_of(model, vocab):
    with torch.no_grad():
        return model(torch.tensor([vocab.encode(TEXT, add_bos=True)]))[0]


def assert_clear_error(info, path):
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message and "Traceback" not in message


# ---------------------------------------------------------------- round trip
@pytest.mark.parametrize("cell", charrnn.CELLS)
def test_round_trip_gives_identical_logits(tmp_path, make_model, vocab, cell):
    model = make_model(len(vocab), cell, hidden=16, embed=8).eval()
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, vocab)
    loaded, loaded_vocab = load_model(path)
    assert loaded_vocab == vocab
    assert loaded.config == model.config
    assert not loaded.training
    assert torch.equal(logits_of(loaded, loaded_vocab), logits_of(model, vocab))


def test_checkpoint_holds_metadata(saved, model, vocab):
    ckpt = load_checkpoint(saved)
    assert ckpt["format"] == "charrnn-checkpoint"
    assert ckpt["step"] == 7
    assert ckpt["history"] == {"train_loss": [1.0]}
    assert ckpt["model_config"] == asdict(model.config)
    assert CharVocab.from_dict(ckpt["vocab"]) == vocab


def test_float16_weights_load_as_float32(tmp_path, model, vocab):
    path = tmp_path / "half.pt"
    save_checkpoint(path, model, vocab, weights_dtype=torch.float16)
    assert all(v.dtype == torch.float16 for v in load_checkpoint(path)["model_state"].values()
               if v.is_floating_point())
    loaded, _ = load_model(path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    torch.testing.assert_close(logits_of(loaded, vocab), logits_of(model, vocab), atol=1e-2, rtol=1e-2)


def test_save_creates_missing_folders(tmp_path, model, vocab):
    path = tmp_path / "runs" / "deep" / "model.pt"
    save_checkpoint(path, model, vocab)
    assert load_model(path)[1] == vocab


def test_save_rejects_a_vocabulary_that_does_not_fit(tmp_path, model):
    with pytest.raises(charrnn.ConfigError, match="vocabulary"):
        save_checkpoint(tmp_path / "x.pt", model, CharVocab.from_texts(["ab"]))
    assert not (tmp_path / "x.pt").exists()


# -------------------------------------------------------------------- atomic
def test_save_leaves_no_temporary_file(tmp_path, model, vocab):
    save_checkpoint(tmp_path / "model.pt", model, vocab)
    save_checkpoint(tmp_path / "model.pt", model, vocab)  # overwrite
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_failed_save_leaves_the_previous_checkpoint_intact(saved, model, vocab, monkeypatch):
    before = saved.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(CheckpointError, match="disk full") as info:  # one line naming the file
        save_checkpoint(saved, model, vocab, step=8)
    assert_clear_error(info, saved)
    monkeypatch.undo()
    assert saved.read_bytes() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == [saved.name]
    assert load_checkpoint(saved)["step"] == 7


# -------------------------------------------------------------- bad files
def test_missing_file(tmp_path):
    path = tmp_path / "nothing.pt"
    with pytest.raises(CheckpointError, match="no such checkpoint file") as info:
        load_model(path)
    assert_clear_error(info, path)


def test_directory_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError):
        load_model(tmp_path)


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.3, 0.5, 0.9])
def test_truncated_file(saved, fraction):
    data = saved.read_bytes()
    saved.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(CheckpointError) as info:
        load_model(saved)
    assert_clear_error(info, saved)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(os.urandom(2000))
    with pytest.raises(CheckpointError, match="not a checkpoint") as info:
        load_model(path)
    assert_clear_error(info, path)


def test_zip_like_garbage(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"PK\x03\x04" + os.urandom(500))
    with pytest.raises(CheckpointError, match="truncated or damaged") as info:
        load_model(path)
    assert_clear_error(info, path)


def test_json_file(tmp_path, vocab):
    path = tmp_path / "vocab.json"
    vocab.save(path)
    with pytest.raises(CheckpointError, match="not a checkpoint") as info:
        load_model(path)
    assert_clear_error(info, path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert_clear_error(info, path)


def test_foreign_torch_file(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"a": 1}, path)
    with pytest.raises(CheckpointError, match="not a charrnn checkpoint") as info:
        load_model(path)
    assert_clear_error(info, path)


def test_plain_state_dict_is_not_a_checkpoint(tmp_path, model):
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(CheckpointError, match="not a charrnn checkpoint"):
        load_model(path)


def test_newer_format_version(tmp_path, saved):
    ckpt = load_checkpoint(saved)
    ckpt["version"] = 99
    torch.save(ckpt, saved)
    with pytest.raises(CheckpointError, match="newer") as info:
        load_model(saved)
    assert_clear_error(info, saved)


def test_checkpoint_without_weights(saved):
    ckpt = load_checkpoint(saved)
    del ckpt["model_state"]
    torch.save(ckpt, saved)
    with pytest.raises(CheckpointError, match="model_state") as info:
        load_model(saved)
    assert_clear_error(info, saved)


def test_vocab_size_that_mismatches_the_model_config(saved):
    ckpt = load_checkpoint(saved)
    ckpt["vocab"]["chars"] = ckpt["vocab"]["chars"][:-3]
    torch.save(ckpt, saved)
    with pytest.raises(CheckpointError, match="vocabulary") as info:
        load_model(saved)
    assert_clear_error(info, saved)


def test_weights_that_mismatch_the_model_config(saved, make_model, vocab):
    ckpt = load_checkpoint(saved)
    ckpt["model_state"] = make_model(len(vocab) + 2, "lstm", hidden=16, embed=8, layers=2).state_dict()
    torch.save(ckpt, saved)
    with pytest.raises(CheckpointError, match="vocabulary") as info:
        load_model(saved)
    assert_clear_error(info, saved)


def test_invalid_model_config(saved):
    ckpt = load_checkpoint(saved)
    ckpt["model_config"]["cell"] = "transformer"
    torch.save(ckpt, saved)
    with pytest.raises(CheckpointError, match="cell") as info:
        load_model(saved)
    assert_clear_error(info, saved)


def _leave_a_mark(path):
    with open(path, "w") as f:
        f.write("code ran")
    return "payload"


class Payload:
    """Unpickling this object would run _leave_a_mark."""

    def __init__(self, mark):
        self.mark = mark

    def __reduce__(self):
        return _leave_a_mark, (self.mark,)


def test_loading_never_runs_pickled_code(tmp_path):
    path, mark = tmp_path / "evil.pt", tmp_path / "mark.txt"
    torch.save({"format": "charrnn-checkpoint", "payload": Payload(str(mark))}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert_clear_error(info, path)
    assert not mark.exists()
