"""Check the ``[gpu]`` extra on a machine without a GPU: it installs, and only the driver is missing.

In a scratch virtual environment (made by this script, deleted at the end unless
``--keep``), ``pip install ".[gpu]"`` from the repository, then:

1. the install size: the whole ``site-packages``, and each ``mxnet*`` / ``nvidia-*``
   distribution;
2. in a fresh interpreter of that environment, the package's own preload
   (``sngan_gluon/_cuda_libs.py``, loaded from its file so that ``sngan_gluon``'s
   ``__init__`` and ``mxnet`` are not imported), then every library that
   ``mxnet/libmxnet.so`` lists as NEEDED (``readelf -d``, read here, not taken from
   the package) is looked up the way the loader would find it when ``libmxnet.so`` is
   opened next: a library already loaded under that name, else a file in
   ``libmxnet.so``'s RUNPATH, else the system's search path. Each is printed with
   the file it resolved to (``dlinfo``); the driver's ``libcuda.so.1`` is the one
   expected to be missing;
3. ``import sngan_gluon`` in another fresh interpreter: it must fail on the missing
   driver alone, with the package's one-line message.

Exit status 0 when all three hold. Not part of the test suite: the extra is
about 2.5 GB.

    python benchmarks/gpu_install_check.py [--venv DIR] [--keep]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs inside the scratch environment; prints one JSON object.
PROBE = r'''
import ctypes, glob, importlib.util, json, os, subprocess, sys, sysconfig
site = sysconfig.get_paths()["purelib"]
spec = importlib.util.spec_from_file_location(
    "cuda_libs", os.path.join(site, "sngan_gluon", "_cuda_libs.py"))
cuda_libs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cuda_libs)
builds = cuda_libs.installed_builds()
try:
    cuda_libs.load_cuda_libraries()
    preload_error = None
except cuda_libs.MXNetBuildError as e:
    preload_error = str(e)
libmxnet = os.path.join(site, "mxnet", "libmxnet.so")
dynamic = subprocess.run(["readelf", "-d", libmxnet], stdout=subprocess.PIPE, text=True,
                         check=True).stdout
needed = [line.split("[")[1].split("]")[0] for line in dynamic.splitlines()
          if "(NEEDED)" in line]
runpath = [line.split("[")[1].split("]")[0] for line in dynamic.splitlines()
           if "(RUNPATH)" in line or "(RPATH)" in line]
runpath_dirs = [d.replace("$ORIGIN", os.path.dirname(libmxnet))
                for entry in runpath for d in entry.split(":")]
rows = []
for name in needed:
    how = None
    path = cuda_libs.loaded_path(name)
    if path is not None:
        how = "already loaded"
    else:
        for d in runpath_dirs:
            if os.path.exists(os.path.join(d, name)):
                ctypes.CDLL(os.path.join(d, name))
                how, path = "RUNPATH", cuda_libs.loaded_path(name)
                break
        else:
            try:
                ctypes.CDLL(name)
                how, path = "system", cuda_libs.loaded_path(name)
            except OSError:
                how = "not found"
    rows.append({"needed": name, "how": how, "path": path})
print(json.dumps({"builds": builds, "preload_error": preload_error, "runpath": runpath,
                  "loaded": cuda_libs.LOADED, "needed": rows}))
'''


def run(cmd, **kwargs):
    print("$ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, **kwargs)


def tree_size(path):
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            full = os.path.join(folder, name)
            if not os.path.islink(full):
                total += os.path.getsize(full)
    return total


def distribution_sizes(python):
    """``{name: bytes}`` of the mxnet* and nvidia-* distributions, from their RECORD files."""
    code = ("import importlib.metadata as m, json, os\n"
            "out = {}\n"
            "for d in m.distributions():\n"
            "    n = d.metadata['Name'].lower()\n"
            "    if n.startswith(('mxnet', 'nvidia-')):\n"
            "        out['%s %s' % (n, d.version)] = sum(os.path.getsize(d.locate_file(f))\n"
            "            for f in d.files or () if os.path.isfile(d.locate_file(f)))\n"
            "print(json.dumps(out))\n")
    return json.loads(subprocess.run([python, "-c", code], stdout=subprocess.PIPE, text=True,
                                     check=True).stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", help="scratch environment to make (default: a new folder "
                        "under the system's temporary folder)")
    parser.add_argument("--keep", action="store_true", help="do not delete the environment")
    args = parser.parse_args()
    made = args.venv is None
    venv = args.venv or tempfile.mkdtemp(prefix="sngan_gpu_check_")
    if not made and os.path.exists(venv):
        parser.error("--venv %s exists; give a new folder" % venv)
    python = os.path.join(venv, "bin", "python")
    ok = True
    try:
        run([sys.executable, "-m", "venv", venv])
        run([python, "-m", "pip", "install", "--quiet", ".[gpu]"], cwd=ROOT)
        site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                               "['purelib'])"], stdout=subprocess.PIPE, text=True,
                              check=True).stdout.strip()
        print("\n== install size")
        print("site-packages: %.2f GB" % (tree_size(site) / 1e9))
        for name, size in sorted(distribution_sizes(python).items(), key=lambda kv: -kv[1]):
            print("  %-40s %8.1f MB" % (name, size / 1e6))

        probe = json.loads(subprocess.run([python, "-c", PROBE], stdout=subprocess.PIPE,
                                          text=True, check=True, cwd=venv).stdout)
        print("\n== MXNet builds installed: %s" % probe["builds"])
        print("== libmxnet.so RUNPATH: %s" % (probe["runpath"] or "none"))
        print("== preloaded by sngan_gluon/_cuda_libs.py: %d libraries" % len(probe["loaded"]))
        print("\n== what libmxnet.so NEEDS, and where it resolves after the preload")
        for row in probe["needed"]:
            print("  %-24s %-15s %s" % (row["needed"], row["how"], row["path"] or ""))
        missing = [r["needed"] for r in probe["needed"] if r["how"] == "not found"]
        print("missing: %s" % (", ".join(missing) or "none"))
        if missing != ["libcuda.so.1"]:
            print("FAIL: expected exactly libcuda.so.1 (the driver's) to be missing")
            ok = False
        cuda_rows = [r for r in probe["needed"] if re.match(
            r"lib(cudart|cublas|cufft|cusolver|cusparse|curand|nvrtc|nvToolsExt|cudnn|nccl)",
            r["needed"])]
        outside = [r["needed"] for r in cuda_rows
                   if not (r["path"] or "").startswith(os.path.join(site, "nvidia"))]
        print("CUDA libraries resolved to the nvidia-* wheels: %d of %d%s"
              % (len(cuda_rows) - len(outside), len(cuda_rows),
                 "" if not outside else " (elsewhere: %s)" % ", ".join(outside)))
        ok = ok and not outside and len(cuda_rows) == 10

        print("\n== import sngan_gluon")
        result = subprocess.run([python, "-c", "import sngan_gluon"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, cwd=venv)
        last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
        print("exit status %d; last line:\n  %s" % (result.returncode, last))
        if result.returncode == 0 or "NVIDIA driver is not installed" not in last:
            print("FAIL: expected the one line about the missing driver")
            print(result.stdout[-3000:])
            ok = False
        print("\n%s" % ("OK" if ok else "FAILED"))
    finally:
        if made and not args.keep:
            shutil.rmtree(venv, ignore_errors=True)
            print("removed %s" % venv)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
