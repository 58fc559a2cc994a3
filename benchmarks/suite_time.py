"""Time the test suite of two commits on this machine, interleaved: wall time, CPU time, ratio.

The speed of a shared machine moves from hour to hour, so a suite time is only
comparable with another measured beside it. This script exports each commit
(``git archive``) into a temporary folder of its own, runs its test command
(``python -m pytest -q -p no:cacheprovider``, the suite's own configuration, in
this Python environment, with the export first on ``PYTHONPATH``) alternately,
``--rounds`` times each, and prints for each run the wall time, the CPU time of
all its processes, the tests passed, and per round the ratio of the second
commit's wall time to the first's.

    python benchmarks/suite_time.py --base 2d689da [--head HEAD] [--rounds 1]

Run it on an idle machine: other work on the cores lengthens both suites, not
necessarily alike.
"""
import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUMMARY = re.compile(r"(\d+) (passed|failed|skipped|errors?)\b")


def export(repo, commit, folder):
    """Write the tree of ``commit`` of the git repository ``repo`` into ``folder`` (new)."""
    os.makedirs(folder)
    archive = subprocess.run(["git", "-C", repo, "archive", "--format=tar", commit],
                             check=True, stdout=subprocess.PIPE).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)


def children_cpu():
    """CPU seconds (user + system) of every finished child process of this one."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_suite(folder, pytest_args=()):
    """Run the suite in ``folder``: {"wall": s, "cpu": s, "counts": {outcome: n}, "rc": code}."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [folder] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    cpu, start = children_cpu(), time.monotonic()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
                            + list(pytest_args), cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    wall, cpu = time.monotonic() - start, children_cpu() - cpu
    last = [line for line in result.stdout.splitlines() if line.strip()][-1:]
    counts = {outcome.rstrip("s") if outcome.startswith("error") else outcome: int(n)
              for n, outcome in SUMMARY.findall(last[0] if last else "")}
    return {"wall": wall, "cpu": cpu, "counts": counts, "rc": result.returncode}


def describe(name, run):
    counts = ", ".join("%d %s" % (n, outcome) for outcome, n in sorted(run["counts"].items()))
    return "%-10s wall %6.1f s (%s)  CPU %7.1f s  %s  exit %d" % (
        name, run["wall"], time.strftime("%M:%S", time.gmtime(run["wall"])), run["cpu"],
        counts or "no summary", run["rc"])


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit measured against")
    parser.add_argument("--head", default="HEAD", help="the commit measured")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each suite")
    parser.add_argument("--repo", default=ROOT, help="the git repository (default: this one)")
    parser.add_argument("pytest_args", nargs="*", help="passed on to both suites, after --")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    work = tempfile.mkdtemp(prefix="suite-time-")
    try:
        folders = {}
        for name in ("base", "head"):
            folders[name] = os.path.join(work, name)
            export(args.repo, getattr(args, name), folders[name])
        ratios = []
        for round_ in range(args.rounds):
            runs = {}
            for name in ("base", "head"):
                runs[name] = run_suite(folders[name], args.pytest_args)
                print("round %d  %s" % (round_ + 1, describe(
                    "%s %s" % (name, getattr(args, name)), runs[name])), flush=True)
            ratios.append(runs["head"]["wall"] / runs["base"]["wall"])
            print("round %d  head / base wall time %.3fx, CPU time %.3fx"
                  % (round_ + 1, ratios[-1], runs["head"]["cpu"] / runs["base"]["cpu"]),
                  flush=True)
        print("median head / base wall time over %d round(s): %.3fx (%.3fx to %.3fx)"
              % (len(ratios), statistics.median(ratios), min(ratios), max(ratios)))
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
