"""GPU support on a machine without one: the CUDA library preload, the device refusals,
the doctor, and the order of u's write (the device queries are replaced)."""
import functools
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import sngan_gluon  # noqa: F401
import mxnet as mx
from mxnet import autograd, nd

from sngan_gluon import _cuda_libs, cuda_driver, devices, environment, sampling
from sngan_gluon import trainer as trainer_module
from sngan_gluon._compat import hybridize_flags
from sngan_gluon.config import TrainConfig
from sngan_gluon.nn import SNDense
from tiny_runs import WIDTHS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CUDA_BUILD = devices.MXNetBuild("1.9.1", True, "mxnet-cu117", ["CUDA", "CUDNN", "NCCL"])
GiB = 2 ** 30
H100 = cuda_driver.GPU(0, "NVIDIA H100 80GB HBM3", 80 * GiB, (9, 0))
RTX4090 = cuda_driver.GPU(1, "NVIDIA GeForce RTX 4090", 24 * GiB, (8, 9))


# ---- point 1: which MXNet is installed, and the preload -------------------------------

def test_installed_builds_are_the_distributions_that_install_the_module_mxnet(tmp_path):
    first, second = tmp_path / "site", tmp_path / "user"
    for folder, names in ((first, ["mxnet-1.9.1.dist-info", "mxnet_cu117-1.9.1.dist-info",
                                   "mxnet_model_server-1.0.dist-info", "mxnet", "numpy-1.23.5"
                                   ".dist-info"]),
                          (second, ["MXNet_CU112-1.8.0.post0.dist-info",
                                    "mxnet-1.9.0-py3.11.egg-info"])):
        for name in names:
            (folder / name).mkdir(parents=True)
    builds = _cuda_libs.installed_builds([str(first), str(tmp_path / "missing"), str(second)])
    # the first folder on the path wins, as for imports
    assert builds == {"mxnet": "1.9.1", "mxnet-cu117": "1.9.1", "mxnet-cu112": "1.8.0.post0"}
    assert [_cuda_libs.is_cuda_build(n) for n in ("mxnet", "mxnet-cu117")] == [False, True]


def test_this_environment_has_the_cpu_build_alone():
    assert _cuda_libs.installed_builds() == {"mxnet": mx.__version__}


def test_two_builds_installed_at_once_is_one_line_naming_both():
    with pytest.raises(_cuda_libs.MXNetBuildError,
                       match=r"two MXNet builds are installed at once \(mxnet 1.9.1 and "
                             r"mxnet-cu117 1.9.1\).*pip uninstall -y mxnet mxnet-cu117") as err:
        _cuda_libs.load_cuda_libraries(builds={"mxnet": "1.9.1", "mxnet-cu117": "1.9.1"})
    assert "\n" not in str(err.value)
    assert isinstance(err.value, ImportError)


def test_no_build_installed_names_both_extras(monkeypatch):
    monkeypatch.setattr(_cuda_libs.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(_cuda_libs.MXNetBuildError,
                       match=r"MXNet is not installed: pip install mxnet==1.9.1 .*\[gpu\]"):
        _cuda_libs.check_builds({})


def _fake_wheels(root):
    """site-packages/nvidia/<part>/lib with an empty file for every library, as the
    nvidia-*-cu11 wheels lay them out (file names written out by hand)."""
    layout = {"cuda_runtime": ["libcudart.so.11.0"],
              "cublas": ["libcublas.so.11", "libcublasLt.so.11", "libnvblas.so.11"],
              "cufft": ["libcufft.so.10", "libcufftw.so.10"], "curand": ["libcurand.so.10"],
              "cusparse": ["libcusparse.so.11"], "cusolver": ["libcusolver.so.11"],
              "cuda_nvrtc": ["libnvrtc.so.11.2", "libnvrtc-builtins.so.11.8"],
              "nvtx": ["libnvToolsExt.so.1"], "nccl": ["libnccl.so.2"],
              "cudnn": ["libcudnn.so.8", "libcudnn_adv_infer.so.8", "libcudnn_adv_train.so.8",
                        "libcudnn_cnn_infer.so.8", "libcudnn_cnn_train.so.8",
                        "libcudnn_ops_infer.so.8", "libcudnn_ops_train.so.8"]}
    for part, files in layout.items():
        os.makedirs(os.path.join(root, "nvidia", part, "lib"))
        for name in files:
            open(os.path.join(root, "nvidia", part, "lib", name), "w").close()


def test_cuda_build_preloads_each_library_by_path_dependencies_first(tmp_path, monkeypatch):
    _fake_wheels(str(tmp_path))
    opened = []

    def fake_cdll(path, mode=0):
        opened.append((os.path.relpath(path, str(tmp_path)) if os.sep in path else path, mode))
        if path == "libcuda.so.1":
            raise OSError("libcuda.so.1: cannot open shared object file")

    monkeypatch.setattr(_cuda_libs.ctypes, "CDLL", fake_cdll)
    monkeypatch.setattr(_cuda_libs, "LOADED", [])
    with pytest.raises(_cuda_libs.MXNetBuildError) as err:
        _cuda_libs.load_cuda_libraries(builds={"mxnet-cu117": "1.9.1"}, paths=[str(tmp_path)])
    g = _cuda_libs.ctypes.RTLD_GLOBAL
    assert opened == [("nvidia/cuda_runtime/lib/libcudart.so.11.0", g),
                      ("nvidia/cublas/lib/libcublasLt.so.11", g),
                      ("nvidia/cublas/lib/libcublas.so.11", g),
                      ("nvidia/cufft/lib/libcufft.so.10", g),
                      ("nvidia/curand/lib/libcurand.so.10", g),
                      ("nvidia/cusparse/lib/libcusparse.so.11", g),
                      ("nvidia/cusolver/lib/libcusolver.so.11", g),
                      ("nvidia/cuda_nvrtc/lib/libnvrtc.so.11.2", g),
                      ("nvidia/cuda_nvrtc/lib/libnvrtc-builtins.so.11.8", g),
                      ("nvidia/nvtx/lib/libnvToolsExt.so.1", g),
                      ("nvidia/nccl/lib/libnccl.so.2", g),
                      ("nvidia/cudnn/lib/libcudnn.so.8", g),
                      ("nvidia/cudnn/lib/libcudnn_ops_infer.so.8", g),
                      ("nvidia/cudnn/lib/libcudnn_ops_train.so.8", g),
                      ("nvidia/cudnn/lib/libcudnn_cnn_infer.so.8", g),
                      ("nvidia/cudnn/lib/libcudnn_cnn_train.so.8", g),
                      ("nvidia/cudnn/lib/libcudnn_adv_infer.so.8", g),
                      ("nvidia/cudnn/lib/libcudnn_adv_train.so.8", g),
                      ("libcuda.so.1", 0)]
    # every name libmxnet.so of mxnet-cu117 needs is among the files opened
    assert set(_cuda_libs.MXNET_CU117_NEEDS) <= {os.path.basename(p) for p, _ in opened}
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("mxnet-cu117 1.9.1 is MXNet's CUDA build, but the NVIDIA driver "
                              "is not installed (libcuda.so.1 not found)")
    assert "pip uninstall -y mxnet-cu117 && pip install mxnet==1.9.1" in message


def test_cpu_build_loads_nothing(tmp_path, monkeypatch):
    _fake_wheels(str(tmp_path))
    monkeypatch.setattr(_cuda_libs, "LOADED", [])
    monkeypatch.setattr(_cuda_libs.ctypes, "CDLL", lambda *a, **k: pytest.fail("loaded %s" % a))
    assert _cuda_libs.load_cuda_libraries(builds={"mxnet": "1.9.1"},
                                          paths=[str(tmp_path)]) == []


def _unloaded_system_library():
    for folder in ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64"):
        path = os.path.join(folder, "libsqlite3.so.0")
        if os.path.exists(path):
            return path
    pytest.skip("no libsqlite3.so.0 to copy")


def test_a_library_loaded_by_path_is_what_a_later_load_by_its_soname_gets(tmp_path):
    """The mechanism the preload relies on, in a fresh process: after a library is
    opened from a folder the loader does not search (as site-packages/nvidia/*/lib),
    a load by its soname (as libmxnet.so's NEEDED entry) gets that same file."""
    copy = tmp_path / "nvidia" / "sqlite3" / "lib" / "libsqlite3.so.0"
    copy.parent.mkdir(parents=True)
    shutil.copy(os.path.realpath(_unloaded_system_library()), str(copy))
    code = ("import ctypes, importlib.util, sys\n"
            "spec = importlib.util.spec_from_file_location('c', sys.argv[1])\n"
            "c = importlib.util.module_from_spec(spec); spec.loader.exec_module(c)\n"
            "assert c.loaded_path('libsqlite3.so.0') is None\n"
            "ctypes.CDLL(sys.argv[2], mode=ctypes.RTLD_GLOBAL)\n"
            "ctypes.CDLL('libsqlite3.so.0')\n"
            "print(c.loaded_path('libsqlite3.so.0'))\n")
    result = subprocess.run([sys.executable, "-c", code,
                             os.path.join(ROOT, "sngan_gluon", "_cuda_libs.py"), str(copy)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == os.path.realpath(str(copy))


# ---- point 4: one device helper, and its refusals --------------------------------------

@pytest.fixture
def machine(monkeypatch):
    """Replace the device queries: ``machine(build, gpus)``; gpus None: no driver."""
    def set_machine(build, gpus):
        monkeypatch.setattr(devices, "mxnet_build", lambda: build)
        monkeypatch.setattr(cuda_driver, "gpus", lambda: gpus)
    return set_machine


def test_no_gpu_flag_gives_cpu_contexts():
    assert devices.contexts() == [mx.cpu(0)]
    assert devices.contexts(cpus=3) == [mx.cpu(0), mx.cpu(1), mx.cpu(2)]


def test_cpu_build_given_use_gpu_is_refused_in_one_line():
    with pytest.raises(devices.DeviceError,
                       match=r"^--use-gpu: the installed MXNet \(mxnet 1.9.1\) is the CPU build; "
                             r"for NVIDIA GPUs install a CUDA build: pip install '\.\[gpu\]'"):
        devices.contexts(use_gpu=True)  # the real query: this environment has the CPU build


def test_missing_driver_is_refused_in_one_line(machine):
    machine(CUDA_BUILD, None)
    with pytest.raises(devices.DeviceError,
                       match=r"^--gpus 0: the NVIDIA driver is not installed \(libcuda.so.1 not "
                             r"found\)"):
        devices.contexts(gpus=[0])


def test_cuda_build_with_no_gpu_visible_is_refused_in_one_line(machine):
    machine(CUDA_BUILD, [])
    with pytest.raises(devices.DeviceError,
                       match=r"^--use-gpu: mxnet-cu117 1.9.1 is MXNet's CUDA build, but CUDA "
                             r"sees no GPU"):
        devices.contexts(use_gpu=True)


def test_gpu_ids_beyond_those_visible_are_refused(machine):
    machine(CUDA_BUILD, [RTX4090._replace(index=0)])
    with pytest.raises(devices.DeviceError, match=r"only 1 GPU\(s\) visible \(ids 0..0\)"):
        devices.contexts(gpus=[0, 1])


# capability -> has mxnet-cu117 1.9.1 kernels for it (sm_50/60/70/80/86, no PTX), by hand
CAPABILITIES = [((3, 7), False), ((5, 0), True), ((5, 2), True), ((6, 1), True),
                ((7, 0), True), ((7, 5), True), ((8, 0), True), ((8, 6), True), ((8, 7), True),
                ((8, 9), True), ((9, 0), False), ((10, 0), False), ((12, 0), False)]


@pytest.mark.parametrize("capability,runs", CAPABILITIES)
def test_gpus_run_where_the_build_has_kernels_for_their_capability(machine, capability, runs):
    gpu = cuda_driver.GPU(0, "GPU of capability %d.%d" % capability, 8 * GiB, capability)
    machine(CUDA_BUILD, [gpu])
    if runs:
        assert devices.contexts(use_gpu=True) == [mx.gpu(0)]
    else:
        with pytest.raises(devices.DeviceError, match=r"compute capability %d\.%d"
                                                      % capability):
            devices.contexts(use_gpu=True)


def test_hopper_is_refused_naming_gpu_capability_supported_range_and_options(machine):
    machine(CUDA_BUILD, [RTX4090._replace(index=0), H100._replace(index=1)])
    assert devices.contexts(gpus=[0]) == [mx.gpu(0)]
    with pytest.raises(devices.DeviceError) as err:
        devices.contexts(gpus=[0, 1])
    assert str(err.value) == (
        "--gpus 0,1: GPU 1 (NVIDIA H100 80GB HBM3) has compute capability 9.0, and mxnet-cu117 "
        "1.9.1 has kernels for 5.0-8.9 only (sm_50, sm_60, sm_70, sm_80, sm_86): run on the "
        "CPU (leave out --use-gpu/--gpus), or MXNet built from source with CUDA >= 11.8 for "
        "sm_90 (12.8 for sm_100 and later)")


def test_a_cuda_build_of_unknown_kernels_is_not_refused(machine):
    machine(devices.MXNetBuild("1.9.1", True, "mxnet-cu112", ["CUDA"]), [H100])
    assert devices.contexts(use_gpu=True) == [mx.gpu(0)]


@pytest.mark.parametrize("command", ["train", "generate", "evaluate"])
def test_each_command_refuses_hopper_in_one_line_before_building_a_network(
        command, machine, monkeypatch, capsys, tmp_path):
    """The refusal comes first: the checkpoint named need not even exist."""
    from sngan_gluon.cli import evaluate, generate, train
    machine(CUDA_BUILD, [H100])
    built = []
    monkeypatch.setattr(trainer_module, "build_networks", lambda *a, **k: built.append(1))
    monkeypatch.setattr(sampling.LoadedGenerator, "__init__",
                        lambda *a, **k: built.append(1))
    argv = {"train": ["--dataset", "synthetic", "--out-dir", str(tmp_path / "r"), "--use-gpu"],
            "generate": ["--checkpoint", str(tmp_path / "run"), "--out", str(tmp_path / "g.png"),
                         "--use-gpu"],
            "evaluate": ["--checkpoint", str(tmp_path / "run"), "--dataset", "synthetic",
                         "--use-gpu"]}[command]
    code = {"train": train, "generate": generate, "evaluate": evaluate}[command].main(argv)
    err = capsys.readouterr().err
    assert code == 2 and built == []
    assert len(err.strip().splitlines()) == 1, err
    assert "GPU 0 (NVIDIA H100 80GB HBM3) has compute capability 9.0" in err
    assert "5.0-8.9" in err and "the CPU" in err and "CUDA >= 11.8 for sm_90" in err


# ---- point 3: the doctor ---------------------------------------------------------------

def test_doctor_lists_each_gpu_with_its_kernels_and_exits_1_where_one_has_none():
    paths = {name: "/site/nvidia/x/lib/" + name for name in _cuda_libs.MXNET_CU117_NEEDS}
    lines, status = environment.report(build=CUDA_BUILD, gpus=[H100._replace(index=0),
                                                               RTX4090],
                                       driver=("550.54.14", "12.4"), library_path=paths.get)
    text = "\n".join(lines)
    assert status == 1
    assert "MXNet 1.9.1 (distribution mxnet-cu117), CUDA build: CUDA, CUDNN, NCCL" in text
    assert "  libcudnn.so.8        /site/nvidia/x/lib/libcudnn.so.8" in lines
    assert "  libcuda.so.1         not loaded" in lines
    assert "NVIDIA driver: 550.54.14 (runs CUDA up to 12.4)" in lines
    assert ("  0: NVIDIA H100 80GB HBM3, 80.0 GiB, compute capability 9.0; MXNet kernels: NO"
            in lines)
    assert ("  1: NVIDIA GeForce RTX 4090, 24.0 GiB, compute capability 8.9; MXNet kernels: yes"
            in lines)
    assert lines[-1].startswith("Next: train on the others with --gpus 1; GPU 0 (NVIDIA H100")


def test_doctor_exits_0_where_every_gpu_has_kernels():
    lines, status = environment.report(build=CUDA_BUILD, gpus=[RTX4090._replace(index=0)],
                                       driver=(None, "11.8"), library_path=lambda n: None)
    assert status == 0
    assert lines[-1] == "Next: train on the GPU with --use-gpu"
    assert "NVIDIA driver: release unknown (runs CUDA up to 11.8)" in lines


def test_doctor_on_a_cpu_build_with_a_gpu_says_how_to_install_the_cuda_build():
    build = devices.MXNetBuild("1.9.1", False, "mxnet", ["OPENMP"])
    lines, status = environment.report(build=build, gpus=[RTX4090._replace(index=0)],
                                       driver=("550.54.14", "12.4"))
    assert status == 0
    assert "MXNet kernels: no (the CPU build)" in lines[-2]
    assert "pip install '.[gpu]'" in lines[-1]


def test_doctor_runs_on_this_machine():
    result = subprocess.run([sys.executable, "-m", "sngan_gluon.doctor"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "numpy %s" % np.__version__ in out
    assert "MXNet %s (distribution mxnet), CPU build: " % mx.__version__ in out
    assert "OPENMP" in out and "OpenMP threads: " in out
    assert "NVIDIA driver: not installed (libcuda.so.1 not found)" in out
    assert "GPUs: none visible" in out and out.strip().splitlines()[-1].startswith("Next: ")


# ---- point 5: the order of u's write ---------------------------------------------------

def test_gpu_contexts_hybridize_sn_networks_without_static_alloc():
    assert devices.sn_hybridize_kwargs([mx.cpu(0), mx.cpu(1)]) == dict(static_alloc=True,
                                                                       static_shape=True)
    assert devices.sn_hybridize_kwargs([mx.gpu(0)]) == {}
    assert devices.sn_hybridize_kwargs([mx.cpu(0)], engine_ordered=True) == {}


def _stale_reads_of_u(hybridize_kwargs, calls=3):
    """How many of ``calls`` training-mode calls of a large SN layer leave ``u``, read from
    outside the graph right after the call, different from its value once all work is done."""
    mx.random.seed(0)
    layer = SNDense(1024, in_units=4096, power_iterations=8)
    layer.initialize()
    layer.hybridize(**hybridize_kwargs)
    x = nd.random.normal(shape=(256, 4096))
    with autograd.train_mode():
        layer(x)
    nd.waitall()
    stale = 0
    for _ in range(calls):
        before = layer.u.data().asnumpy()
        with autograd.train_mode():
            layer(x)
        right_after = layer.u.data().asnumpy()  # waits only for writes the engine knows of
        nd.waitall()
        done = layer.u.data().asnumpy()
        assert not np.array_equal(before, done)  # u was advanced
        stale += int(not np.array_equal(right_after, done))
    return stale


def test_without_static_alloc_the_engine_knows_of_the_write_of_u():
    """The engine orders a read of u after the graph's write of u on the path without
    static_alloc (a mutated input is a written variable there), and not under static_alloc,
    where the write is declared a read and a read right after the call sees the old u.
    Neither relies on the layer's fence, which orders reads inside graphs only."""
    assert _stale_reads_of_u(devices.sn_hybridize_kwargs([mx.gpu(0)])) == 0
    assert _stale_reads_of_u(devices.sn_hybridize_kwargs([mx.cpu(0)])) >= 1


@pytest.mark.slow
def test_training_with_d_engine_ordered_equals_the_default_path(monkeypatch, tmp_path):
    from sngan_gluon.data import get_dataset
    dataset = get_dataset("synthetic", image_size=32)
    config = TrainConfig(dataset="synthetic", batch_size=8, iterations=4, log_every=2,
                         sample_every=4, checkpoint_every=4, quiet=True, seed=3, n_dis=2,
                         **WIDTHS)
    default = trainer_module.GANTrainer(config, dataset=dataset)
    monkeypatch.setattr(trainer_module, "build_networks",
                        functools.partial(trainer_module.build_networks, engine_ordered=True))
    ordered = trainer_module.GANTrainer(config, dataset=dataset)
    assert hybridize_flags(default.D)["static_alloc"] is True
    assert not hybridize_flags(ordered.D).get("static_alloc")
    default.train(str(tmp_path / "default"), progress=False)
    ordered.train(str(tmp_path / "ordered"), progress=False)
    for net in ("D", "G"):
        for (name, a), b in zip(getattr(default, net).collect_params().items(),
                                getattr(ordered, net).collect_params().values()):
            np.testing.assert_allclose(a.data().asnumpy(), b.data().asnumpy(), rtol=1e-5,
                                       atol=1e-6, err_msg=name)
