"""File helpers used across the package: atomic writes, file digests, one-line errors.

Each exists once here; modules that write files or report MXNet errors import
them instead of keeping their own copies.
"""
import contextlib
import hashlib
import os
import tempfile

__all__ = ["atomic_path", "file_digest", "error_summary"]


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary path beside ``path``; on success rename it to ``path``.

    The caller writes the whole file to the yielded path. A reader never sees a
    half-written ``path``: on success the file replaces it in one ``os.replace``,
    on an exception the temporary file is removed and ``path`` is left as it was.

    ``suffix`` (default: ``path``'s extension) is kept on the temporary name for
    writers that choose a format by it (matplotlib's ``savefig``, ``np.savez``).
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if suffix is None:
        suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def file_digest(path, algorithm="sha256"):
    """The hex digest of the file at ``path`` (``algorithm``: any ``hashlib`` name)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def error_summary(err):
    """The informative line of an error whose message may open with MXNet's C++ traceback."""
    lines = [line.strip() for line in str(err).splitlines()
             if line.strip() and not line.startswith(("Traceback", "  File", "File "))]
    return lines[-1] if lines else type(err).__name__
