"""What a command or a region's compose worker pays before any work; one line per figure.

    python bench/startup.py [--repeats 5]

Each figure is a fresh interpreter, as a shell or a Dask worker starts one:

- `agbm labels --help` (through `python -m agbm`), its wall time, median of --repeats;
- a compose worker's start: unpickling a region's compose task (what a Dask worker does
  with its first task: it imports the task's module and all that module imports), its wall
  time and the process's peak resident memory (`ru_maxrss`), median of --repeats;
- whether each loads torch.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import subprocess
import sys
import time

from agbm.region.engine import compose_task

#: What the child interpreter runs: load the pickled task from stdin, print its peak memory
#: (KiB on Linux) and whether torch came with it.
_UNPICKLE = (
    "import pickle, resource, sys; pickle.loads(sys.stdin.buffer.read()); "
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, 'torch' in sys.modules)"
)
#: `python -m agbm labels --help`, printing at exit whether torch came with it.
_HELP = (
    "import atexit, runpy, sys; atexit.register(lambda: print('torch' in sys.modules)); "
    "sys.argv = ['agbm', 'labels', '--help']; runpy.run_module('agbm', run_name='__main__')"
)


def fresh(code: str, stdin: bytes = b"") -> tuple[float, str]:
    """(wall seconds, stdout) of `python -c code` in a new interpreter."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], input=stdin, capture_output=True, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr.decode()[-2000:])
    return seconds, done.stdout.decode()


def labels_help(repeats: int) -> None:
    """`agbm labels --help`'s wall time, and whether it loads torch."""
    runs = [fresh(_HELP) for _ in range(repeats)]
    torch = runs[0][1].strip().splitlines()[-1]
    median = statistics.median(s for s, _ in runs)
    print(f"agbm labels --help: {median:.2f} s wall (median of {repeats}), torch loaded: {torch}")


def compose_worker(repeats: int) -> None:
    """A compose worker's start: the wall time and peak memory of unpickling its task."""
    task = pickle.dumps(compose_task)
    runs = [fresh(_UNPICKLE, task) for _ in range(repeats)]
    peaks = [int(out.split()[0]) / 1024 for _, out in runs]
    torch = runs[0][1].split()[1]
    where = compose_task.__module__
    print(f"compose worker start ({where}): {statistics.median(s for s, _ in runs):.2f} s wall")
    print(
        f"compose worker start ({where}): peak memory {statistics.median(peaks):.0f} MiB, "
        f"torch loaded: {torch}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="fresh runs each (default 5)")
    args = parser.parse_args()
    labels_help(args.repeats)
    compose_worker(args.repeats)


if __name__ == "__main__":
    main()
