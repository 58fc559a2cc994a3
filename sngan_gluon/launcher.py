"""Start a distributed (``--kvstore dist_sync``) MXNet job: one scheduler, servers, workers.

This module holds the ps-lite protocol (each role's environment, the hosts, the
ports) and starts the processes; :mod:`sngan_gluon.supervise` watches them and
stops them in order. Its command line (``python -m sngan_gluon.launch``) is
:mod:`sngan_gluon.cli.launch`.

MXNet's multi-machine kvstore runs on ps-lite, and every process learns its part
from environment variables alone:

======================  ================================================
``DMLC_ROLE``           ``scheduler``, ``server`` or ``worker``
``DMLC_PS_ROOT_URI``    address of the scheduler
``DMLC_PS_ROOT_PORT``   port the scheduler listens on
``DMLC_NUM_SERVER``     number of server processes
``DMLC_NUM_WORKER``     number of worker processes
``DMLC_NODE_HOST``      address this process binds and advertises (optional)
``PS_VERBOSE``          1 or 2: ps-lite connection / message log (optional)
======================  ================================================

A scheduler or a server is nothing but ``import mxnet`` with ``DMLC_ROLE`` set:
``mxnet/kvstore/kvstore_server.py`` runs the server loop at import time and
calls ``sys.exit()`` when it ends. Here the servers run
``python -c "import sngan_gluon._compat"`` instead, which imports mxnet the
way the rest of the package does (with the NumPy aliases restored on Python
3.12). Workers run your command; ``mx.kv.create('dist_sync')`` gives each its
rank, so no rank variable is passed. The scheduler and the servers exit on their
own once the workers have finished.

Local mode (the default) runs the whole job on this host, over loopback::

    python -m sngan_gluon.launch -n 2 -- python train.py --kvstore dist_sync ...
    python -m sngan_gluon.launch -n 2 -s 1 --port 9000 --timeout 3600 -- python train.py ...

Every worker's output is printed with a prefix (``[worker 0] ...``; the number
is the launch order, not the kvstore rank). Ctrl-C, SIGTERM or SIGHUP to the
launcher (exit 130), ``--timeout`` (exit 124) or a failed process end the job
as :mod:`sngan_gluon.supervise` describes: the workers first, so that rank 0
saves a checkpoint, then the servers and the scheduler, every wait bounded.

Hosts mode prints one ssh command per process; run them yourself, or let
``--ssh`` run them with the same supervision as local mode::

    python -m sngan_gluon.launch -n 2 --hosts hosts.txt -- python train.py --kvstore dist_sync
    python -m sngan_gluon.launch -n 2 --hosts hosts.txt --ssh -- python train.py ...

``hosts.txt`` holds one host per line (``name``, ``user@name`` or
``name:ssh_port``; ``#`` starts a comment). The scheduler runs on the first
host; servers and workers go round-robin over the hosts, each with
``DMLC_NODE_HOST`` set to its host (use addresses rather than names if a name
does not resolve to the interface the hosts share). The port (default 9091) is
not checked for being free remotely. Every host needs the code under
``--workdir`` (default: the current directory) and the interpreter given by
``--python`` (default: this one) for the scheduler and servers. Stopping a local
ssh client does not always stop the remote process (ssh runs it without a
terminal); after a failure check the hosts, e.g. with MXNet's
``python .../mxnet/tools/kill-mxnet.py HOSTFILE USER PROGRAM``.

Caveat for worker scripts: a worker whose Python code raises after it created a
``dist_sync`` kvstore does not exit. At interpreter exit ps-lite's finalize
waits in a barrier for every other node, so the launcher sees a live process
and the job runs until ``--timeout`` or Ctrl-C. Scripts that want a failure
reported at once should end with ``os._exit(code)`` on error.

MXNet's own launchers
---------------------
The wheel ships ``python -m mxnet.tools.launch -n N [-s S] [-H HOSTFILE]
--launcher ssh|mpi|sge|yarn|local CMD`` (a front end to ``dmlc_tracker``), and
``dmlc_tracker`` has submitters for slurm, kubernetes and mesos
(``dmlc_tracker.slurm.submit(args)`` and so on; ``python -m
dmlc_tracker.submit`` needs the ``kubernetes`` package even to start and does
not dispatch ``slurm``). All of them do what this module does: start a
scheduler with ``DMLC_ROLE=scheduler`` and the servers and workers with the
variables above (dmlc_tracker runs your own command for the servers too). As
shipped with MXNet 1.9.1 they fail on Python 3.9 and later:
``dmlc_tracker/tracker.py`` waits with ``Thread.isAlive()``, which Python 3.9
removed, so the launcher dies with an ``AttributeError`` right after starting
the job and leaves its processes behind. They work on Python <= 3.8, or where
``isAlive`` is replaced by ``is_alive``.
"""
import os
import shlex
import socket
import sys

from ._threads import set_by_default, usable_cores
from .errors import UserError
from .supervise import supervise

ROLES = ("scheduler", "server", "worker")
LOOPBACK = "127.0.0.1"
SERVER_CODE = "import sngan_gluon._compat"
DEFAULT_HOSTS_PORT = 9091  # dmlc_tracker's first choice
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class LaunchError(UserError, ValueError):
    """A job that cannot be launched as asked (sizes, hosts, worker command, flags);
    the message says which value is wrong, in one line."""


def role_env(role, root_uri, root_port, num_servers, num_workers, node_host=None):
    """The ps-lite environment variables of one process of a distributed job.

    Parameters
    ----------
    role : str
        ``'scheduler'``, ``'server'`` or ``'worker'``.
    root_uri : str
        Address of the scheduler (``DMLC_PS_ROOT_URI``).
    root_port : int
        Port of the scheduler (``DMLC_PS_ROOT_PORT``).
    num_servers, num_workers : int
        Sizes of the job (``DMLC_NUM_SERVER``, ``DMLC_NUM_WORKER``).
    node_host : str, optional
        Address the process binds and advertises (``DMLC_NODE_HOST``). Without
        it ps-lite picks the first non-loopback interface, so local jobs pass
        ``127.0.0.1`` to stay on loopback.

    Returns
    -------
    dict of str to str
        To be merged into the process's environment.
    """
    if role not in ROLES:
        raise ValueError("role must be one of %s, got %r" % (", ".join(ROLES), role))
    env = {"DMLC_ROLE": role,
           "DMLC_PS_ROOT_URI": str(root_uri),
           "DMLC_PS_ROOT_PORT": str(int(root_port)),
           "DMLC_NUM_SERVER": str(int(num_servers)),
           "DMLC_NUM_WORKER": str(int(num_workers))}
    if node_host is not None:
        env["DMLC_NODE_HOST"] = str(node_host)
    return env


def server_command(python=None):
    """The argv of a scheduler or server: an interpreter that imports mxnet."""
    return [python or sys.executable, "-c", SERVER_CODE]


def free_port(host=LOOPBACK):
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def read_hosts(path):
    """Host entries of a hosts file: one a line, blank lines and ``#`` comments skipped.

    A file that cannot be read as text, or lists no host, is a :class:`LaunchError`.
    """
    try:
        with open(path) as handle:
            hosts = [line.split("#", 1)[0].strip() for line in handle]
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) else "not a text file"
        raise LaunchError("cannot read hosts file %s: %s" % (path, reason or err)) from err
    hosts = [h for h in hosts if h]
    if not hosts:
        raise LaunchError("hosts file %s lists no host" % path)
    return hosts


def local_thread_counts(num_workers, env=None):
    """``OMP_NUM_THREADS`` of (each worker, the scheduler and servers) on one host, or None.

    The workers share the host's cores instead of each taking all of them; the
    scheduler and servers only move and sum arrays, so one thread each. None
    (keep what the processes inherit) when the user chose a count, in ``env`` or
    in this process's environment.
    """
    if "OMP_NUM_THREADS" in (env or {}) or not set_by_default():
        return None
    return str(max(1, usable_cores() // num_workers)), "1"


def launch_local(command, num_workers, num_servers=None, port=None, timeout=None, env=None,
                 cwd=None, python=None):
    """Run a whole ``dist_sync`` job on this host over loopback and wait for it.

    Parameters
    ----------
    command : list of str or str
        The worker command (a string is split like a shell would).
    num_workers : int
        Number of workers, at least 1.
    num_servers : int, optional
        Number of servers, at least 1; default ``num_workers``.
    port : int, optional
        Scheduler port on 127.0.0.1; default a free one.
    timeout : float, optional
        Seconds after which the whole job is stopped; default none.
    env : dict, optional
        Variables added to every process's environment (on top of ``os.environ``).
    cwd : str, optional
        Working directory of every process.
    python : str, optional
        Interpreter of the scheduler and servers; default this one.

    Returns
    -------
    int
        0 when every worker succeeded; else the first failing worker's exit
        code (128 + N for a worker killed by signal N), or 124 on timeout.
        No process of the job is left running when this returns or raises;
        ``KeyboardInterrupt`` is re-raised after the cleanup.

    Raises
    ------
    LaunchError
        No worker command, or fewer than one worker or server.
    sngan_gluon.supervise.StartError
        A process cannot be started (no such program, not executable).
    """
    argv = _as_argv(command)
    num_servers = num_workers if num_servers is None else num_servers
    check_sizes(num_workers, num_servers)
    port = free_port() if port is None else port
    base = dict(os.environ)
    base.update(env or {})
    # Output goes through a pipe: unbuffered Python keeps the prefixed lines live.
    base.setdefault("PYTHONUNBUFFERED", "1")
    service_env = dict(base)
    shares = local_thread_counts(num_workers, env)
    if shares:
        base["OMP_NUM_THREADS"], service_env["OMP_NUM_THREADS"] = shares
    # The servers import sngan_gluon; make it the same copy the launcher uses.
    service_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (_PACKAGE_PARENT, base.get("PYTHONPATH")) if p)

    def spec(name, role, args, proc_env):
        proc_env = dict(proc_env)
        proc_env.update(role_env(role, LOOPBACK, port, num_servers, num_workers, LOOPBACK))
        return name, role, args, proc_env

    specs = [spec("scheduler", "scheduler", server_command(python), service_env)]
    specs += [spec("server %d" % i, "server", server_command(python), service_env)
              for i in range(num_servers)]
    specs += [spec("worker %d" % i, "worker", argv, base) for i in range(num_workers)]
    return supervise(specs, cwd, timeout)


def host_commands(hosts, command, num_workers, num_servers=None, port=DEFAULT_HOSTS_PORT,
                  workdir=None, python=None, env=None):
    """The ssh command line of every process of a multi-host job.

    Parameters
    ----------
    hosts : list of str
        Host entries (``name``, ``user@name`` or ``name:ssh_port``); the
        scheduler runs on the first, servers and workers round-robin.
    command : list of str or str
        The worker command.
    num_workers, num_servers : int
        Job sizes; ``num_servers`` defaults to ``num_workers``.
    port : int
        Scheduler port on the first host.
    workdir : str, optional
        Directory to ``cd`` into on every host; default the current one.
    python : str, optional
        Interpreter of the scheduler and servers on the hosts; default this one.
    env : dict, optional
        Extra variables for every process (ssh passes no local environment).

    Returns
    -------
    list of (str, str, str)
        ``(host, role, command)`` in launch order: scheduler, servers, workers.
        ``command`` is one shell line, ``ssh [-p P] HOST 'cd DIR && VAR=... CMD'``.

    Raises
    ------
    LaunchError
        No host, a bad host entry or variable name, no worker command, bad sizes.
    """
    argv = _as_argv(command)
    num_servers = num_workers if num_servers is None else num_servers
    check_sizes(num_workers, num_servers)
    targets = [_parse_host(h) for h in hosts]
    if not targets:
        raise LaunchError("no host given")
    for key in env or {}:
        if not key.isidentifier():
            raise LaunchError("not a variable name: %r" % key)
    workdir = os.getcwd() if workdir is None else workdir
    root_uri = targets[0][1]
    plan = [("scheduler", targets[0], server_command(python))]
    plan += [("server", targets[i % len(targets)], server_command(python))
             for i in range(num_servers)]
    plan += [("worker", targets[i % len(targets)], argv) for i in range(num_workers)]
    lines = []
    for role, (dest, address, ssh_port), args in plan:
        variables = dict(env or {})
        variables.update(role_env(role, root_uri, port, num_servers, num_workers, address))
        remote = "cd %s && %s %s" % (
            shlex.quote(workdir),
            " ".join("%s=%s" % (k, shlex.quote(str(v))) for k, v in variables.items()),
            shlex.join(args))
        ssh = ["ssh"] + (["-p", ssh_port] if ssh_port else []) + [dest, remote]
        lines.append((dest, role, shlex.join(ssh)))
    return lines


def launch_hosts(lines, timeout=None):
    """Run ``host_commands`` lines through the local ssh client, supervised as local mode;
    no ssh client is a :class:`~sngan_gluon.supervise.StartError`."""
    specs = [("%s@%s" % (name, host), role, shlex.split(line), None)
             for (host, role, line), name in zip(lines, process_names(lines))]
    return supervise(specs, None, timeout)


def process_names(lines):
    """``'scheduler'``, ``'server 0'``, ``'worker 1'``, ... for ``host_commands`` lines."""
    counts, names = {}, []
    for _, role, _ in lines:
        index = counts.get(role, 0)
        counts[role] = index + 1
        names.append(role if role == "scheduler" else "%s %d" % (role, index))
    return names


def _as_argv(command):
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    if not argv:
        raise LaunchError("no worker command given")
    return argv


def check_sizes(num_workers, num_servers):
    """Raise LaunchError unless there is at least one worker and one server."""
    if int(num_workers) < 1:
        raise LaunchError("the number of workers must be at least 1, got %r" % num_workers)
    if int(num_servers) < 1:
        raise LaunchError("the number of servers must be at least 1, got %r" % num_servers)


def _parse_host(entry):
    """``'user@name:22'`` -> (ssh destination, address for ps-lite, ssh port or None)."""
    dest, ssh_port = entry, None
    if entry.count(":") == 1:  # more than one colon: an IPv6 address, no port
        dest, ssh_port = entry.split(":")
        if not ssh_port.isdigit():
            raise LaunchError("bad host entry %r: expected name or name:ssh_port" % entry)
    if not dest or any(c.isspace() for c in dest):
        raise LaunchError("bad host entry %r" % entry)
    return dest, dest.rsplit("@", 1)[-1], ssh_port
