"""``evaluate``: how well a checkpoint predicts a file, beside what
general-purpose compressors achieve on the same text."""

from __future__ import annotations

from pathlib import Path

from ..baselines import compressor_bits_per_char
from ..batches import EncodedCorpus, LengthBatches
from ..checkpoint import load_model
from ..config import DataConfig, check_seed
from ..data import ReadStats, format_record, load_records, split_records
from ..devices import pick_device
from ..errors import CharRNNError
from ..metrics import evaluate
from ..sample import generate_batch
from ..scale.prepared import open_prepared
from ..wordcheck import known_word_share, word_list, words
from .flags import add_config_flags, config_from_args, device_name, positive_int, with_default

_COMPRESSOR_RECORDS = 20_000  # gzip/bz2/xz on more text than this takes minutes and memory


def add_evaluate_parser(sub) -> None:
    """The ``evaluate`` command and its flags."""
    text = "loss in nats, bits/char and perplexity of a checkpoint on a file"
    p = sub.add_parser("evaluate", help=text, description=text + (
        ", beside the bits/char of gzip, bz2 and xz on the same text; --word-temperatures adds the "
        "share of generated words found in the training text"))
    p.add_argument("--checkpoint", type=Path, required=True, help="checkpoint to evaluate")
    add_config_flags(p, DataConfig, only=("data", "text_records", "categories", "limit", "val_fraction",
                                          "batch_size"))
    p.add_argument("--split", choices=("all", "val", "train"), default="all",
                   help=with_default("which records of the file: all, or the train/val split by "
                                     "hashed id (--val-fraction)", "all"))
    p.add_argument("--device", type=device_name, default="cpu",
                   help=with_default("auto, cpu, cuda, cuda:1 or mps", "cpu"))
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("word check")
    g.add_argument("--word-temperatures", type=float, nargs="+", metavar="T",
                   help="also generate samples at these temperatures and report the share of their "
                        "words found in the training text (the train split with --split val) "
                        "(default: none, no word check)")
    g.add_argument("--word-samples", type=positive_int, default=32,
                   help=with_default("samples per temperature", 32))
    g.add_argument("--word-length", type=positive_int, default=400,
                   help=with_default("characters per sample", 400))
    g.add_argument("--seed", type=int, default=0, help=with_default("seed of the samples", 0))
    p.set_defaults(func=cmd_evaluate)


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
    records = load_records(config.data, categories=config.category_list, limit=config.limit, stats=stats,
                           text_records=config.text_records)
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


def _evaluate_prepared(args, config: DataConfig, model, vocab) -> None:
    """``evaluate --data DIR`` on a prepared directory: its ids are scored as
    they are, so they must mean the same characters as the model's."""
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


def _evaluate_with_progress(args, model, corpus: EncodedCorpus, config: DataConfig):
    """The loss over every record, with a bar in characters: each record of
    n tokens scores n - 1 next-token targets. Records are batched with
    others of similar length (:class:`LengthBatches`), so little of the
    work goes to padding, whatever order the file holds them in."""
    return evaluate(model, LengthBatches(corpus, config.batch_size),
                    progress=not args.no_progress, total_chars=corpus.num_tokens - len(corpus))


def _compare_compressors(texts: list[str], report) -> None:
    for name, bpc in compressor_bits_per_char(texts).items():
        print(f"{name:>6}: {bpc:.4f} bits/char  ({bpc / report.bits_per_char:.2f}x the model's)")


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
