#!/usr/bin/env python3
"""How `sipl bench loader` scales from one worker to two, against this machine's own ceiling.

Each round runs, in turn: one worker; two workers in one process; two 1-worker processes at
once. The last is what two cores give this workload with nothing shared but the hardware
(caches, memory bandwidth), so "2 workers / two processes" isolates what the loader itself
loses. Rounds alternate so that a machine whose speed drifts moves all three alike; the
summary is the median of the per-round ratios.

Usage: python3 bench/loader_scaling.py SIPL DATA [--scheme siplv1] [--batch-dtype f32]
                                        [--seconds 6] [--rounds 10] [--json]
Prints one line per round and a summary (or, with --json, one JSON object).
"""

import argparse
import json
import statistics
import subprocess
import sys


def bench(args, workers):
    """The command of one `sipl bench loader` run."""
    return [
        args.sipl, "bench", "loader", args.data, "--scheme", args.scheme,
        "--workers", str(workers), "--seconds", str(args.seconds), "--batch", str(args.batch),
        "--batch-dtype", args.batch_dtype, "--json",
    ]


def one(args, workers):
    """samples/s of one run."""
    out = subprocess.run(bench(args, workers), capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["samples_per_s"]


def two_processes(args):
    """Total samples/s of two 1-worker runs started together."""
    procs = [subprocess.Popen(bench(args, 1), stdout=subprocess.PIPE, text=True) for _ in range(2)]
    total = 0.0
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            sys.exit(f"sipl bench loader exited with {p.returncode}")
        total += json.loads(out)["samples_per_s"]
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sipl", help="the sipl binary")
    ap.add_argument("data", help="an ingested dataset")
    ap.add_argument("--scheme", default="siplv1")
    ap.add_argument("--batch-dtype", default="f32")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=6.0, help="per run (after its warm-up)")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.rounds < 1 or args.seconds <= 0:
        sys.exit("--rounds must be >= 1 and --seconds > 0")
    rows = []
    for r in range(args.rounds):
        row = {"one": one(args, 1), "two": one(args, 2), "processes": two_processes(args)}
        rows.append(row)
        if not args.json:
            print(
                f"round {r}: 1 worker {row['one']:.0f}, 2 workers {row['two']:.0f} "
                f"({row['two'] / row['one']:.2f}x), two processes {row['processes']:.0f} "
                f"({row['processes'] / row['one']:.2f}x) samples/s",
                flush=True,
            )
    med = statistics.median
    summary = {
        "scheme": args.scheme, "batch_dtype": args.batch_dtype, "rounds": args.rounds,
        "seconds": args.seconds,
        "one_worker": med(r["one"] for r in rows),
        "two_workers": med(r["two"] for r in rows),
        "two_processes": med(r["processes"] for r in rows),
        "two_over_one": med(r["two"] / r["one"] for r in rows),
        "processes_over_one": med(r["processes"] / r["one"] for r in rows),
        "two_over_processes": med(r["two"] / r["processes"] for r in rows),
    }
    if args.json:
        print(json.dumps(summary))
        return
    print(
        f"{args.scheme} {args.batch_dtype}, medians of {args.rounds} rounds: 1 -> 2 workers "
        f"{summary['two_over_one']:.3f}x; two 1-worker processes {summary['processes_over_one']:.3f}x; "
        f"2 workers / two processes {summary['two_over_processes']:.3f}"
    )


if __name__ == "__main__":
    main()
