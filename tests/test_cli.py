"""The command line, run in-process through charrnn.cli.main (plus one
subprocess for ``python -m charrnn``)."""

from __future__ import annotations

import argparse
import gzip
import json
import re
import subprocess
import sys

import pytest
from helpers import TINY_RECORDS, assert_one_line_error, to_jsonl_bytes
from helpers import run_cli as run

import charrnn
from charrnn import load_checkpoint, load_records
from charrnn.cli import build_parser, main

# The validation records of the embedded corpus hold a character or two that
# the training records lack; that warning is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:.*not in the vocabulary:UserWarning")

TINY_TRAIN = ["--steps", "30", "--hidden-size", "32", "--embed-dim", "16", "--seq-len", "32",
              "--batch-size", "8", "--eval-every", "10", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny model trained on the embedded corpus through the CLI."""
    path = tmp_path_factory.mktemp("cli") / "x.pt"
    rc, out, err = run(["train", *TINY_TRAIN, "--out", path])
    return {"path": path, "rc": rc, "out": out, "err": err}


# --------------------------------------------------------------------- train
def test_train_writes_a_checkpoint(trained):
    assert trained["rc"] == 0, trained["err"]
    ckpt = load_checkpoint(trained["path"])
    assert ckpt["step"] == 30
    assert len(ckpt["history"]["train_loss"]) == 30
    assert ckpt["history"]["val_steps"] == [10, 20, 30]
    assert ckpt["model_config"]["hidden_size"] == 32 and ckpt["model_config"]["embed_dim"] == 16


def test_train_prints_loss_in_three_units_and_samples(trained):
    out = trained["out"]
    assert "nats" in out and "bits/char" in out and "perplexity" in out
    assert "Samples" in out
    for label in ("[greedy]", "[temperature 0.5]", "[temperature 1.0]"):
        assert label in out
    assert "finished at step 30" in out
    assert str(trained["path"]) in out


def test_train_resume_continues_to_more_steps(trained, tmp_path):
    resumed_path = tmp_path / "resumed.pt"
    rc, out, err = run(["train", "--resume", trained["path"], "--steps", "40", "--no-progress",
                        "--out", resumed_path])
    assert rc == 0, err
    assert "at step 30 of 40" in out
    ckpt = load_checkpoint(resumed_path)
    assert ckpt["step"] == 40
    first = load_checkpoint(trained["path"])
    assert ckpt["history"]["train_loss"][:30] == first["history"]["train_loss"]
    assert len(ckpt["history"]["train_loss"]) == 40
    assert first["step"] == 30  # the original checkpoint was not touched


def test_train_resume_reproduces_a_run_in_one_go(tmp_path):
    # the old spellings --hidden, --embed, --layers still work
    settings = ["--hidden", "16", "--embed", "8", "--layers", "2", "--dropout", "0.2", "--seq-len", "16",
                "--batch-size", "4", "--eval-every", "5", "--no-progress", "--device", "cpu"]
    one_go, half = tmp_path / "one_go.pt", tmp_path / "half.pt"
    assert run(["train", *settings, "--steps", "12", "--out", one_go])[0] == 0
    assert run(["train", *settings, "--steps", "6", "--out", half])[0] == 0
    assert run(["train", "--resume", half, "--steps", "12", "--no-progress"])[0] == 0
    a, b = load_checkpoint(one_go), load_checkpoint(half)
    assert b["step"] == 12
    assert a["model_config"]["hidden_size"] == 16 and a["model_config"]["num_layers"] == 2
    assert b["history"]["train_loss"] == a["history"]["train_loss"]


def test_train_with_record_batches_and_data_options(tmp_path, write_jsonl):
    data = write_jsonl(TINY_RECORDS * 3, "train.jsonl")
    out = tmp_path / "rec.pt"
    rc, stdout, err = run(["train", "--data", data, "--batching", "records", "--max-len", "40",
                           "--cell", "gru", "--hidden-size", "16", "--embed-dim", "8", "--steps", "4",
                           "--eval-every", "2", "--batch-size", "4", "--no-progress", "--device", "cpu",
                           "--categories", "cs", "--out", out])
    assert rc == 0, err
    ckpt = load_checkpoint(out)
    assert ckpt["data_config"]["batching"] == "records"
    assert ckpt["data_config"]["categories"] == "cs"
    assert ckpt["model_config"]["cell"] == "gru"
    assert "15 records from 36 lines" in stdout  # 5 cs records x 3


# --------------------------------------------------------------- sample/eval
def test_sample_prints_n_samples_with_the_prefix(trained, capsys):
    argv = ["sample", "--checkpoint", str(trained["path"]), "--prefix", "We", "-n", "3", "--length", "20",
            "--seed", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    samples = out.strip("\n").split("\n\n")
    assert len(samples) == 3
    assert all(s.startswith("We") and len(s) <= 22 for s in samples)
    assert main(argv) == 0
    assert capsys.readouterr().out == out  # seeded


def test_sample_greedy(trained, capsys):
    argv = ["sample", "--checkpoint", str(trained["path"]), "--temperature", "0", "--length", "30"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert main(argv) == 0
    assert capsys.readouterr().out == first


def test_sample_on_the_auto_device(trained, capsys):
    # "auto" is resolved (CUDA, then MPS, then the CPU) before the model is moved
    assert main(["sample", "--checkpoint", str(trained["path"]), "--length", "10", "--device", "auto"]) == 0
    assert capsys.readouterr().out.strip()


def test_sample_int8_writes_what_the_int8_model_writes(capsys):
    # --int8 is load_pretrained(int8=True)'s quantization for any checkpoint
    argv = ["sample", "--checkpoint", str(charrnn.pretrained_path()), "--prefix", "We propose",
            "--length", "30", "--seed", "3", "--int8"]
    assert main(argv) == 0
    model, vocab = charrnn.load_pretrained(int8=True)
    expected = charrnn.generate(model, vocab, "We propose", max_new_chars=30, temperature=0.8, seed=3)
    assert capsys.readouterr().out == expected + "\n"


@pytest.mark.parametrize("n, threads_while_writing", [(1, 1), (2, None)])
def test_one_sample_on_the_cpu_is_written_on_one_thread(trained, monkeypatch, capsys, n, threads_while_writing):
    # one stream: one thread while it is written, then the caller's count again;
    # a batch keeps torch's threads (None: whatever they were)
    import torch

    import charrnn.cli as cli

    seen = []
    real = cli.sample.stream_batch

    def watching(*args, **kwargs):
        for pieces in real(*args, **kwargs):
            seen.append(torch.get_num_threads())
            yield pieces

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        monkeypatch.setattr(cli.sample, "stream_batch", watching)
        argv = ["sample", "--checkpoint", str(trained["path"]), "-n", str(n), "--length", "20", "--seed", "1"]
        assert main(argv) == 0
        assert seen and set(seen) == {threads_while_writing or 2}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_sample_int8_off_the_cpu_is_refused_before_loading(monkeypatch, capsys):
    import torch

    import charrnn.cli as cli

    monkeypatch.setattr(cli.sample, "pick_device", lambda name: torch.device("cuda", 0))
    monkeypatch.setattr(cli.sample, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    argv = ["sample", "--checkpoint", str(charrnn.pretrained_path()), "--int8", "--device", "cuda"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--int8 is for generating on the CPU; on cuda:0 leave it out" in err


def test_evaluate_prints_the_report(trained, capsys):
    assert main(["evaluate", "--checkpoint", str(trained["path"]), "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert "evaluating" in out and "(val)" in out
    assert "nats" in out and "bits/char" in out and "perplexity" in out


def test_evaluate_shows_progress_in_characters(trained, capsys):
    """Evaluating a large file takes minutes: a bar in scored characters says
    how far it is (on stderr; --no-progress turns it off)."""
    import re

    assert main(["evaluate", "--checkpoint", str(trained["path"])]) == 0
    err = capsys.readouterr().err
    done = re.findall(r"evaluating: 100%.*?(\d+(?:\.\d+)?k?)/(\d+(?:\.\d+)?k?) ", err)
    assert done and done[-1][0] == done[-1][1], err[-300:]
    assert main(["evaluate", "--checkpoint", str(trained["path"]), "--no-progress"]) == 0
    assert "evaluating:" not in capsys.readouterr().err


def test_evaluate_reports_characters_outside_the_vocabulary(trained, write_jsonl, capsys):
    data = write_jsonl([{"id": "u", "title": "Ωμέγα", "abstract": "ΑΒΓ and plain text",
                         "categories": "math.CO"}])
    rc = main(["evaluate", "--checkpoint", str(trained["path"]), "--data", str(data)])
    assert rc == 0
    # Ω μ έ γ α Α Β Γ: the EncodedCorpus counts them (encoding itself is pure, it does not warn)
    assert "note: 8 characters were outside the model's vocabulary" in capsys.readouterr().out


# -------------------------------------------------------------------- prepare
def test_prepare_with_limit(tmp_path, capsys):
    out = tmp_path / "small.jsonl"
    assert main(["prepare", str(charrnn.default_corpus_path()), "--out", str(out), "--limit", "12"]) == 0
    records = load_records(out)
    assert [r["id"] for r in records] == [f"charrnn-{i:04d}" for i in range(1, 13)]
    assert set(records[0]) == {"id", "title", "abstract", "categories"}
    assert "wrote 12 records" in capsys.readouterr().out


def test_prepare_with_sample_and_categories(tmp_path, capsys):
    out = tmp_path / "small.jsonl"
    argv = ["prepare", str(charrnn.default_corpus_path()), "--out", str(out), "--categories", "cs,stat",
            "--sample", "7", "--seed", "3"]
    assert main(argv) == 0
    records = load_records(out)
    assert len(records) == 7
    for r in records:
        assert any(c.split(".")[0] in ("cs", "stat") for c in r["categories"].split())
    first = out.read_bytes()
    assert main(argv) == 0
    assert out.read_bytes() == first
    assert "wrote 7 records" in capsys.readouterr().out


def test_prepare_reads_a_gzip(tmp_path):
    source = tmp_path / "in.jsonl.gz"
    source.write_bytes(gzip.compress(to_jsonl_bytes(TINY_RECORDS)))
    out = tmp_path / "out.jsonl"
    assert run(["prepare", source, "--out", out])[0] == 0
    assert load_records(out) == TINY_RECORDS


def test_category_examples_in_the_help_select_records():
    # `train --help` gives examples for --categories ("e.g. cs.LG,stat.ML or
    # hep"); each must select records of the embedded corpus, which has
    # cs.*, stat.* and hep-* papers, and only records of that category/group.
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train = subcommands.choices["train"]
    help_text = next(a.help for a in train._actions if "--categories" in a.option_strings)
    listed = help_text.split("e.g.", 1)[1].split("(default:", 1)[0]
    examples = [e for e in re.findall(r"[a-z][a-z-]*(?:\.[A-Za-z-]+)?", listed) if e != "or"]
    assert examples, help_text
    for example in examples:
        records = load_records(categories=[example])
        assert records, example
        for r in records:
            assert any(c == example or c.startswith((example + ".", example + "-"))
                       for c in r["categories"].split()), (example, r["categories"])


# --------------------------------------------------------------------- errors
def test_missing_data_file_is_a_one_line_error(tmp_path, capsys):
    missing = tmp_path / "missing.jsonl"
    rc = main(["train", "--data", str(missing), *TINY_TRAIN, "--out", str(tmp_path / "x.pt")])
    assert_one_line_error(rc, capsys.readouterr().err, str(missing))
    assert not (tmp_path / "x.pt").exists()


def test_empty_data_file_is_a_one_line_error(tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    rc = main(["train", "--data", str(empty), *TINY_TRAIN, "--out", str(tmp_path / "x.pt")])
    assert_one_line_error(rc, capsys.readouterr().err, str(empty), "no usable record")


def test_malformed_data_file_is_a_one_line_error(tmp_path, write_jsonl, capsys):
    bad = write_jsonl(["{not json", "[1, 2", "still not json"], "bad.jsonl")
    with pytest.warns(UserWarning, match="malformed"):
        rc = main(["prepare", str(bad), "--out", str(tmp_path / "out.jsonl")])
    assert_one_line_error(rc, capsys.readouterr().err, str(bad))
    assert not (tmp_path / "out.jsonl").exists()


def test_truncated_gzip_is_a_one_line_error(tmp_path, capsys):
    blob = gzip.compress(to_jsonl_bytes(TINY_RECORDS * 20))
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(blob[:len(blob) // 2])
    rc = main(["prepare", str(cut), "--out", str(tmp_path / "out.jsonl")])
    assert_one_line_error(rc, capsys.readouterr().err, str(cut))


@pytest.mark.parametrize("fraction", [0.1, 0.5])
def test_truncated_checkpoint_is_a_one_line_error(trained, tmp_path, capsys, fraction):
    data = trained["path"].read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[:int(len(data) * fraction)])
    rc = main(["sample", "--checkpoint", str(cut)])
    assert_one_line_error(rc, capsys.readouterr().err, str(cut))


def test_missing_checkpoint_is_a_one_line_error(tmp_path, capsys):
    missing = tmp_path / "none.pt"
    rc = main(["evaluate", "--checkpoint", str(missing)])
    assert_one_line_error(rc, capsys.readouterr().err, str(missing))


def test_resume_from_a_non_checkpoint_is_a_one_line_error(tmp_path, capsys):
    fake = tmp_path / "fake.pt"
    fake.write_text(json.dumps({"not": "a checkpoint"}), encoding="utf-8")
    rc = main(["train", "--resume", str(fake), "--no-progress"])
    assert_one_line_error(rc, capsys.readouterr().err, str(fake))


@pytest.mark.parametrize("args,fragment", [
    (["--temperature", "-1"], "temperature"),
    (["--temperature", "nan"], "temperature"),
    (["--top-p", "1.5"], "top_p"),
    (["--top-k", "0"], "top_k"),
    (["--min-p", "1.5"], "--min-p: min_p"),
    (["-n", "-2"], "n"),
])
def test_invalid_sampling_arguments_are_one_line_errors(trained, capsys, args, fragment):
    rc = main(["sample", "--checkpoint", str(trained["path"]), *args])
    assert_one_line_error(rc, capsys.readouterr().err, fragment)


@pytest.mark.parametrize("args,fragment", [
    (["--dropout", "1.5"], "--dropout: dropout"),
    (["--val-fraction", "1.0"], "val_fraction"),
    (["--seq-len", "1000000"], "seq-len"),
    (["--clip", "-1"], "--clip: clip_norm"),
    (["--clip-norm", "-1"], "--clip-norm: clip_norm"),
    (["--num-layers", "0"], "--num-layers: num_layers"),
    (["--layers", "0"], "--layers: num_layers"),
    (["--eval-every", "0"], "--eval-every: eval_every"),
    (["--lr", "0"], "lr"),
])
def test_invalid_training_arguments_are_one_line_errors(tmp_path, capsys, args, fragment):
    argv = ["train", "--steps", "2", "--hidden-size", "8", "--embed-dim", "4", "--seq-len", "8",
            "--batch-size", "2", "--no-progress", "--device", "cpu", "--out", str(tmp_path / "x.pt"), *args]
    rc = main(argv)
    assert_one_line_error(rc, capsys.readouterr().err, fragment)


# ----------------------------------------------------------------------- help
@pytest.mark.parametrize("command", [[], ["prepare"], ["download"], ["train"], ["demo"], ["sample"],
                                     ["evaluate"], ["export"], ["student"]])
def test_help_of_every_command(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: charrnn")


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert charrnn.__version__ in capsys.readouterr().out


def test_missing_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "usage" in capsys.readouterr().err


def test_demo_runs_with_small_settings(tmp_path, capsys):
    out = tmp_path / "demo.pt"
    rc = main(["demo", "--steps", "3", "--hidden-size", "8", "--embed-dim", "4", "--seq-len", "16",
               "--batch-size", "4", "--no-progress", "--device", "cpu", "--out", str(out)])
    assert rc == 0
    assert "Next steps" in capsys.readouterr().out
    assert load_checkpoint(out)["step"] == 3


def test_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "charrnn", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: charrnn")
    for command in ("prepare", "train", "sample", "evaluate"):
        assert command in result.stdout


@pytest.mark.parametrize("command", ["student", "grade"])
@pytest.mark.parametrize("hidden", ["nbformat", "nbgrader"])
def test_a_missing_optional_dependency_is_one_line_naming_the_extra(command, hidden, tmp_path, monkeypatch, capsys):
    """No traceback: the command says which package is missing and which
    extra installs it."""
    monkeypatch.setitem(sys.modules, hidden, None)  # `import <hidden>` raises ModuleNotFoundError
    argv = [command, "--out", str(tmp_path / "out")] + ([str(tmp_path)] if command == "grade" else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"charrnn {command} needs {hidden}, which is not installed: pip install 'charrnn-course[course]'" in err


def test_a_broken_optional_dependency_names_what_it_lacks(tmp_path, monkeypatch):
    (tmp_path / "brokenpkg").mkdir()
    (tmp_path / "brokenpkg" / "__init__.py").write_text("import charrnn_test_missing_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(charrnn.MissingDependencyError, match="installed but cannot be imported: it needs "
                                                             "charrnn_test_missing_module"):
        charrnn.optional.require("brokenpkg", "course", "this test")
