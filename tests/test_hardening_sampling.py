"""Issue 14, sampling and student versions: nothing lost, nothing hangs, one
line for every bad input.

Sampling: absurd sizes are refused before any work, memory per generated
character stays bounded (the text is streamed), the temperature must be a
finite number, and a model whose logits are not finite is stopped before a
token drawn from them is kept or fed back. Student versions: nothing a
student edited is overwritten without ``--overwrite``, every source notebook
is checked before anything is written, and each error names its notebook.
"""

from __future__ import annotations

import gc
import json
import math
import warnings

import nbformat
import pytest
import torch
from helpers import FixedLogits, assert_one_line_error, one_cell_notebook
from helpers import run_cli as run

from charrnn import CharRNN, CharVocab, ConfigError, DataError, ModelError, generate, generate_batch, next_char_probs
from charrnn.checkpoint import save_checkpoint
from charrnn.sample import MAX_GENERATED_CHARS, MAX_NEW_CHARS, MAX_SAMPLES, stream_batch
from charrnn.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID


@pytest.fixture
def vocab():
    return CharVocab.from_texts(["abcdefghij"])


@pytest.fixture
def model(make_model, vocab):
    return make_model(len(vocab), "lstm", hidden=16, embed=8).eval()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A small random model as a checkpoint, and the same model with nan weights."""
    from charrnn.config import ModelConfig
    from charrnn.model import CharRNN

    folder = tmp_path_factory.mktemp("ckpt")
    vocab = CharVocab.from_texts(["abcdefghij klmnop"])
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=len(vocab), cell="gru", embed_dim=8, hidden_size=16))
    save_checkpoint(folder / "ok.pt", model, vocab)
    with torch.no_grad():
        model.head.weight.fill_(math.nan)
    save_checkpoint(folder / "nan.pt", model, vocab)
    return folder


class CountingLogits(FixedLogits):
    """FixedLogits whose logits turn ``bad`` (nan or inf) from call ``at`` on,
    and which counts the live tensors at the calls listed in ``census``."""

    def __init__(self, logits, at: int | None = None, bad: float = math.nan, census=()):
        super().__init__(logits)
        self.at, self.bad, self.census, self.live = at, bad, set(census), {}

    def forward(self, x, state=None):
        logits, state = super().forward(x, state)
        if self.calls in self.census:
            with warnings.catch_warnings():  # isinstance() on some of torch's deprecated objects warns
                warnings.simplefilter("ignore")
                self.live[self.calls] = sum(isinstance(o, torch.Tensor) for o in gc.get_objects())
        if self.at is not None and self.calls >= self.at:
            logits = torch.full_like(logits, self.bad)
        return logits, state


def uniform_logits(vocab) -> torch.Tensor:
    logits = torch.zeros(len(vocab))
    logits[EOS_ID] = -30.0  # records never end: every sample runs its full length
    return logits


# ------------------------------------------------------------ item 7: sizes
@pytest.mark.parametrize("n, chars, says", [(MAX_SAMPLES + 1, 1, "another seed"),
                                            (1, MAX_NEW_CHARS + 1, "end of this one as the prefix"),
                                            (100, MAX_GENERATED_CHARS // 50, "lower one of them")])
def test_absurd_sizes_are_refused_before_any_work(vocab, n, chars, says):
    stub = FixedLogits(uniform_logits(vocab))
    with pytest.raises(ConfigError, match=says):
        generate_batch(stub, vocab, "ab", n=n, max_new_chars=chars)
    assert stub.calls == 0


@pytest.mark.parametrize("greedy", [True, False])
def test_memory_per_generated_character_is_bounded(vocab, greedy):
    """The old loop kept one small tensor per step (about 860 bytes per
    character); now the number of live tensors does not grow with the length."""
    stub = CountingLogits(uniform_logits(vocab), census=(600, 3000))
    texts = generate_batch(stub, vocab, "", n=2, max_new_chars=3000, temperature=0 if greedy else 1.0,
                           seed=0, stop_at_eos=False)
    assert [len(t) for t in texts] == [3000, 3000]
    assert stub.live[3000] - stub.live[600] < 200, stub.live


def test_stream_gives_text_before_the_end(vocab):
    stub = FixedLogits(uniform_logits(vocab))
    pieces = stream_batch(stub, vocab, "ab", n=2, max_new_chars=2000, seed=0)
    first = next(pieces)
    assert stub.calls < 1000
    assert all(p.startswith("ab") for p in first)
    rest = list(pieces)
    texts = ["".join(parts) for parts in zip(first, *rest)]
    assert texts == generate_batch(stub, vocab, "ab", n=2, max_new_chars=2000, seed=0)


@pytest.mark.parametrize("n", [1, 3, 64, 1000])
@pytest.mark.parametrize("rule", [{}, {"temperature": 0}, {"top_k": 3}, {"top_p": 0.5}, {"temperature": 0.5}])
def test_every_sample_runs_its_full_length_until_its_own_end(vocab, n, rule):
    """The loop reads back one number per step (the probabilities' sum, and
    whether all rows ended): with many rows and no <eos> in sight, no rule
    may stop it early; with an <eos> that is certain, it stops at once."""
    model = FixedLogits(uniform_logits(vocab))
    texts = generate_batch(model, vocab, "ab", n=n, max_new_chars=300, seed=0, stop_at_eos=False, **rule)
    assert [len(t) for t in texts] == [302] * n
    texts = generate_batch(model, vocab, "ab", n=n, max_new_chars=300, seed=0, **rule)
    assert [len(t) for t in texts] == [302] * n  # <eos> at -30 is almost never drawn
    assert model.calls >= 2 * 300
    ends = torch.full((len(vocab),), -30.0)
    ends[EOS_ID] = 10.0
    ending = FixedLogits(ends)
    assert generate_batch(ending, vocab, "ab", n=n, max_new_chars=300, seed=0, **rule) == ["ab"] * n
    assert ending.calls == 1  # the prefix alone: every row ended at the first step


def test_between_pieces_the_caller_has_its_own_torch_settings(vocab):
    """Generation runs in inference mode without oneDNN, but only while a
    block is computed: the caller's code between two pieces (a training
    step, say) must see gradients on and its settings as it left them. A
    generator that yielded inside those settings leaked them."""
    torch.manual_seed(0)
    model = CharRNN(vocab_size=len(vocab), cell="lstm", embed_dim=4, hidden_size=6).train()
    seen = []
    for _ in stream_batch(model, vocab, "ab", n=2, max_new_chars=600, seed=0, stop_at_eos=False):
        seen.append((torch.is_grad_enabled(), torch.is_inference_mode_enabled(),
                     torch.backends.mkldnn.enabled, model.training))
        loss = model(torch.tensor([[5, 6]]))[0].sum()
        loss.backward()  # fails on tensors made in inference mode or without gradients
    assert len(seen) == 3
    assert seen == [(True, False, True, False)] * 3  # eval mode is kept until the last piece
    assert model.training


def test_stream_checks_its_arguments_at_once(vocab):
    with pytest.raises(ConfigError, match="temperature"):
        stream_batch(FixedLogits(uniform_logits(vocab)), vocab, "", temperature=-1)


@pytest.mark.parametrize("args, fragments", [
    (["--length", "10000000"], ["length of 10,000,000", "100,000", "prefix"]),
    (["-n", "100000000"], ["n = 100,000,000", "1,000", "seed"]),
    (["-n", "1000", "--length", "5000"], ["5,000,000", "1,000,000"]),
    (["-n", "-2"], ["number of samples", "-2"]),
])
def test_cli_refuses_absurd_sizes_in_one_line(checkpoints, args, fragments):
    """The library's limits and messages (charrnn.sample.check_sample_size), one line."""
    rc, out, err = run(["sample", "--checkpoint", checkpoints / "ok.pt", *args])
    assert_one_line_error(rc, err, *fragments)
    assert out == ""


@pytest.mark.parametrize("args", [
    ["-n", "3", "--length", "600", "--seed", "1"],
    ["-n", "1", "--length", "600", "--seed", "2", "--prefix", "ab"],
    ["-n", "0"],
    ["-n", "2", "--temperature", "0", "--length", "50"],
    ["-n", "4", "--length", "300", "--top-k", "3", "--top-p", "0.9", "--seed", "3"],
])
def test_cli_streamed_output_is_the_joined_samples(checkpoints, args):
    """Printing samples as they are generated changes no byte of the output."""
    from charrnn.checkpoint import load_model

    rc, out, err = run(["sample", "--checkpoint", checkpoints / "ok.pt", *args])
    assert rc == 0, err
    model, vocab = load_model(checkpoints / "ok.pt")
    flags = dict(zip(args[::2], args[1::2]))
    texts = generate_batch(model, vocab, flags.get("--prefix", ""), int(flags["-n"]),
                           int(flags.get("--length", 300)), float(flags.get("--temperature", 0.8)),
                           int(flags["--top-k"]) if "--top-k" in flags else None,
                           float(flags["--top-p"]) if "--top-p" in flags else None,
                           seed=int(flags["--seed"]) if "--seed" in flags else None)
    if "--seed" in flags or "--temperature" in flags:  # repeatable
        assert out == "\n\n".join(texts) + "\n"
    assert out.count("\n\n") >= int(flags["-n"]) - 1


# --------------------------------------------------- item 11: temperature, nan
@pytest.mark.parametrize("temperature", [math.inf, -math.inf, math.nan])
def test_non_finite_temperature_is_a_config_error(model, vocab, temperature):
    with pytest.raises(ConfigError, match="temperature"):
        generate(model, vocab, "ab", 5, temperature=temperature)


def test_negative_temperature_message_is_unchanged(model, vocab):
    """Notebook 05 prints this message; nbval compares it."""
    with pytest.raises(ValueError) as e:
        generate(model, vocab, "ab", temperature=-0.5)
    assert str(e.value) == "temperature must be >= 0 (0 means greedy), got -0.5"


@pytest.mark.parametrize("temperature", [1e30, 1e39, 1e308])
def test_huge_finite_temperature_is_uniform(model, vocab, temperature):
    logits = torch.tensor([[9.0, 8.0, 1.0, 7.0, 2.0, 3.0]])
    probs = next_char_probs(logits, temperature)
    allowed = [i for i in range(6) if i not in (PAD_ID, BOS_ID, UNK_ID)]
    assert torch.isfinite(probs).all()
    torch.testing.assert_close(probs[0, allowed], torch.full((len(allowed),), 1 / len(allowed)))
    text = generate(model, vocab, "ab", 50, temperature=temperature, seed=0, stop_at_eos=False)
    assert text.startswith("ab") and len(text) > 30 and set(text) <= set("abcdefghij")


@pytest.mark.parametrize("top_k", [0, -1, 2.5, True])
def test_top_k_must_be_a_positive_whole_number(model, vocab, top_k):
    with pytest.raises(ConfigError, match="top_k"):
        generate(model, vocab, "ab", 5, top_k=top_k)


@pytest.mark.parametrize("top_p", [0, -0.1, 1.5, math.nan, math.inf])
def test_top_p_must_be_in_zero_one(model, vocab, top_p):
    with pytest.raises(ConfigError, match="top_p"):
        generate(model, vocab, "ab", 5, top_p=top_p)


@pytest.mark.parametrize("n, chars", [(2.5, 5), (1, 2.5), ("3", 5)])
def test_sizes_must_be_whole_numbers(model, vocab, n, chars):
    with pytest.raises(ConfigError):
        generate_batch(model, vocab, "ab", n=n, max_new_chars=chars)


@pytest.mark.parametrize("temperature", [0.0, 0.8])
@pytest.mark.parametrize("stop_at_eos", [True, False])
def test_nan_weights_are_a_model_error(make_model, vocab, temperature, stop_at_eos):
    model = make_model(len(vocab), "lstm", hidden=16, embed=8).eval()
    with torch.no_grad():
        model.rnn.weight_hh_l0.fill_(math.nan)
    with pytest.raises(ModelError, match="nan logits.*weights are not finite"):
        generate(model, vocab, "ab", 20, temperature=temperature, seed=0, stop_at_eos=stop_at_eos)


@pytest.mark.parametrize("at", [1, 2, 300])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])  # -inf everywhere: nothing to draw
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_non_finite_logits_stop_before_a_token_is_fed_back(vocab, at, bad, temperature):
    """Call 1 reads the prefix; call k + 1 is fed the k-th generated token.
    Logits that turn bad at call ``at`` must raise before another call."""
    stub = CountingLogits(uniform_logits(vocab), at=at, bad=bad)
    with pytest.raises(ModelError, match="(nan|infinite) logits"):
        generate_batch(stub, vocab, "ab", n=3, max_new_chars=500, temperature=temperature, seed=0)
    assert stub.calls == at


def test_cli_temperature_inf_is_one_line(checkpoints):
    rc, out, err = run(["sample", "--checkpoint", checkpoints / "ok.pt", "--temperature", "inf"])
    assert_one_line_error(rc, err, "temperature", "finite")
    assert out == ""


def test_cli_temperature_1e308_samples(checkpoints):
    rc, out, err = run(["sample", "--checkpoint", checkpoints / "ok.pt", "--temperature", "1e308",
                        "--length", "40", "--seed", "0"])
    assert rc == 0, err


@pytest.mark.parametrize("temperature", ["0", "0.8"])
def test_cli_nan_checkpoint_is_one_line(checkpoints, temperature):
    rc, out, err = run(["sample", "--checkpoint", checkpoints / "nan.pt", "--temperature", temperature,
                        "--prefix", "ab"])
    assert_one_line_error(rc, err, "nan logits", "weights are not finite")
    assert out == ""


# ------------------------------------------------- items 4, 15, 20: student
@pytest.fixture
def solved(tmp_path):
    """A folder of three small notebooks: a, b (one exercise) and c."""
    folder = tmp_path / "solved"
    folder.mkdir()
    nbformat.write(one_cell_notebook("a = 1", False), folder / "a.ipynb")
    nbformat.write(one_cell_notebook("def f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION", True),
                   folder / "b.ipynb")
    nbformat.write(one_cell_notebook("c = 3", False), folder / "c.ipynb")
    return folder


def test_student_refuses_to_overwrite_a_students_notebooks(solved, tmp_path):
    out = tmp_path / "student"
    out.mkdir()
    (out / "b.ipynb").write_text("edited by a student", encoding="utf-8")
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    rc, stdout, err = run(["student", "--notebooks", solved, "--out", out])
    assert_one_line_error(rc, err, "b.ipynb", "--overwrite")
    assert "a.ipynb" not in err and "notes.txt" not in err
    assert (out / "b.ipynb").read_text(encoding="utf-8") == "edited by a student"
    assert sorted(p.name for p in out.iterdir()) == ["b.ipynb", "notes.txt"]  # nothing written
    rc, stdout, err = run(["student", "--notebooks", solved, "--out", out, "--overwrite"])
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["a.ipynb", "b.ipynb", "c.ipynb", "notes.txt"]
    assert "NotImplementedError" in (out / "b.ipynb").read_text(encoding="utf-8")


BAD_NOTEBOOKS = {
    "empty-object": "{}",
    "no-cells": json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}),
    "not-json": "this is not a notebook",
    "empty-file": "",
    "schema-invalid": json.dumps({"cells": [{"cell_type": "code"}], "metadata": {}, "nbformat": 4,
                                  "nbformat_minor": 5}),
    "a-list": "[1, 2]",
}


@pytest.mark.parametrize("content", BAD_NOTEBOOKS.values(), ids=BAD_NOTEBOOKS.keys())
def test_a_bad_notebook_is_named_before_anything_is_written(solved, tmp_path, content):
    (solved / "b.ipynb").write_text(content, encoding="utf-8")
    out = tmp_path / "student"
    rc, stdout, err = run(["student", "--notebooks", solved, "--out", out])
    assert_one_line_error(rc, err, str(solved / "b.ipynb"))
    assert not out.exists() or not any(out.iterdir())


def test_an_undecodable_notebook_is_named(solved, tmp_path):
    (solved / "b.ipynb").write_bytes(b"\xff\xfe\x00garbage")
    rc, stdout, err = run(["student", "--notebooks", solved, "--out", tmp_path / "student"])
    assert_one_line_error(rc, err, str(solved / "b.ipynb"))


def test_nbgrader_failure_names_the_notebook(solved, tmp_path):
    """nbgrader's own error does not say which notebook it was working on."""
    nbformat.write(one_cell_notebook("# BEGIN SOLUTION\nc = 3\n", True), solved / "c.ipynb")
    out = tmp_path / "student"
    rc, stdout, err = run(["student", "--notebooks", solved, "--out", out])
    assert_one_line_error(rc, err, str(solved / "c.ipynb"), "no end solution")
    assert "a.ipynb" not in err and "b.ipynb" not in err
    assert not out.exists() or not any(out.iterdir())


def test_nothing_is_half_written(solved, tmp_path, monkeypatch):
    """A failure while writing the second notebook leaves the folder as it was."""
    from charrnn.course import student

    monkeypatch.setattr(student, "generate_assignment", lambda sources, root: list(sources))
    real, calls = student._write_compact, []

    def failing(nb, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(f"{dst}: disk full")
        real(nb, dst)

    monkeypatch.setattr(student, "_write_compact", failing)
    out = tmp_path / "student"
    out.mkdir()
    (out / "a.ipynb").write_text("old", encoding="utf-8")
    with pytest.raises(OSError, match="disk full"):
        student.make_student_versions(solved, out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["a.ipynb"]
    assert (out / "a.ipynb").read_text(encoding="utf-8") == "old"


def test_library_refuses_to_overwrite_by_default(solved, tmp_path):
    from charrnn.course.student import make_student_versions

    out = tmp_path / "student"
    out.mkdir()
    (out / "c.ipynb").write_text("edited", encoding="utf-8")
    with pytest.raises(ConfigError, match="c.ipynb.*overwrite"):
        make_student_versions(solved, out)
    assert (out / "c.ipynb").read_text(encoding="utf-8") == "edited"


def test_read_source_names_the_notebook_in_one_line(tmp_path):
    from charrnn.course.nbgrader_course import read_source

    path = tmp_path / "broken.ipynb"
    path.write_text(BAD_NOTEBOOKS["schema-invalid"], encoding="utf-8")
    with pytest.raises(DataError) as e:
        read_source(path)
    assert str(e.value).startswith(f"{path}: not a valid notebook") and "\n" not in str(e.value)


@pytest.mark.parametrize("seed", [2 ** 63, -1, 1.5, True])
def test_a_seed_out_of_range_is_a_config_error(model, vocab, seed):
    with pytest.raises(ConfigError, match="seed must be a whole number"):
        generate(model, vocab, "a", 5, seed=seed)


@pytest.mark.parametrize("command", [["sample", "--length", "5"],
                                     ["evaluate", "--word-temperatures", "1", "--limit", "2"]])
def test_cli_huge_seed_is_one_line(command, checkpoints):
    rc, _, err = run([command[0], "--checkpoint", checkpoints / "ok.pt", *command[1:], "--seed", str(10 ** 23)])
    assert_one_line_error(rc, err, "seed must be a whole number")
