"""Images from a folder of files or from an ``.npz``, validated and streamed in batches.

What ``sngan-evaluate --images`` and ``--real`` read: a folder of image files of
one size, or an ``.npz`` holding ``images``, uint8 ``(N, H, W, 3)`` (the layout
``sngan-generate`` writes). A folder is read as training's ``--dataset folder``
reads it (:func:`sngan_gluon.data.folder.list_images`,
:func:`~sngan_gluon.data.folder.read_image`): every image under it, sub-folders
included, hidden ones skipped, in sorted order, greyscale turned into RGB; only
training crops and resizes. Problems a user can cause (wrong dtype, an
``.npz`` of grayscale or RGBA arrays, empty, mixed sizes, a corrupt file) are
:class:`~sngan_gluon.data.DatasetError` s of one line.
"""
import os
import zipfile

import numpy as np

from .data import DatasetError
from .data.folder import IMAGE_EXTENSIONS, list_images, read_image
from .feature_nets import check_images
from .fileio import error_summary

__all__ = ["ImageFiles"]


class _Described(object):
    """Shape and dtype of an array known from its header, and a sample for error messages."""

    def __init__(self, sample, shape):
        self.sample, self.shape, self.dtype = sample, tuple(shape), sample.dtype


class ImageFiles(object):
    """Images of a folder (see the module's docstring) or of an ``.npz`` (key ``images``),
    in batches.

    Both are read batch by batch (an ``.npz`` member sequentially, compressed or
    not), so 50k large images never sit in memory at once.

    Parameters
    ----------
    path : str
        A folder of PNG/JPEG/BMP/WebP files of one size; or an ``.npz`` holding
        ``images``, uint8 ``(N, H, W, 3)`` (``sngan-generate``'s output).

    Raises
    ------
    DatasetError
        Missing or empty, unreadable, mixed sizes; an ``.npz`` array that is
        grayscale, RGBA or not uint8: one line each.
    """

    def __init__(self, path):
        self.path = path
        self._count, self._files = None, None
        if os.path.isdir(path):
            self._files = [os.path.join(path, name) for name in list_images(path)]
            if not self._files:
                raise DatasetError("%s holds no images (%s)"
                                   % (path, ", ".join(IMAGE_EXTENSIONS)))
            self._size = read_image(self._files[0]).shape
        elif os.path.isfile(path) and path.endswith(".npz"):
            self._count = self._read_npz(path)
        elif os.path.exists(path):
            raise DatasetError("%s is neither a folder of images nor an .npz file" % path)
        else:
            raise DatasetError("images not found: %s" % path)

    @staticmethod
    def _open_npz(path):
        """The open ``images.npy`` member of an ``.npz``, positioned at its data, and its
        header (shape, fortran order, dtype); read sequentially, never all at once."""
        try:
            archive = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as err:
            raise DatasetError("cannot read %s: %s" % (path, error_summary(err))) from err
        names = [name[:-4] for name in archive.namelist() if name.endswith(".npy")]
        if "images" not in names:
            archive.close()
            raise DatasetError("%s has no array 'images' (it has: %s)"
                               % (path, ", ".join(names) or "nothing"))
        member = archive.open("images.npy")
        try:
            version = np.lib.format.read_magic(member)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            header = read_header(member)
        except ValueError as err:
            member.close()
            archive.close()
            raise DatasetError("cannot read %s['images']: %s" % (path, err)) from err
        return archive, member, header

    def _read_npz(self, path):
        archive, member, (shape, fortran, dtype) = self._open_npz(path)
        with archive, member:
            # Check dtype and shape on the header; a first chunk tells a float range.
            sample = np.zeros((0,) + tuple(shape[1:]), dtype)
            if dtype != np.uint8 and len(shape) == 4 and not fortran:
                count = min(shape[0], 64)
                sample = np.frombuffer(member.read(count * dtype.itemsize * int(np.prod(
                    shape[1:]))), dtype).reshape((count,) + tuple(shape[1:]))
        check_images(_Described(sample, shape), source="%s['images']" % path)
        if not shape[0]:
            raise DatasetError("%s['images'] is empty" % path)
        return shape[0]

    def _npz_batches(self, num, batch_size):
        archive, member, (shape, fortran, dtype) = self._open_npz(self.path)
        with archive, member:
            if fortran:  # column-major: rows are not contiguous; rare, loaded whole
                images = np.load(self.path, allow_pickle=False)["images"]
                for start in range(0, num, batch_size):
                    yield np.ascontiguousarray(images[start:min(start + batch_size, num)])
                return
            row = int(np.prod(shape[1:]))
            for start in range(0, num, batch_size):
                n = min(batch_size, num - start)
                try:
                    data = member.read(n * row)
                    batch = np.frombuffer(data, np.uint8).reshape((n,) + tuple(shape[1:]))
                except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
                    raise DatasetError("cannot read %s['images'] past image %d (truncated or "
                                       "corrupt): %s"
                                       % (self.path, start, error_summary(err))) from err
                yield batch

    def __len__(self):
        return self._count if self._files is None else len(self._files)

    def batches(self, num=None, batch_size=100):
        """Yield the first ``num`` (default all) images, uint8 ``(n, H, W, 3)`` batches."""
        num = len(self) if num is None else min(int(num), len(self))
        if self._files is None:
            yield from self._npz_batches(num, batch_size)
            return
        for start in range(0, num, batch_size):
            stop = min(start + batch_size, num)
            batch = [read_image(name) for name in self._files[start:stop]]
            sizes = {image.shape for image in batch} | {self._size}
            if len(sizes) > 1:
                raise DatasetError("the images in %s differ in size (%s); resize them to one "
                                   "size" % (self.path, ", ".join(sorted(map(str, sizes)))))
            yield np.stack(batch)
