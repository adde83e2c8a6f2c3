"""Data loaders: tests build their own small IDX and CIFAR files and never download."""
import gzip
import hashlib
import io
import pickle
import struct
import tarfile

import numpy as np
import pytest
import torch

from ardiff import data


def idx_bytes(arr: np.ndarray) -> bytes:
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    return gzip.compress(header + arr.astype(np.uint8).tobytes(), mtime=0)


@pytest.fixture
def no_download(monkeypatch):
    import pooch

    def fail(*a, **k):
        raise AssertionError("a test tried to download")

    monkeypatch.setattr(pooch, "retrieve", fail)


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch, no_download):
    """A 5-image MNIST in $ARDIFF_DATA/mnist, with the loader's checksum table pointed at it."""
    rng = np.random.default_rng(0)
    files = {}
    for prefix, n in (("train", 5), ("t10k", 3)):
        imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        imgs[0, 0, 0], imgs[0, 0, 1] = 0, 255
        files[f"{prefix}-images-idx3-ubyte.gz"] = idx_bytes(imgs)
        files[f"{prefix}-labels-idx1-ubyte.gz"] = idx_bytes(np.arange(n) % 10)
    (tmp_path / "mnist").mkdir()
    table = {}
    for name, raw in files.items():
        (tmp_path / "mnist" / name).write_bytes(raw)
        table[name] = (len(raw), hashlib.sha256(raw).hexdigest())
    monkeypatch.setattr(data, "MNIST_FILES", table)
    monkeypatch.setenv("ARDIFF_DATA", str(tmp_path))
    return tmp_path


def test_load_mnist_shapes_range_and_limit(tiny_mnist):
    x, y = data.load_mnist("train")
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32
    assert x.min().item() == -1.0 and x.max().item() == 1.0
    assert y.dtype == torch.int64 and y.tolist() == [0, 1, 2, 3, 4]
    x, y = data.load_mnist("test", limit=2)
    assert x.shape == (2, 1, 28, 28) and y.tolist() == [0, 1]


def test_corrupted_file_is_never_parsed(tiny_mnist, monkeypatch):
    p = tiny_mnist / "mnist" / "train-images-idx3-ubyte.gz"
    raw = bytearray(p.read_bytes())
    raw[100] ^= 0xFF
    p.write_bytes(bytes(raw))
    monkeypatch.setattr(data, "read_idx", lambda *a: pytest.fail("parsed a corrupted file"))
    expected = data.MNIST_FILES[p.name][1]
    with pytest.raises(data.ChecksumError) as e:
        data.load_mnist("train")
    assert p.name in str(e.value) and expected in str(e.value)


def test_truncated_file_names_size_and_checksum(tiny_mnist, monkeypatch):
    p = tiny_mnist / "mnist" / "t10k-labels-idx1-ubyte.gz"
    p.write_bytes(p.read_bytes()[:-3])
    monkeypatch.setattr(data, "read_idx", lambda *a: pytest.fail("parsed a truncated file"))
    with pytest.raises(data.ChecksumError, match="truncated") as e:
        data.load_mnist("test")
    assert p.name in str(e.value) and data.MNIST_FILES[p.name][1] in str(e.value)


def test_missing_file_under_ardiff_data_is_an_error_not_a_download(tiny_mnist):
    (tiny_mnist / "mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        data.load_mnist("test")


def test_cache_is_used_without_download(tiny_mnist, tmp_path, monkeypatch):
    monkeypatch.delenv("ARDIFF_DATA")
    monkeypatch.setenv("ARDIFF_CACHE", str(tiny_mnist))  # same layout as the cache
    x, _ = data.load_mnist("train")
    assert x.shape[0] == 5


def test_download_tries_mirrors_in_order_and_verifies(tiny_mnist, tmp_path, monkeypatch):
    import pooch

    cache = tmp_path / "cache"
    monkeypatch.delenv("ARDIFF_DATA")
    monkeypatch.setenv("ARDIFF_CACHE", str(cache))
    monkeypatch.setattr(data, "MNIST_MIRRORS", ["https://mirror-a.invalid/", "https://mirror-b.invalid/"])
    calls = []

    def fake_retrieve(url, known_hash, fname, path, progressbar):  # a mirror served from disk
        calls.append(url)
        assert progressbar is True and known_hash.startswith("sha256:")
        if "mirror-a" in url:
            raise OSError("mirror down")
        path.mkdir(parents=True, exist_ok=True)
        (path / fname).write_bytes((tiny_mnist / "mnist" / fname).read_bytes())
        return str(path / fname)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    x, y = data.load_mnist("test")
    assert x.shape[0] == 3
    assert calls[0].startswith("https://mirror-a.invalid/") and calls[1].startswith("https://mirror-b.invalid/")
    assert (cache / "mnist" / "t10k-images-idx3-ubyte.gz").is_file()


def test_bad_arguments(tiny_mnist):
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        data.load_mnist("val")
    with pytest.raises(ValueError, match="limit must be None or an int >= 1"):
        data.load_mnist("train", limit=0)
    with pytest.raises(ValueError, match="classes must be CIFAR-10 class names"):
        data._class_indices("zebra")
    with pytest.raises(ValueError, match="names must be among"):
        data.natural_images(["lena"])
    with pytest.raises(ValueError, match=r"size must be an int in \[8, 1024\]"):
        data.natural_images(size=4)


def test_read_idx_rejects_inconsistent_header(tmp_path):
    p = tmp_path / "bad.gz"
    p.write_bytes(gzip.compress(struct.pack(">HBBI", 0, 8, 1, 10) + b"\x01\x02"))
    with pytest.raises(ValueError, match="header says"):
        data.read_idx(p)


def test_real_mnist_test_split(shared_data, no_download):
    x, y = data.load_mnist("test")
    assert x.shape == (10000, 1, 28, 28)
    # label counts published with the data (shared/data/README.md)
    assert torch.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    x, _ = data.load_mnist("train", limit=1000)
    assert x.shape == (1000, 1, 28, 28) and -1 <= x.min() and x.max() <= 1


# ------------------------------------------------------------------ CIFAR-10
@pytest.fixture
def tiny_cifar_tarball(tmp_path, monkeypatch, no_download):
    rng = np.random.default_rng(1)
    members, md5s = {}, {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [3, 5, 3, 1]}
        members[name] = pickle.dumps(d, protocol=2)
    members["batches.meta"] = pickle.dumps({b"label_names": [c.encode() for c in data.CIFAR10_CLASSES]})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, raw in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
            md5s[name] = hashlib.md5(raw).hexdigest()
    raw = buf.getvalue()
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "cifar-10-python.tar.gz").write_bytes(raw)
    monkeypatch.setattr(data, "CIFAR10_TARBALL", ("cifar-10-python.tar.gz", len(raw), hashlib.md5(raw).hexdigest()))
    monkeypatch.setattr(data, "CIFAR10_MEMBERS_MD5", md5s)
    monkeypatch.setenv("ARDIFF_DATA", str(tmp_path))
    return members


def test_cifar10_class_subset_keeps_order_and_layout(tiny_cifar_tarball):
    x, y = data.load_cifar10("cat", "train")
    assert x.shape == (10, 3, 32, 32) and y.tolist() == [3] * 10
    first = pickle.loads(tiny_cifar_tarball["data_batch_1"])[b"data"][0]
    # rows are 1024 R, then G, then B values, each 32x32 row-major
    assert torch.equal(((x[0] + 1) * 127.5).round().to(torch.uint8).flatten(), torch.from_numpy(first))
    x, y = data.load_cifar10([1, "dog"], "test")
    assert y.tolist() == [5, 1]
    x, y = data.load_cifar10(None, "test", limit=3)
    assert y.tolist() == [3, 5, 3]


def test_cifar10_member_checksum_is_checked(tiny_cifar_tarball, monkeypatch):
    monkeypatch.setitem(data.CIFAR10_MEMBERS_MD5, "test_batch", "0" * 32)
    with pytest.raises(data.ChecksumError, match="test_batch: md5 mismatch, expected 0000"):
        data.load_cifar10("cat", "test")


def test_real_cifar10_cats(shared_data, no_download):
    if not (shared_data / "cifar10" / "cifar10_cat.npz").is_file():
        pytest.skip("no cifar10_cat.npz")
    x = data.load_cifar10_cats("test", limit=50)
    assert x.shape == (50, 3, 32, 32) and x.dtype == torch.float32
    assert -1 <= x.min() < -0.9 and 0.9 < x.max() <= 1
    # per-channel mean of the test cats on the 0..1 scale, from shared/data/README.md
    full = data.load_cifar10_cats("test")
    means = ((full + 1) / 2).mean(dim=(0, 2, 3))
    torch.testing.assert_close(means, torch.tensor([0.4932, 0.4553, 0.4160]), atol=6e-4, rtol=0)


def test_natural_images():
    x = data.natural_images(["camera", "astronaut"], size=64)
    assert x.shape == (2, 1, 64, 64) and x.dtype == torch.float32
    assert -1 <= x.min() and x.max() <= 1 and x.std() > 0.2
    rgb = data.natural_images("chelsea", size=32, gray=False)
    assert rgb.shape == (1, 3, 32, 32)
    both = data.natural_images(size=16)
    assert both.shape == (len(data.NATURAL_IMAGE_NAMES), 1, 16, 16)


def test_cifar10_subset_checksum_failure_is_never_parsed(tmp_path, monkeypatch, no_download):
    (tmp_path / "cifar10").mkdir()
    size, _ = data.CIFAR10_SUBSET_NPZ
    (tmp_path / "cifar10" / "cifar10_subset.npz").write_bytes(b"\0" * size)      # right size, wrong bytes
    monkeypatch.setenv("ARDIFF_DATA", str(tmp_path))
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("parsed a file that failed its checksum"))
    with pytest.raises(data.ChecksumError, match="cifar10_subset.npz: sha256 is .*expected 4b3b56a5"):
        data.load_cifar10_subset("test")


def test_cifar10_subset_from_the_official_tarball(tiny_cifar_tarball, tmp_path, monkeypatch):
    """Without ARDIFF_DATA the subset comes from the tarball: the first images of each class, in label order."""
    monkeypatch.delenv("ARDIFF_DATA")
    monkeypatch.setenv("ARDIFF_CACHE", str(tmp_path))
    x, y = data.load_cifar10_subset("train")
    assert y.tolist() == [1] * 5 + [3] * 10 + [5] * 5 and x.shape == (20, 3, 32, 32)
    cats, _ = data.load_cifar10("cat", "train")
    assert torch.equal(x[5:15], cats)
    x, y = data.load_cifar10_subset("test", classes="dog")
    assert y.tolist() == [5] and x.shape == (1, 3, 32, 32)


def test_real_cifar10_subset(shared_data, no_download):
    if not (shared_data / "cifar10" / "cifar10_subset.npz").is_file():
        pytest.skip("no cifar10_subset.npz")
    x, y = data.load_cifar10_subset("train")
    assert x.shape == (20000, 3, 32, 32) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1
    assert torch.equal(torch.bincount(y), torch.full((10,), 2000)) and (y[:-1] <= y[1:]).all()  # label order
    # its cats are the first 2,000 training cats of cifar10_cat.npz, pixel for pixel (shared/data/README.md)
    assert torch.equal(x[y == 3], data.load_cifar10_cats("train", limit=2000))
    xt, yt = data.load_cifar10_subset("test", classes="cat")
    assert torch.equal(xt, data.load_cifar10_cats("test")) and (yt == 3).all()
