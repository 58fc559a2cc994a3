"""Stop signals turned into a request the training loop honours between two iterations.

Ctrl-C (SIGINT), SIGTERM (Slurm, Kubernetes, systemd and
:mod:`sngan_gluon.launcher` stop processes with it), SIGHUP and SIGUSR1 (what
Slurm's ``--signal`` sends before a time limit) all mean "save and stop": the
first one only sets :attr:`StopRequest.signal_name`, so the iteration in flight
finishes, a checkpoint of the state between two whole iterations is written,
and the loop raises :class:`Interrupted`. A second signal raises
:class:`Interrupted` at once, wherever the loop is (a checkpoint being written
is then abandoned, and the earlier ones are kept).

A signal that is ignored when training starts stays ignored: ``nohup`` ignores
SIGHUP so that a run outlives its terminal, and a shell starts background jobs
with SIGINT ignored; catching them would stop such a run when the terminal
closes.
"""
import signal
import sys
import threading

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1")
                     if hasattr(signal, name))


def catch(signums, handler):
    """Route each of ``signums`` that is not ignored now to ``handler``; returns the
    handlers it replaced, for :func:`release`. Outside the main thread (where Python
    cannot handle signals) nothing is routed."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in signums:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                previous[signum] = signal.signal(signum, handler)
    return previous


def release(previous):
    """Put back the handlers that :func:`catch` replaced."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)


class Interrupted(KeyboardInterrupt):
    """Training stopped on a signal.

    ``args[0]``: the checkpoint written on the way out, or None; ``signal_name``:
    the signal; ``at_once``: stopped by a second signal, without a checkpoint.
    """

    def __init__(self, checkpoint=None, signal_name="SIGINT", at_once=False):
        super().__init__(checkpoint)
        self.checkpoint, self.signal_name, self.at_once = checkpoint, signal_name, at_once


class StopRequest:
    """A context manager that handles :data:`STOP_SIGNALS` while the loop runs.

    ``signal_name`` is None until the first signal. ``saver``: this process
    writes the checkpoint (False: a distributed worker other than rank 0, which
    says so rather than announce a save it does not make). Outside the main thread
    (where Python cannot handle signals) it handles nothing, and ``message``
    (default: a line on stderr) is not called.
    """

    def __init__(self, message=None, saver=True):
        self.signal_name = None
        self._saver = saver
        self._message = message or (lambda text: print(text, file=sys.stderr, flush=True))
        self._previous = {}

    @property
    def requested(self):
        return self.signal_name is not None

    def __enter__(self):
        self._previous = catch(STOP_SIGNALS, self._handle)
        return self

    def __exit__(self, *exc):
        release(self._previous)
        self._previous = {}

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.signal_name is not None:
            raise Interrupted(None, name, at_once=True)
        self.signal_name = name
        self._message("\n%s: finishing this iteration and %s; send it again to stop at once, "
                      "without one" % (name, "saving a checkpoint" if self._saver
                                       else "stopping (rank 0 saves the checkpoint)"))
