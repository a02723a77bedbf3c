"""The command line built from charrnn.config: one source of defaults, a
flag (with help showing its default) for every setting, one-line errors
for user mistakes and tracebacks for bugs, and resumed runs that keep their
settings unless a flag says otherwise."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
from helpers import run_cli as run

from charrnn import cli, load_checkpoint
from charrnn.cli import DEMO_STEPS, build_parser, config_from_args, main
from charrnn.config import DataConfig, ModelConfig, TrainConfig

CONFIGS = (DataConfig, ModelConfig, TrainConfig)
# A run of a second or two on the CPU.
TINY = ["--hidden-size", "8", "--embed-dim", "4", "--seq-len", "16", "--batch-size", "4",
        "--eval-every", "2", "--eval-batches", "2", "--no-progress", "--device", "cpu"]


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def flags_of(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {option: a for a in parser._actions for option in a.option_strings}


def shown(value) -> str:
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def flag_fields(cls):
    return [f for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING]


# ------------------------------------------------------------ one source of defaults
@pytest.mark.parametrize("command", ["train", "demo"])
def test_no_flags_give_the_dataclass_defaults(command):
    args = build_parser().parse_args([command])
    assert config_from_args(DataConfig, args) == DataConfig()
    expected = TrainConfig(steps=DEMO_STEPS) if command == "demo" else TrainConfig()
    assert config_from_args(TrainConfig, args) == expected
    assert config_from_args(ModelConfig, args, vocab_size=57) == ModelConfig(vocab_size=57)
    # only what the user typed reaches the namespace
    names = {f.name for cls in CONFIGS for f in dataclasses.fields(cls)}
    assert not names & set(vars(args))


def test_typed_flags_and_old_spellings_reach_the_configs():
    args = build_parser().parse_args([
        "train", "--hidden", "12", "--layers", "3", "--embed", "5", "--clip", "0.5", "--warmup", "7",
        "--no-amp", "--eval-batches", "none", "--categories", "cs, hep", "--max-len", "40"])
    model = config_from_args(ModelConfig, args, vocab_size=10)
    assert (model.hidden_size, model.num_layers, model.embed_dim) == (12, 3, 5)
    train = config_from_args(TrainConfig, args)
    assert (train.clip_norm, train.warmup_steps, train.amp, train.eval_batches) == (0.5, 7, False, None)
    data = config_from_args(DataConfig, args)
    assert data.category_list == ["cs", "hep"] and data.max_len == 40
    args = build_parser().parse_args(["train", "--hidden-size", "12", "--amp", "--clip-norm", "0"])
    assert config_from_args(ModelConfig, args, vocab_size=10).hidden_size == 12
    assert config_from_args(TrainConfig, args).amp is True
    assert config_from_args(TrainConfig, args).clip_norm is None


def test_config_fields_and_run_flags_do_not_collide():
    names = [f.name for cls in CONFIGS for f in dataclasses.fields(cls)]
    assert len(names) == len(set(names))
    assert not set(names) & {"out", "resume", "no_progress", "backend", "command", "func"}


@pytest.mark.parametrize("command", ["train", "demo"])
def test_every_field_is_a_flag_whose_help_shows_its_default(command):
    parser = subparsers()[command]
    flags, text = flags_of(parser), parser.format_help()
    for cls in CONFIGS:
        for f in dataclasses.fields(cls):
            flag = "--" + f.name.replace("_", "-")
            if f.default is dataclasses.MISSING:  # vocab_size comes from the data
                assert flag not in flags
                continue
            assert flag in flags and flag in text, flag
            default = DEMO_STEPS if (command, f.name) == ("demo", "steps") else f.default
            assert f"(default: {shown(default)})" in flags[flag].help, (flag, flags[flag].help)
            assert f.metadata["help"] in flags[flag].help
            for alias in f.metadata.get("aliases", ()):
                assert flags[alias] is flags[flag]
    assert "--no-amp" in flags


def test_prepare_and_evaluate_reuse_the_data_fields():
    parsers = subparsers()
    prepare, evaluate = flags_of(parsers["prepare"]), flags_of(parsers["evaluate"])
    fields = {f.name: f for f in dataclasses.fields(DataConfig)}
    for name in ("categories", "limit", "sample", "seed", "min_freq"):
        assert fields[name].metadata["help"] in prepare["--" + name.replace("_", "-")].help
    assert f"(default: {cli.prepare.PREPARED_VAL_FRACTION})" in prepare["--val-fraction"].help
    assert "(default: 0.1)" in evaluate["--val-fraction"].help
    assert f"(default: {DataConfig().batch_size})" in evaluate["--batch-size"].help


def test_every_flag_of_every_command_has_help():
    parsers = subparsers()
    assert set(parsers) >= {"prepare", "download", "train", "demo", "sample", "evaluate", "export", "student"}
    for name, parser in parsers.items():
        assert parser.description, name
        for action in parser._actions:
            assert action.help and action.help.strip(), (name, action.option_strings or action.dest)


@pytest.mark.parametrize("command", ["sample", "evaluate", "download", "student"])
def test_defaults_are_shown(command):
    for action in subparsers()[command]._actions:
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS) \
                and action.dest != "help":
            assert "(default:" in action.help, (command, action.option_strings)


# ----------------------------------------------------------------------- errors
@pytest.mark.parametrize("args,expected", [
    (["--clip-norm", "-1"], "charrnn: error: --clip-norm: clip_norm must be positive"),
    (["--clip", "-1"], "charrnn: error: --clip: clip_norm must be positive"),
    (["--dropout", "1.5"], "charrnn: error: --dropout: dropout must be in [0, 1)"),
    (["--hidden", "0"], "charrnn: error: --hidden: hidden_size must be positive"),
    (["--batch-size", "0"], "charrnn: error: --batch-size: batch_size must be positive"),
])
def test_config_error_is_one_line_naming_the_flag(tmp_path, args, expected):
    rc, out, err = run(["train", *TINY, "--steps", "2", "--out", tmp_path / "x.pt", *args])
    assert rc == 2
    assert err.strip().splitlines() == [err.strip()], err
    assert err.startswith(expected), err
    assert "Traceback" not in err and not out  # checked before any data is read
    assert not (tmp_path / "x.pt").exists()


# (an unknown --device is one line naming the devices here: tests/test_hardening_training.py)
@pytest.mark.parametrize("argv", [["train", "--lr", "fast"],
                                  ["train", "--cell", "transformer"], ["sample", "--checkpoint", "x",
                                                                       "--length", "-1"]])
def test_malformed_flag_values_are_usage_errors(argv):
    rc, _, err = run(argv)
    assert rc == 2 and "usage:" in err and "Traceback" not in err


def test_student_into_its_own_folder_is_a_one_line_error(tmp_path):
    rc, _, err = run(["student", "--notebooks", tmp_path, "--out", tmp_path])
    assert rc == 2 and err.count("\n") == 1 and "another folder" in err


@pytest.mark.parametrize("error", [RuntimeError("bug"), ValueError("bug"), KeyError("bug")])
def test_a_bug_keeps_its_traceback(monkeypatch, error):
    def broken(args):
        raise error
    monkeypatch.setattr(cli.sample, "cmd_sample", broken)
    with pytest.raises(type(error)):
        main(["sample", "--checkpoint", "whatever.pt"])


def test_file_errors_are_one_line(monkeypatch, capsys):
    def denied(args):
        raise PermissionError(13, "Permission denied", "runs/x.pt")
    monkeypatch.setattr(cli.sample, "cmd_sample", denied)
    assert main(["sample", "--checkpoint", "whatever.pt"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("charrnn: error:") and "runs/x.pt" in err and err.count("\n") == 1


# ----------------------------------------------------------------------- resume
def test_resume_keeps_saved_settings_unless_a_flag_overrides_them(tmp_path):
    first, kept, changed = tmp_path / "first.pt", tmp_path / "kept.pt", tmp_path / "changed.pt"
    settings = ["--batching", "records", "--max-len", "40", "--seed", "3", "--val-fraction", "0.2",
                "--lr", "0.01", "--schedule", "cosine"]
    assert run(["train", *TINY, *settings, "--steps", "2", "--out", first])[0] == 0
    saved = load_checkpoint(first)

    rc, out, err = run(["train", "--resume", first, "--steps", "3", "--no-progress", "--out", kept])
    assert rc == 0, err
    ckpt = load_checkpoint(kept)
    assert {k: ckpt["data_config"][k] for k in DataConfig.defaults()} == \
        {k: saved["data_config"][k] for k in DataConfig.defaults()}
    assert ckpt["data_config"]["batching"] == "records" and ckpt["data_config"]["seed"] == 3
    assert ckpt["train_config"] == {**saved["train_config"], "steps": 3}

    with pytest.warns(UserWarning, match="--hidden-size ignored"):  # a resumed run keeps its model
        rc, out, err = run(["train", "--resume", kept, "--steps", "4", "--no-progress", "--out", changed,
                            "--batch-size", "2", "--lr", "0.002", "--hidden-size", "99"])
    assert rc == 0, err
    ckpt = load_checkpoint(changed)
    assert ckpt["data_config"]["batch_size"] == 2 and ckpt["data_config"]["max_len"] == 40
    assert ckpt["train_config"]["lr"] == 0.002 and ckpt["train_config"]["schedule"] == "cosine"
    assert ckpt["model_config"]["hidden_size"] == 8
