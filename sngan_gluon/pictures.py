"""Pictures of what a generator learned, beyond one grid of samples (``sngan-generate``).

* :func:`interpolation_grid`: rows of spherical walks between two noise vectors;
* :func:`class_rows`: one row per class, the same noise in each column;
* :func:`truncation_rows`: one row per truncation value, the same noise draws;
* :func:`nearest_grid`: each sample beside its nearest training images (pixels);
* :func:`write_progress_gif`: a run's sample grids as one animation.

Each picture is a uint8 array of images (N, H, W, C) and the number of images
a row of its grid holds; :func:`draw` loads a checkpoint, draws the picture
asked for and writes it (``.png`` grid, or ``.npz`` of the images).
"""
import glob
import os

import numpy as np
from PIL import Image

from .data import get_dataset
from .fileio import atomic_path
from .sampling import (LoadedGenerator, SamplingError, check_label, check_output,
                       check_truncation, draw_noise, save_images)

__all__ = ["PICTURES", "DEFAULT_TRUNCATIONS", "slerp", "interpolation_grid", "class_rows",
           "truncation_rows", "nearest_training_images", "nearest_grid", "draw",
           "write_progress_gif"]

#: The picture modes of ``sngan-generate`` (the CLI builds its flags from this list).
PICTURES = ("interpolate", "per-class", "truncation-sweep", "nearest")

#: The rows of ``--truncation-sweep`` (None: no truncation).
DEFAULT_TRUNCATIONS = (None, 2.0, 1.0, 0.5, 0.25)


def slerp(a, b, t):
    """Spherical interpolation (Shoemake 1985; White 2016, "Sampling Generative Networks").

    Parameters
    ----------
    a, b : array (z_dim,)
        The end points.
    t : array (T,)
        Fractions of the way from ``a`` (0) to ``b`` (1).

    Returns
    -------
    float32 array (T, z_dim): ``sin((1-t) w) / sin(w) a + sin(t w) / sin(w) b``,
    ``w`` the angle between ``a`` and ``b``. Gaussian noise lies near a sphere, and
    unlike a straight line the arc does not pass through the sphere's less likely
    interior. Parallel or zero vectors fall back to the straight line.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.asarray(t, np.float64)[:, None]
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    cos = np.clip(a @ b / norms, -1.0, 1.0) if norms > 0 else 1.0
    omega = np.arccos(cos)
    if norms == 0 or np.sin(omega) < 1e-7:
        return ((1 - t) * a + t * b).astype(np.float32)
    return ((np.sin((1 - t) * omega) * a + np.sin(t * omega) * b)
            / np.sin(omega)).astype(np.float32)


def _labels(gen, rng, n, label):
    """(n,) labels for a conditional ``gen``: all ``label``, or uniform; None if unconditional."""
    if not gen.num_classes:
        return None
    return np.full(n, label) if label is not None else rng.randint(0, gen.num_classes, size=n)


def interpolation_grid(gen, rows=8, steps=8, seed=0, label=None):
    """``rows`` latent walks of ``steps`` images each, by :func:`slerp` between two draws.

    A conditional generator keeps one class along a walk (``label``, or one drawn
    per row). Returns (images (rows * steps, H, W, C), steps).
    """
    rng = np.random.RandomState(seed)
    ends = draw_noise(rng, 2 * rows, gen.z_dim)
    t = np.linspace(0.0, 1.0, steps)
    z = np.concatenate([slerp(ends[2 * r], ends[2 * r + 1], t) for r in range(rows)])
    row_labels = _labels(gen, rng, rows, label)
    y = None if row_labels is None else np.repeat(row_labels, steps)
    return gen.images(z, y), steps


def class_rows(gen, columns=8, seed=0):
    """One row per class, column ``j`` the same noise in every row.

    Returns (images (num_classes * columns, H, W, C), columns); a SamplingError for an
    unconditional generator.
    """
    if not gen.num_classes:
        raise SamplingError("--per-class needs a conditional generator; this one is "
                         "unconditional (train with --conditional)")
    z = draw_noise(np.random.RandomState(seed), columns, gen.z_dim)
    z = np.tile(z, (gen.num_classes, 1))
    y = np.repeat(np.arange(gen.num_classes), columns)
    return gen.images(z, y), columns


def truncation_rows(gen, truncations=DEFAULT_TRUNCATIONS, columns=8, seed=0, label=None):
    """One row per truncation value (None: none), every row drawn from the same seed.

    The truncation trick redraws only the entries above the threshold, so column
    ``j`` keeps the entries that are already small in every row: the rows show the
    same samples pulled towards the mean. Returns (images, columns).
    """
    for t in truncations:
        check_truncation(t)
    images = []
    for t in truncations:
        rng = np.random.RandomState(seed)
        z = draw_noise(rng, columns, gen.z_dim, t)
        images.append(gen.images(z, _labels(gen, np.random.RandomState(seed + 1), columns,
                                            label)))
    return np.concatenate(images), columns


def nearest_training_images(samples, training, k=3, chunk=4096):
    """Indices (n, k) of the ``k`` training images nearest each sample, nearest first.

    Distances are Euclidean between the pixel values (uint8 (n, H, W, C) and
    (N, H, W, C)), computed ``chunk`` training images at a time.
    """
    a = samples.reshape(len(samples), -1).astype(np.float32)
    best_d = np.full((len(a), 0), np.inf, np.float32)
    best_i = np.zeros((len(a), 0), np.int64)
    for start in range(0, len(training), chunk):
        b = training[start:start + chunk].reshape(-1, a.shape[1]).astype(np.float32)
        d = (a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None, :]
        d = np.concatenate([best_d, d], axis=1)
        i = np.concatenate([best_i, np.arange(start, start + len(b))[None, :].repeat(len(a), 0)],
                           axis=1)
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        best_d, best_i = np.take_along_axis(d, order, 1), np.take_along_axis(i, order, 1)
    return best_i


def nearest_grid(gen, training, num=8, k=3, seed=0, label=None):
    """Each of ``num`` samples followed by its ``k`` nearest training images (pixels).

    ``training``: uint8 (N, H, W, C), the generator's training images. A sample
    that equals one of its neighbours is a copy of the data. Returns (images
    (num * (k + 1), H, W, C), k + 1).
    """
    if len(training) < k:
        raise SamplingError("--nearest needs at least %d training images, got %d"
                         % (k, len(training)))
    rng = np.random.RandomState(seed)
    z = draw_noise(rng, num, gen.z_dim)
    samples = gen.images(z, _labels(gen, rng, num, label))
    near = nearest_training_images(samples, training, k)
    rows = [np.concatenate([samples[i:i + 1], training[near[i]]]) for i in range(num)]
    return np.concatenate(rows), k + 1


def _training_images(gen, data_path=None):
    config = gen.config
    data = get_dataset(config["dataset"], root=data_path or config["data_path"],
                       image_size=gen.image_size, channels=gen.channels, train=True)
    return data.images


def draw(checkpoint, out, picture=None, num=64, seed=0, label=None, ema=True,
         truncation=None, batch_size=100, ctx=None, rows=8, steps=8,
         truncations=DEFAULT_TRUNCATIONS, neighbours=3, data_path=None):
    """Draw a checkpoint's samples or one of :data:`PICTURES` and write it (``sngan-generate``).

    Parameters
    ----------
    checkpoint : str
        A run folder (its newest checkpoint) or a checkpoint folder.
    out : str
        ``.png`` (a grid with a caption) or ``.npz`` (``images`` uint8 (N, H, W, C)).
    picture : str or None
        None: ``num`` samples (``label``, ``truncation``, in batches of
        ``batch_size``); ``interpolate``: ``rows`` walks of ``steps``;
        ``per-class``: ``steps`` columns a class; ``truncation-sweep``: a row
        of ``steps`` for each of ``truncations``; ``nearest``: ``rows`` samples
        and their ``neighbours`` nearest training images (the run's dataset,
        under ``data_path`` if given).

    Returns
    -------
    (str, LoadedGenerator)
        What was written, in words, and the generator.
    """
    if picture is not None and picture not in PICTURES:
        raise SamplingError("unknown picture %r; choose from %s" % (picture, ", ".join(PICTURES)))
    check_truncation(truncation)
    check_output(out)  # before the work, not after it
    gen = LoadedGenerator(checkpoint, ctx=ctx, use_ema=ema)
    check_label(label, gen.num_classes)
    if picture is None:
        images = gen.sample(num, seed=seed, label=label, batch_size=batch_size,
                            truncation=truncation)
        nrow, what = None, "%d images" % num
    elif picture == "interpolate":
        images, nrow = interpolation_grid(gen, rows, steps, seed, label)
        what = "%d spherical latent walks of %d steps" % (rows, steps)
    elif picture == "per-class":
        images, nrow = class_rows(gen, steps, seed)
        what = "one row of %d for each of %d classes" % (steps, gen.num_classes)
    elif picture == "truncation-sweep":
        images, nrow = truncation_rows(gen, truncations, steps, seed, label)
        what = "rows at truncation %s" % ", ".join("off" if t is None else "%g" % t
                                                   for t in truncations)
    else:
        images, nrow = nearest_grid(gen, _training_images(gen, data_path), rows, neighbours,
                                    seed, label)
        what = "%d samples, each beside its %d nearest training images" % (rows, neighbours)
    save_images(images, out, nrow=nrow, caption="%s, seed %d" % (gen.describe(), seed))
    return "wrote %s (%s) to %s" % (what, gen.describe(), out), gen


def write_progress_gif(run_path, max_frames=60, ms_per_frame=400):
    """Write ``<run_path>/progress.gif`` from ``samples/iter_*.png``, oldest first.

    At most ``max_frames`` grids, evenly spaced, the last one always in; the last
    frame is held three times as long. Returns the path, or None when the run has
    no sample grid.
    """
    paths = sorted(glob.glob(os.path.join(run_path, "samples", "iter_*.png")))
    if not paths:
        return None
    if len(paths) > max_frames:
        keep = np.unique(np.linspace(0, len(paths) - 1, max_frames).round().astype(int))
        paths = [paths[i] for i in keep]
    frames = []
    for p in paths:
        with Image.open(p) as image:
            frames.append(image.convert("RGB").convert("P", palette=Image.ADAPTIVE))
    durations = [ms_per_frame] * (len(frames) - 1) + [3 * ms_per_frame]
    out = os.path.join(run_path, "progress.gif")
    with atomic_path(out, suffix=".gif") as tmp:
        frames[0].save(tmp, save_all=True, append_images=frames[1:], duration=durations,
                       loop=0)
    return out
