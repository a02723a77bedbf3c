"""Command line: ``python -m charrnn {demo,download,prepare,train,sample,evaluate,export,student}``.

Every problem a user can cause is reported as one line on stderr with a
non-zero exit status; tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import torch

from . import __version__
from .batches import EncodedCorpus, RecordBatches, WindowBatches
from .baselines import compressor_bits_per_char
from .checkpoint import load_checkpoint, load_model, model_from_checkpoint, save_checkpoint
from .data import ReadStats, format_record, load_records, split_records, write_records
from .distributed import BACKENDS, init_distributed
from .errors import CharRNNError, DataError
from .metrics import evaluate
from .model import CELLS, CharRNN, ModelConfig
from .sample import generate_batch
from .training import TrainConfig, Trainer
from .vocab import CharVocab
from .wordcheck import known_word_share, word_list

# Data settings are saved in the checkpoint so --resume rebuilds the same
# batches; None on the command line means "from the checkpoint, else this".
DATA_DEFAULTS = {
    "data": None, "categories": None, "limit": None, "sample": None, "val_fraction": 0.1,
    "min_freq": 1, "batching": "windows", "batch_size": 32, "seq_len": 128, "max_len": None,
    "seed": 0,
}
DEMO_STEPS = 800
NEXT_STEPS = """\
Next steps (after `source .venv/bin/activate` when you used make)
  make lab                      open the notebooks in JupyterLab (notebooks/)
  python -m charrnn sample --checkpoint {ckpt} --prefix "We propose" --temperature 0.8
  Real arXiv data: download the Kaggle snapshot (arxiv-metadata-oai-snapshot.json or the .zip)
  from https://www.kaggle.com/datasets/Cornell-University/arxiv, then
    python -m charrnn prepare arxiv.zip --out data/arxiv-small.jsonl --categories cs.LG --sample 20000
    python -m charrnn train --data data/arxiv-small.jsonl --cell lstm --layers 2 --hidden 512 \\
        --steps 5000 --out runs/arxiv.pt
  Run `python -m charrnn train --help` for every option."""


# --------------------------------------------------------------------- helpers
def _categories(text: str | None) -> list[str] | None:
    return [c for c in text.split(",") if c.strip()] if text else None


def _load_split(settings: dict) -> tuple[list[str], list[str], ReadStats]:
    stats = ReadStats()
    records = load_records(settings["data"], categories=_categories(settings["categories"]),
                           limit=settings["limit"], sample=settings["sample"],
                           seed=settings["seed"], stats=stats)
    train, val = split_records(records, settings["val_fraction"])
    return [format_record(r) for r in train], [format_record(r) for r in val], stats


def _batcher(corpus: EncodedCorpus, settings: dict, seed: int, rank: int = 0, world_size: int = 1):
    if settings["batching"] == "records":
        return RecordBatches(corpus, settings["batch_size"], settings["max_len"], seed=seed,
                             rank=rank, world_size=world_size)
    return WindowBatches(corpus, settings["batch_size"], settings["seq_len"], seed=seed,
                         rank=rank, world_size=world_size)


# Read at prepare time: a prepared directory already holds their outcome.
PREPARED_FIXED = ("categories", "limit", "sample", "val_fraction", "min_freq")
FINAL_EVAL_BATCHES = 200  # cap on the closing evaluation of a (large) prepared split


def _training_corpora(settings: dict, args, saved_vocab: CharVocab | None):
    """``(train corpus, val corpus or None, vocab, summary line)`` from a
    JSON-lines file (the embedded corpus by default) or a prepared directory."""
    data = settings["data"]
    if data is not None and Path(data).is_dir():
        from .prepared import open_prepared

        ignored = [f"--{k.replace('_', '-')}" for k in PREPARED_FIXED if getattr(args, k, None) is not None]
        if ignored:
            warnings.warn(f"{', '.join(ignored)} ignored: {data} was prepared with its own settings")
        train_corpus, vocab, meta = open_prepared(data, "train")
        try:
            val_corpus = open_prepared(data, "val")[0]
        except DataError:  # prepared with val_fraction 0
            val_corpus = None
        if saved_vocab is not None and saved_vocab.to_dict() != vocab.to_dict():
            raise CharRNNError(f"{data}: its vocabulary differs from the checkpoint's; resume on "
                               "the prepared data the run started with")
        summary = (f"{data}: {len(train_corpus):,} training / "
                   f"{len(val_corpus) if val_corpus else 0:,} validation records")
        return train_corpus, val_corpus, vocab, summary
    train_texts, val_texts, stats = _load_split(settings)
    # a resumed run keeps its vocabulary, whatever the data holds now
    vocab = saved_vocab or CharVocab.from_texts(train_texts, min_freq=settings["min_freq"])
    val_corpus = EncodedCorpus.from_texts(val_texts, vocab) if val_texts else None
    summary = f"{stats.summary()}\n{len(train_texts)} training / {len(val_texts)} validation records"
    return EncodedCorpus.from_texts(train_texts, vocab), val_corpus, vocab, summary


def _print_samples(model, vocab, seed: int, length: int = 240) -> None:
    print("\nSamples (each starts a new record: title ; abstract)")
    for label, temperature in (("greedy", 0.0), ("temperature 0.5", 0.5), ("temperature 1.0", 1.0)):
        text = generate_batch(model, vocab, "", 1, length, temperature, seed=seed)[0]
        print(f"  [{label}] {text}")


# -------------------------------------------------------------------- commands
def cmd_prepare(args) -> None:
    if args.out.suffix.lower() == ".jsonl":  # a smaller JSON-lines sample, kept in memory
        for option in ("val_fraction", "min_freq", "overwrite"):
            if getattr(args, option) not in (None, False):
                raise CharRNNError(f"--{option.replace('_', '-')} is for a prepared directory; "
                                   f"{args.out} ends with .jsonl, which writes a JSON-lines sample")
        stats = ReadStats()
        records = load_records(args.input, categories=_categories(args.categories), limit=args.limit,
                               sample=args.sample, seed=args.seed or 0, stats=stats)
        count = write_records(records, args.out)
        print(stats.summary())
        print(f"wrote {count} records to {args.out}")
        return
    from .prepared import prepare_dataset

    for option in ("sample", "seed"):
        if getattr(args, option) is not None:
            raise CharRNNError(f"--{option} is for a JSON-lines sample (--out FILE.jsonl); a prepared "
                               "directory holds every record (narrow it with --categories/--limit)")
    meta = prepare_dataset(args.input, args.out, categories=_categories(args.categories),
                           limit=args.limit,
                           val_fraction=0.01 if args.val_fraction is None else args.val_fraction,
                           min_freq=args.min_freq or 1, progress=not args.no_progress,
                           overwrite=args.overwrite)
    splits = meta["splits"]
    print(f"{meta['source']['name']}: {meta['records']:,} records from {meta['lines']:,} lines, "
          f"{meta['malformed_lines']:,} malformed line(s) skipped, "
          f"{meta['filtered_out']:,} outside the category filter")
    for split in ("train", "val"):
        print(f"  {split:5s}: {splits[split]['records']:,} records, {splits[split]['tokens']:,} tokens")
    print(f"vocabulary: {meta['vocab_size']} tokens ({meta['dtype']} ids), "
          f"{meta['unknown_chars']:,} characters rarer than --min-freq {meta['settings']['min_freq']} "
          "became <unk>")
    print(f"wrote {args.out}")


def cmd_download(args) -> None:
    from .download import download_snapshot

    path = download_snapshot(args.dir)
    print(f"downloaded {path}\nnext: python -m charrnn prepare {path} --out {args.dir / 'arxiv'}")


def cmd_train(args, demo: bool = False) -> None:
    """Also one rank of ``torchrun --nproc_per_node=N -m charrnn train``:
    every rank trains on its share of the batches, rank 0 alone prints and
    writes the checkpoint."""
    ctx = init_distributed(args.backend, args.device)
    try:
        with warnings.catch_warnings():
            if not ctx.is_main:
                warnings.simplefilter("ignore")  # rank 0 warns once for all
            _train(args, demo, ctx)
        ctx.barrier()  # rank 0 may still be evaluating and sampling
    finally:
        ctx.cleanup()


def _train(args, demo: bool, ctx) -> None:
    say = print if ctx.is_main else (lambda *a, **k: None)
    ckpt = load_checkpoint(args.resume) if args.resume else None
    saved = ckpt.get("data_config", {}) if ckpt else {}
    settings = {k: (getattr(args, k) if getattr(args, k) is not None else saved.get(k, default))
                for k, default in DATA_DEFAULTS.items()}
    if settings["data"] is not None:
        settings["data"] = str(settings["data"])
    saved_vocab = CharVocab.from_dict(ckpt["vocab"]) if ckpt else None
    train_corpus, val_corpus, vocab, summary = _training_corpora(settings, args, saved_vocab)
    say(summary)
    out = Path(args.out or args.resume or ("runs/demo.pt" if demo else "runs/charrnn.pt"))
    train_data = _batcher(train_corpus, settings, settings["seed"], ctx.rank, ctx.world_size)
    val_data = _batcher(val_corpus, settings, settings["seed"]) if val_corpus is not None else None

    if ckpt:
        overrides = {k: getattr(args, k) for k in ("steps", "lr", "eval_every") if getattr(args, k) is not None}
        trainer = Trainer.from_checkpoint(args.resume, train_data, val_data, checkpoint_path=out,
                                          context=ctx, **overrides)
        trainer.data_config = settings
        say(f"resuming {args.resume} at step {trainer.step} of {trainer.config.steps}")
    else:
        torch.manual_seed(settings["seed"])
        model = CharRNN(ModelConfig(vocab_size=len(vocab), cell=args.cell, embed_dim=args.embed,
                                    hidden_size=args.hidden, num_layers=args.layers,
                                    dropout=args.dropout))
        config = TrainConfig(steps=args.steps or (DEMO_STEPS if demo else 1000),
                             lr=3e-3 if args.lr is None else args.lr,
                             clip_norm=None if args.clip == 0 else args.clip,
                             schedule=args.schedule, warmup_steps=args.warmup,
                             eval_every=args.eval_every or 100, device=args.device, amp=not args.no_amp)
        trainer = Trainer(model, vocab, train_data, val_data, config, checkpoint_path=out,
                          data_config=settings, context=ctx)
    processes = f" x {ctx.world_size} processes ({ctx.backend})" if ctx.is_distributed else ""
    say(f"vocabulary of {len(vocab)} tokens; model: {trainer.model.config.cell}, "
        f"{trainer.model.num_parameters:,} parameters, device {trainer.device}{processes}")
    history = trainer.fit(progress=not args.no_progress)
    if not ctx.is_main:
        return
    print(f"{'stopped' if trainer.interrupted else 'finished'} at step {trainer.step}: "
          f"{history.chars_per_second:,.0f} characters/second; checkpoint {out}")
    if val_data is not None:
        prepared = settings["data"] is not None and Path(settings["data"]).is_dir()
        cap = FINAL_EVAL_BATCHES if prepared else None
        print(f"validation{f' (first {cap} batches)' if cap else ''}: "
              f"{evaluate(trainer.model, val_data, max_batches=cap)}")
    _print_samples(trainer.model, vocab, settings["seed"])
    if demo:
        print("\n" + NEXT_STEPS.format(ckpt=out))
    if trainer.interrupted:
        print(f"Continue with: python -m charrnn train --resume {out}")


def cmd_sample(args) -> None:
    model, vocab = load_model(args.checkpoint, args.device)
    texts = generate_batch(model, vocab, args.prefix, args.n, args.length, args.temperature,
                           args.top_k, args.top_p, seed=args.seed)
    print("\n\n".join(texts))


def _evaluate_prepared(args, model, vocab) -> None:
    """``evaluate --data DIR`` on a prepared directory: its ids are scored as
    they are, so they must mean the same characters as the model's."""
    from .prepared import open_prepared

    split = "train" if args.split == "train" else "val"
    if args.split == "all":
        print("note: a prepared directory is evaluated on its val split (use --split train for the other)")
    corpus, data_vocab, _ = open_prepared(args.data, split)
    if data_vocab != vocab:
        raise CharRNNError(f"{args.data}: its vocab.json ({len(data_vocab)} tokens) is not the checkpoint's "
                           f"vocabulary ({len(vocab)} tokens), so its ids mean other characters; evaluate on "
                           "the JSON file instead, or prepare the data again")
    if args.limit is not None and args.limit < len(corpus):
        corpus = EncodedCorpus(corpus.ids, corpus.offsets[:args.limit + 1])
    print(f"{args.data}: evaluating {len(corpus):,} records ({split} split, {corpus.num_tokens:,} tokens)")
    report = evaluate(model, RecordBatches(corpus, args.batch_size, shuffle=False))
    print(f"{'model':>6}: {report}")
    if len(corpus) <= _COMPRESSOR_RECORDS:
        texts = [vocab.decode(corpus.record(i).tolist()) for i in range(len(corpus))]
        for name, bpc in compressor_bits_per_char(texts).items():
            print(f"{name:>6}: {bpc:.4f} bits/char  ({bpc / report.bits_per_char:.2f}x the model's)")
    else:
        print(f"(compressor baselines skipped: more than {_COMPRESSOR_RECORDS:,} records; use --limit)")
    if args.word_temperatures:
        print("note: --word-temperatures needs the JSON file (the word list comes from its training text)")


_COMPRESSOR_RECORDS = 20_000  # gzip/bz2/xz on more text than this takes minutes and memory


def cmd_evaluate(args) -> None:
    model, vocab = load_model(args.checkpoint, args.device)
    if args.data is not None and args.data.is_dir():
        _evaluate_prepared(args, model, vocab)
        return
    stats = ReadStats()
    records = load_records(args.data, categories=_categories(args.categories), limit=args.limit,
                           stats=stats)
    reference = records  # the text the word check compares against
    if args.split != "all":
        train, val = split_records(records, args.val_fraction)
        records, reference = (val, train) if args.split == "val" else (train, train)
    # Similar lengths side by side: less padding, same result.
    texts = sorted((format_record(r) for r in records), key=len)
    corpus = EncodedCorpus.from_texts(texts, vocab)
    print(f"{stats.summary()}; evaluating {len(texts)} records ({args.split})")
    report = evaluate(model, RecordBatches(corpus, args.batch_size, shuffle=False))
    print(f"{'model':>6}: {report}")
    for name, bpc in compressor_bits_per_char(texts).items():
        print(f"{name:>6}: {bpc:.4f} bits/char  ({bpc / report.bits_per_char:.2f}x the model's)")
    if vocab.unknown_count:
        print(f"note: {vocab.unknown_count} characters were outside the model's vocabulary "
              "and were scored as <unk>")
    if args.word_temperatures:
        known = word_list(format_record(r) for r in reference)
        print(f"words of generated text found in the {len(known):,}-word list of "
              f"{'the training split' if args.split != 'all' else 'the file'} "
              f"({args.word_samples} samples of {args.word_length} characters each):")
        for temperature in args.word_temperatures:
            samples = generate_batch(model, vocab, "", args.word_samples, args.word_length,
                                     temperature, seed=args.seed)
            print(f"  temperature {temperature:g}: {known_word_share(samples, known):.1%}")


def cmd_student(args) -> None:
    from .student import make_student_versions

    if not args.notebooks.is_dir():
        raise CharRNNError(f"{args.notebooks}: no such folder of notebooks")
    written = make_student_versions(args.notebooks, args.out)
    if not written:
        raise CharRNNError(f"{args.notebooks}: holds no .ipynb notebook")
    for path in written:
        print(f"wrote {path}")
    print(f"{len(written)} student notebook(s): solutions replaced by `raise NotImplementedError`, "
          "outputs cleared")


def cmd_export(args) -> None:
    ckpt = load_checkpoint(args.checkpoint)
    model, vocab = model_from_checkpoint(ckpt)
    save_checkpoint(args.out, model, vocab, step=ckpt.get("step", 0), history=ckpt.get("history"),
                    train_config=ckpt.get("train_config"), data_config=ckpt.get("data_config"),
                    weights_dtype=torch.float16 if args.fp16 else None)
    print(f"wrote {args.out}: {model.num_parameters:,} parameters, "
          f"{Path(args.out).stat().st_size / 1e6:.1f} MB, no optimizer state")


# ---------------------------------------------------------------------- parser
def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _add_data_args(p, with_sampling: bool = True) -> None:
    p.add_argument("--data", type=Path, help="arXiv JSON lines (.json/.jsonl/.gz/.zip) or a directory "
                   "written by `prepare --out DIR`; default: the embedded corpus")
    p.add_argument("--categories", help="comma-separated category filter, e.g. cs.LG,stat.ML or hep")
    p.add_argument("--limit", type=_positive_int, help="read at most this many records")
    if with_sampling:
        p.add_argument("--sample", type=_positive_int, help="seeded random sample of this many records")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="charrnn", description=(
        "Character-level RNN language models on arXiv titles + abstracts."))
    parser.add_argument("--version", action="version", version=f"charrnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    text = ("encode a Kaggle arXiv file/zip once into a prepared directory for training "
            "(--out DIR), or cut it down to a smaller JSON-lines sample (--out FILE.jsonl)")
    p = sub.add_parser("prepare", help=text, description=text + (
        ". A directory holds train.bin/val.bin (token ids), their record offsets, vocab.json and "
        "meta.json; it is streamed, so memory stays flat even for the whole 4 GB snapshot."))
    p.add_argument("input", type=Path, metavar="SNAPSHOT",
                   help="arxiv-metadata-oai-snapshot.json, .jsonl, .gz or the Kaggle .zip")
    p.add_argument("--out", type=Path, required=True,
                   help="directory to write; a path ending in .jsonl writes a JSON-lines sample instead")
    p.add_argument("--categories", help="comma-separated category filter, e.g. cs.LG,stat.ML")
    p.add_argument("--limit", type=_positive_int, help="read at most this many records")
    g = p.add_argument_group("prepared directory (--out DIR)")
    g.add_argument("--val-fraction", type=float, help="share of records held out, by hashed id (default 0.01)")
    g.add_argument("--min-freq", type=_positive_int,
                   help="characters seen fewer times become <unk> (default 1; e.g. 100 on the full snapshot)")
    g.add_argument("--overwrite", action="store_true", help="replace a prepared directory already there")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("JSON-lines sample (--out FILE.jsonl)")
    g.add_argument("--sample", type=_positive_int, help="seeded random sample of this many records")
    g.add_argument("--seed", type=int, help="seed of the sample (default 0)")
    p.set_defaults(func=cmd_prepare)

    text = "download the arXiv snapshot (arxiv.zip) from Kaggle with Kaggle's client"
    p = sub.add_parser("download", help=text, description=text + (
        "; needs `pip install kaggle` and an API token in ~/.kaggle/kaggle.json "
        "(or KAGGLE_USERNAME/KAGGLE_KEY)"))
    p.add_argument("--dir", type=Path, default=Path("data"), help="where to put arxiv.zip (default data/)")
    p.set_defaults(func=cmd_download)

    for name, text in (("train", "train a model and write a checkpoint"),
                       ("demo", "train a small model on the embedded corpus (about a minute on a CPU)")):
        p = sub.add_parser(name, help=text, description=text)
        _add_data_args(p)
        p.add_argument("--val-fraction", type=float, help="share of records held out (default 0.1)")
        p.add_argument("--min-freq", type=_positive_int, help="rarer characters become <unk> (default 1)")
        g = p.add_argument_group("model")
        g.add_argument("--cell", choices=CELLS, default="lstm")
        g.add_argument("--layers", type=_positive_int, default=1)
        g.add_argument("--hidden", type=_positive_int, default=256)
        g.add_argument("--embed", type=_positive_int, default=64)
        g.add_argument("--dropout", type=float, default=0.0)
        g = p.add_argument_group("batches")
        g.add_argument("--batching", choices=("windows", "records"),
                       help="random windows over the stream (default) or whole padded records")
        g.add_argument("--batch-size", type=_positive_int, help="default 32")
        g.add_argument("--seq-len", type=_positive_int, help="window length (default 128)")
        g.add_argument("--max-len", type=_positive_int, help="cut records to this length (records mode)")
        g = p.add_argument_group("optimisation")
        g.add_argument("--steps", type=_positive_int, help=f"total steps (default 1000; demo {DEMO_STEPS})")
        g.add_argument("--lr", type=float, help="Adam learning rate (default 3e-3)")
        g.add_argument("--clip", type=float, default=1.0, help="max gradient norm, 0 for none (default 1.0)")
        g.add_argument("--schedule", choices=("constant", "cosine"), default="constant")
        g.add_argument("--warmup", type=int, default=0, help="linear warm-up steps")
        g.add_argument("--eval-every", type=_positive_int, help="validate every N steps (default 100)")
        g.add_argument("--seed", type=int, help="seed for model, split sample and batches (default 0)")
        g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
        g.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
        g.add_argument("--backend", choices=BACKENDS, help="process-group backend under torchrun "
                       "(default nccl on CUDA, gloo on the CPU)")
        g = p.add_argument_group("checkpoints")
        g.add_argument("--out", type=Path, help="checkpoint path (default runs/charrnn.pt)")
        g.add_argument("--resume", type=Path, help="continue training from this checkpoint")
        g.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.set_defaults(func=lambda a, demo=(name == "demo"): cmd_train(a, demo=demo))

    p = sub.add_parser("sample", help="generate text from a checkpoint")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--prefix", default="", help="text to continue (default: start a new record)")
    p.add_argument("-n", type=int, default=1, help="number of samples, generated as one batch")
    p.add_argument("--length", type=int, default=300, help="max new characters per sample")
    p.add_argument("--temperature", type=float, default=0.8, help="0 is greedy")
    p.add_argument("--top-k", type=int)
    p.add_argument("--top-p", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("evaluate", help="loss in nats, bits/char and perplexity of a checkpoint on a file")
    p.add_argument("--checkpoint", type=Path, required=True)
    _add_data_args(p, with_sampling=False)
    p.add_argument("--split", choices=("all", "val", "train"), default="all",
                   help="which records of the file: all (default) or the train/val split by id hash")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--batch-size", type=_positive_int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--word-temperatures", type=float, nargs="+", metavar="T",
                   help="also generate samples at these temperatures and report the share of their "
                        "words found in the training text (the train split with --split val)")
    p.add_argument("--word-samples", type=_positive_int, default=32)
    p.add_argument("--word-length", type=_positive_int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("export", help="a smaller checkpoint for sampling only: no optimizer state, "
                                      "optionally float16 weights")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--fp16", action="store_true", help="store the weights as float16 (half the size)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("student", help="write exercise versions of the notebooks for students")
    p.add_argument("--notebooks", type=Path, default=Path("notebooks"), help="folder of solved notebooks")
    p.add_argument("--out", type=Path, default=Path("student"), help="folder to write (default student/)")
    p.set_defaults(func=cmd_student)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"charrnn: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous_format, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        args.func(args)
    except BrokenPipeError:  # output piped into `head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (CharRNNError, ValueError, OSError) as e:
        print(f"charrnn: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("charrnn: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = previous_format
    return 0
