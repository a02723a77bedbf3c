"""Do the notebooks print the same digits on every machine?

A stored notebook output was computed on one processor with one maths
library. Another machine takes other code paths: PyTorch's own kernels built
for another instruction set (AVX-512, AVX2, none at all, or Arm's on Apple
silicon), another MKL code path, another oneDNN code path. Each rounds in its
own way, so a printed number that depends on the last bits of a float differs
there, and nbval fails on that machine only. One x86 machine cannot run Arm
code, but it can be steered off its own paths onto others, which catches the
same kind of fragile cell.

This script steers one machine onto those other code paths with environment
variables that the libraries read when they load, then runs the notebooks
under nbval (or the unit tests under pytest) once per configuration and lists
every cell whose output differs from the stored one, with nbval's diff.

    python tests/portability.py nbval               # what `make test` runs: native + generic, side by side
    python tests/portability.py audit               # every configuration below, then the unit
                                                    # tests on the generic paths (`make portability`)
    python tests/portability.py audit notebooks/02_*.ipynb --configs native aten-scalar --no-unit-tests
    python tests/portability.py pytest --configs generic   # the unit tests on the generic code paths
    python tests/portability.py probe               # how far each configuration moves a few computations

A cell that differs is fixed by printing fewer digits (those that survive the
audit) or by computing the number differently (see notebooks/README.md), not
by hiding it.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each configuration is a set of environment variables read by the libraries
# under torch when they load (so they must be set before python starts).
CONFIGS: dict[str, dict[str, str]] = {
    # this machine as it is
    "native": {},
    # MKL's conditional numerical reproducibility: its most conservative code path
    "mkl-compatible": {"MKL_CBWR": "COMPATIBLE"},
    # MKL limited to SSE4.2 instructions
    "mkl-sse42": {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    # oneDNN (convolutions, some matmuls and RNNs) limited to SSE4.1
    "onednn-sse41": {"DNNL_MAX_CPU_ISA": "SSE41"},
    # PyTorch's own kernels without vector instructions: tanh, exp and float32
    # random normals rounded as on a CPU whose vector unit PyTorch does not use
    "aten-scalar": {"ATEN_CPU_CAPABILITY": "default"},
    # all of the above that change results at once: the second run of `make test`
    "generic": {"MKL_CBWR": "COMPATIBLE", "DNNL_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default"},
}
TEST_CONFIGS = ("native", "generic")  # what `make test` runs the notebooks under

ANSI = re.compile(r"(\x1b|#x1B)\[[0-9;]*m")  # nbval colours its report; JUnit XML escapes the ESC
NBVAL_ARGS = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg"]


def notebooks(paths: list[str]) -> list[str]:
    if paths:
        return paths
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def environment(config: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {k for c in CONFIGS.values() for k in c}}
    env.update(CONFIGS[config])
    return env


def run_pytest(config: str, args: list[str]) -> dict:
    """Run pytest with ``args`` under ``config``; return its output and the
    failed test cases (name and failure text) read from its JUnit XML."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--tb=short",
                   f"--junitxml={report}", "-o", "junit_family=xunit1", *args]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=environment(config), capture_output=True, text=True)
        seconds = time.perf_counter() - start
        failures, total = [], 0
        if report.exists():
            for case in ET.parse(report).getroot().iter("testcase"):
                total += 1
                for bad in list(case.iter("failure")) + list(case.iter("error")):
                    name = f"{case.get('file') or case.get('classname', '')}::{case.get('name', '')}"
                    text = ANSI.sub("", bad.text or bad.get("message") or "").strip()
                    failures.append((name, text))
    return {"config": config, "returncode": done.returncode, "output": done.stdout + done.stderr,
            "failures": failures, "total": total, "seconds": seconds}


def run_configs(configs: list[str], args: list[str], jobs: int) -> list[dict]:
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda c: run_pytest(c, args), configs))


def summarise(results: list[dict], what: str, show_output: bool) -> int:
    """Print what differed in each run (nbval's diff: ``+`` is the stored
    output, ``-`` this run's) and a table; return the exit code."""
    for r in results:
        broken = r["returncode"] != 0 and not r["failures"]  # pytest itself failed: show why
        if not (show_output or broken or r["failures"]):
            continue
        settings = " ".join(f"{k}={v}" for k, v in CONFIGS[r["config"]].items()) or "(no settings)"
        print(f"\n===== {r['config']}: {settings}")
        if show_output or broken:
            print(r["output"].rstrip())
        for name, text in r["failures"]:
            print(f"--- differs: {name}   (in the diff, + is stored, - is this run)\n{text}\n")
    print(f"\n{what} per floating-point configuration (each compared with the stored expectations):")
    for r in results:
        print(f"  {r['config']:<15} {r['total']:>5} {what}, {len(r['failures']):>3} differ or fail"
              f"   ({r['seconds']:.0f} s, exit {r['returncode']})")
    bad = [r for r in results if r["returncode"] != 0]
    if bad:
        print("FAILED under: " + ", ".join(r["config"] for r in bad))
        return 1
    return 0


def probe(out: Path) -> None:
    """Save a few arrays that the notebooks' kind of code computes (random
    numbers, a matmul, tanh, a softmax, the weights after 20 training steps of
    each cell type) to ``out``; ``probe_all`` runs this once per configuration."""
    import numpy as np
    import torch

    import charrnn

    torch.set_num_threads(1)  # as in the notebooks
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 256, generator=gen)
    w = torch.randn(256, 512, generator=gen)
    arrays = {"randn (float32)": x, "matmul 64x256 @ 256x512": x @ w, "tanh": torch.tanh(x),
              "log_softmax": torch.log_softmax(x @ w, dim=-1)}
    texts = charrnn.load_texts()
    vocab = charrnn.CharVocab.from_texts(texts)
    batches = charrnn.WindowBatches(charrnn.EncodedCorpus.from_texts(texts, vocab), batch_size=16, seq_len=64, seed=0)
    for cell in ("rnn", "gru", "lstm"):
        torch.manual_seed(0)
        model = charrnn.CharRNN(vocab_size=len(vocab), cell=cell, embed_dim=32, hidden_size=64)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for step in range(20):
            inputs, targets = batches.batch(step)
            loss = charrnn.masked_cross_entropy(model(inputs)[0], targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        arrays[f"{cell}: weights after 20 steps"] = torch.cat([p.detach().flatten() for p in model.parameters()])
    np.savez(out, **{name: a.detach().numpy() for name, a in arrays.items()})


def probe_all(configs: list[str]) -> int:
    """Print, for each configuration against the first, the share of values
    whose bits changed and the largest relative change."""
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for config in configs:
            out = Path(tmp) / f"{config}.npz"
            subprocess.run([sys.executable, __file__, "probe-one", str(out)], cwd=ROOT, env=environment(config),
                           check=True)
            runs[config] = dict(np.load(out))
    base = runs[configs[0]]
    print(f"Against {configs[0]}: share of values with other bits / largest relative change")
    print(f"{'':<28}" + "".join(f"{c:>20}" for c in configs[1:]))
    for name, reference in base.items():
        row = []
        for config in configs[1:]:
            other = runs[config][name]
            changed = (other != reference).mean()
            relative = (np.abs(other - reference) / np.maximum(np.abs(reference), 1e-30)).max()
            row.append(f"{changed:>9.0%} / {relative:.0e}")
        print(f"{name:<28}" + "".join(f"{cell:>20}" for cell in row))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["nbval", "audit", "pytest", "probe", "probe-one"])
    parser.add_argument("paths", nargs="*", help="notebooks (nbval, audit) or test paths (pytest)")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), help="configurations to run")
    parser.add_argument("--jobs", type=int, default=2,
                        help="configurations run side by side (default 2: the notebooks use one thread each)")
    parser.add_argument("--verbose", action="store_true", help="print pytest's whole output for every run")
    parser.add_argument("--no-unit-tests", action="store_true", help="audit: the notebooks only")
    args = parser.parse_args(argv)

    if args.command == "probe-one":
        probe(Path(args.paths[0]))
        return 0
    if args.command == "probe":
        return probe_all(args.configs or list(CONFIGS))
    if args.command == "pytest":
        return summarise(run_configs(args.configs or ["generic"], args.paths, args.jobs), "tests", args.verbose)
    if args.command == "nbval":
        configs = args.configs or list(TEST_CONFIGS)
        return summarise(run_configs(configs, NBVAL_ARGS + notebooks(args.paths), args.jobs), "cells", args.verbose)
    # audit: the notebooks under every configuration, then the unit tests on the generic paths
    status = summarise(run_configs(args.configs or list(CONFIGS), NBVAL_ARGS + notebooks(args.paths), args.jobs),
                       "cells", args.verbose)
    if not args.no_unit_tests:
        status |= summarise(run_configs(["generic"], [], 1), "tests", args.verbose)
    return status


if __name__ == "__main__":
    sys.exit(main())
