"""Gradient sums and stop votes over the workers of a ``dist_*`` kvstore.

Several machines train in step: every worker applies Adam itself to the summed
gradient of identical weights (:class:`DistSync` says why), and they agree on
when to stop (:func:`any_worker`), so a signal to one worker stops all of them
after the same iteration.
"""
from mxnet import nd


class DistSync:
    """Sums one network's gradients over devices and workers on a ``dist_*`` kvstore.

    Why not ``gluon.Trainer(..., kvstore=kv)``: a ``gluon.Trainer`` uses its
    parameters' positions 0..n-1 as kvstore keys, so the generator's and the
    discriminator's trainers on one shared dist kvstore claim the same keys on
    the servers (MXNet stops with "The value size cannot be changed ... Key is
    0"), and a process cannot make a second one (``mx.kv.create('dist_sync')``
    a second time waits forever in ps-lite). Gluon would also run Adam on the
    servers (``update_on_kvstore``), where ``set_learning_rate`` never reaches
    it and ``save_states`` refuses. So the servers only sum gradients, under
    keys ``first_key ..`` that keep the two networks apart, and each worker's
    ``gluon.Trainer`` (without a kvstore) applies Adam to the summed gradient;
    the weights start equal (``broadcast``) and stay equal, and the optimizer
    state is local, so checkpoints and learning-rate decay work as on one machine.

    Parameters
    ----------
    kv : KVStore
        The worker's dist kvstore (sync mode: a pull returns the sum of every
        worker's push of that round).
    params : ParameterDict
        The network's parameters, initialized on every context.
    first_key : int
        The first key; the network takes ``len(params)`` keys from there.
    """

    def __init__(self, kv, params, first_key):
        self.kv = kv
        self.params = [params[name] for name in sorted(params.keys())]
        self.keys = list(range(first_key, first_key + len(self.params)))

    def broadcast(self):
        """Give every device of every worker rank 0's values (``u`` and BN statistics too)."""
        self.kv.init(self.keys, [_dense(p.list_data()[0]) for p in self.params])
        self.kv.pull(self.keys, out=[p.list_data() for p in self.params])

    def allreduce(self):
        """Replace each device's gradient by the sum over all devices and workers."""
        for key, param in zip(self.keys, self.params):
            if param.grad_req != "null":
                grads = param.list_grad()
                self.kv.pushpull(key, [_dense(g) for g in grads], out=grads, priority=-key)


def _dense(array):
    """``array`` in MXNet's default layout. A CPU array may be in an MKL-DNN layout
    (convolution weights and their gradients often are), which a dist kvstore
    cannot send ("We can't generate TBlob for MKLDNN data"); a copy is plain."""
    return array.copy() if array.context.device_type == "cpu" else array


def any_worker(kv, key, flag):
    """True on every worker when ``flag`` is true on any of them (one sync round).

    ``key``: a kvstore key of its own, set up by :func:`init_vote` on every worker.
    """
    value = nd.array([1.0 if flag else 0.0])
    kv.pushpull(key, value, out=value)
    return float(value.asscalar()) > 0


def init_vote(kv, key):
    kv.init(key, nd.zeros((1,)))
