"""Grade a fabricated class of thirty, as a teacher would: its wall time and its CSV.

The class (``tests/grading_class.py`` makes each kind) hands in all the
graded notebooks: 6 solved, 5 blank, 5 with one mistake, 5 partial, 5 with
every file renamed as an LMS download names it, one whose notebook 01 never
ends, one whose kernel also ignores the interrupt, and two with a notebook
that is not JSON. It is graded as the README says, ``charrnn grade
--jobs 2``, and the script prints the wall time, the totals per kind, and
where the CSV and the feedback are.

    python benchmarks/grade_class.py --timeout 120         # about 30 minutes on two cores
    python benchmarks/grade_class.py --students 10 --jobs 4 --timeout 120 --out /tmp/class
"""

from __future__ import annotations

import argparse
import csv
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from grading_class import fabricate  # noqa: E402 - tests/ put on the path just above

from charrnn.cli import main  # noqa: E402
from charrnn.course.grading import NOTEBOOK_TIMEOUT_S  # noqa: E402
from charrnn.course.student import make_student_versions  # noqa: E402

CLASS = (["solved"] * 6 + ["blank"] * 5 + ["one_mistake"] * 5 + ["partial"] * 5 + ["renamed"] * 5
         + ["endless", "stubborn", "broken", "broken"])


def _kinds(students: int) -> list[str]:
    """The class's kinds for ``students`` students: thirty as above, fewer
    by taking every kind in turn."""
    if students >= len(CLASS):
        return CLASS + ["solved"] * (students - len(CLASS))
    order = sorted(range(len(CLASS)), key=lambda i: (CLASS[:i].count(CLASS[i]), i))
    return [CLASS[i] for i in sorted(order[:students])]


def run(out: Path, students: int, jobs: int, timeout: float) -> float:
    """Fabricate the class under ``out``, grade it, print the summary;
    returns the wall time of the grading in seconds."""
    notebooks = [p for p in sorted((ROOT / "notebooks").glob("*.ipynb"))
                 if '"grade": true' in p.read_text(encoding="utf-8")]
    out.mkdir(parents=True, exist_ok=True)
    make_student_versions(ROOT / "notebooks", out / "student")
    fabricate(out / "submissions", _kinds(students), notebooks, out / "student")
    begin = time.perf_counter()
    main(["grade", str(out / "submissions"), "--out", str(out / "scores.csv"), "--jobs", str(jobs),
          "--timeout", f"{timeout:g}", "--notebooks", str(ROOT / "notebooks")])
    wall = time.perf_counter() - begin
    totals = defaultdict(list)
    with open(out / "scores.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            totals[row["student"].rsplit("_", 1)[0]].append(f"{float(row['total']):g}/{float(row['max']):g}")
    print(f"\n{platform.processor() or platform.machine()}, {len(notebooks)} graded notebooks, {students} students, "
          f"--jobs {jobs}, --timeout {timeout:g}: {wall:.0f} s wall ({wall / students:.1f} s a student)")
    for kind, got in totals.items():
        print(f"  {kind:12s} {' '.join(got)}")
    print(f"CSV: {out / 'scores.csv'}; feedback: {out / 'feedback'}/")
    return wall


def _parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--students", type=int, default=30, help="class size (default: 30)")
    p.add_argument("--jobs", type=int, default=2, help="students graded at once (default: 2)")
    p.add_argument("--timeout", type=float, default=NOTEBOOK_TIMEOUT_S,
                   help=f"seconds a notebook may run (default: {NOTEBOOK_TIMEOUT_S}, the command's)")
    p.add_argument("--out", type=Path, default=Path("grade-class"), help="folder to write (default: grade-class/)")
    return p.parse_args(argv)


if __name__ == "__main__":
    args = _parse()
    run(args.out, args.students, args.jobs, args.timeout)
