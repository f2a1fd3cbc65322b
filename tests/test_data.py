"""Loaders on small files written here in the official formats; checksums; downloads."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from normscale import data
from normscale.data import cifar, idx, imagefolder
from normscale.data.download import RemoteFile, download
from normscale.errors import DataError, ParameterError


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NORMSCALE_DATA", str(tmp_path / "cache"))


def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">i", d) for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def write_mnist(folder: Path, rng, n_train=12, n_test=5, *, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=n, dtype=np.uint8)
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            name = f"{split}-{kind}-ubyte"
            raw = idx_bytes(arr)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
            out[name] = raw
        out[split] = (x, y)
    return out


# -- IDX (MNIST, Fashion-MNIST) -----------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_mnist_loader_reads_idx_exactly(tmp_path, gz):
    written = write_mnist(tmp_path / "mnist", np.random.default_rng(0), gz=gz)
    for split, key in (("train", "train"), ("test", "t10k")):
        d = data.load_dataset("mnist", root=tmp_path, split=split, verify=False)
        x, y = written[key]
        assert d.images.dtype == torch.float32 and d.images.shape == (len(y), 1, 28, 28)
        assert torch.equal(d.images, torch.from_numpy(x).float().unsqueeze(1) / 255)
        assert torch.equal(d.labels, torch.from_numpy(y.astype(np.int64)))
        assert d.split == split and d.classes == [str(i) for i in range(10)]


def test_fashion_mnist_reads_a_debian_style_folder(tmp_path):
    written = write_mnist(tmp_path, np.random.default_rng(1), gz=False)
    d = data.load_dataset("fashion-mnist", root=tmp_path, split="test", verify=False)
    assert torch.equal(d.labels, torch.from_numpy(written["t10k"][1].astype(np.int64)))
    assert d.classes[9] == "Ankle boot"


def _patch_mnist_md5(monkeypatch, written):
    files = {
        split: tuple(RemoteFile(f"{key}-{kind}-ubyte.gz", "0" * 32,
                                md5(written[f"{key}-{kind}-ubyte"]))
                     for kind in ("images-idx3", "labels-idx1"))
        for split, key in (("train", "train"), ("test", "t10k"))
    }
    monkeypatch.setattr(idx, "MNIST_FILES", files)


def test_checksum_accepts_right_content_and_names_a_corrupt_file(tmp_path, monkeypatch):
    written = write_mnist(tmp_path, np.random.default_rng(2))
    _patch_mnist_md5(monkeypatch, written)
    assert len(data.load_dataset("mnist", root=tmp_path, split="test")) == 5  # content md5 matches
    # a valid gzip holding one changed pixel: only the checksum can catch it
    raw = bytearray(written["t10k-images-idx3-ubyte"])
    raw[-1] ^= 0xFF
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="checksum mismatch.*t10k-images-idx3-ubyte.gz"):
        data.load_dataset("mnist", root=tmp_path, split="test")


def test_truncated_files_fail_even_without_checksums(tmp_path):
    write_mnist(tmp_path, np.random.default_rng(3))
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-40])  # cut a gzip stream
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz"):
        data.load_dataset("mnist", root=tmp_path, split="test", verify=False)
    raw = tmp_path / "raw"
    write_mnist(raw, np.random.default_rng(3), gz=False)
    p = raw / "t10k-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-28])  # a whole image short
    with pytest.raises(DataError, match="truncated or corrupt"):
        data.load_dataset("mnist", root=raw, split="test", verify=False)


def test_missing_files_say_what_to_put_where(tmp_path):
    with pytest.raises(DataError) as exc:
        data.load_dataset("mnist", root=tmp_path, split="train")
    msg = str(exc.value)
    assert "train-images-idx3-ubyte.gz" in msg and "train-labels-idx1-ubyte.gz" in msg
    assert str(tmp_path) in msg and "--download" in msg


def test_download_from_a_file_url_then_load(tmp_path, monkeypatch):
    written = write_mnist(tmp_path / "server", np.random.default_rng(4))
    files = {
        split: tuple(RemoteFile(f"{key}-{kind}-ubyte.gz",
                                md5((tmp_path / "server" / f"{key}-{kind}-ubyte.gz").read_bytes()))
                     for kind in ("images-idx3", "labels-idx1"))
        for split, key in (("train", "train"), ("test", "t10k"))
    }
    monkeypatch.setattr(idx, "MNIST_FILES", files)
    mirrors = ("file:///nonexistent/", (tmp_path / "server").as_uri())  # the first one fails
    monkeypatch.setattr(idx, "MNIST_MIRRORS", mirrors)
    d = data.load_dataset("mnist", split="train", download=True)  # into $NORMSCALE_DATA
    assert torch.equal(d.labels, torch.from_numpy(written["train"][1].astype(np.int64)))
    assert (tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte.gz").is_file()


def test_download_checksum_mismatch_keeps_nothing(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f.bin").write_bytes(b"x" * 1000)
    dest = tmp_path / "dest"
    good = download(RemoteFile("f.bin", md5(b"x" * 1000)), [src.as_uri()], dest, progress=False)
    assert good.read_bytes() == b"x" * 1000
    with pytest.raises(DataError, match="checksum mismatch for 'g.bin'"):
        (src / "g.bin").write_bytes(b"y" * 999)
        download(RemoteFile("g.bin", md5(b"y" * 1000)), [src.as_uri()], dest, progress=False)
    assert sorted(p.name for p in dest.iterdir()) == ["f.bin"]


def test_download_with_a_fetcher_that_fails_names_the_file(tmp_path):
    def offline(url, dest, bar):
        raise OSError("network unreachable")

    with pytest.raises(DataError, match="could not download 'a.gz'.*unreachable"):
        download(RemoteFile("a.gz", "0" * 32), ["https://example.invalid/"], tmp_path,
                 progress=False, fetcher=offline)


# -- CIFAR ------------------------------------------------------------------------------

def _cifar_pickle(d: dict) -> bytes:
    return pickle.dumps({k.encode(): v for k, v in d.items()}, protocol=2)


def write_cifar(folder: Path, layout, rng, per_batch=3, *, archive: bool):
    k = 10 if layout is cifar.CIFAR10 else 100
    files, truth = {}, {"train": [], "test": []}
    for split, specs in (("train", layout.train), ("test", layout.test)):
        for spec in specs:
            x = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
            y = rng.integers(0, k, size=per_batch).tolist()
            files[spec.name] = _cifar_pickle({"data": x, layout.label_key: y, "batch_label": "b"})
            truth[split].append((x, y))
    names = [f"c{i}".encode() for i in range(k)]
    files[layout.meta.name] = _cifar_pickle({layout.names_key: names})
    folder.mkdir(parents=True, exist_ok=True)
    if archive:
        with tarfile.open(folder / layout.archive.name, "w:gz") as tar:
            for name, blob in files.items():
                info = tarfile.TarInfo(f"{layout.folder}/{name}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    else:
        (folder / layout.folder).mkdir()
        for name, blob in files.items():
            (folder / layout.folder / name).write_bytes(blob)
    return truth


@pytest.mark.parametrize("archive", [True, False])
@pytest.mark.parametrize("name,layout", [("cifar10", cifar.CIFAR10), ("cifar100", cifar.CIFAR100)])
def test_cifar_loaders_read_the_python_pickles(tmp_path, name, layout, archive):
    truth = write_cifar(tmp_path / name, layout, np.random.default_rng(5), archive=archive)
    for split in ("train", "test"):
        d = data.load_dataset(name, root=tmp_path, split=split, verify=False)
        x = np.concatenate([t[0] for t in truth[split]])
        y = sum((t[1] for t in truth[split]), [])
        assert d.images.shape == (len(y), 3, 32, 32)
        # row layout: 1024 red, then green, then blue values, each row-major 32x32
        n, c, h, w = 1, 2, 5, 7
        assert d.images[n, c, h, w].item() == pytest.approx(x[n, c * 1024 + h * 32 + w] / 255)
        assert torch.equal(d.images, torch.from_numpy(x).float().view(-1, 3, 32, 32) / 255)
        assert d.labels.tolist() == y
        assert len(d.classes) == (10 if name == "cifar10" else 100) and d.classes[3] == "c3"


def test_cifar_truncated_archive_and_bad_checksum(tmp_path):
    write_cifar(tmp_path, cifar.CIFAR10, np.random.default_rng(6), archive=True)
    path = tmp_path / cifar.CIFAR10.archive.name
    with pytest.raises(DataError, match="checksum mismatch.*cifar-10-python.tar.gz"):
        data.load_dataset("cifar10", root=tmp_path, split="test")  # not the official md5
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="cifar-10-python.tar.gz"):
        data.load_dataset("cifar10", root=tmp_path, split="test", verify=False)


def test_cifar_pickle_cannot_run_code(tmp_path):
    write_cifar(tmp_path, cifar.CIFAR10, np.random.default_rng(7), archive=False)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / cifar.CIFAR10.folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DataError, match="not allowed"):
        data.load_dataset("cifar10", root=tmp_path, split="test", verify=False)


# -- digits -----------------------------------------------------------------------------

def test_digits_split_and_scale():
    from sklearn.datasets import load_digits

    ref = load_digits()
    tr = data.load_dataset("digits", split="train")
    te = data.load_dataset("digits", split="test")
    assert (len(tr), len(te)) == (1437, 360) and tr.images.shape[1:] == (1, 8, 8)
    both = torch.cat([tr.images, te.images]).squeeze(1)
    assert torch.allclose(both, torch.as_tensor(ref.images, dtype=torch.float32) / 16)
    assert torch.cat([tr.labels, te.labels]).tolist() == ref.target.tolist()
    assert float(tr.images.max()) == 1.0 and float(tr.images.min()) == 0.0


# -- imagefolder ------------------------------------------------------------------------

def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def write_imagefolder(target: Path, rng, *, zip_it: bool, grey=False, top=""):
    truth = {"train": [], "test": []}
    members = {}
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("dog", "cat"):  # not sorted: labels must follow sorted names
            for i in range(n):
                shape = (6, 6) if grey else (6, 6, 3)
                arr = rng.integers(0, 256, size=shape, dtype=np.uint8)
                members[f"{top}{split}/{cls}/{i}.png"] = _png(arr)
                truth[split].append((cls, arr))
    if zip_it:
        with zipfile.ZipFile(target, "w") as zf:
            for name, blob in members.items():
                zf.writestr(name, blob)
    else:
        for name, blob in members.items():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(blob)
    return truth


def _check_imagefolder(d: data.ImageData, truth, split, grey=False):
    assert d.classes == ["cat", "dog"]
    expected = sorted(truth[split], key=lambda t: t[0])  # listing order: class, then file
    assert d.labels.tolist() == [0 if c == "cat" else 1 for c, _ in expected]
    for img, (_, arr) in zip(d.images, expected, strict=True):
        want = torch.from_numpy(arr).float() / 255
        want = want.unsqueeze(0) if grey else want.permute(2, 0, 1)
        assert torch.equal(img, want)


def test_imagefolder_zip_decodes_exactly_and_caches(tmp_path, monkeypatch):
    src = tmp_path / "mine.zip"
    truth = write_imagefolder(src, np.random.default_rng(8), zip_it=True, top="mine/")
    d = data.load_dataset("imagefolder", root=src, split="train")
    _check_imagefolder(d, truth, "train")
    inf = data.info("imagefolder", root=src)
    assert (inf.in_channels, inf.image_size, inf.num_classes, inf.n_train) == (3, 6, 2, 6)
    assert list((tmp_path / "cache" / "imagefolder").glob("mine-*-train.pt"))

    def no_decode(*a, **k):
        raise AssertionError("decoded again instead of using the cache")

    monkeypatch.setattr(imagefolder, "_decode_split", no_decode)
    again = data.load_dataset("imagefolder", root=src, split="train")
    assert torch.equal(again.images, d.images)


def test_imagefolder_grey_folder(tmp_path):
    truth = write_imagefolder(tmp_path, np.random.default_rng(9), zip_it=False, grey=True)
    d = data.load_dataset("imagefolder", root=tmp_path, split="test")
    assert d.images.shape == (4, 1, 6, 6)
    _check_imagefolder(d, truth, "test", grey=True)


def test_imagefolder_rejects_mixed_sizes_and_missing_source(tmp_path):
    write_imagefolder(tmp_path, np.random.default_rng(10), zip_it=False)
    (tmp_path / "train" / "dog" / "9.png").write_bytes(_png(np.zeros((7, 6, 3), np.uint8)))
    with pytest.raises(DataError, match="9.png"):
        data.load_dataset("imagefolder", root=tmp_path, split="train")
    with pytest.raises(DataError, match="does not exist"):
        data.load_dataset("imagefolder", root=tmp_path / "nope.zip")


# -- registry ---------------------------------------------------------------------------

def test_bad_names_have_the_standard_message():
    with pytest.raises(ParameterError, match=r"The 'name' parameter of load_dataset must be one "
                                             r"of .*Got 'imagenet' instead\."):
        data.load_dataset("imagenet")
    with pytest.raises(ParameterError, match="'split'"):
        data.load_dataset("digits", split="val")


def test_info_matches_the_loaded_shapes():
    d = data.load_dataset("digits", split="test")
    inf = data.info("digits")
    assert d.images.shape[1:] == (inf.in_channels, inf.image_size, inf.image_size)
    assert inf.n_test == len(d) and int(d.labels.max()) + 1 == inf.num_classes


# -- the real files in ../shared/data (skipped when absent) -----------------------------

def test_real_mnist_with_official_checksums(shared_data):
    d = data.load_dataset("mnist", root=shared_data, split="test")  # checks the content md5s
    assert d.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(d.labels).tolist()[:3] == [980, 1135, 1032]  # MNIST's test counts
    assert 0.12 < float(d.images.mean()) < 0.14  # MNIST's mean pixel, about 0.1325 on test


def test_real_cifar10_jpeg_zip_listing_and_a_few_images(shared_data):
    src = shared_data / "cifar10-jpeg.zip"
    if not src.is_file():
        pytest.skip("cifar10-jpeg.zip absent")
    listing = imagefolder.list_images(src)
    assert listing.shape == (3, 32, 32) and len(listing.classes) == 10
    assert (len(listing.entries["train"]), len(listing.entries["test"])) == (50000, 10000)
    assert listing.classes[0] == "airplane" and listing.classes[-1] == "truck"
    with zipfile.ZipFile(src) as zf:
        imgs = [imagefolder._decode(zf.read(m), m, False) for m, _ in listing.entries["test"][:5]]
    assert all(a.shape == (3, 32, 32) and a.dtype == np.uint8 for a in imgs)
