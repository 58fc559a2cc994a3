"""Check the ``[gpu]`` extra without a GPU: it installs, and only the driver is missing.

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
   driver alone, with the package's one-line message;
4. where a C compiler is at hand, the same with a stand-in driver: a ``libcuda.so.1``
   compiled here that exports the driver functions ``libmxnet.so`` imports (``nm -D``)
   and answers every call with CUDA_ERROR_NO_DEVICE, as a driver on a machine
   without a GPU would. Then ``import sngan_gluon`` must load MXNet's CUDA build
   (every symbol bound), ``python -m sngan_gluon.doctor`` must report it, and
   ``sngan-train --use-gpu`` must stop with one line saying CUDA sees no GPU.

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
origin = os.path.dirname(libmxnet)
runpath_dirs = [d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
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


STUB = """/* A stand-in for the NVIDIA driver's libcuda.so.1 on a machine without a GPU. */
int cuDriverGetVersion(int *version) { *version = 11080; return 0; }
int cuDeviceGetCount(int *count) { *count = 0; return 0; }
"""


def stub_driver_check(python, venv):
    """Step 4: True where it holds (or where no compiler is at hand)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        print("no C compiler: step 4 skipped")
        return True
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], stdout=subprocess.PIPE, text=True,
                          check=True).stdout.strip()
    undefined = subprocess.run(["nm", "-D", "--undefined-only",
                                os.path.join(site, "mxnet", "libmxnet.so")],
                               stdout=subprocess.PIPE, text=True, check=True).stdout.split()
    symbols = sorted({s for s in undefined if re.match(r"^cu[A-Z]\w*$", s)}
                     | {"cuInit", "cuDeviceGet"})
    stub_dir = os.path.join(venv, "stub-driver")
    os.makedirs(stub_dir, exist_ok=True)
    source = os.path.join(stub_dir, "libcuda.c")
    with open(source, "w") as f:
        f.write(STUB + "".join("int %s(void) { return 100; }\n" % s for s in symbols
                               if s not in ("cuDriverGetVersion", "cuDeviceGetCount")))
    run([cc, "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o",
         os.path.join(stub_dir, "libcuda.so.1"), source])
    print("stand-in driver exports: %s" % ", ".join(symbols))
    env = dict(os.environ, LD_LIBRARY_PATH=stub_dir)
    ok = True
    steps = [
        ("import", [python, "-c", "import sngan_gluon, mxnet as mx; f = mx.runtime.Features(); "
                    "print('MXNet', mx.__version__, 'CUDA' if f.is_enabled('CUDA') else 'CPU', "
                    "'build; cuDNN', f.is_enabled('CUDNN'), '; NCCL', f.is_enabled('NCCL'))"], 0),
        ("doctor", [python, "-m", "sngan_gluon.doctor"], 0),
        ("train --use-gpu", [os.path.join(venv, "bin", "sngan-train"), "--dataset", "synthetic",
                             "--iterations", "1", "--out-dir", os.path.join(venv, "run"),
                             "--use-gpu"], 2),
    ]
    for name, cmd, expected in steps:
        result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                cwd=venv, env=env)
        print("\n== with the stand-in driver: %s (exit status %d)" % (name, result.returncode))
        print("\n".join("  " + line for line in result.stdout.strip().splitlines()))
        if result.returncode != expected:
            print("FAIL: expected exit status %d" % expected)
            ok = False
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", help="the environment: made and filled here where it does "
                        "not exist, reused (and kept) where it does (default: a new folder "
                        "under the system's temporary folder, deleted at the end)")
    parser.add_argument("--keep", action="store_true", help="do not delete the environment")
    args = parser.parse_args()
    venv = args.venv or tempfile.mkdtemp(prefix="sngan_gpu_check_")
    python = os.path.join(venv, "bin", "python")
    reuse = args.venv is not None and os.path.exists(python)
    made = not reuse and (args.venv is None or not os.path.exists(venv))
    ok = True
    try:
        if reuse:
            print("reusing %s" % venv)
        else:
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
        ok = stub_driver_check(python, venv) and ok
        print("\n%s" % ("OK" if ok else "FAILED"))
    finally:
        if made and not args.keep:
            shutil.rmtree(venv, ignore_errors=True)
            print("removed %s" % venv)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
