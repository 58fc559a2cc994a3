"""The scripts of ``benchmarks/`` as modules, for the tests (the scripts import each other by name)."""
import importlib
import os
import sys

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "benchmarks")


def import_benchmark(name):
    """The module of ``benchmarks/<name>.py``."""
    sys.path.insert(0, BENCHMARKS)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)
