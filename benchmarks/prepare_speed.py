"""Prepare speed: ``charrnn.scale.prepared.prepare_dataset`` on a synthetic file in
the Kaggle snapshot's format, next to the origin notebook's way of reading
it, ``pandas.read_json(path, lines=True)``, each in a fresh child process.

* MB/s is megabytes (10^6 bytes) of JSON per second of wall time (the
  target); "CPU MB/s" per second of the child's CPU time, which is what one
  core does when nothing else competes for it;
* peak RSS is the child's high-water mark (``VmHWM`` of /proc/self/status,
  else ``getrusage``), the interpreter and imports included.

Targets: prepare >= 30 MB/s and peak RSS < 400 MB, whatever the file size
(pandas holds the whole frame, so its RSS grows with the file). The
records are invented (ids, authors, LaTeX abstracts, versions...), with a
realistic shape and size, about 1.5 kB a line like the snapshot's.

``--floors`` adds a second table: prepare next to a bare loop that only
parses every line (``json.loads``, and ``orjson.loads`` when orjson is
installed), the floor no reader of this file can beat. Prepare runs there
once with each parser swapped into ``charrnn.data.parse_record``, so the
table says both how close prepare comes to its floor and what a faster
parser would buy it.

    python benchmarks/prepare_speed.py [--mb 1024] [--dir DIR] [--input FILE] [--skip-pandas]
                                       [--floors [--rounds N]] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import load_warning, log, machine_line

TARGET_MB_S = 30.0
TARGET_RSS_MB = 400.0
_POOL = 4000  # distinct record bodies; ids and update dates vary on every line

_WORDS = ("we propose study show prove model models method network networks learning data "
          "results bound bounds graph graphs random quantum field theory energy spectrum "
          "estimate estimates convergence algorithm algorithms optimal sparse dense regime "
          "phase transition numerical simulations observations galaxy galaxies stellar mass "
          "lattice gauge symmetry operator operators equation equations boundary solution "
          "solutions approximation inference posterior prior robust efficient scalable novel "
          "framework analysis performance experiments benchmark dataset training loss").split()
_LATEX = [r"$\alpha$", r"$O(n \log n)$", r"$\mathbb{R}^d$", r"$\epsilon > 0$", r"$L^2$",
          r"\emph{a priori}", r"$\sim 10^{-3}$", r"$\Lambda$CDM", r"$\mathcal{N}=4$", r"$k_BT$",
          r"\cite{x}", r"$\| x \|_2$", r"$p < 0.05$", r"$\sqrt{s} = 13$ TeV"]
_RARE = ["é", "ü", "ö", "—", "–", "’", "α", "β", "μ", "Å", "ł", "ç", "∞", "≤", "∑", "ℏ", "😀"]
_CATS = ["cs.LG", "stat.ML", "cs.CV", "cs.CL", "math.PR", "math.CO", "hep-th", "hep-ph", "quant-ph",
         "astro-ph.GA", "cond-mat.str-el", "physics.flu-dyn", "math.AP", "eess.SP", "q-bio.NC"]
_NAMES = ["Smith", "Nakamura", "Müller", "García", "Okafor", "Kowalski", "Chen", "Ivanova", "Dubois",
          "Haddad", "Rossi", "Andersson", "Kim", "Patel", "Nguyen", "O'Brien"]


def _sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(_WORDS) for _ in range(n)]
    if rng.random() < 0.5:
        words.insert(rng.randrange(len(words)), rng.choice(_LATEX))
    if rng.random() < 0.1:
        words.insert(rng.randrange(len(words)), rng.choice(_RARE))
    return " ".join(words).capitalize() + "."


def _body(rng: random.Random) -> str:
    """One record's JSON without its opening ``{"id": ...,`` (varied per line)."""
    authors = [(rng.choice(_NAMES), rng.choice("ABCDEFGHJKLMNPRSTW") + ".") for _ in range(rng.randint(1, 8))]
    abstract = "  " + "\n".join(_sentence(rng, rng.randint(8, 22)) for _ in range(rng.randint(5, 11))) + "\n"
    record = {
        "submitter": " ".join(authors[0][::-1]),
        "authors": ", ".join(f"{first} {last}" for last, first in authors),
        "title": _sentence(rng, rng.randint(5, 14))[:-1].title(),
        "comments": f"{rng.randint(4, 60)} pages, {rng.randint(0, 20)} figures",
        "journal-ref": rng.choice([None, f"Phys. Rev. D {rng.randint(50, 110)} ({rng.randint(1995, 2024)})"]),
        "doi": rng.choice([None, f"10.{rng.randint(1000, 9999)}/x.{rng.randint(10 ** 5, 10 ** 6)}"]),
        "report-no": None,
        "categories": " ".join(rng.sample(_CATS, rng.randint(1, 3))),
        "license": rng.choice([None, "http://arxiv.org/licenses/nonexclusive-distrib/1.0/",
                               "http://creativecommons.org/licenses/by/4.0/"]),
        "abstract": abstract,
        "versions": [{"version": f"v{i + 1}", "created": f"Mon, {rng.randint(1, 28)} Apr 2019 "
                      f"{rng.randint(0, 23):02d}:12:42 GMT"} for i in range(rng.randint(1, 3))],
        "authors_parsed": [[last, first, ""] for last, first in authors],
    }
    return json.dumps(record)[1:]  # without "{"


def write_snapshot(path: Path, megabytes: float, seed: int = 0) -> int:
    """Write about ``megabytes`` MB of snapshot-format JSON lines; returns bytes."""
    rng = random.Random(seed)
    bodies = [_body(rng) for _ in range(_POOL)]
    target, written, n = int(megabytes * 1e6), 0, 0
    with open(path, "w", encoding="utf-8") as f:
        while written < target:
            lines = []
            for _ in range(2000):
                n += 1
                body = bodies[(n * 7919) % _POOL]
                lines.append(f'{{"id": "{1000 + n // 100000:04d}.{n % 100000:05d}", '
                             f'"update_date": "20{n % 24:02d}-0{n % 9 + 1}-1{n % 10}", {body}\n')
            chunk = "".join(lines)
            f.write(chunk)
            written += len(chunk.encode("utf-8")) if not chunk.isascii() else len(chunk)
    return path.stat().st_size


# ------------------------------------------------------------------ children
def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale / 1024


def _loads(name: str):
    """The ``loads`` of the JSON library ``name`` (json or orjson)."""
    if name == "orjson":
        import orjson
        return orjson.loads
    return json.loads


def _use_parser(name: str) -> None:
    """Make prepare parse with ``name``'s ``loads``: ``charrnn.data.parse_record``
    as it is, with only the JSON call swapped (prepare looks it up on every line)."""
    from charrnn import data

    loads = _loads(name)

    def parse_record(line: bytes) -> dict | None:
        try:
            return data._as_record(loads(line))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None

    data.parse_record = parse_record


def _parse_floor(path: str, loads) -> int:
    """Parse every line and nothing else: the least any JSON-lines reader does."""
    records = 0
    with open(path, "rb") as f:
        for line in f:
            loads(line)
            records += 1
    return records


def child(kind: str, path: str, out: str) -> None:
    """Run one reader on ``path`` and print a JSON line with its numbers.
    Kinds: ``prepare``, ``prepare+PARSER``, ``PARSER.loads`` (a parse floor)
    and ``pandas``, where PARSER is json or orjson."""
    if kind.endswith(".loads"):
        loads = _loads(kind.removesuffix(".loads"))
        started, cpu = time.perf_counter(), time.process_time()
        records = _parse_floor(path, loads)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    elif kind.startswith("prepare"):
        from charrnn.scale.prepared import prepare_dataset
        if "+" in kind:
            _use_parser(kind.split("+", 1)[1])
        started, cpu = time.perf_counter(), time.process_time()
        meta = prepare_dataset(path, out, progress=False, overwrite=True)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        records = meta["records"]
    else:
        import pandas
        started, cpu = time.perf_counter(), time.process_time()
        frame = pandas.read_json(path, lines=True)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        records = len(frame)
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "records": records, "peak_rss_mb": _peak_rss_mb()}))


def _run_child(kind: str, path: Path, out: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, __file__, "--child", kind, str(path), str(out)],
                            capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{kind} child failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# -------------------------------------------------------------------- report
def table(size: int, results: dict[str, dict]) -> str:
    mb = size / 1e6
    rows = ["| reader | MB/s | CPU MB/s | peak RSS (MB) | records | speed vs pandas | RSS vs pandas "
            "| target | result |",
            "| --- | ---: | ---: | ---: | ---: | --- | --- | --- | --- |"]
    pandas = results.get("pandas")
    for kind, r in results.items():
        rate = mb / r["seconds"]
        if kind == "prepare":
            name = "charrnn prepare_dataset"
            target = f">= {TARGET_MB_S:g} MB/s, < {TARGET_RSS_MB:g} MB"
            ok = rate >= TARGET_MB_S and r["peak_rss_mb"] < TARGET_RSS_MB
            result = "PASS" if ok else "FAIL"
            speed = f"{rate / (mb / pandas['seconds']):.2f}x" if pandas else ""
            memory = f"{r['peak_rss_mb'] / pandas['peak_rss_mb']:.3f}x" if pandas else ""
        else:
            name, target, result, speed, memory = "pandas.read_json(lines=True)", "", "", "baseline", "baseline"
        rows.append(f"| {name} | {rate:,.1f} | {mb / r['cpu_seconds']:,.1f} | {r['peak_rss_mb']:,.0f} "
                    f"| {r['records']:,} | {speed} | {memory} | {target} | {result} |")
    return "\n".join(rows)


def _has_orjson() -> bool:
    try:
        import orjson  # noqa: F401
    except ImportError:
        return False
    return True


def floor_kinds() -> list[str]:
    """The runs of the floor table: each parser's bare loop, prepare as the
    library ships it, and prepare with each parser swapped in."""
    parsers = ["json", "orjson"] if _has_orjson() else ["json"]
    return [f"{p}.loads" for p in parsers] + ["prepare"] + [f"prepare+{p}" for p in parsers]


def floor_rounds(path: Path, out: Path, rounds: int) -> dict[str, list[dict]]:
    """Every floor kind ``rounds`` times, rotating which goes first, so a
    burst of load elsewhere hits all alike (as bench_common's rotation)."""
    kinds = floor_kinds()
    results: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for r in range(rounds):
        shift = r % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:
            log(f"{kind} (round {r + 1} of {rounds}) ...")
            results[kind].append(_run_child(kind, path, out))
    return results


def floor_table(size: int, results: dict[str, list[dict]]) -> str:
    """Prepare with each parser against each bare parse loop, medians of the
    rounds: the ratios are speeds (floor seconds / prepare seconds), 1.00x
    would mean prepare costs no more than parsing alone. CPU seconds are
    the child's own, which load elsewhere on the machine disturbs less."""
    mb = size / 1e6
    median = {kind: {key: statistics.median(r[key] for r in runs) for key in ("seconds", "cpu_seconds")}
              for kind, runs in results.items()}
    floors = [k for k in results if k.endswith(".loads")]
    rows = ["| run | seconds | CPU seconds | MB/s | records | "
            + " | ".join(f"vs {f} floor" for f in floors) + " |",
            "| --- | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in floors) + " |"]
    for kind, m in median.items():
        name = (f"bare {kind} loop" if kind in floors else f"prepare_dataset, {kind.split('+')[1]}.loads only"
                if "+" in kind else "prepare_dataset as shipped")
        ratios = " | ".join(f"{median[f]['seconds'] / m['seconds']:.2f}x" for f in floors)
        rows.append(f"| {name} | {m['seconds']:.1f} | {m['cpu_seconds']:.1f} | {mb / m['seconds']:,.1f} "
                    f"| {results[kind][0]['records']:,} | {ratios} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=1024, help="size of the synthetic file in MB (default 1024)")
    parser.add_argument("--dir", type=Path, help="where to write the file and the prepared dataset "
                        "(default: a temporary directory, removed afterwards)")
    parser.add_argument("--skip-pandas", action="store_true", help="only run prepare")
    parser.add_argument("--floors", action="store_true", help="also time bare json.loads/orjson.loads loops "
                        "and prepare with each parser")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the --floors runs (median; default 1)")
    parser.add_argument("--input", type=Path, help="time this JSON-lines file instead of writing one")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "PATH", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0

    warning = load_warning()
    work = Path(tempfile.mkdtemp(prefix="prepare-bench-", dir=args.dir))
    try:
        path = args.input or _write_input(work, args.mb)
        size = path.stat().st_size
        results, floors = {}, {}
        log("prepare_dataset ...")
        results["prepare"] = _run_child("prepare", path, work / "prepared")
        if not args.skip_pandas:
            log("pandas.read_json(lines=True) ...")
            results["pandas"] = _run_child("pandas", path, work / "unused")
        if args.floors:
            floors = floor_rounds(path, work / "prepared", args.rounds)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    notes = [f"Input: {size / 1e6:,.0f} MB of {'synthetic snapshot ' if not args.input else ''}JSON lines; "
             "one child process per reader" + (f"; floor table: medians of {args.rounds} rounds." if floors else ".")]
    if warning:
        notes.append(warning)
    extra = ["", floor_table(size, floors)] if floors else []
    print("\n".join([machine_line(), "", table(size, results), *extra, "", *notes]))
    return 0


def _write_input(work: Path, megabytes: float) -> Path:
    path = work / "arxiv-metadata-oai-snapshot.json"
    log(f"writing {megabytes:g} MB of synthetic snapshot to {path} ...")
    started = time.perf_counter()
    size = write_snapshot(path, megabytes)
    log(f"  {size / 1e6:,.0f} MB in {time.perf_counter() - started:.0f} s")
    return path


if __name__ == "__main__":
    sys.exit(main())
