"""The README's commands run as shown: its cheap train and generate lines, cut to 2 iterations.

The bash blocks of README.md are parsed line by line; each ``&&``-joined part that runs
``train.py`` or ``sngan_gluon.generate`` offline on the CPU is run in a temporary folder
(so ``runs/...`` lands there), in README order, with ``--iterations`` set to 2, batches of
8, every writing interval to 1 and the tests' narrow widths (``tiny_runs.WIDTH_FLAGS``).
Parts that need the network or a GPU (CIFAR-10, ``--use-gpu``, ``--gpus``, the launcher,
``pip``, Inception weights) are left out.
"""
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from tiny_runs import WIDTH_FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
TEST_COMMAND = ('python3 -m venv .venv && . .venv/bin/activate && pip install ".[cpu,test]" '
                '&& python -m pytest -q')
OFFLINE_DATASETS = ("digits", "folder", "synthetic")
NEEDS_NETWORK_OR_GPU = ("--use-gpu", "--gpus", "--sync-bn", "--kvstore", "--feature-net-params")
# Flags whose value is shrunk for the test, and flags that do not change what is computed
# (so two README lines that differ only in them are run once).
SHRUNK = {"--iterations": "2", "--batch-size": "8", "--sample-every": "1", "--log-every": "1",
          "--checkpoint-every": "2", **dict(zip(WIDTH_FLAGS[::2], WIDTH_FLAGS[1::2]))}
IGNORED_FOR_DEDUP = set(SHRUNK) | {"--out-dir"}


def code_blocks(language, path=README):
    with open(path, encoding="utf-8") as f:
        return re.findall(r"```%s\n(.*?)```" % language, f.read(), flags=re.S)


def bash_lines(path=README):
    """Every command line of the ```bash blocks of ``path``, comments dropped."""
    lines = []
    for block in code_blocks("bash", path):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def commands(line):
    """The ``&&``-joined commands of one shell line, each as a token list (``--a=b`` split)."""
    parts, current = [], []
    for token in shlex.split(line):
        if token == "&&":
            parts.append(current)
            current = []
        elif token.startswith("--") and "=" in token:
            current.extend(token.split("=", 1))
        else:
            current.append(token)
    return parts + [current]


def flag(tokens, name, default=None):
    return tokens[tokens.index(name) + 1] if name in tokens else default


def runnable(tokens, trained):
    """Whether a README command is cheap and offline enough to run: a train call on an
    offline dataset, or a generate call on a run folder that an earlier one of them wrote."""
    if tokens[:2] == ["python", "train.py"]:
        return (flag(tokens, "--dataset", "cifar10") in OFFLINE_DATASETS
                and not any(name in tokens for name in NEEDS_NETWORK_OR_GPU))
    return (tokens[:3] == ["python", "-m", "sngan_gluon.generate"]
            and flag(tokens, "--checkpoint") in trained and "--use-gpu" not in tokens)


def shrunk(tokens):
    """``tokens`` with 2 iterations of batches of 8, every writing interval 1 and narrow
    networks, run by this interpreter."""
    out = [sys.executable] + tokens[1:]
    if out[1] == "train.py":
        out[1] = os.path.join(ROOT, "train.py")
        for name, value in SHRUNK.items():
            if name in out:
                out[out.index(name) + 1] = value
            else:
                out += [name, value]
        out.append("--quiet")
    return out


def dedup_key(tokens):
    key, skip = [], False
    for token in tokens:
        if skip:
            skip = False
        elif token in IGNORED_FOR_DEDUP:
            skip = True
        else:
            key.append(token)
    return tuple(key)


def readme_commands():
    """The runnable README commands, in README order, each once."""
    seen, trained, result = set(), set(), []
    for line in bash_lines():
        for tokens in commands(line):
            if tokens and runnable(tokens, trained) and dedup_key(tokens) not in seen:
                seen.add(dedup_key(tokens))
                trained.add(flag(tokens, "--out-dir"))
                result.append(tokens)
    return result


def make_image_folder(path, count=64):
    """``count`` small PNGs of random blobs, standing in for a user's images."""
    import cv2
    os.makedirs(path)
    rng = np.random.RandomState(0)
    for i in range(count):
        image = (rng.rand(40, 48, 3) * 255).astype(np.uint8)
        cv2.imwrite(os.path.join(path, "%03d.png" % i), image)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run every runnable README command in one temporary folder; (tokens, result) pairs."""
    cwd = tmp_path_factory.mktemp("readme")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    env.setdefault("OMP_NUM_THREADS", "1")
    done = []
    for tokens in readme_commands():
        data_path = flag(tokens, "--data-path")
        if flag(tokens, "--dataset") == "folder" and not (cwd / data_path).exists():
            make_image_folder(str(cwd / data_path))
        result = subprocess.run(shrunk(tokens), cwd=str(cwd), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, timeout=300)
        done.append((tokens, result, cwd))
    return done


def test_the_test_command_is_the_one_ci_runs():
    assert TEST_COMMAND in bash_lines()
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as f:
        assert 'pip install ".[cpu,test]" && python -m pytest -q' in f.read()


def test_the_first_command_installs_and_trains_on_the_digits():
    first = commands(bash_lines()[0])
    assert first[0][:3] == ["python3", "-m", "venv"]
    assert ["pip", "install", ".[cpu,digits]"] in first
    train = first[-1]
    assert train[:2] == ["python", "train.py"] and flag(train, "--dataset") == "digits"


def test_readme_commands_write_under_runs_only():
    # The committed sn_gan_output.png, or any file of the repository, is never an output.
    for line in bash_lines():
        for tokens in commands(line):
            for name in ("--out", "--out-dir"):
                value = flag(tokens, name)
                if value is not None:
                    assert "runs/" in value, (name, value, line)


def test_readme_has_train_generate_and_folder_commands_to_run():
    kinds = [(t[1], flag(t, "--dataset")) for t in readme_commands()]
    assert ("train.py", "digits") in kinds and ("train.py", "folder") in kinds
    assert ("-m", None) in kinds  # python -m sngan_gluon.generate


def test_readme_python_examples_run():
    for block in code_blocks("python"):
        exec(compile(block, "README.md", "exec"), {})


@pytest.mark.slow
def test_readme_commands_exit_0_and_write_their_files(runs):
    for tokens, result, cwd in runs:
        assert result.returncode == 0, (tokens, result.stdout[-2000:])
        if tokens[1] == "train.py":
            out = cwd / flag(tokens, "--out-dir")
            for name in ("config.json", "log.csv", "loss.png", "fixed_noise.npz"):
                assert (out / name).is_file(), (tokens, name)
            assert sorted(os.listdir(str(out / "samples"))), tokens
            assert (out / "checkpoints" / "iter_0000002").is_dir(), tokens
        else:
            assert (cwd / flag(tokens, "--out")).stat().st_size > 0, tokens
