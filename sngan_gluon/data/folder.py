"""The ``folder`` dataset: a folder of image files, decoded once and cached on disk.

Listing (recursive, hidden entries skipped, each real folder read once), labels
from class sub-folders, decoding (centre square crop, then resize), the memory
check before decoding, and :class:`FolderCache`, which keeps the decoded array
for later runs.
"""
import hashlib
import json
import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..fileio import array_digest, atomic_path
from .dataset import DatasetError
from .pixels import opencv, resize_one, set_channels

__all__ = ["IMAGE_EXTENSIONS", "FolderCache", "load_folder", "list_images", "read_image",
           "image_bytes", "format_bytes", "available_memory", "check_memory"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


# --------------------------------------------------------------------------- memory

def image_bytes(num, size, channels):
    """Bytes that ``num`` uint8 images of ``size`` x ``size`` x ``channels`` take."""
    return int(num) * size * size * channels


def format_bytes(num):
    """``12345678`` -> ``'11.8 MiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if num < 1024 or unit == "GiB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (num, unit)
        num /= 1024.0


def available_memory():
    """Bytes of memory available to a new allocation without swapping, or None if unknown.

    Linux's ``MemAvailable`` (free memory plus reclaimable caches), else the
    free physical pages; None where neither can be read.
    """
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(num, size, channels, what):
    """Raise DatasetError when ``num`` images would not fit in the available memory."""
    need, have = image_bytes(num, size, channels), available_memory()
    if have is not None and need > have:
        raise DatasetError("%s: %d images at %dx%dx%d need %s of memory, more than the %s "
                           "available: use a smaller --image-size or fewer images"
                           % (what, num, size, size, channels, format_bytes(need),
                              format_bytes(have)))


# --------------------------------------------------------------------------- folder cache

class FolderCache:
    """The decoded images of an image folder, kept on disk for later runs.

    One ``.npy`` array per (folder, size, channels), uint8 (N, S, S, C) in the
    order of the sorted file list, beside a JSON manifest of that list with
    each file's size and modification time, and the array's digest
    (:func:`~sngan_gluon.fileio.array_digest`). A later run whose listing and
    stats match the manifest memory-maps the array instead of decoding again,
    once its contents match the digest; any added, removed or changed file, or
    an array garbled on disk (with a warning), makes it decode afresh.

    The cache lives in ``root/.sngan_gluon_cache`` (hidden, so never listed as
    images); where ``root`` is not writable, in
    ``$XDG_CACHE_HOME/sngan_gluon/folders/<hash of root's real path>``; where
    neither is, the images stay in memory only. Delete the folder to drop it.

    Parameters
    ----------
    root : str
        The image folder.
    files : list of str
        Image paths relative to ``root``, in the order of the array.
    size, channels : int
        Side and channels of the decoded images.
    """

    VERSION = 2  # 2: the manifest holds the array's digest
    FOLDER_NAME = ".sngan_gluon_cache"

    def __init__(self, root, files, size, channels):
        self.root, self.size, self.channels = root, int(size), int(channels)
        self.entries = [[path] + _file_stat(os.path.join(root, path)) for path in files]
        self.folder = self._writable_folder()
        name = "%dpx-%dch" % (self.size, self.channels)
        self.array_path = self.folder and os.path.join(self.folder, name + ".npy")
        self.manifest_path = self.folder and os.path.join(self.folder, name + ".json")

    def _manifest(self):
        return {"version": self.VERSION, "size": self.size, "channels": self.channels,
                "files": self.entries}

    def load(self):
        """The cached images as a read-only memory map, or None when absent or stale."""
        if self.folder is None:
            return None
        try:
            with open(self.manifest_path) as f:
                manifest = json.load(f)
            digest = manifest.pop("digest", None)
            if manifest != self._manifest():
                return None
            images = np.load(self.array_path, mmap_mode="r")
        except (OSError, ValueError, AttributeError):
            return None
        shape = (len(self.entries), self.size, self.size, self.channels)
        if images.shape != shape or images.dtype != np.uint8:
            return None
        if array_digest(images) != digest:
            warnings.warn("the cached images %s do not match their manifest (damaged on disk?): "
                          "decoding the folder again" % self.array_path, stacklevel=3)
            return None
        return images

    def save(self, images):
        """Write ``images`` and then the manifest; a failure (disk full) only warns."""
        if self.folder is None:
            return
        try:
            with atomic_path(self.array_path) as tmp:
                np.save(tmp, images)
            with atomic_path(self.manifest_path) as tmp, open(tmp, "w") as f:
                json.dump(dict(self._manifest(), digest=array_digest(images)), f)
        except OSError as err:
            warnings.warn("cannot cache the decoded images in %s (%s): they will be decoded "
                          "again next time" % (self.folder, err), stacklevel=3)

    def _writable_folder(self):
        digest = hashlib.sha1(os.path.realpath(self.root).encode()).hexdigest()[:16]
        user_cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        for folder in (os.path.join(self.root, self.FOLDER_NAME),
                       os.path.join(user_cache, "sngan_gluon", "folders", digest)):
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError:
                continue
            if os.access(folder, os.W_OK):
                return folder
        return None


def _file_stat(path):
    """[size in bytes, modification time in ns] of ``path`` (following links)."""
    try:
        stat = os.stat(path)
    except OSError as err:
        raise DatasetError("cannot read image %s (%s): fix or remove it"
                           % (path, err.strerror)) from None
    return [stat.st_size, stat.st_mtime_ns]


# --------------------------------------------------------------------------- folder

def list_images(root):
    """Image paths under ``root``, relative and sorted; hidden files and folders skipped.

    The one listing of an image folder: training (``--dataset folder``) and
    ``sngan-evaluate --images/--real`` read the same files in the same order.

    Symbolic links to folders are followed, but every real folder is read once,
    under the first name met: a link back to a parent (a loop) or a second link
    to a folder adds nothing.
    """
    found, seen = [], set()
    for folder, subdirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subdirs[:] = []
            continue
        seen.add(real)
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        rel = os.path.relpath(folder, root)
        found.extend(os.path.normpath(os.path.join(rel, name)) for name in files
                     if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS))
    return sorted(found)


def _folder_labels(root, files):
    """Labels from class sub-folders: (int32 labels (N,), num_classes); see the module doc."""
    tops = [path.split(os.sep)[0] if os.sep in path else None for path in files]
    classes = sorted(set(top for top in tops if top is not None))
    in_root = tops.count(None)
    if in_root and classes:
        warnings.warn("%d image(s) lie directly in %s beside the sub-folders %s: the folder is "
                      "used without labels; move them into a sub-folder to train with classes"
                      % (in_root, root, ", ".join(classes[:3]) + (", ..." if len(classes) > 3
                                                                 else "")), stacklevel=4)
    if in_root or len(classes) < 2:
        return np.zeros(len(files), np.int32), 0
    return np.searchsorted(classes, tops).astype(np.int32), len(classes)


def _is_truncated_jpeg(data):
    """Whether ``data`` is a JPEG whose last scan has no end-of-image marker.

    OpenCV decodes such a file without an error, painting the missing rows
    grey. The entropy-coded data of a scan cannot hold the byte pair FF D9, so
    the end-of-image marker must follow the last start-of-scan marker (FF DA);
    an EXIF thumbnail's own markers come before it.
    """
    if data[:2] != b"\xff\xd8":
        return False
    last_scan = data.rfind(b"\xff\xda")
    return last_scan < 0 or data.find(b"\xff\xd9", last_scan + 2) < 0


def read_image(path):
    """One image file -> uint8 (H, W, 3) RGB, as every tool reads a folder's files.

    OpenCV decodes it (8 bits a channel; greyscale repeated into RGB, as
    torch-fidelity's PIL ``convert('RGB')`` does; an alpha channel dropped). A
    file that cannot be decoded, or a truncated JPEG, raises a DatasetError
    naming it.
    """
    cv2 = opencv()
    try:
        data = np.fromfile(path, dtype=np.uint8)
        image = None if _is_truncated_jpeg(data.tobytes()) else cv2.imdecode(data,
                                                                             cv2.IMREAD_COLOR)
    except (OSError, cv2.error):
        image = None
    if image is None:
        raise DatasetError("cannot read image %s (unreadable, truncated or corrupt): fix or "
                           "remove it" % path)
    return np.ascontiguousarray(image[:, :, ::-1])  # OpenCV decodes BGR


def _decode(path, size):
    """One image file -> uint8 (size, size, 3) RGB: centre square crop, then resize."""
    image = read_image(path)
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[top:top + side, left:left + side]
    return resize_one(opencv(), np.ascontiguousarray(square), size)


def _decode_all(root, files, size, channels):
    """Decode ``files`` (relative to ``root``) -> uint8 (N, size, size, channels) in memory."""
    out = np.empty((len(files), size, size, 3), np.uint8)
    paths = [os.path.join(root, path) for path in files]
    # OpenCV releases the GIL while decoding, so threads decode in parallel.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for i, image in enumerate(pool.map(lambda path: _decode(path, size), paths)):
            out[i] = image
    return set_channels(out, channels)


def load_folder(root, train, shard, size, download, channels):
    if not os.path.isdir(root):
        raise DatasetError("image folder %r does not exist: pass the folder holding your images "
                           "as root (--data-path)" % root)
    files = list_images(root)
    if not files:
        raise DatasetError("no images (%s) found under %r: put your images there, optionally one "
                           "sub-folder per class" % (", ".join(IMAGE_EXTENSIONS), root))
    labels, num_classes = _folder_labels(root, files)
    cache = FolderCache(root, files, size, channels)
    images = cache.load()
    if images is None:
        check_memory(len(files), size, channels, "folder %s" % root)
        print("decoding %d images of %s to %dx%dx%d (%s); they are kept in %s for later runs"
              % (len(files), root, size, size, channels,
                 format_bytes(image_bytes(len(files), size, channels)), cache.folder or
                 "memory only (no writable cache folder)"), file=sys.stderr)
        images = _decode_all(root, files, size, channels)
        cache.save(images)
    else:
        check_memory(len(range(len(files))[shard]), size, channels, "folder %s" % root)
    return images[shard], labels[shard], num_classes
