"""Every benchmark of bench/, one after another, and one closing table of their figures, each
beside the baseline it was measured with in the same run (`make bench`).

Each script keeps printing its own output as it runs (its setup, progress, breakdowns and
machine facts); this one collects the first table of each script's closing summary (the
rows that set a figure beside its baseline) and prints them together at the end. Nothing is
asserted: a script that fails is reported in the table, and the others still run.

    .venv/bin/python bench/all.py [--only registry,events]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# In the order they run: the registry's reads and import, the event path, the grant
# workflow, notifications, the registry at 1,000,000 members, and the dashboard's pages at
# 100,000 groups and 100,000 applications.
SCRIPTS = ("registry", "events", "grants", "notifications", "scale", "dashboard")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        default=",".join(SCRIPTS),
        help="comma-separated benchmarks to run (default: %(default)s)",
    )
    return parser.parse_args(argv)


def summary_rows(output: str) -> list[list[str]]:
    """The cells of the first Markdown table after the `## Results` heading, without its
    header and rule."""
    _, found, results = output.partition("\n## Results\n")
    if not found:
        return []
    rows: list[list[str]] = []
    for line in results.splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows[2:]


def run(name: str) -> tuple[list[list[str]], str]:
    """Run one script, echoing its output; its summary rows and how it ended."""
    print(f"\n######## bench/{name}.py\n", flush=True)
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(HERE / f"{name}.py")],
        cwd=HERE.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in process.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    code = process.wait()
    minutes = (time.monotonic() - started) / 60
    ending = f"{minutes:.1f} min" if code == 0 else f"FAILED (exit {code}) after {minutes:.1f} min"
    return summary_rows("".join(lines)), ending


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SCRIPTS))
    if unknown:
        print(f"unknown benchmarks: {', '.join(unknown)} (known: {', '.join(SCRIPTS)})")
        return 2
    results = {name: run(name) for name in chosen}
    print("\n## All benchmarks\n")
    print("Each figure beside its physical baseline, measured in the same run of the same")
    print("script on this machine; the ratio is the figure over the baseline.\n")
    print("| Benchmark | Figure | Measured | Baseline | Ratio | Target |")
    print("|---|---|---|---|---|---|")
    failed = False
    for name, (rows, ending) in results.items():
        if not rows:
            failed = failed or ending.startswith("FAILED")
            print(f"| {name} | no summary table | | | | {ending} |")
            continue
        for cells in rows:
            cells = (cells + [""] * 5)[:5]
            print(f"| {name} | " + " | ".join(cells) + " |")
    print("\n" + "; ".join(f"{name}: {ending}" for name, (_, ending) in results.items()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
