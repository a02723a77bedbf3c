"""``prepare``: reading the arXiv snapshot (or a large text) once, so that
training never re-reads gigabytes of JSON."""

from __future__ import annotations

from pathlib import Path

from ..config import DataConfig
from ..data import ReadStats, is_plain_text, load_records, same_file, write_records
from ..errors import CharRNNError, DataError
from ..scale.prepared import prepare_dataset
from .flags import add_config_flags, config_from_args, typed_flags

PREPARED_VAL_FRACTION = 0.01  # a prepared directory holds much more data: a smaller share is enough
PREPARE_DEFAULTS = {"val_fraction": PREPARED_VAL_FRACTION}


def add_prepare_parser(sub) -> None:
    """The ``prepare`` command and its flags."""
    text = ("encode a Kaggle arXiv file/zip or a plain-text file once into a prepared directory for "
            "training (--out DIR), or cut arXiv JSON down to a smaller JSON-lines sample (--out FILE.jsonl)")
    p = sub.add_parser("prepare", help=text, description=text + (
        ". A directory holds train.bin/val.bin (token ids), their record offsets, vocab.json and "
        "meta.json; it is streamed, so memory stays flat even for the whole 4 GB snapshot."))
    p.add_argument("input", type=Path, metavar="SNAPSHOT",
                   help="arxiv-metadata-oai-snapshot.json, .jsonl, .gz or the Kaggle .zip; or plain "
                        "UTF-8 text: .txt or .md (or .txt.gz, .md.gz), a record per paragraph or line")
    p.add_argument("--out", type=Path, required=True,
                   help="directory to write; a path ending in .jsonl writes a JSON-lines sample instead")
    add_config_flags(p, DataConfig, only=("categories", "limit", "text_records"))
    g = p.add_argument_group("prepared directory (--out DIR)",
                             "on the full snapshot, raise --min-freq (e.g. 100) to keep rare characters out")
    add_config_flags(g, DataConfig, only=("val_fraction", "min_freq"), base=PREPARE_DEFAULTS)
    g.add_argument("--overwrite", action="store_true", help="replace a prepared directory already there")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("JSON-lines sample (--out FILE.jsonl)")
    add_config_flags(g, DataConfig, only=("sample", "seed"))
    p.set_defaults(func=cmd_prepare, config_base=PREPARE_DEFAULTS)


def cmd_prepare(args) -> None:
    """``prepare``: read the big snapshot (or a large text) once, either into
    a prepared directory (streamed, memory stays flat) or, for arXiv JSON,
    into a smaller JSON-lines sample, so training never re-reads gigabytes
    of JSON."""
    config = config_from_args(DataConfig, args)
    if args.out.suffix.lower() == ".jsonl":  # a smaller JSON-lines sample, kept in memory
        _write_sample(args, config)
    else:
        _write_prepared(args, config)


def _write_sample(args, config: DataConfig) -> None:
    typed = typed_flags(args)
    for option in [typed.get("val_fraction"), typed.get("min_freq"), args.overwrite and "--overwrite"]:
        if option:
            raise CharRNNError(f"{option} is for a prepared directory; "
                               f"{args.out} ends with .jsonl, which writes a JSON-lines sample")
    if same_file(args.input, args.out):  # write_records would replace it with the sample
        raise DataError(f"{args.out}: is the input file; write the sample to another file")
    if is_plain_text(args.input):  # a JSON-lines sample holds arXiv records; a text has none
        raise CharRNNError(f"{args.input}: is plain text; prepare it into a directory (--out DIR), or "
                           "train on it directly (--limit and --sample work there too)")
    stats = ReadStats()
    records = load_records(args.input, categories=config.category_list, limit=config.limit,
                           sample=config.sample, seed=config.seed, stats=stats)
    count = write_records(records, args.out)
    print(stats.summary())
    print(f"wrote {count} records to {args.out}")


def _write_prepared(args, config: DataConfig) -> None:
    typed = typed_flags(args)
    for option in ("sample", "seed"):
        if option in typed:
            raise CharRNNError(f"{typed[option]} is for a JSON-lines sample (--out FILE.jsonl); a prepared "
                               "directory holds every record (narrow it with --categories/--limit)")
    meta = prepare_dataset(args.input, args.out, categories=config.category_list, limit=config.limit,
                           val_fraction=config.val_fraction, min_freq=config.min_freq,
                           progress=not args.no_progress, overwrite=args.overwrite,
                           text_records=config.text_records)
    splits = meta["splits"]
    text_records = meta["settings"].get("text_records")
    print(f"{meta['source']['name']}: {meta['records']:,} records"
          + (f" ({text_records}) from {meta['lines']:,} non-blank lines" if text_records else
             f" from {meta['lines']:,} lines, {meta['malformed_lines']:,} malformed line(s) skipped, "
             f"{meta['filtered_out']:,} outside the category filter")
          + (f", {meta['long_lines']:,} line(s) over {meta['max_line_bytes'] >> 20} MB skipped"
             if meta.get("long_lines") else ""))
    for split in ("train", "val"):
        print(f"  {split:5s}: {splits[split]['records']:,} records, {splits[split]['tokens']:,} tokens")
    print(f"vocabulary: {meta['vocab_size']} tokens ({meta['dtype']} ids), "
          f"{meta['unknown_chars']:,} characters rarer than --min-freq {meta['settings']['min_freq']} "
          "became <unk>")
    print(f"wrote {args.out}")
