"""Minimal stand-in for sngan_gluon.data used while the real module is being written."""
import numpy as np
from mxnet import nd

DATASETS = ("synthetic", "digits")


class DatasetError(ValueError):
    pass


class ImageDataset:
    def __init__(self, images, labels, num_classes, name):
        self.images, self.labels, self.num_classes, self.name = images, labels, num_classes, name

    def __len__(self):
        return len(self.images)


def to_tensor(batch):
    a = np.asarray(batch, dtype=np.float32)
    return nd.array(a.transpose(0, 3, 1, 2) / 127.5 - 1.0)


def to_uint8(x):
    a = x.asnumpy() if hasattr(x, "asnumpy") else np.asarray(x)
    return np.clip(np.rint((a.transpose(0, 2, 3, 1) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def get_dataset(name, root="data", image_size=None, channels=3, train=True, num_parts=1,
                part_index=0, download=True):
    size = image_size or 32
    if name == "synthetic":
        rng = np.random.RandomState(0)
        n = 2048
        labels = rng.randint(0, 10, size=n).astype(np.int32)
        yy, xx = np.mgrid[0:size, 0:size] / float(size)
        images = np.zeros((n, size, size, 3), np.uint8)
        for i in range(n):
            c = labels[i]
            images[i, ..., c % 3] = (127 + 120 * np.sin((c + 1) * 3 * xx + yy * c)).astype(np.uint8)
        if channels == 1:
            images = images[..., :1]
        return ImageDataset(images[part_index::num_parts], labels[part_index::num_parts], 10, name)
    if name == "digits":
        from sklearn.datasets import load_digits
        import cv2
        d = load_digits()
        imgs = np.stack([cv2.resize((im * 255 / 16).astype(np.uint8), (size, size),
                                    interpolation=cv2.INTER_LINEAR) for im in d.images])
        perm = np.random.RandomState(0).permutation(len(imgs))
        cut = int(0.8 * len(imgs))
        idx = perm[:cut] if train else perm[cut:]
        imgs, labels = imgs[idx][..., None], d.target[idx].astype(np.int32)
        if channels == 3:
            imgs = np.repeat(imgs, 3, axis=-1)
        return ImageDataset(imgs[part_index::num_parts], labels[part_index::num_parts], 10, name)
    raise DatasetError("unknown dataset %r; valid names: %s" % (name, ", ".join(DATASETS)))
