"""Command line: ``python -m charrnn {demo,download,prepare,train,sample,evaluate,export,student,grade}``.

The flags of ``train`` and ``demo`` (and the data flags of ``prepare`` and
``evaluate``) are built from the fields of the configs in
:mod:`charrnn.config`: the flag is the field name with dashes, its help and
default are the field's, so no default is written twice. Every problem a
user can cause is reported as one line on stderr with exit status 2;
tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import time
import typing
import warnings
from pathlib import Path

import torch

from . import __version__
from .baselines import compressor_bits_per_char
from .batches import EncodedCorpus, LengthBatches, make_batches
from .checkpoint import (
    check_writable,
    load_checkpoint,
    load_model,
    model_from_checkpoint,
    resume_problem,
    save_checkpoint,
)
from .config import DataConfig, ModelConfig, TrainConfig
from .data import ReadStats, format_record, load_records, same_file, split_records, write_records
from .devices import device_to_resume_on, pick_device
from .errors import DISTRIBUTION, CharRNNError, CheckpointError, ConfigError, DataError, require
from .metrics import evaluate
from .model import CharRNN
from .pretrained import quantize_int8
from .sample import check_seed, generate_batch, stream_batch
from .training import Trainer
from .vocab import CharVocab
from .wordcheck import known_word_share, word_list, words

DEMO_STEPS = 800
DEMO_DEFAULTS = {"steps": DEMO_STEPS}  # demo's own defaults, over TrainConfig's
# train names each run anew (a run never replaces another); demo keeps replacing its own file,
# so `make demo` works every time and the next steps it prints name one path.
DEFAULT_OUT = {"train": "runs/charrnn-<cell>-<YYYYmmdd-HHMMSS>.pt", "demo": "runs/demo.pt"}
PREPARED_VAL_FRACTION = 0.01  # a prepared directory holds much more data: a smaller share is enough
PREPARE_DEFAULTS = {"val_fraction": PREPARED_VAL_FRACTION}
# Read at prepare time: a prepared directory already holds their outcome.
PREPARED_FIXED = ("categories", "limit", "sample", "val_fraction", "min_freq")
FINAL_EVAL_BATCHES = 200  # cap on the closing evaluation of a (large) prepared split
_COMPRESSOR_RECORDS = 20_000  # gzip/bz2/xz on more text than this takes minutes and memory
# The flag groups of `train` and `demo`: one per config.
CONFIG_GROUPS = (
    (DataConfig, "data", "which records, how they are split and batched"),
    (ModelConfig, "model", "the network; a resumed run keeps its checkpoint's model"),
    (TrainConfig, "optimisation", "how long, how fast, how often to check"),
)
NEXT_STEPS = """\
Next steps (after `source .venv/bin/activate` when you used make)
  make lab                      open the notebooks in JupyterLab (notebooks/)
  python -m charrnn sample --checkpoint {ckpt} --prefix "We propose" --temperature 0.8
  Real arXiv data: download the Kaggle snapshot (arxiv-metadata-oai-snapshot.json or the .zip)
  from https://www.kaggle.com/datasets/Cornell-University/arxiv, then
    python -m charrnn prepare arxiv.zip --out data/arxiv-small.jsonl --categories cs.LG --sample 20000
    python -m charrnn train --data data/arxiv-small.jsonl --cell lstm --num-layers 2 --hidden-size 512 \\
        --steps 5000 --out runs/arxiv.pt
  Run `python -m charrnn train --help` for every option."""


# ------------------------------------------------------------ flags from configs
def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _shown(value) -> str:
    """A default as the help text shows it: none, true/false, or the value."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _with_default(text: str, default) -> str:
    # argparse %-formats help strings: a literal % must be doubled
    return f"{text} (default: {_shown(default)})".replace("%", "%%")


def _typed_flags(args) -> dict[str, str]:
    """``{field name: the spelling the user typed}`` for every config flag on the command line."""
    return getattr(args, "typed_flags", {})


def _remember(namespace, dest: str, option_string: str | None) -> None:
    namespace.typed_flags = {**_typed_flags(namespace), dest: option_string}


class _Typed(argparse.Action):
    """Stores the value and remembers how the flag was spelled (``--clip``
    or ``--clip-norm``), so an error can name the flag the user wrote."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        _remember(namespace, self.dest, option_string)


class _TypedSwitch(argparse.BooleanOptionalAction):
    """``--amp``/``--no-amp``, remembering which was typed."""

    def __call__(self, parser, namespace, values, option_string=None):
        super().__call__(parser, namespace, values, option_string)
        _remember(namespace, self.dest, option_string)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _or_none(convert):
    """``convert``, but the word ``none`` gives None (``--eval-batches none``: all)."""
    def parse(text: str):
        return None if text.strip().lower() == "none" else convert(text)
    parse.__name__ = convert.__name__  # argparse names the type in "invalid int value"
    return parse


def _device_name(text: str) -> str:
    """argparse type of ``--device``: the name as typed. The command checks
    it with :func:`charrnn.devices.check_device`, whose error is one line
    naming the devices this machine has (argparse would add its usage)."""
    return text.strip()


def _seed(text: str) -> int | str:
    """argparse type of ``--seed``: an integer, or the text as typed, which
    :class:`DataConfig` refuses in one line naming the range (0 to 2**63 - 1)."""
    try:
        return int(text)
    except ValueError:
        return text


# Fields whose flag needs more than the type of the annotation.
_FLAG_TYPES = {"device": _device_name, "seed": _seed}


def _flag_type(name: str, hint):
    """The argparse type of a field: its annotation, ``X | None`` as X (or the word none)."""
    if name in _FLAG_TYPES:
        return _FLAG_TYPES[name]
    kinds = [k for k in typing.get_args(hint) if k is not type(None)] or [hint]
    optional = len(kinds) < len(typing.get_args(hint))
    return _or_none(kinds[0]) if optional and kinds[0] in (int, float) else kinds[0]


def add_config_flags(parser, cls, only: typing.Collection[str] | None = None,
                     base: dict | None = None) -> None:
    """Add a ``--field-name`` flag (and its old spellings) for each field of
    the config class ``cls``, so the command line never repeats a default:
    help, choices, type and the default shown all come from the field
    (``base`` overrides the default a command shows, as demo's steps).
    Flags default to ``SUPPRESS``: only what the user typed reaches
    :func:`config_from_args`. Fields without a default (``vocab_size``) are
    not flags."""
    hints = typing.get_type_hints(cls)
    base = base or {}
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING or (only is not None and f.name not in only):
            continue
        kwargs = {"dest": f.name, "default": argparse.SUPPRESS,
                  "help": _with_default(f.metadata["help"], base.get(f.name, f.default))}
        if hints[f.name] is bool:
            kwargs["action"] = _TypedSwitch
        else:
            kwargs.update(action=_Typed, type=_flag_type(f.name, hints[f.name]),
                          choices=f.metadata.get("choices"))
        parser.add_argument(_flag(f.name), *f.metadata.get("aliases", ()), **kwargs)


def config_from_args(cls, args, saved: dict | None = None, **fixed):
    """The ``cls`` config a command runs with: the flags the user typed, over
    ``saved`` (a resumed run's settings), over the command's own defaults
    (``demo``'s steps), over the dataclass defaults; ``fixed`` values (the
    ``vocab_size``) win. The one place a command line becomes a config, so
    the commands and the tests agree. A bad value is a one-line
    :class:`ConfigError` naming the flag as typed."""
    names = {f.name for f in dataclasses.fields(cls)}
    typed = {name: getattr(args, name) for name in _typed_flags(args) if name in names}
    values = {**getattr(args, "config_base", {}), **(saved or {}), **typed, **fixed}
    try:
        return cls.from_dict(values)
    except ConfigError as e:
        message = str(e)
        flag = _typed_flags(args).get(message.split(" ", 1)[0])
        raise ConfigError(f"{flag}: {message}" if flag else message) from None


# --------------------------------------------------------------------- helpers
def _load_split(config: DataConfig) -> tuple[list[str], list[str], ReadStats]:
    stats = ReadStats()
    records = load_records(config.data, categories=config.category_list, limit=config.limit,
                           sample=config.sample, seed=config.seed, stats=stats)
    train, val = split_records(records, config.val_fraction)
    return [format_record(r) for r in train], [format_record(r) for r in val], stats


def _prepared_corpora(config: DataConfig, args, saved_vocab: CharVocab | None):
    """``_training_corpora`` for a directory written by ``prepare --out DIR``."""
    from .scale.prepared import open_prepared

    ignored = [flag for name, flag in _typed_flags(args).items() if name in PREPARED_FIXED]
    if ignored:
        warnings.warn(f"{', '.join(ignored)} ignored: {config.data} was prepared with its own settings",
                      stacklevel=2)
    from .batches import capped_validation

    train_corpus, vocab, meta = open_prepared(config.data, "train")
    # no val split only when prepared with val_fraction 0; a damaged one is an error
    val_corpus = open_prepared(config.data, "val")[0] if meta["splits"]["val"]["records"] else None
    if saved_vocab is not None and saved_vocab.to_dict() != vocab.to_dict():
        raise CharRNNError(f"{config.data}: its vocabulary differs from the checkpoint's; resume on "
                           "the prepared data the run started with")
    summary = (f"{config.data}: {len(train_corpus):,} training / "
               f"{len(val_corpus) if val_corpus else 0:,} validation records")
    val_corpus, capped = capped_validation(val_corpus)
    return train_corpus, val_corpus, vocab, summary + (f"; {capped}" if capped else "")


def _training_corpora(config: DataConfig, args, saved_vocab: CharVocab | None):
    """``(train corpus, val corpus or None, vocab, summary line)`` from a
    JSON-lines file (the embedded corpus by default) or a prepared directory."""
    if config.data is not None and Path(config.data).is_dir():
        return _prepared_corpora(config, args, saved_vocab)
    train_texts, val_texts, stats = _load_split(config)
    # a resumed run keeps its vocabulary, whatever the data holds now
    vocab = saved_vocab or CharVocab.from_texts(train_texts, min_freq=config.min_freq)
    from .batches import capped_validation

    val_corpus, capped = capped_validation(EncodedCorpus.from_texts(val_texts, vocab) if val_texts else None)
    summary = f"{stats.summary()}\n{len(train_texts)} training / {len(val_texts)} validation records"
    return (EncodedCorpus.from_texts(train_texts, vocab), val_corpus, vocab,
            summary + (f"; {capped}" if capped else ""))


def _print_samples(model, vocab, seed: int, length: int = 240) -> None:
    print("\nSamples (each starts a new record: title ; abstract)")
    for label, temperature in (("greedy", 0.0), ("temperature 0.5", 0.5), ("temperature 1.0", 1.0)):
        text = generate_batch(model, vocab, "", 1, length, temperature, seed=seed)[0]
        print(f"  [{label}] {text}")


def _compare_compressors(texts: list[str], report) -> None:
    for name, bpc in compressor_bits_per_char(texts).items():
        print(f"{name:>6}: {bpc:.4f} bits/char  ({bpc / report.bits_per_char:.2f}x the model's)")


# -------------------------------------------------------------------- commands
def cmd_prepare(args) -> None:
    """``prepare``: read the big snapshot once, either into a prepared
    directory (streamed, memory stays flat) or into a smaller JSON-lines
    sample, so training never re-reads gigabytes of JSON."""
    config = config_from_args(DataConfig, args)
    typed = _typed_flags(args)
    if args.out.suffix.lower() == ".jsonl":  # a smaller JSON-lines sample, kept in memory
        for option in [typed.get("val_fraction"), typed.get("min_freq"), args.overwrite and "--overwrite"]:
            if option:
                raise CharRNNError(f"{option} is for a prepared directory; "
                                   f"{args.out} ends with .jsonl, which writes a JSON-lines sample")
        from .data import same_file

        if same_file(args.input, args.out):  # write_records would replace it with the sample
            raise DataError(f"{args.out}: is the input file; write the sample to another file")
        stats = ReadStats()
        records = load_records(args.input, categories=config.category_list, limit=config.limit,
                               sample=config.sample, seed=config.seed, stats=stats)
        count = write_records(records, args.out)
        print(stats.summary())
        print(f"wrote {count} records to {args.out}")
        return
    from .scale.prepared import prepare_dataset

    for option in ("sample", "seed"):
        if option in typed:
            raise CharRNNError(f"{typed[option]} is for a JSON-lines sample (--out FILE.jsonl); a prepared "
                               "directory holds every record (narrow it with --categories/--limit)")
    meta = prepare_dataset(args.input, args.out, categories=config.category_list, limit=config.limit,
                           val_fraction=config.val_fraction, min_freq=config.min_freq,
                           progress=not args.no_progress, overwrite=args.overwrite)
    splits = meta["splits"]
    print(f"{meta['source']['name']}: {meta['records']:,} records from {meta['lines']:,} lines, "
          f"{meta['malformed_lines']:,} malformed line(s) skipped, "
          f"{meta['filtered_out']:,} outside the category filter"
          + (f", {meta['long_lines']:,} line(s) over {meta['max_line_bytes'] >> 20} MB skipped"
             if meta.get("long_lines") else ""))
    for split in ("train", "val"):
        print(f"  {split:5s}: {splits[split]['records']:,} records, {splits[split]['tokens']:,} tokens")
    print(f"vocabulary: {meta['vocab_size']} tokens ({meta['dtype']} ids), "
          f"{meta['unknown_chars']:,} characters rarer than --min-freq {meta['settings']['min_freq']} "
          "became <unk>")
    print(f"wrote {args.out}")


def cmd_download(args) -> None:
    """``download``: fetch Kaggle's arxiv.zip with Kaggle's own client, or
    explain the setup it needs."""
    from .scale.download import download_snapshot

    path = download_snapshot(args.dir)
    print(f"downloaded {path}\nnext: python -m charrnn prepare {path} --out {args.dir / 'arxiv'}")


def _default_out(command: str, cell: str) -> Path:
    """``runs/charrnn-lstm-20260101-120000.pt`` (``-2``, ``-3``... within the
    same second): a name no earlier run holds; demo's own ``runs/demo.pt``."""
    if command == "demo":
        return Path(DEFAULT_OUT["demo"])
    base = Path("runs") / f"charrnn-{cell}-{time.strftime('%Y%m%d-%H%M%S')}"
    out, number = base.with_name(base.name + ".pt"), 1
    while out.exists():
        number += 1
        out = base.with_name(f"{base.name}-{number}.pt")
    return out


def _check_out(out: Path, overwrite: bool, replaceable: bool = False) -> Path:
    """Refuse, before any work, an ``--out`` that cannot be written or that
    would replace an existing file the user did not ask to replace."""
    check_writable(out)
    if out.exists() and not (overwrite or replaceable):
        raise CheckpointError(f"{out}: already exists; add --overwrite to replace it, or choose another --out")
    return out


def _run_out(args, ckpt: dict | None, model_config: ModelConfig | None) -> Path:
    """The checkpoint train/demo writes: ``--out``, else the ``--resume``d
    file (continuing into itself), else a new default name. Refuses a
    resume that cannot be exact (an export) and an ``--out`` that would
    replace another file without ``--overwrite``."""
    if ckpt is not None:
        lacks = resume_problem(ckpt)
        if lacks:
            raise CheckpointError(f"{args.resume}: cannot be resumed: it is an export ({lacks}), made for "
                                  "sampling; resume from the checkpoint it was exported from, or start a new run")
    if args.out is None and args.resume is not None:
        return _check_out(args.resume, args.overwrite, replaceable=True)
    if args.out is None:
        out = _default_out(args.command, model_config.cell)
        return _check_out(out, args.overwrite, replaceable=args.command == "demo")
    into_resumed = args.resume is not None and same_file(args.out, args.resume)
    return _check_out(args.out, args.overwrite, replaceable=into_resumed)


def _device_setting(args, ckpt: dict | None, config: TrainConfig) -> TrainConfig:
    """The device the run trains on, checked before any data is read: a
    typed ``--device`` always wins; a resumed run's saved device is only the
    default, replaced by ``auto`` (with a warning) on a machine without it,
    so a run trained on a GPU goes on on a laptop."""
    if ckpt is not None and "device" not in _typed_flags(args):
        config = dataclasses.replace(config, device=device_to_resume_on(config.device, args.resume))
    pick_device(config.device)  # one line naming the devices here, not an AssertionError later
    return config


def _stop_status(trainer, out: Path, is_main: bool) -> int:
    """0 for a finished run; 128 + the signal for a stopped one (130 for
    SIGINT, 143 for SIGTERM, as shells expect), so ``train && export`` does
    not go on with a half-trained model. One line says how to go on."""
    if not trainer.interrupted:
        return 0
    signum = trainer.stop_signal or signal.SIGINT
    if is_main:
        print(f"charrnn: stopped by {signal.Signals(signum).name} at step {trainer.step} of "
              f"{trainer.target_step}; checkpoint {out}; continue with: python -m charrnn train "
              f"--resume {out}", file=sys.stderr)
    return 128 + signum


def cmd_train(args) -> int:
    """``train`` and ``demo``. Also one rank of ``torchrun
    --nproc_per_node=N -m charrnn train``: every rank trains on its share of
    the batches, rank 0 alone prints and writes the checkpoint. The settings
    are checked before any data is read, so a typo fails at once."""
    from .scale.distributed import init_distributed

    ckpt = load_checkpoint(args.resume) if args.resume else None
    data_config = config_from_args(DataConfig, args, ckpt.get("data_config") if ckpt else None)
    train_config = config_from_args(TrainConfig, args, ckpt.get("train_config") if ckpt else None)
    train_config = _device_setting(args, ckpt, train_config)
    # vocab_size is known once the data is read; 1 stands in so the model flags are checked now
    model_config = None if ckpt else config_from_args(ModelConfig, args, vocab_size=1)
    args.out = _run_out(args, ckpt, model_config)  # checked now, not at the first save after training
    ctx = init_distributed(args.backend, train_config.device)
    try:
        with warnings.catch_warnings():
            if not ctx.is_main:
                warnings.simplefilter("ignore")  # rank 0 warns once for all
            status = _train(args, ctx, ckpt, (data_config, train_config, model_config))
        ctx.barrier()  # rank 0 may still be evaluating and sampling
        return status
    finally:
        ctx.cleanup()


def _train(args, ctx, ckpt, configs) -> int:
    data_config, train_config, model_config = configs
    say = print if ctx.is_main else (lambda *a, **k: None)
    saved_vocab = CharVocab.from_dict(ckpt["vocab"]) if ckpt else None
    train_corpus, val_corpus, vocab, summary = _training_corpora(data_config, args, saved_vocab)
    say(summary)
    out = Path(args.out)  # chosen and checked by cmd_train
    say(f"writing checkpoints to {out}")
    train_data = make_batches(train_corpus, data_config, ctx.rank, ctx.world_size)
    val_data = make_batches(val_corpus, data_config) if val_corpus is not None else None
    if ckpt:
        ignored = [flag for name, flag in _typed_flags(args).items() if name in ModelConfig.defaults()]
        if ignored:
            warnings.warn(f"{', '.join(ignored)} ignored: a resumed run keeps the model of {args.resume}",
                          stacklevel=2)
        trainer = Trainer.from_checkpoint(args.resume, train_data, val_data, config=train_config,
                                          checkpoint_path=out, context=ctx,
                                          data_config=data_config.to_dict())
        say(f"resuming {args.resume} at step {trainer.step} of {trainer.config.steps}")
    else:
        torch.manual_seed(data_config.seed)
        model = CharRNN(dataclasses.replace(model_config, vocab_size=len(vocab)))
        trainer = Trainer(model, vocab, train_data, val_data, train_config, checkpoint_path=out,
                          data_config=data_config.to_dict(), context=ctx)
    processes = f" x {ctx.world_size} processes ({ctx.backend})" if ctx.is_distributed else ""
    say(f"vocabulary of {len(vocab)} tokens; model: {trainer.model.config.cell}, "
        f"{trainer.model.num_parameters:,} parameters, device {trainer.device}{processes}")
    history = trainer.fit(progress=not args.no_progress)
    if ctx.is_main and not trainer.interrupted:  # a stopped run exits at once: one line, below
        _report_training(args, trainer, history, out, val_data, data_config)
    return _stop_status(trainer, out, ctx.is_main)


def _report_training(args, trainer, history, out: Path, val_data, data_config: DataConfig) -> None:
    print(f"finished at step {trainer.step}: "
          f"{history.chars_per_second:,.0f} characters/second; checkpoint {out}")
    if val_data is not None:
        prepared = data_config.data is not None and Path(data_config.data).is_dir()
        cap = FINAL_EVAL_BATCHES if prepared else None
        print(f"validation{f' (first {cap} batches)' if cap else ''}: "
              f"{evaluate(trainer.model, val_data, max_batches=cap)}")
    _print_samples(trainer.model, trainer.vocab, data_config.seed)
    if args.command == "demo":
        print("\n" + NEXT_STEPS.format(ckpt=out))


# sample's limits per run: a mistyped size fails at once instead of running
# for hours. With the pretrained LSTM a CPU writes about 1,000 characters a
# second, so the largest run takes about 20 minutes; the library allows more.
SAMPLE_MAX_LENGTH = 100_000
SAMPLE_MAX_N = 1_000
SAMPLE_MAX_CHARS = 1_000_000


def _check_sample_size(n: int, length: int) -> None:
    """Refuse ``-n``/``--length`` beyond sample's limits, saying how to go further."""
    if n < 0:
        raise ConfigError(f"-n must be 0 or more, got {n}")
    if length > SAMPLE_MAX_LENGTH:
        raise ConfigError(f"--length {length} is more than {SAMPLE_MAX_LENGTH:,} characters per sample; for a "
                          "longer text, run again with the end of this one as --prefix")
    if n > SAMPLE_MAX_N:
        raise ConfigError(f"-n {n} is more than {SAMPLE_MAX_N:,} samples per run; for more, run again "
                          "with another --seed")
    if n * length > SAMPLE_MAX_CHARS:
        raise ConfigError(f"-n {n} x --length {length} = {n * length:,} characters, more than {SAMPLE_MAX_CHARS:,} "
                          "per run; lower -n or --length, and run again with another --seed for more")


def cmd_sample(args) -> None:
    """``sample``: generate text from a checkpoint, seeded for reproducible
    output. The first sample is printed as it is written (the others follow
    at the end, since they grow together): a long run shows progress, and an
    interrupted one keeps the first sample's text so far."""
    _check_sample_size(args.n, args.length)
    if args.seed is not None:
        check_seed(args.seed)
    device = pick_device(args.device)
    if args.int8 and device.type != "cpu":
        raise ConfigError(f"--int8 is for generating on the CPU; on {device} leave it out")
    model, vocab = load_model(args.checkpoint, device)
    if args.int8:
        model = quantize_int8(model)
    blocks = stream_batch(model, vocab, args.prefix, args.n, args.length, args.temperature,
                          args.top_k, args.top_p, seed=args.seed)
    others: list[list[str]] = [[] for _ in range(args.n - 1)]
    with _one_thread_for_one_stream(device, args.n):
        for pieces in blocks:
            sys.stdout.write(pieces[0])
            sys.stdout.flush()
            for text, piece in zip(others, pieces[1:], strict=True):
                text.append(piece)
    print("".join("\n\n" + "".join(text) for text in others))  # the samples, blank lines between


@contextlib.contextmanager
def _one_thread_for_one_stream(device: torch.device, n: int):
    """One torch thread while a single sample is written on the CPU. Each
    step is a few small products that threads must meet after; when another
    program holds a core, a thread left waiting for it stalls every step. On
    2 cores with one kept busy the pretrained LSTM wrote 94 chars/s on 2
    threads and 293 on one; idle, one thread was as fast to within 10%
    (benchmarks/README.md). Batches keep torch's threads: they have real
    work to share."""
    if device.type != "cpu" or n != 1:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _evaluate_with_progress(args, model, corpus: EncodedCorpus, config: DataConfig):
    """The loss over every record, with a bar in characters: each record of
    n tokens scores n - 1 next-token targets. Records are batched with
    others of similar length (:class:`LengthBatches`), so little of the
    work goes to padding, whatever order the file holds them in."""
    return evaluate(model, LengthBatches(corpus, config.batch_size),
                    progress=not args.no_progress, total_chars=corpus.num_tokens - len(corpus))


def _evaluate_prepared(args, config: DataConfig, model, vocab) -> None:
    """``evaluate --data DIR`` on a prepared directory: its ids are scored as
    they are, so they must mean the same characters as the model's."""
    from .scale.prepared import open_prepared

    split = "train" if args.split == "train" else "val"
    if args.split == "all":
        print("note: a prepared directory is evaluated on its val split (use --split train for the other)")
    corpus, data_vocab, _ = open_prepared(config.data, split)
    if data_vocab != vocab:
        raise CharRNNError(f"{config.data}: its vocab.json ({len(data_vocab)} tokens) is not the "
                           f"checkpoint's vocabulary ({len(vocab)} tokens), so its ids mean other "
                           "characters; evaluate on the JSON file instead, or prepare the data again")
    if config.limit is not None and config.limit < len(corpus):
        corpus = EncodedCorpus(corpus.ids, corpus.offsets[:config.limit + 1])
    print(f"{config.data}: evaluating {len(corpus):,} records ({split} split, {corpus.num_tokens:,} tokens)")
    report = _evaluate_with_progress(args, model, corpus, config)
    print(f"{'model':>6}: {report}")
    if len(corpus) <= _COMPRESSOR_RECORDS:
        _compare_compressors([vocab.decode(corpus.record(i).tolist()) for i in range(len(corpus))], report)
    else:
        print(f"(compressor baselines skipped: more than {_COMPRESSOR_RECORDS:,} records; use --limit)")
    if args.word_temperatures:
        print("note: --word-temperatures needs the JSON file (the word list comes from its training text)")


def cmd_evaluate(args) -> None:
    """``evaluate``: a checkpoint's loss on a file in nats, bits/char and
    perplexity, beside general-purpose compressors as a baseline, and
    optionally how many generated words are real words."""
    if args.word_temperatures:
        check_seed(args.seed)  # before minutes of evaluation, not after
    model, vocab = load_model(args.checkpoint, pick_device(args.device))
    config = config_from_args(DataConfig, args)
    if config.data is not None and Path(config.data).is_dir():
        _evaluate_prepared(args, config, model, vocab)
        return
    stats = ReadStats()
    records = load_records(config.data, categories=config.category_list, limit=config.limit, stats=stats)
    reference = records  # the text the word check compares against
    if args.split != "all":
        train, val = split_records(records, config.val_fraction)
        records, reference = (val, train) if args.split == "val" else (train, train)
    # Sorted by length: the compressor baselines have always read them so.
    texts = sorted((format_record(r) for r in records), key=len)
    corpus = EncodedCorpus.from_texts(texts, vocab)
    print(f"{stats.summary()}; evaluating {len(texts)} records ({args.split})")
    report = _evaluate_with_progress(args, model, corpus, config)
    print(f"{'model':>6}: {report}")
    _compare_compressors(texts, report)
    if corpus.unknown_count:
        print(f"note: {corpus.unknown_count} characters were outside the model's vocabulary "
              "and were scored as <unk>")
    if args.word_temperatures:
        _word_check(args, model, vocab, reference)


def _word_check(args, model, vocab, reference: list[dict]) -> None:
    known = word_list(format_record(r) for r in reference)
    print(f"words of generated text found in the {len(known):,}-word list of "
          f"{'the training split' if args.split != 'all' else 'the file'} "
          f"({args.word_samples} samples of {args.word_length} characters each):")
    for temperature in args.word_temperatures:
        samples = generate_batch(model, vocab, "", args.word_samples, args.word_length,
                                 temperature, seed=args.seed)
        if not any(words(s) for s in samples):
            raise CharRNNError(f"the samples at temperature {temperature:g} contain no words to "
                               "look up; try a larger --word-length")
        print(f"  temperature {temperature:g}: {known_word_share(samples, known):.1%}")


def cmd_student(args) -> None:
    """``student``: exercise versions of the solved notebooks, solutions
    replaced by ``raise NotImplementedError``, for handing out."""
    require("nbformat", "course", "charrnn student")
    require("nbgrader", "course", "charrnn student")
    from .course.student import make_student_versions

    if not args.notebooks.is_dir():
        raise CharRNNError(f"{args.notebooks}: no such folder of notebooks")
    # refuses to write over the solved ones, or (without --overwrite) over a student's
    written = make_student_versions(args.notebooks, args.out, overwrite=args.overwrite)
    if not written:
        raise CharRNNError(f"{args.notebooks}: holds no .ipynb notebook")
    for path in written:
        print(f"wrote {path}")
    print(f"{len(written)} student notebook(s): solutions replaced by `raise NotImplementedError`, "
          "outputs, widget state and test markers removed")


def cmd_grade(args) -> None:
    """``grade``: autograde a folder of student submissions with nbgrader and
    write the points per exercise to a CSV."""
    require("nbformat", "course", "charrnn grade")
    require("nbgrader", "course", "charrnn grade")
    from .course.grading import grade_submissions

    if not args.notebooks.is_dir():
        raise CharRNNError(f"{args.notebooks}: no such folder of notebooks")
    rows = grade_submissions(args.submissions, args.out, args.notebooks, course_dir=args.course_dir)
    print(f"wrote {args.out}: {len(rows)} student(s), points per exercise, total and max")


def cmd_export(args) -> None:
    """``export``: a smaller checkpoint for sampling only (no optimizer
    state, optionally float16 weights), e.g. to ship with the package."""
    if same_file(args.out, args.checkpoint):
        raise CheckpointError(f"{args.out}: is the checkpoint it reads ({args.checkpoint}); an export drops "
                              "the optimizer state it needs to resume, so write the export to another --out")
    _check_out(args.out, args.overwrite)
    ckpt = load_checkpoint(args.checkpoint)
    model, vocab = model_from_checkpoint(ckpt)
    save_checkpoint(args.out, model, vocab, step=ckpt.get("step", 0), history=ckpt.get("history"),
                    train_config=ckpt.get("train_config"), data_config=ckpt.get("data_config"),
                    weights_dtype=torch.float16 if args.fp16 else None)
    print(f"wrote {args.out}: {model.num_parameters:,} parameters, "
          f"{Path(args.out).stat().st_size / 1e6:.1f} MB, no optimizer state")


# ---------------------------------------------------------------------- parser
def _prepare_parser(sub) -> None:
    text = ("encode a Kaggle arXiv file/zip once into a prepared directory for training "
            "(--out DIR), or cut it down to a smaller JSON-lines sample (--out FILE.jsonl)")
    p = sub.add_parser("prepare", help=text, description=text + (
        ". A directory holds train.bin/val.bin (token ids), their record offsets, vocab.json and "
        "meta.json; it is streamed, so memory stays flat even for the whole 4 GB snapshot."))
    p.add_argument("input", type=Path, metavar="SNAPSHOT",
                   help="arxiv-metadata-oai-snapshot.json, .jsonl, .gz or the Kaggle .zip")
    p.add_argument("--out", type=Path, required=True,
                   help="directory to write; a path ending in .jsonl writes a JSON-lines sample instead")
    add_config_flags(p, DataConfig, only=("categories", "limit"))
    g = p.add_argument_group("prepared directory (--out DIR)",
                             "on the full snapshot, raise --min-freq (e.g. 100) to keep rare characters out")
    add_config_flags(g, DataConfig, only=("val_fraction", "min_freq"), base=PREPARE_DEFAULTS)
    g.add_argument("--overwrite", action="store_true", help="replace a prepared directory already there")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("JSON-lines sample (--out FILE.jsonl)")
    add_config_flags(g, DataConfig, only=("sample", "seed"))
    p.set_defaults(func=cmd_prepare, config_base=PREPARE_DEFAULTS)


def _download_parser(sub) -> None:
    text = "download the arXiv snapshot (arxiv.zip) from Kaggle with Kaggle's client"
    p = sub.add_parser("download", help=text, description=text + (
        f"; needs `pip install '{DISTRIBUTION}[kaggle]'` and a Kaggle API token (KAGGLE_API_TOKEN, "
        "~/.kaggle/access_token, or a legacy ~/.kaggle/kaggle.json)"))
    p.add_argument("--dir", type=Path, default=Path("data"),
                   help=_with_default("folder to put arxiv.zip in", "data/"))
    p.set_defaults(func=cmd_download)


def _train_parser(sub, name: str) -> None:
    from .scale.distributed import BACKENDS  # a tuple of names: no torch.distributed yet

    demo = name == "demo"
    text = ("train a small model on the embedded corpus (about a minute on a CPU)" if demo
            else "train a model and write a checkpoint")
    p = sub.add_parser(name, help=text, description=text + (
        ". Every setting below is a field of charrnn.config (the flag is the field name); with "
        "--resume, the run's saved data and optimisation settings are kept unless a flag is typed."))
    base = DEMO_DEFAULTS if demo else {}
    for cls, title, description in CONFIG_GROUPS:
        add_config_flags(p.add_argument_group(title, description), cls, base=base)
    g = p.add_argument_group("run")
    g.add_argument("--out", type=Path, help=f"checkpoint to write (default: {DEFAULT_OUT[name]}; "
                                            "with --resume, the checkpoint resumed)")
    g.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out file (default: refuse; --resume X continues in X)")
    g.add_argument("--resume", type=Path, help="continue training from this checkpoint (default: none)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--backend", choices=BACKENDS, help="process-group backend under torchrun "
                   "(default: nccl on CUDA, gloo on the CPU)")
    p.set_defaults(func=cmd_train, config_base=base)


def _sample_parser(sub) -> None:
    text = "generate text from a checkpoint"
    p = sub.add_parser("sample", help=text, description=text + (
        "; several samples are generated as one batch, and --seed makes them reproducible"))
    p.add_argument("--checkpoint", type=Path, required=True, help="checkpoint to sample from")
    p.add_argument("--prefix", default="", help="text to continue (default: none, start a new record)")
    p.add_argument("-n", type=int, default=1, help=_with_default(
        f"number of samples, at most {SAMPLE_MAX_N:,} (and n x length at most {SAMPLE_MAX_CHARS:,})", 1))
    p.add_argument("--length", type=_non_negative_int, default=300,
                   help=_with_default(f"most new characters per sample, at most {SAMPLE_MAX_LENGTH:,}", 300))
    p.add_argument("--temperature", type=float, default=0.8,
                   help=_with_default("a finite number >= 0: below 1 safer, above 1 wilder, 0 greedy", 0.8))
    p.add_argument("--top-k", type=int, help="draw only from the k likeliest characters (default: none, all)")
    p.add_argument("--top-p", type=float, help="draw only from the likeliest characters whose probabilities "
                                               "add up to p, nucleus sampling (default: none, all)")
    p.add_argument("--seed", type=int, help="seed for reproducible samples (default: none, new each run)")
    p.add_argument("--device", type=_device_name, default="cpu",
                   help=_with_default("auto, cpu, cuda, cuda:1 or mps", "cpu"))
    p.add_argument("--int8", action="store_true",
                   help="CPU only: the LSTM/GRU and output weights in 8 bits (dynamic quantization), which "
                        "wrote about 3x faster with the pretrained LSTM for +0.006 bits/char (default: float32)")
    p.set_defaults(func=cmd_sample)


def _evaluate_parser(sub) -> None:
    text = "loss in nats, bits/char and perplexity of a checkpoint on a file"
    p = sub.add_parser("evaluate", help=text, description=text + (
        ", beside the bits/char of gzip, bz2 and xz on the same text; --word-temperatures adds the "
        "share of generated words found in the training text"))
    p.add_argument("--checkpoint", type=Path, required=True, help="checkpoint to evaluate")
    add_config_flags(p, DataConfig, only=("data", "categories", "limit", "val_fraction", "batch_size"))
    p.add_argument("--split", choices=("all", "val", "train"), default="all",
                   help=_with_default("which records of the file: all, or the train/val split by "
                                      "hashed id (--val-fraction)", "all"))
    p.add_argument("--device", type=_device_name, default="cpu",
                   help=_with_default("auto, cpu, cuda, cuda:1 or mps", "cpu"))
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("word check")
    g.add_argument("--word-temperatures", type=float, nargs="+", metavar="T",
                   help="also generate samples at these temperatures and report the share of their "
                        "words found in the training text (the train split with --split val) "
                        "(default: none, no word check)")
    g.add_argument("--word-samples", type=_positive_int, default=32,
                   help=_with_default("samples per temperature", 32))
    g.add_argument("--word-length", type=_positive_int, default=400,
                   help=_with_default("characters per sample", 400))
    g.add_argument("--seed", type=int, default=0, help=_with_default("seed of the samples", 0))
    p.set_defaults(func=cmd_evaluate)


def _export_parser(sub) -> None:
    text = "a smaller checkpoint for sampling only: no optimizer state, optionally float16 weights"
    p = sub.add_parser("export", help=text, description=text + (
        "; it samples and evaluates like the original but cannot be resumed"))
    p.add_argument("checkpoint", type=Path, help="checkpoint to read")
    p.add_argument("--out", type=Path, required=True, help="checkpoint to write")
    p.add_argument("--fp16", action="store_true", help="store the weights as float16 (half the size)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file (never the input)")
    p.set_defaults(func=cmd_export)


def _student_parser(sub) -> None:
    text = "write exercise versions of the notebooks for students"
    p = sub.add_parser("student", help=text, description=text + (
        ": the code between solution markers becomes `raise NotImplementedError`, outputs are cleared"))
    p.add_argument("--notebooks", type=Path, default=Path("notebooks"),
                   help=_with_default("folder of solved notebooks", "notebooks/"))
    p.add_argument("--out", type=Path, default=Path("student"),
                   help=_with_default("folder to write, not the --notebooks one", "student/"))
    p.add_argument("--overwrite", action="store_true",
                   help="replace notebooks already in --out (default: refuse, they may hold a student's work)")
    p.set_defaults(func=cmd_student)


def _grade_parser(sub) -> None:
    text = "grade a folder of submitted notebooks into a CSV of points (with nbgrader)"
    p = sub.add_parser("grade", help=text, description=text + (
        ": SUBMISSIONS holds one folder per student, named by the student's id, with the notebooks "
        "handed in under their original names; each notebook runs in a fresh kernel and every "
        "exercise whose check passes scores its points"))
    p.add_argument("submissions", type=Path, help="folder with one subfolder of notebooks per student")
    p.add_argument("--out", type=Path, default=Path("scores.csv"),
                   help=_with_default("CSV to write: one row per student, one column per exercise", "scores.csv"))
    p.add_argument("--notebooks", type=Path, default=Path("notebooks"),
                   help=_with_default("folder of solved notebooks (the answer key and the points)", "notebooks/"))
    p.add_argument("--course-dir", type=Path, default=None,
                   help="keep nbgrader's course folder here (gradebook.db, the executed notebooks with every "
                        "check's message); default: a temporary folder")
    p.set_defaults(func=cmd_grade)


def build_parser() -> argparse.ArgumentParser:
    """The ``charrnn`` parser, one small builder per command (the tests and
    the docs read it too)."""
    parser = argparse.ArgumentParser(prog="charrnn", description=(
        "Character-level RNN language models on arXiv titles + abstracts."))
    parser.add_argument("--version", action="version", version=f"charrnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _prepare_parser(sub)
    _download_parser(sub)
    _train_parser(sub, "train")
    _train_parser(sub, "demo")
    _sample_parser(sub)
    _evaluate_parser(sub)
    _export_parser(sub)
    _student_parser(sub)
    _grade_parser(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"charrnn: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """Run one command. A mistake the user can fix (a :class:`CharRNNError`,
    a file the operating system cannot open) is one line on stderr and exit
    status 2; any other exception is a bug and keeps its traceback. A
    command may return its own status: a training run stopped by SIGINT or
    SIGTERM returns 130 or 143 once its checkpoint is written."""
    args = build_parser().parse_args(argv)
    previous_format, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        status = args.func(args)
    except BrokenPipeError:  # output piped into `head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (CharRNNError, OSError) as e:
        print(f"charrnn: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("charrnn: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = previous_format
    return status or 0
