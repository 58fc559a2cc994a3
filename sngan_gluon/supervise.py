"""Supervise the processes of a distributed job: one job, the stop order, and bounded ends.

:mod:`sngan_gluon.launcher` describes the processes (scheduler, servers,
workers); :func:`supervise` starts them, relays their output and waits. Each
process runs in its own process group, and the whole group is stopped, so
helpers a worker started (data-loader processes) go too. The launcher waits
for the workers, then for the scheduler and servers. How a job ends:

* Ctrl-C, SIGTERM or SIGHUP to the launcher (exit 130), or ``--timeout`` (exit
  124): the workers are stopped first, with SIGTERM, while the servers and the
  scheduler still run: a training worker finishes its iteration and rank 0
  saves a checkpoint of it (:mod:`sngan_gluon.signals`). Once they are gone, or
  after 30 s, or at a second signal, what is left is killed: the servers and
  the scheduler last. A second signal kills at once.
* A process that fails (a worker, a server or the scheduler): the job cannot go
  on, nor save (every step and the stop itself need every process), so the
  rest is killed at once; the launcher returns the failed process's code.

A job that did not end well ends with one ``[launch]`` line per process saying
how it ended.

Every wait is bounded: the scheduler and servers get 10 s to leave after the
last worker finished, a stopped worker 30 s to save, so no process of the job
is left running when :func:`supervise` returns or raises.
"""
import os
import signal
import subprocess
import sys
import threading
import time

from .errors import UserError
from .exit_codes import EXIT_INTERRUPTED, EXIT_TIMEOUT
from .signals import catch, release

# After the last worker has finished, the scheduler and servers get this long to
# leave on their own before they are stopped; a stopped worker gets
# _KILL_GRACE_S after SIGTERM before SIGKILL: a training worker that gets SIGTERM
# finishes its iteration and rank 0 writes a checkpoint, which takes seconds.
_STOP_GRACE_S = 10.0
_KILL_GRACE_S = 30.0
_POLL_S = 0.05
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                     if hasattr(signal, name))


class StartError(UserError, OSError):
    """A process of the job cannot be started (no such program, not executable, no such
    working directory); the message names the process and the program."""


def _relay(pipe, prefix, lock):
    """Copy a child's output to our stdout, one prefixed line at a time."""
    with pipe:
        for raw in iter(pipe.readline, b""):
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            with lock:
                sys.stdout.write(prefix + text + "\n")
                sys.stdout.flush()


def say(message):
    """A launcher's message on stderr, prefixed ``[launch]`` apart from the workers' output."""
    sys.stderr.write("[launch] %s\n" % message)
    sys.stderr.flush()


def _exit_code(returncode):
    return 128 - returncode if returncode < 0 else returncode


def _ended(returncode):
    """``'exited with code 3'`` / ``'killed by SIGKILL'``."""
    if returncode < 0:
        try:
            return "killed by %s" % signal.Signals(-returncode).name
        except ValueError:
            return "killed by signal %d" % -returncode
    return "exited with code %d" % returncode


class _StopSignals:
    """Ctrl-C, SIGTERM and SIGHUP while a job runs: the first asks for an ordered stop
    (``name``), the second for one at once (``at_once``). Signals ignored at the
    start stay ignored (``nohup``); outside the main thread nothing is handled."""

    def __init__(self):
        self.name, self.at_once, self._previous = None, False, {}

    def __enter__(self):
        self._previous = catch(STOP_SIGNALS, self._handle)
        return self

    def __exit__(self, *exc):
        release(self._previous)

    def _handle(self, signum, frame):
        if self.name is None:
            self.name = signal.Signals(signum).name
        else:
            self.at_once = True


class _Process:
    """One process of the job: its name, role, ``Popen`` and what the launcher did to it."""

    def __init__(self, name, role, proc):
        self.name, self.role, self.proc, self.action = name, role, proc, None

    def signal(self, signum, action):
        if self.proc.poll() is None:
            self.action = action
            _signal_groups([self.proc], signum)


def supervise(specs, cwd, timeout):
    """Start ``(name, role, argv, env)`` processes, wait for the workers, stop everything.

    Every child leads its own process group (``start_new_session``): the group
    is what gets stopped, so the child's own children go with it, and a Ctrl-C
    in the terminal reaches only the launcher, which then stops the job. A process
    that cannot be started raises :class:`StartError` once those already started
    are killed.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    lock = threading.Lock()
    procs, relays = [], []
    code, ending, started = EXIT_INTERRUPTED, "kill", False
    with _StopSignals() as signals:
        try:
            for name, role, argv, env in specs:
                proc = _start(name, argv, env, cwd)
                procs.append(_Process(name, role, proc))
                relay = threading.Thread(target=_relay,
                                         args=(proc.stdout, "[%s] " % name, lock), daemon=True)
                relay.start()
                relays.append(relay)
            started = True
            code, ending = _wait_for_workers(procs, deadline, timeout, signals)
            return code
        finally:
            if ending == "done":
                _wait_for_services(procs, deadline, signals)
            elif ending in ("stop", "drain"):
                _stop_workers_first(procs, signals, ask=ending == "stop")
            _kill(procs)
            until = time.monotonic() + 5.0  # the pipes close with their processes
            for relay in relays:
                relay.join(timeout=max(0.0, until - time.monotonic()))
            if code != 0 and started:
                for p in procs:
                    say("%s: %s%s" % (p.name, _ended(p.proc.returncode),
                                      " (%s)" % p.action if p.action else ""))


def _start(name, argv, env, cwd):
    """``Popen`` of one process in its own group, output piped; an OSError of the start
    itself (the program, the interpreter or ``cwd``) is a :class:`StartError`."""
    try:
        return subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except OSError as err:
        raise StartError("cannot start %s: %s: %s" % (name, err.filename or argv[0],
                                                      err.strerror or err)) from err


def _wait_for_workers(procs, deadline, timeout, signals):
    """Wait until the workers finish or the job must end: ``(exit code, how to end)``.

    How to end: ``'done'`` (the workers finished), ``'stop'`` (a signal or the
    timeout: the workers first, so that they save), ``'drain'`` (a worker was
    interrupted on its own: the others are stopping too), ``'kill'`` (a process
    failed: the rest cannot go on, nor save).
    """
    workers = [p for p in procs if p.role == "worker"]
    while True:
        for p in procs:
            code = p.proc.poll()
            # A scheduler or server may leave with 0 while the last worker is
            # still finishing; only a failure of one of them ends the job.
            if code == EXIT_INTERRUPTED and p.role == "worker":
                # a worker stopped by a signal of its own: every worker stops after the
                # same iteration, rank 0 saves it; they leave by themselves
                say("%s was interrupted; waiting for the other workers to stop" % p.name)
                return EXIT_INTERRUPTED, "drain"
            if code is not None and code != 0:
                say("%s %s; the job cannot go on without it: stopping the rest at once"
                    % (p.name, _ended(code)))
                return _exit_code(code), "kill"
        if all(p.proc.poll() == 0 for p in workers):
            return 0, "done"
        if signals.name is not None:
            say("%s: stopping the workers (rank 0 saves a checkpoint), then the servers and "
                "the scheduler; send it again to stop at once" % signals.name)
            return EXIT_INTERRUPTED, "stop"
        if deadline is not None and time.monotonic() > deadline:
            say("timed out after %g s; stopping the workers (rank 0 saves a checkpoint), then "
                "the servers and the scheduler" % timeout)
            return EXIT_TIMEOUT, "stop"
        time.sleep(_POLL_S)


def _stop_workers_first(procs, signals, ask=True):
    """SIGTERM the workers (``ask``; else they are stopping already) and wait for them
    while the servers and scheduler still run.

    Ends early, with the workers killed, at a second signal or when a server or
    the scheduler dies (the workers cannot save without it).
    """
    workers = [p for p in procs if p.role == "worker"]
    for p in workers if ask else ():
        p.signal(signal.SIGTERM, "stopped by the launcher with SIGTERM")
    until = time.monotonic() + _KILL_GRACE_S
    while any(p.proc.poll() is None for p in workers):
        dead = [p for p in procs if p.role != "worker" and p.proc.poll() is not None]
        if dead or signals.at_once or time.monotonic() > until:
            why = ("%s %s" % (dead[0].name, _ended(dead[0].proc.returncode)) if dead
                   else "a second signal" if signals.at_once
                   else "%g s after SIGTERM" % _KILL_GRACE_S)
            for p in workers:
                p.signal(signal.SIGKILL, "killed by the launcher: %s" % why)
            return
        time.sleep(_POLL_S)


def _wait_for_services(procs, deadline, signals):
    until = time.monotonic() + _STOP_GRACE_S
    if deadline is not None:
        until = min(until, deadline)
    for p in procs:
        while p.proc.poll() is None and time.monotonic() < until and not signals.name:
            time.sleep(_POLL_S)
        if p.proc.poll() is None:
            say("%s still running after the workers finished; stopping it (did the "
                "workers create a dist kvstore?)" % p.name)
            return


def _kill(procs):
    """SIGKILL every process group (also children that outlived their group leader)."""
    for p in procs:
        p.signal(signal.SIGKILL, p.action or "killed by the launcher")
    _signal_groups([p.proc for p in procs], signal.SIGKILL)
    for p in procs:
        p.proc.wait()


def _signal_groups(procs, signum):
    for proc in procs:
        try:
            os.killpg(proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass
