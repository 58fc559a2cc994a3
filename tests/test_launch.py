"""The dist_sync launcher: ps-lite environment, ssh command lines, real loopback jobs, CLI errors.

Every job here runs on 127.0.0.1 under a timeout. Each process a test starts
carries a unique marker in its environment, and the test checks through /proc
that none of them is left when the launcher returns.
"""
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

from sngan_gluon import launcher, supervise
from sngan_gluon.cli import EXIT_INTERRUPTED, EXIT_TIMEOUT, EXIT_USER_ERROR
from sngan_gluon.cli import launch as launch_cli
from sngan_gluon._threads import usable_cores
from tiny_runs import WIDTH_FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKER_KEY = "SNGAN_LAUNCH_TEST_MARKER"
needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self"),
                                reason="process checks read /proc")

PUSH_PULL = """
import json, os, sys
import numpy as np
import mxnet as mx

kv = mx.kv.create("dist_sync")
assert kv.num_workers == 2, kv.num_workers
kv.init(7, mx.nd.zeros((3,)))
kv.push(7, mx.nd.array([1, 2, 3]) * (kv.rank + 1))
out = mx.nd.zeros((3,))
kv.pull(7, out=out)
with open(os.path.join(os.environ["OUT"], "rank%d.json" % kv.rank), "w") as f:
    json.dump({"rank": kv.rank, "pulled": out.asnumpy().tolist(),
               "threads": os.environ.get("OMP_NUM_THREADS")}, f)
print("rank", kv.rank, "done")
"""

CRASH_ONE = """
import os
import mxnet as mx

kv = mx.kv.create("dist_sync")
if kv.rank == 1:
    os._exit(3)  # a crash; a Python exception would hang in ps-lite's finalize
kv.init(7, mx.nd.zeros((3,)))
kv.push(7, mx.nd.ones((3,)))
out = mx.nd.zeros((3,))
kv.pull(7, out=out)  # waits forever for rank 1's push
out.wait_to_read()
"""


def _script(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def _marker_env(tmp_path):
    return {MARKER_KEY: uuid.uuid4().hex, "OUT": str(tmp_path)}


def _left_running(marker):
    """Pids of live processes whose environment carries ``marker``."""
    wanted = ("%s=%s" % (MARKER_KEY, marker)).encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as handle:
                if wanted in handle.read().split(b"\0"):
                    pids.append(int(entry))
        except OSError:  # gone meanwhile, or not ours
            continue
    return pids


def _assert_nothing_left(marker):
    left = _left_running(marker)
    for pid in left:  # ours: they carry this test's marker
        os.kill(pid, signal.SIGKILL)
    assert left == []


def _run_cli(args, **kwargs):
    return subprocess.run([sys.executable, "-m", "sngan_gluon.launch"] + args, cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=60, **kwargs)


def test_role_env_sets_the_ps_lite_variables():
    assert launcher.role_env("worker", "10.0.0.1", 9091, 2, 4) == {
        "DMLC_ROLE": "worker", "DMLC_PS_ROOT_URI": "10.0.0.1", "DMLC_PS_ROOT_PORT": "9091",
        "DMLC_NUM_SERVER": "2", "DMLC_NUM_WORKER": "4"}
    env = launcher.role_env("scheduler", "127.0.0.1", 1234, 1, 1, node_host="127.0.0.1")
    assert env["DMLC_ROLE"] == "scheduler" and env["DMLC_NODE_HOST"] == "127.0.0.1"
    assert all(isinstance(v, str) for v in env.values())
    with pytest.raises(ValueError, match="'master'"):
        launcher.role_env("master", "127.0.0.1", 1234, 1, 1)


def test_host_commands_put_roles_env_and_quoting_in_each_ssh_line(tmp_path):
    hosts_file = tmp_path / "hosts.txt"
    hosts_file.write_text("# cluster\nnode-a\n\nbob@10.0.0.2:2222  # second\n")
    hosts = launcher.read_hosts(str(hosts_file))
    assert hosts == ["node-a", "bob@10.0.0.2:2222"]
    command = ["python", "train.py", "--kvstore", "dist_sync", "--out-dir", "it's a dir"]
    lines = launcher.host_commands(hosts, command, num_workers=2, num_servers=2, port=9100,
                                 workdir="/work dir", python="/venv/bin/python",
                                 env={"OMP_NUM_THREADS": "2"})

    assert [(h, r) for h, r, _ in lines] == [
        ("node-a", "scheduler"), ("node-a", "server"), ("bob@10.0.0.2", "server"),
        ("node-a", "worker"), ("bob@10.0.0.2", "worker")]
    for host, role, line in lines:
        ssh = shlex.split(line)
        assert ssh[:-2] == (["ssh", "-p", "2222"] if host.startswith("bob") else ["ssh"])
        assert ssh[-2] == host
        remote = shlex.split(ssh[-1])  # what the remote shell will see
        assert remote[:3] == ["cd", "/work dir", "&&"]
        assigns = [w for w in remote[3:] if "=" in w and w.split("=")[0].isupper()]
        argv = remote[3 + len(assigns):]
        env = dict(a.split("=", 1) for a in assigns)
        assert env == {"OMP_NUM_THREADS": "2", "DMLC_ROLE": role,
                       "DMLC_PS_ROOT_URI": "node-a", "DMLC_PS_ROOT_PORT": "9100",
                       "DMLC_NUM_SERVER": "2", "DMLC_NUM_WORKER": "2",
                       "DMLC_NODE_HOST": "10.0.0.2" if host.startswith("bob") else "node-a"}
        if role == "worker":
            assert argv == command
        else:
            assert argv == ["/venv/bin/python", "-c", launcher.SERVER_CODE]


def test_host_commands_reject_bad_sizes_and_entries():
    with pytest.raises(ValueError, match="workers"):
        launcher.host_commands(["a"], ["python", "t.py"], 0)
    with pytest.raises(ValueError, match="servers"):
        launcher.host_commands(["a"], ["python", "t.py"], 1, 0)
    with pytest.raises(ValueError, match="no worker command"):
        launcher.host_commands(["a"], [], 1)
    with pytest.raises(ValueError, match="host entry"):
        launcher.host_commands(["a:ssh"], ["python", "t.py"], 1)


@needs_proc
@pytest.mark.slow
def test_launch_local_two_workers_sum_their_pushes_and_leave_nothing(tmp_path, capfd,
                                                                      monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MXNET_OMP_MAX_THREADS", raising=False)
    env = _marker_env(tmp_path)
    script = _script(tmp_path, "push_pull.py", PUSH_PULL)
    code = launcher.launch_local([sys.executable, script], num_workers=2, num_servers=1,
                               timeout=60, env=env, cwd=str(tmp_path))
    assert code == 0
    results = [json.loads((tmp_path / ("rank%d.json" % r)).read_text()) for r in (0, 1)]
    assert [r["rank"] for r in results] == [0, 1]
    # dist_sync without an optimizer stores the sum of all workers' pushes.
    assert results[0]["pulled"] == results[1]["pulled"] == [3.0, 6.0, 9.0]
    # Two workers on one host share its cores instead of each taking them all.
    share = str(max(1, usable_cores() // 2))
    assert results[0]["threads"] == results[1]["threads"] == share
    out = capfd.readouterr().out
    assert "[worker 0] rank" in out and "[worker 1] rank" in out
    _assert_nothing_left(env[MARKER_KEY])


@needs_proc
@pytest.mark.slow
def test_a_crashed_worker_stops_the_job_quickly_with_its_code(tmp_path, capfd):
    env = _marker_env(tmp_path)
    script = _script(tmp_path, "crash_one.py", CRASH_ONE)
    start = time.monotonic()
    code = launcher.launch_local([sys.executable, script], num_workers=2, num_servers=1,
                               timeout=60, env=env, cwd=str(tmp_path))
    assert code == 3
    assert time.monotonic() - start < 30
    err = capfd.readouterr().err
    assert "exited with code 3" in err
    # one line per process says how it ended
    for name in ("scheduler", "server 0", "worker 0", "worker 1"):
        assert len([line for line in err.splitlines()
                    if line.startswith("[launch] %s: " % name)]) == 1, err
    # the launch order is not the rank: either worker may be rank 1
    assert sorted(line.split(": ", 1)[1] for line in err.splitlines()
                  if re.match(r"\[launch\] worker \d: ", line)) == [
        "exited with code 3", "killed by SIGKILL (killed by the launcher)"]
    _assert_nothing_left(env[MARKER_KEY])


SPIN = """
import os
import mxnet as mx

kv = mx.kv.create("dist_sync")
kv.init(7, mx.nd.zeros((3,)))
open(os.path.join(os.environ["OUT"], "ready-%d" % kv.rank), "w").close()
out = mx.nd.zeros((3,))
while True:
    kv.push(7, mx.nd.ones((3,)))
    kv.pull(7, out=out)
    out.wait_to_read()
"""


def _role_pids(marker, role):
    wanted = ("DMLC_ROLE=%s" % role).encode()
    pids = []
    for pid in _left_running(marker):
        try:
            with open("/proc/%d/environ" % pid, "rb") as handle:
                if wanted in handle.read().split(b"\0"):
                    pids.append(pid)
        except OSError:
            continue
    return pids


@needs_proc
@pytest.mark.slow
def test_a_dying_server_ends_the_job_at_once_with_one_line_per_process(tmp_path, capfd):
    env = _marker_env(tmp_path)
    script = _script(tmp_path, "spin.py", SPIN)
    killed = {}

    def kill_the_server():  # once both workers push and pull
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("ready-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        pids = _role_pids(env[MARKER_KEY], "server")
        if pids:
            killed["at"] = time.monotonic()
            os.kill(pids[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_the_server)
    killer.start()
    code = launcher.launch_local([sys.executable, script], num_workers=2, num_servers=1,
                                 timeout=150, env=env, cwd=str(tmp_path))
    ended = time.monotonic()
    killer.join()
    err = capfd.readouterr().err
    assert "at" in killed and code == 128 + signal.SIGKILL, err
    assert ended - killed["at"] < 10, err
    assert "server 0 killed by SIGKILL; the job cannot go on without it" in err
    for name in ("scheduler", "server 0", "worker 0", "worker 1"):
        assert len([line for line in err.splitlines()
                    if line.startswith("[launch] %s: " % name)]) == 1, err
    _assert_nothing_left(env[MARKER_KEY])


@needs_proc
def test_timeout_stops_a_job_that_hangs(tmp_path):
    env = _marker_env(tmp_path)
    script = _script(tmp_path, "hang.py", "import time\ntime.sleep(600)\n")
    start = time.monotonic()
    code = launcher.launch_local([sys.executable, script], num_workers=2, timeout=2, env=env)
    assert code == EXIT_TIMEOUT
    assert time.monotonic() - start < 2 + 2 * supervise._KILL_GRACE_S + 5
    _assert_nothing_left(env[MARKER_KEY])


@needs_proc
def test_ctrl_c_on_the_cli_stops_every_process(tmp_path):
    env = dict(os.environ, **_marker_env(tmp_path))
    script = _script(tmp_path, "wait.py", """
        import time
        print("ready", flush=True)
        time.sleep(600)
    """)
    cmd = [sys.executable, "-m", "sngan_gluon.launch", "-n", "2", "--timeout", "50", "--",
           sys.executable, script]
    # A background shell may start us with SIGINT ignored; the launcher must get it.
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        ready = 0
        for line in proc.stdout:  # bounded by the launcher's own --timeout
            ready += line.endswith("ready\n")
            if ready == 2:
                break
        assert ready == 2
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == EXIT_INTERRUPTED
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        for pid in _left_running(env[MARKER_KEY]):
            os.kill(pid, signal.SIGKILL)
    _assert_nothing_left(env[MARKER_KEY])


@pytest.mark.parametrize("args, message", [
    (["-n", "0", "--", "python", "t.py"], "at least 1"),
    (["-n", "2", "-s", "0", "--", "python", "t.py"], "servers"),
    (["-n", "2"], "no worker command"),
    (["-n", "2", "--"], "no worker command"),
    (["-n", "2", "--hosts", "/nonexistent/hosts.txt", "--", "python", "t.py"],
     "cannot read hosts file"),
    (["-n", "two", "--", "python", "t.py"], "invalid int"),
    (["-n", "2", "--ssh", "--", "python", "t.py"], "need --hosts"),
    (["-n", "1", "--timeout", "nan", "--", "python", "t.py"], "must be a finite number"),
    (["-n", "1", "--", "/nonexistent/python", "t.py"], "cannot start"),
])
def test_cli_bad_input_exits_2_with_one_line(args, message, capsys):
    try:
        code = launch_cli.main(args)
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_python_m_launch_reports_bad_input_in_one_line():
    """The module entry point returns main's exit code (the cases above, in a process)."""
    for args, message in ((["-n", "0", "--", "python", "t.py"], "at least 1"),
                          (["-n", "two", "--", "python", "t.py"], "invalid int")):
        result = _run_cli(args)
        assert result.returncode == EXIT_USER_ERROR
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_prints_ssh_commands_by_default_with_hosts(tmp_path, capsys):
    hosts_file = tmp_path / "hosts.txt"
    hosts_file.write_text("node-a\nnode-b\n")
    code = launch_cli.main(["-n", "2", "-s", "1", "--hosts", str(hosts_file), "--",
                            "python", "train.py", "--kvstore", "dist_sync"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = [l for l in out.splitlines() if not l.startswith("#")]
    assert len(lines) == 4 and all(l.startswith("ssh node-") for l in lines)
    assert sum("DMLC_ROLE=worker" in l for l in lines) == 2


def test_local_workers_share_the_cores_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MXNET_OMP_MAX_THREADS", raising=False)
    monkeypatch.setattr(launcher, "usable_cores", lambda: 8)
    assert launcher.local_thread_counts(2) == ("4", "1")
    assert launcher.local_thread_counts(16) == ("1", "1")
    assert launcher.local_thread_counts(2, env={"OMP_NUM_THREADS": "3"}) is None
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setattr("sngan_gluon._threads._DEFAULT_SET", None)  # the user set it
    assert launcher.local_thread_counts(2) is None


def _log_iterations(path):
    try:
        with open(path) as f:
            return [int(line.split(",")[0]) for line in f.read().splitlines()[1:]]
    except OSError:
        return []


@needs_proc
@pytest.mark.slow
def test_sigterm_to_the_launcher_saves_at_the_stop_iteration_and_resume_goes_on(tmp_path):
    """The workers stop first, so rank 0 saves the iteration it stopped at (log.csv holds no
    row beyond it); the launcher exits within 30 s; ``--resume`` continues from there."""
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1", **_marker_env(tmp_path))
    run = str(tmp_path / "run")
    train = [sys.executable, os.path.join(ROOT, "train.py"), "--kvstore", "dist_sync", "--quiet"]
    launch_cmd = [sys.executable, "-m", "sngan_gluon.launch", "-n", "2", "-s", "1",
                  "--timeout", "400", "--"]
    job = subprocess.Popen(launch_cmd + train + [
        "--dataset", "synthetic", "--batch-size", "8", "--iterations", "100000",
        "--checkpoint-every", "100000", "--log-every", "1", "--sample-every", "100000",
        "--seed", "3", "--out-dir", run] + WIDTH_FLAGS, cwd=str(tmp_path), env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while len(_log_iterations(os.path.join(run, "log.csv"))) < 2:
            assert job.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        job.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        _, err = job.communicate(timeout=60)
        assert time.monotonic() - sent < 30, err
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
    assert job.returncode == EXIT_INTERRUPTED, err
    assert "SIGTERM: stopping the workers" in err and "Traceback" not in err
    _assert_nothing_left(env[MARKER_KEY])
    saved = sorted(os.listdir(os.path.join(run, "checkpoints")))
    assert len(saved) == 1 and saved[0].startswith("iter_"), (saved, err)
    stop = int(saved[0][len("iter_"):])
    logged = _log_iterations(os.path.join(run, "log.csv"))
    assert logged == list(range(1, stop + 1)), err

    resumed = subprocess.run(launch_cmd + train + ["--resume", run, "--iterations",
                                                   str(stop + 2)],
                             cwd=str(tmp_path), env=env, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert _log_iterations(os.path.join(run, "log.csv")) == list(range(1, stop + 3))
    assert sorted(os.listdir(os.path.join(run, "checkpoints")))[-1] == "iter_%07d" % (stop + 2)
    _assert_nothing_left(env[MARKER_KEY])
