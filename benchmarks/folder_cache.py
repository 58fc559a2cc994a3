"""Time loading an image folder: decoding every file against memory-mapping the cache.

Writes ``--num`` random JPEGs (``--source`` pixels square) to a temporary
folder, then loads it with ``get_dataset('folder', image_size=--size)``: the
first load decodes every file and writes the ``.npy`` cache; the later ones
check the manifest and memory-map the cache. Cold loads (cache deleted first)
and warm loads are timed interleaved (ABAB...), and the medians and their
ratio are printed.

    python benchmarks/folder_cache.py [--num 2000] [--source 96] [--size 64] [--repeats 3]
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

import sngan_gluon  # noqa: F401
from sngan_gluon.data import FolderCache, get_dataset


def write_images(folder, num, side):
    import cv2
    rng = np.random.RandomState(0)
    for i in range(num):
        path = os.path.join(folder, "class%d" % (i % 10), "%05d.jpg" % i)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        cv2.imwrite(path, rng.randint(0, 255, (side, side, 3), np.uint8))


def timed_load(folder, size):
    start = time.perf_counter()
    dataset = get_dataset("folder", root=folder, image_size=size)
    dataset.images.sum()  # touch every page, as an epoch of training does
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=2000)
    parser.add_argument("--source", type=int, default=96)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="folder-cache-")
    try:
        write_images(folder, args.num, args.source)
        cold, warm = [], []
        for _ in range(args.repeats):
            shutil.rmtree(os.path.join(folder, FolderCache.FOLDER_NAME), ignore_errors=True)
            cold.append(timed_load(folder, args.size))
            warm.append(timed_load(folder, args.size))
    finally:
        shutil.rmtree(folder)
    print("%d JPEGs of %dx%d loaded at %dx%d, %d cores, median of %d:"
          % (args.num, args.source, args.source, args.size, args.size, os.cpu_count(),
             args.repeats), file=sys.stderr)
    print("decode + write cache  %.3f s" % statistics.median(cold))
    print("memory-mapped cache   %.3f s" % statistics.median(warm))
    print("ratio                 %.1fx" % (statistics.median(cold) / statistics.median(warm)))


if __name__ == "__main__":
    main()
