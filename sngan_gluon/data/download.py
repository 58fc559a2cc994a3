"""The package's one downloader, and the files of a dataset release: found, fetched, verified.

:func:`fetch` is the only code in the package that reads from the network: the
datasets here, the TF Inception weights (``inception_weights``) and gluoncv's
Inception-v3 weights (``feature_nets``) all come through it. Every socket
operation waits at most ``NETWORK_TIMEOUT`` seconds, so a machine without
network fails in seconds instead of minutes, and the file is written
atomically, so a failed or corrupt download leaves nothing behind.
"""
import http.client
import os
import shutil
import tarfile
import urllib.request
import warnings
from urllib.parse import urlparse

from tqdm import tqdm

from .._compat import repo_file_url
from ..fileio import atomic_path, file_digest
from .dataset import DatasetError

__all__ = ["NETWORK_TIMEOUT", "DOWNLOAD_ERRORS", "fetch", "locate_release", "locate_files",
           "warn_if_unofficial", "check_records"]

# Seconds to wait for a connection or for the next chunk of a download.
NETWORK_TIMEOUT = 10.0

# What a failed fetch raises: urllib's URLError and socket timeouts are OSErrors.
DOWNLOAD_ERRORS = (OSError, http.client.HTTPException)

_checked_files = set()  # (path, size, mtime) already compared with the official SHA-1


def fetch(url, path, digest=None, algorithm="md5"):
    """Download ``url`` to ``path``, with a progress bar on stderr.

    Parameters
    ----------
    url, path : str
    digest : str, optional
        The expected hex digest of the whole file; checked before ``path`` appears.
    algorithm : str
        The ``hashlib`` name of ``digest``.

    Raises
    ------
    OSError or http.client.HTTPException (see ``DOWNLOAD_ERRORS``)
        Unreachable host, timeout, broken transfer or digest mismatch; ``path``
        is then left as it was.
    """
    with urllib.request.urlopen(url, timeout=NETWORK_TIMEOUT) as response, \
            atomic_path(path) as partial:
        size = getattr(response, "length", None)  # None for file:// and unsized replies
        with open(partial, "wb") as fout, tqdm(total=size, unit="B", unit_scale=True,
                                               desc="downloading " + os.path.basename(path)) as bar:
            for block in iter(lambda: response.read(1 << 20), b""):
                fout.write(block)
                bar.update(len(block))
        if digest is not None:
            got = file_digest(partial, algorithm)
            if got != digest:
                raise OSError("the download of %s has %s %s, not %s (incomplete or changed)"
                              % (url, algorithm.upper(), got, digest))


def warn_if_unofficial(paths, sha1s, what):
    """Warn once per file when a file's SHA-1 differs from the official release.

    Such files are still used when their format is valid (a re-packed copy, or a
    small file a test wrote); the warning says so, so a surprising result can be
    traced to them.
    """
    odd = []
    for path in paths:
        stat = os.stat(path)
        key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
        if key in _checked_files:
            continue
        _checked_files.add(key)
        if file_digest(path, "sha1") != sha1s[os.path.basename(path)]:
            odd.append(path)
    if odd:
        warnings.warn("%s file(s) %s differ from the official release (SHA-1 mismatch); using "
                      "them since their format is valid" % (what, ", ".join(odd)), stacklevel=4)


def _extract(archive, dest, names):
    """Extract the members of ``archive`` whose base names are in ``names`` into ``dest``.

    Only those members are written, each under its base name, so the archive's
    own folder layout (and any hostile path in it) does not matter.
    """
    os.makedirs(dest, exist_ok=True)
    found = set()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                base = os.path.basename(member.name)
                if member.isfile() and base in names and base not in found:
                    with tar.extractfile(member) as src, \
                            atomic_path(os.path.join(dest, base)) as part, open(part, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    found.add(base)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DatasetError("cannot extract %s (%s): delete it and download it again"
                           % (archive, err)) from None
    missing = sorted(set(names) - found)
    if missing:
        raise DatasetError("archive %s lacks %s: delete it and download it again"
                           % (archive, ", ".join(missing)))


def _find_folder(folders, names):
    for folder in folders:
        if all(os.path.isfile(os.path.join(folder, name)) for name in names):
            return folder
    return None


def _is_known_archive(archive, md5, mirrors):
    """Whether ``archive`` is the official file (``md5``) or a mirror's (SHA-1 of ``mirrors``)."""
    if file_digest(archive, "md5") == md5:
        return True
    return any(file_digest(archive, "sha1") == sha1 for _, sha1 in mirrors)


def locate_release(what, root, folders, needed, all_files, archive_name, url, md5, dest,
                   download, mirrors=()):
    """The folder (one of ``folders``) holding the files ``needed``, obtained if need be.

    In order: files already there; an archive ``root/archive_name`` already there
    (checked against ``md5`` or a mirror's SHA-1, extracted into ``dest``); a
    download from each ``mirrors`` entry ``(url, sha1)``, then from ``url``
    itself. Raises DatasetError naming ``url`` and the place for the files when
    all of that fails.
    """
    folder = _find_folder(folders, needed)
    if folder is not None:
        return folder
    archive = os.path.join(root, archive_name)
    places = " or ".join(folders)
    if os.path.isfile(archive):
        if _is_known_archive(archive, md5, mirrors):
            _extract(archive, dest, all_files)
            return dest
        if not download:
            raise DatasetError("%s archive %s is incomplete or corrupt (MD5 is not %s): delete it "
                               "and download it again from %s" % (what, archive, md5, url))
    reasons = ["%s has the wrong MD5" % archive] if os.path.isfile(archive) else []
    if download:
        sources = [(mirror, sha1, "sha1") for mirror, sha1 in mirrors] + [(url, md5, "md5")]
        for source, digest, algorithm in sources:
            try:
                fetch(source, archive, digest, algorithm)
                _extract(archive, dest, all_files)
                return dest
            except DOWNLOAD_ERRORS + (DatasetError,) as err:
                reasons.append("%s: %s: %s" % (urlparse(source).hostname, type(err).__name__,
                                               err))
    why = ("download failed (%s; offline?)" % "; ".join(reasons) if reasons
           else "download=False")
    raise DatasetError("%s files %s not found in %s and %s: download %s (MD5 %s) and put it in "
                       "%s (it is extracted on the next run), or extract its %s there"
                       % (what, ", ".join(needed), places, why, url, md5, root,
                          ", ".join(all_files)))


def locate_files(what, folder, sha1s, namespace, download):
    """The paths of the files ``sha1s`` names (``{name: sha1}``) in ``folder``, fetched if need be.

    Missing files are downloaded from MXNet's dataset repository
    (``namespace``, e.g. ``gluon/dataset/mnist``; ``$MXNET_GLUON_REPO``
    overrides the host) and checked against their SHA-1. Raises DatasetError
    naming the URLs and the folder when they cannot be had.
    """
    names = list(sha1s)
    paths = [os.path.join(folder, name) for name in names]
    urls = [repo_file_url(namespace, name) for name in names]
    if all(os.path.isfile(path) for path in paths):
        return paths
    why = "download=False"
    if download:
        try:
            for url, path, name in zip(urls, paths, names):
                if not os.path.isfile(path):
                    fetch(url, path, sha1s[name], "sha1")
            return paths
        except DOWNLOAD_ERRORS as err:
            why = "download failed (%s: %s; offline?)" % (type(err).__name__, err)
    raise DatasetError("%s files %s not found in %s and %s: download %s and put them in %s"
                       % (what, " and ".join(names), folder, why, " and ".join(urls), folder))


def check_records(path, record, what):
    """Raise DatasetError unless the file holds a whole, non-zero number of ``record`` bytes."""
    size = os.path.getsize(path)
    if size == 0 or size % record:
        raise DatasetError("%s is truncated or corrupt (%d bytes, not a whole number of %d-byte "
                           "%s): delete it and download it again" % (path, size, record, what))
