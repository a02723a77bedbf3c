"""``train`` and ``demo``: build the configs from the flags, read the
data, train, and report; also one rank of ``torchrun ... -m charrnn train``."""

from __future__ import annotations

import dataclasses
import signal
import sys
import time
import warnings
from pathlib import Path

import torch

from ..batches import make_batches
from ..checkpoint import load_checkpoint, resume_problem
from ..config import DataConfig, ModelConfig, TrainConfig
from ..corpus import Corpora, load_corpora
from ..data import is_plain_text, same_file
from ..devices import device_to_resume_on, pick_device
from ..errors import CheckpointError
from ..metrics import evaluate
from ..model import CharRNN
from ..sample import generate_batch
from ..scale.distributed import BACKENDS, init_distributed
from ..scale.prepared import prepared_corpora, read_meta
from ..training import Trainer
from ..vocab import CharVocab
from .flags import add_config_flags, check_out, config_from_args, typed_flags

DEMO_STEPS = 800
DEMO_DEFAULTS = {"steps": DEMO_STEPS}  # demo's own defaults, over TrainConfig's
# train names each run anew (a run never replaces another); demo keeps replacing its own file,
# so `make demo` works every time and the next steps it prints name one path.
DEFAULT_OUT = {"train": "runs/charrnn-<cell>-<YYYYmmdd-HHMMSS>.pt", "demo": "runs/demo.pt"}
# Read at prepare time: a prepared directory already holds their outcome.
PREPARED_FIXED = ("categories", "limit", "sample", "val_fraction", "min_freq", "text_records")
FINAL_EVAL_BATCHES = 200  # cap on the closing evaluation of a (large) prepared split
# The flag groups of `train` and `demo`: one per config.
CONFIG_GROUPS = (
    (DataConfig, "data", "which records, how they are split and batched"),
    (ModelConfig, "model", "the network; a resumed run keeps its checkpoint's model"),
    (TrainConfig, "optimisation", "how long, how fast, how often to check"),
)
# The demo's closing advice, by how charrnn was installed: a clone has the notebooks and `make lab`;
# a pip install gets the notebooks from `charrnn notebooks` (charrnn.course.student.write_notebooks).
NEXT_STEPS_CLONE = """\
Next steps (after `source .venv/bin/activate` when you used make)
  make lab                      open the notebooks in JupyterLab (notebooks/)
  python -m charrnn sample --checkpoint {ckpt} --prefix "We propose" --temperature 0.8
  notebooks/09_train_your_own.ipynb   the capstone: your own model on text you choose
"""
NEXT_STEPS_PIP = """\
Next steps
  python -m charrnn notebooks --out charrnn-notebooks   the course's notebooks, exercises to do
  pip install 'charrnn-course[notebooks]'; jupyter lab charrnn-notebooks   open them in JupyterLab
  python -m charrnn sample --checkpoint {ckpt} --prefix "We propose" --temperature 0.8
  charrnn-notebooks/09_train_your_own.ipynb   the capstone: your own model on text you choose
"""
NEXT_STEPS_BOTH = """\
  Real arXiv text, no account needed (arXiv's OAI-PMH interface; a few minutes):
    python -m charrnn download --source oai --set cs --limit 20000 --out data/oai-cs.jsonl
    python -m charrnn train --data data/oai-cs.jsonl --hidden-size 256 --steps 3000 --out runs/oai-cs.pt
  Your own text (a record per paragraph; --text-records lines for one per line):
    python -m charrnn train --data my_book.txt --out runs/my_book.pt
  The whole arXiv snapshot (Kaggle account): python -m charrnn download --dir data/
  Run `python -m charrnn train --help` for every option."""


def next_steps(ckpt: Path) -> str:
    """What the demo suggests next, in the words that work where charrnn is
    installed: ``make lab`` in a clone, ``charrnn notebooks`` after pip."""
    from ..course.student import in_a_clone

    return (NEXT_STEPS_CLONE if in_a_clone() else NEXT_STEPS_PIP).format(ckpt=ckpt) + NEXT_STEPS_BOTH


def add_train_parser(sub, name: str) -> None:
    """The ``train`` (or, with ``name="demo"``, ``demo``) command: a flag
    for every config field, grouped by config, and the run's own flags."""
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


def cmd_train(args) -> int:
    """``train`` and ``demo``. Also one rank of ``torchrun
    --nproc_per_node=N -m charrnn train``: every rank trains on its share of
    the batches, rank 0 alone prints and writes the checkpoint. The settings
    are checked before any data is read, so a typo fails at once."""
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
        ignored = [flag for name, flag in typed_flags(args).items() if name in ModelConfig.defaults()]
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


# ------------------------------------------------------------------ the data
def _training_corpora(config: DataConfig, args, saved_vocab: CharVocab | None) -> Corpora:
    """``(train corpus, val corpus or None, vocab, summary line)`` from a
    JSON-lines or plain-text file (the embedded corpus by default, read by
    :func:`charrnn.corpus.load_corpora`) or a prepared directory."""
    if config.data is not None and Path(config.data).is_dir():
        return _prepared_corpora(config, args, saved_vocab)
    return load_corpora(config, saved_vocab)  # a resumed run keeps its vocabulary


def _prepared_corpora(config: DataConfig, args, saved_vocab: CharVocab | None) -> Corpora:
    """:func:`_training_corpora` for a directory written by ``prepare --out DIR``."""
    ignored = [flag for name, flag in typed_flags(args).items() if name in PREPARED_FIXED]
    if ignored:
        warnings.warn(f"{', '.join(ignored)} ignored: {config.data} was prepared with its own settings",
                      stacklevel=2)
    return prepared_corpora(config.data, saved_vocab)


# ------------------------------------------------------- settings of the run
def _device_setting(args, ckpt: dict | None, config: TrainConfig) -> TrainConfig:
    """The device the run trains on, checked before any data is read: a
    typed ``--device`` always wins; a resumed run's saved device is only the
    default, replaced by ``auto`` (with a warning) on a machine without it,
    so a run trained on a GPU goes on on a laptop."""
    if ckpt is not None and "device" not in typed_flags(args):
        config = dataclasses.replace(config, device=device_to_resume_on(config.device, args.resume))
    pick_device(config.device)  # one line naming the devices here, not an AssertionError later
    return config


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
        return check_out(args.resume, args.overwrite, replaceable=True)
    if args.out is None:
        out = _default_out(args.command, model_config.cell)
        return check_out(out, args.overwrite, replaceable=args.command == "demo")
    into_resumed = args.resume is not None and same_file(args.out, args.resume)
    return check_out(args.out, args.overwrite, replaceable=into_resumed)


# ------------------------------------------------------------- the outcome
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


def _report_training(args, trainer, history, out: Path, val_data, data_config: DataConfig) -> None:
    print(f"finished at step {trainer.step}: "
          f"{history.chars_per_second:,.0f} characters/second; checkpoint {out}")
    if val_data is not None:
        prepared = data_config.data is not None and Path(data_config.data).is_dir()
        cap = FINAL_EVAL_BATCHES if prepared else None
        print(f"validation{f' (first {cap} batches)' if cap else ''}: "
              f"{evaluate(trainer.model, val_data, max_batches=cap)}")
    _print_samples(trainer.model, trainer.vocab, data_config.seed, _record_kind(data_config))
    if args.command == "demo":
        print("\n" + next_steps(out))


def _record_kind(config: DataConfig) -> str:
    """What a record of the run's data is, for the samples' heading."""
    if config.data is not None and Path(config.data).is_dir():
        text_records = read_meta(config.data)["settings"].get("text_records")
    else:
        text_records = config.text_records if config.data is not None and is_plain_text(config.data) else None
    return {"paragraphs": "a paragraph", "lines": "a line"}.get(text_records, "title ; abstract")


def _print_samples(model, vocab, seed: int, record_kind: str = "title ; abstract", length: int = 240) -> None:
    print(f"\nSamples (each starts a new record: {record_kind})")
    for label, temperature in (("greedy", 0.0), ("temperature 0.5", 0.5), ("temperature 1.0", 1.0)):
        text = generate_batch(model, vocab, "", 1, length, temperature, seed=seed)[0]
        print(f"  [{label}] " + text.replace("\n", "\n    "))  # a text's own lines, indented under it
