"""File helpers used across the package: atomic writes, file digests, one-line errors.

Each exists once here; modules that write files or report MXNet errors import
them instead of keeping their own copies. A file the user named that cannot be
written is an :class:`OutputError` (:func:`user_output`), one line naming it.
"""
import contextlib
import hashlib
import os
import tempfile

import numpy as np

from .errors import UserError

__all__ = ["atomic_path", "user_output", "OutputError", "file_digest", "array_digest",
           "error_summary", "out_of_memory"]


class OutputError(UserError, OSError):
    """A file the user named cannot be written (no such folder, no permission, disk full);
    the message names the file and the reason, in one line."""


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    The caller writes the whole file to the yielded path. A reader never sees a
    half-written ``path``: on success the file replaces it in one ``os.replace``,
    on an exception the temporary file is removed and ``path`` is left as it was.

    ``suffix`` (default: ``path``'s extension) is kept on the temporary name for
    writers that choose a format by it (matplotlib's ``savefig``, ``np.savez``).

    The file gets the mode ``open()`` would give it (0666 less the umask), not
    the 0600 of a temporary file: a data cache in a shared folder stays readable.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if suffix is None:
        suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextlib.contextmanager
def user_output(path):
    """Around the writing of ``path``, a file the user named (``--out``, a cache under
    ``--data-path``): an OSError becomes an :class:`OutputError` naming ``path``.

    Only the writing of that file goes inside: an OSError anywhere else is not the
    user's to fix, and keeps its traceback.
    """
    try:
        yield
    except OutputError:
        raise
    except OSError as err:
        raise OutputError("cannot write %s: %s"
                          % (path, err.strerror or error_summary(err))) from err


def _umask():
    """The process's umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_digest(path, algorithm="sha256"):
    """The hex digest of the file at ``path`` (``algorithm``: any ``hashlib`` name)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def array_digest(array):
    """The BLAKE2b hex digest of an array's bytes (C order), its shape and dtype included:
    a fast fingerprint of a dataset's pixels (about 1 GB/s, no copy of a contiguous array)."""
    array = np.ascontiguousarray(array)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(("%s %s;" % (array.dtype.str, array.shape)).encode())
    digest.update(memoryview(array.reshape(-1)).cast("B"))
    return digest.hexdigest()


def error_summary(err):
    """The informative line of an error whose message may open with MXNet's C++ traceback."""
    lines = [line.strip() for line in str(err).splitlines()
             if line.strip() and not line.startswith(("Traceback", "  File", "File "))]
    return lines[-1] if lines else type(err).__name__


#: Words of the errors that mean memory ran out: MXNet's oneDNN ("could not
#: execute a primitive", what a step under ``ulimit -v`` ends in), std::bad_alloc
#: and CUDA's allocator.
_OUT_OF_MEMORY = ("could not execute a primitive", "bad_alloc", "out of memory",
                  "cannot allocate memory", "failed to allocate", "memory allocation failed")


def out_of_memory(err):
    """Whether ``err`` (a MemoryError, an OSError, an MXNetError) says memory ran out."""
    if isinstance(err, MemoryError):
        return True
    text = str(err).lower()
    return any(words in text for words in _OUT_OF_MEMORY)
