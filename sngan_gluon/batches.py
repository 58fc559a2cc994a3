"""Shuffled training batches that a resumed run continues exactly where it stopped."""
import numpy as np

from mxnet import gluon, nd

from .config import ConfigError
from .data import to_tensor


class BatchStream:
    """Shuffled batches of a dataset, resumable at any (epoch, batch) position.

    The order of epoch ``e`` is a permutation drawn from ``RandomState(seed + e)``,
    so a resumed run sees exactly the batches the uninterrupted run would have.
    Batches are sliced from the decoded uint8 array and converted in one
    vectorized step; ``num_workers > 0`` prepares them in a DataLoader's workers.

    Yields ``(images, labels)``: float32 NDArray (B, C, H, W) in [-1, 1] and int32 (B,).
    """

    def __init__(self, dataset, batch_size, seed, epoch=0, batch=0, num_workers=0,
                 shuffle=True):
        self._to_tensor = to_tensor
        self.images, self.labels = dataset.images, dataset.labels
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self.num_workers = num_workers
        self.batches_per_epoch = len(self.images) // batch_size
        if self.batches_per_epoch == 0:
            raise ConfigError("the dataset has %d images, fewer than one batch of %d"
                              % (len(self.images), batch_size))
        self.epoch, self.batch = epoch, batch

    def _order(self, epoch):
        n = len(self.images)
        if not self.shuffle:
            return np.arange(n)
        return np.random.RandomState(self.seed + epoch).permutation(n)

    def _batchify(self, indices):
        indices = np.asarray(indices)
        return (self._to_tensor(self.images[indices]),
                nd.array(self.labels[indices], dtype="int32"))

    def __iter__(self):
        while True:
            order = self._order(self.epoch)
            starts = range(self.batch * self.batch_size,
                           self.batches_per_epoch * self.batch_size, self.batch_size)
            index_batches = [order[s:s + self.batch_size] for s in starts]
            if self.num_workers > 0:
                # each loader item is one whole batch of indices, converted in a worker
                loader = gluon.data.DataLoader(
                    gluon.data.SimpleDataset(index_batches),
                    batch_sampler=[[i] for i in range(len(index_batches))],
                    batchify_fn=lambda items: self._batchify(items[0]),
                    num_workers=self.num_workers, thread_pool=True)
                source = iter(loader)
            else:
                source = (self._batchify(b) for b in index_batches)
            for item in source:
                self.batch += 1
                yield item
            self.epoch += 1
            self.batch = 0
