"""Datasets of the book, verified by checksum before a single byte is parsed.

Where files come from, in order:

1. ``$ARDIFF_DATA`` when set (a folder laid out like ``shared/data``: ``mnist/*.gz``,
   ``cifar10/cifar10_cat.npz``). Nothing is downloaded then: a missing file is an error.
2. Otherwise the cache, ``$ARDIFF_CACHE`` (default ``~/.cache/ardiff``), downloading from the
   official mirrors into it when a file is missing (with a progress bar).

Every loader returns float32 tensors in [-1, 1], NCHW. A file whose size or checksum is wrong
raises :class:`ChecksumError` naming the file and the expected checksum, and is never parsed.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import torch

__all__ = ["ChecksumError", "data_root", "cache_dir", "load_mnist", "read_idx", "load_cifar10",
           "load_cifar10_cats", "load_cifar10_subset", "natural_images", "NATURAL_IMAGE_NAMES", "describe_source"]


class ChecksumError(ValueError):
    """A data file does not match its published size or checksum."""


# ------------------------------------------------------------------------------ where files live
def data_root() -> Path | None:
    """The read-only data folder from ``$ARDIFF_DATA``, or None when unset."""
    root = os.environ.get("ARDIFF_DATA")
    return Path(root).expanduser() if root else None


def cache_dir() -> Path:
    """The download cache: ``$ARDIFF_CACHE``, default ``~/.cache/ardiff``."""
    return Path(os.environ.get("ARDIFF_CACHE", "~/.cache/ardiff")).expanduser()


def _digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_file(path: Path, expected: str, algorithm: str = "sha256", size: int | None = None) -> Path:
    """Check a file's size and checksum; raise :class:`ChecksumError` on any mismatch."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise ChecksumError(f"{path}: size {actual_size:,} bytes, expected {size:,} "
                            f"({algorithm} {expected}); the file is truncated or corrupted")
    actual = _digest(path, algorithm)
    if actual != expected:
        raise ChecksumError(f"{path}: {algorithm} is {actual}, expected {expected}; "
                            "the file is corrupted or not the official one. Delete it and try again.")
    return path


def _fetch(relpath: str, checksum: str, algorithm: str, size: int | None, mirrors: list[str]) -> Path:
    """Return a verified local copy of ``relpath``: from $ARDIFF_DATA, the cache, or a download."""
    root = data_root()
    if root is not None:  # a local copy was named: use it, never download
        path = root / relpath
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found. ARDIFF_DATA={root} is set, so nothing is "
                                    "downloaded; unset it to download into the cache instead.")
        return verify_file(path, checksum, algorithm, size)
    path = cache_dir() / relpath
    if path.is_file():
        return verify_file(path, checksum, algorithm, size)
    import pooch  # downloads with a progress bar and checks the hash before keeping the file

    errors = []
    for base in mirrors:
        try:
            pooch.retrieve(base + Path(relpath).name, known_hash=f"{algorithm}:{checksum}",
                           fname=path.name, path=path.parent, progressbar=True)
            return verify_file(path, checksum, algorithm, size)
        except Exception as e:  # try the next mirror; report all at the end
            errors.append(f"{base}: {e}")
    raise RuntimeError(f"could not download {path.name}:\n  " + "\n  ".join(errors))


def describe_source(name: str) -> str:
    """Where a dataset ('mnist', 'cifar10_cat', 'photos') will be read from, in words, without machine paths
    (they go into stored lesson outputs, where a reader's own path would mean nothing)."""
    if name == "photos":
        return "natural photographs bundled with scikit-image"
    if data_root() is not None:
        return f"{name} from the local data folder (ARDIFF_DATA), checksums verified"
    return f"{name} from the cache (downloaded from the official source when missing, checksums verified)"


# ------------------------------------------------------------------------------ MNIST
MNIST_MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/"]
MNIST_FILES = {  # name: (size in bytes, sha256), as published with the original files
    "train-images-idx3-ubyte.gz": (9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    "train-labels-idx1-ubyte.gz": (28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    "t10k-images-idx3-ubyte.gz": (1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    "t10k-labels-idx1-ubyte.gz": (4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
}


def read_idx(path: Path) -> np.ndarray:
    """Parse a gzip IDX file of uint8 values (call only on a verified file)."""
    buf = gzip.decompress(Path(path).read_bytes())
    if len(buf) < 4:
        raise ValueError(f"{path}: not an IDX file (only {len(buf)} bytes)")
    zero, dtype_code, ndim = struct.unpack(">HBB", buf[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not a uint8 IDX file (magic {buf[:4].hex()})")
    dims = struct.unpack(">" + "I" * ndim, buf[4:4 + 4 * ndim])
    offset = 4 + 4 * ndim
    if len(buf) - offset != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {len(buf) - offset} values")
    return np.frombuffer(buf, np.uint8, offset=offset).reshape(dims)


def _check_split(split: str) -> str:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split


def _check_limit(limit) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be None or an int >= 1, got {limit!r}")
    return limit


def to_unit_range(x_uint8: np.ndarray) -> torch.Tensor:
    """uint8 0..255 -> float32 in [-1, 1]."""
    return torch.from_numpy(x_uint8.astype(np.float32)).div_(127.5).sub_(1.0)  # astype copies: writable


def load_mnist(split: str = "train", limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST digits from the original IDX files.

    Args:
        split: 'train' (60,000 images) or 'test' (10,000).
        limit: keep the first ``limit`` images (for quick runs), or all when None.
    Returns:
        ``(images, labels)``: images (N, 1, 28, 28) float32 in [-1, 1]; labels (N,) int64 in 0..9.
    """
    split = _check_split(split)
    limit = _check_limit(limit)
    prefix = "train" if split == "train" else "t10k"
    paths = {}
    for kind in ("images-idx3", "labels-idx1"):
        name = f"{prefix}-{kind}-ubyte.gz"
        size, sha = MNIST_FILES[name]
        paths[kind] = _fetch(f"mnist/{name}", sha, "sha256", size, MNIST_MIRRORS)
    images, labels = read_idx(paths["images-idx3"]), read_idx(paths["labels-idx1"])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"MNIST {split}: images {images.shape} and labels {labels.shape} do not match")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return to_unit_range(images[:, None]), torch.from_numpy(labels.astype(np.int64))  # (N,1,28,28), (N,)


# ------------------------------------------------------------------------------ CIFAR-10
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/"
CIFAR10_TARBALL = ("cifar-10-python.tar.gz", 170498071, "c58f30108f718f92721af3b95e74349a")  # name, size, md5
CIFAR10_MEMBERS_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f", "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751", "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb", "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_CAT_NPZ = (17176353, "c26f0aadd262737b80709602c98550c8c9dbf469d51d441954982753bf29c105")
CIFAR10_SUBSET_NPZ = (85228382, "4b3b56a5eab809a4db7fe4e0b3316bea18a6ba34867788197bbc632fcee071c3")
CIFAR10_SUBSET_PER_CLASS = 2000  # training images per class in the subset (the first of each class)


def _class_indices(classes) -> list[int]:
    if isinstance(classes, (str, int)):
        classes = [classes]
    out = []
    for c in classes:
        if isinstance(c, str) and c in CIFAR10_CLASSES:
            out.append(CIFAR10_CLASSES.index(c))
        elif isinstance(c, int) and not isinstance(c, bool) and 0 <= c < 10:
            out.append(c)
        else:
            raise ValueError(f"classes must be CIFAR-10 class names {CIFAR10_CLASSES} or indices 0..9, got {c!r}")
    return out


def load_cifar10(classes=None, split: str = "train", limit: int | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 from the official python tarball (md5 of the tarball and of each batch checked).

    Args:
        classes: class names or indices to keep (e.g. ``"cat"`` or ``[3, 5]``), or None for all ten.
        split: 'train' (data_batch_1..5, in order) or 'test' (test_batch).
        limit: keep the first ``limit`` images of the subset.
    Returns:
        ``(images, labels)``: (N, 3, 32, 32) float32 in [-1, 1] and (N,) int64.
    """
    split = _check_split(split)
    limit = _check_limit(limit)
    keep = None if classes is None else _class_indices(classes)
    name, size, md5 = CIFAR10_TARBALL
    tar_path = _fetch(f"cifar10/{name}", md5, "md5", size, [CIFAR10_URL])
    members = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    xs, ys = [], []
    with tarfile.open(tar_path, "r:gz") as tar:
        for m in members:
            raw = tar.extractfile(f"cifar-10-batches-py/{m}").read()
            if hashlib.md5(raw).hexdigest() != CIFAR10_MEMBERS_MD5[m]:
                raise ChecksumError(f"{tar_path}:{m}: md5 mismatch, expected {CIFAR10_MEMBERS_MD5[m]}")
            d = pickle.load(io.BytesIO(raw), encoding="bytes")
            xs.append(np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32))  # rows: 1024 R, G, B
            ys.append(np.asarray(d[b"labels"], np.int64))
    x, y = np.concatenate(xs), np.concatenate(ys)
    if keep is not None:
        mask = np.isin(y, keep)
        x, y = x[mask], y[mask]
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return to_unit_range(x), torch.from_numpy(y)


def load_cifar10_cats(split: str = "train", limit: int | None = None) -> torch.Tensor:
    """CIFAR-10 cats (class 3), (N, 3, 32, 32) float32 in [-1, 1].

    With ``$ARDIFF_DATA`` set, reads ``cifar10/cifar10_cat.npz`` there (5,000 train and 1,000 test
    cats decoded from a JPEG copy of CIFAR-10, so not the exact official pixels; see
    ``shared/data/README.md``). Otherwise takes the cats from the official tarball.
    """
    split = _check_split(split)
    limit = _check_limit(limit)
    root = data_root()
    if root is None:
        return load_cifar10("cat", split, limit)[0]
    size, sha = CIFAR10_CAT_NPZ
    path = _fetch("cifar10/cifar10_cat.npz", sha, "sha256", size, [])
    with np.load(path) as z:
        x = z[split]  # (N, 32, 32, 3) uint8, NHWC
    if limit is not None:
        x = x[:limit]
    return to_unit_range(x.transpose(0, 3, 1, 2))  # (N, 3, 32, 32)


def load_cifar10_subset(split: str = "train", classes=None, limit: int | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """All ten CIFAR-10 classes: the first 2,000 training images of each class, or the whole test set.

    With ``$ARDIFF_DATA`` set, reads ``cifar10/cifar10_subset.npz`` there (decoded from the same JPEG copy as
    :func:`load_cifar10_cats`, so not the exact official pixels; its cats are the first 2,000 of that file).
    Otherwise builds the same subset from the official tarball (the first 2,000 of each class in batch order).

    Args:
        split: 'train' (20,000 images, classes in label order) or 'test' (10,000).
        classes: class names or indices to keep, or None for all ten.
        limit: keep the first ``limit`` images (after ``classes``).
    Returns:
        ``(images, labels)``: (N, 3, 32, 32) float32 in [-1, 1] and (N,) int64.
    """
    split = _check_split(split)
    limit = _check_limit(limit)
    keep = None if classes is None else _class_indices(classes)
    if data_root() is None:
        x, y = load_cifar10(None, split)
        if split == "train":  # the first 2,000 of each class, classes in label order
            order = np.concatenate([np.flatnonzero(y.numpy() == c)[:CIFAR10_SUBSET_PER_CLASS] for c in range(10)])
            x, y = x[order], y[order]
    else:
        size, sha = CIFAR10_SUBSET_NPZ
        path = _fetch("cifar10/cifar10_subset.npz", sha, "sha256", size, [])
        with np.load(path) as z:
            x = to_unit_range(z[f"x_{split}"].transpose(0, 3, 1, 2))  # NHWC uint8 -> (N, 3, 32, 32)
            y = torch.from_numpy(z[f"y_{split}"].astype(np.int64))
    if keep is not None:
        mask = torch.from_numpy(np.isin(y.numpy(), keep))
        x, y = x[mask], y[mask]
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return x, y


# ------------------------------------------------------------------------------ natural photographs
NATURAL_IMAGE_NAMES = ("astronaut", "camera", "chelsea", "coffee", "rocket", "brick", "grass", "gravel")


def natural_images(names=None, size: int = 128, gray: bool = True) -> torch.Tensor:
    """Photographs bundled with scikit-image, centre-cropped to a square and resized.

    Args:
        names: names from :data:`NATURAL_IMAGE_NAMES` (functions of ``skimage.data``); all when None.
        size: output side in pixels, 8..1024.
        gray: convert to one luminance channel (ITU-R 601) when True, else keep RGB
            (grey photographs are repeated over three channels).
    Returns:
        (N, C, size, size) float32 in [-1, 1], C = 1 if ``gray`` else 3.
    """
    import skimage.data
    from skimage.color import gray2rgb, rgb2gray
    from skimage.transform import resize

    names = NATURAL_IMAGE_NAMES if names is None else ([names] if isinstance(names, str) else list(names))
    for n in names:
        if n not in NATURAL_IMAGE_NAMES:
            raise ValueError(f"names must be among {NATURAL_IMAGE_NAMES}, got {n!r}")
    if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 1024:
        raise ValueError(f"size must be an int in [8, 1024], got {size!r}")
    out = []
    for n in names:
        img = getattr(skimage.data, n)()
        img = img[..., :3] if img.ndim == 3 else img
        if gray and img.ndim == 3:
            img = rgb2gray(img)  # float in [0, 1]
        elif not gray and img.ndim == 2:
            img = gray2rgb(img)
        img = img.astype(np.float64) / (255.0 if img.dtype.kind in "ui" or img.max() > 1 else 1.0)
        h, w = img.shape[:2]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        img = resize(img[top:top + s, left:left + s], (size, size), anti_aliasing=True)
        img = img[None] if img.ndim == 2 else img.transpose(2, 0, 1)  # (C, H, W)
        out.append(torch.from_numpy(np.clip(img, 0, 1) * 2 - 1).float())
    return torch.stack(out)  # (N, C, size, size)
