"""Users' own images: a folder or a zip of ``train/<class>/*`` and ``test/<class>/*``.

Images are decoded once (Pillow) at load time; the decoded split is cached as
a tensor file in ``<cache>/imagefolder/``, keyed by the source's path, size
and modification time, so the second load of a 60,000-JPEG zip takes a
fraction of a second. Training never touches Pillow.

Conventions: class names are the sub-folders of ``train/`` in sorted order
(the label of a class is its index there); ``test/`` may hold only those
classes. One optional top folder is allowed (``mydata/train/cat/1.png``).
All images must have one size; grey images give 1 channel, anything else
is converted to RGB.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from normscale import safeio
from normscale.data.base import ImageData
from normscale.data.download import cache_dir
from normscale.errors import DataError, NormscaleError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif", ".tiff"}
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
#: most pixels one image may have: 4096 x 4096, far above what the models read (the data
#: sets are 8 to 224 pixels a side) and far below a decompression bomb's claim
MAX_PIXELS = 4096 * 4096
#: largest image file read (compressed): 64 MiB
MAX_IMAGE_BYTES = 64 * 2**20
#: share of the machine's memory a decoded split may take (as the perceptron lab)
MEMORY_SHARE = 0.5


def memory_budget() -> int:
    """Bytes a decoded split may take: ``MEMORY_SHARE`` of the RAM (16 GiB when unknown)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 32 * 2**30
    return int(MEMORY_SHARE * total)


@dataclass(frozen=True)
class Listing:
    """The image files of a folder or zip, by split: ``(relative name, class name)``."""

    source: Path  # the folder or zip file listed
    entries: dict[str, list[tuple[str, str]]]  # split -> [(member, class)]
    classes: list[str]  # the class names found under train/, sorted (a label indexes it)
    shape: tuple[int, int, int]  # (channels, height, width) of the first training image


def _members(source: Path) -> tuple[list[str], zipfile.ZipFile | None]:
    if source.is_dir():
        return [p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()], None
    if zipfile.is_zipfile(source):
        zf = zipfile.ZipFile(source)
        return [n for n in zf.namelist() if not n.endswith("/")], zf
    raise DataError(f"'{source}' is neither a folder nor a zip file")


def _shape_of(raw: bytes, member: str) -> tuple[int, int, int]:
    """(channels, height, width) from the image's header alone; a size past
    :data:`MAX_PIXELS` is refused before any pixel is decoded."""
    from PIL import UnidentifiedImageError

    try:
        with _open_image(raw, member) as im:
            return (1 if im.mode in _GREY_MODES else 3), im.height, im.width
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"imagefolder: cannot decode '{member}': {exc}") from None


def _read_member(source: Path, zf: zipfile.ZipFile | None, member: str) -> bytes:
    """The bytes of one image file, at most :data:`MAX_IMAGE_BYTES` (a zip member's
    declared size is checked before it is inflated: no zip bomb fills the memory)."""
    if zf is not None:
        size = zf.getinfo(member).file_size
        if size > MAX_IMAGE_BYTES:
            raise DataError(f"imagefolder: '{member}' in '{source}' inflates to {size} bytes; "
                            f"at most {MAX_IMAGE_BYTES} an image")
        with zf.open(member) as fh:
            raw = fh.read(MAX_IMAGE_BYTES + 1)
    else:
        raw = safeio.read_bytes(source / member, "imagefolder: the image",
                                max_bytes=MAX_IMAGE_BYTES)
    if len(raw) > MAX_IMAGE_BYTES:
        raise DataError(f"imagefolder: '{member}' holds more than {MAX_IMAGE_BYTES} bytes")
    return raw


def _open_image(raw: bytes, member: str):
    """``PIL.Image.open`` with the size read from the header checked first: a header that
    claims 60000 x 60000 pixels (a decompression bomb) is one line, not the memory."""
    from PIL import Image

    try:
        im = Image.open(io.BytesIO(raw))
    except Image.DecompressionBombError:
        raise DataError(f"imagefolder: '{member}' claims more than {MAX_PIXELS} pixels; "
                        "images this large are refused") from None
    if im.width * im.height > MAX_PIXELS:
        size = f"{im.width}x{im.height}"
        im.close()
        raise DataError(f"imagefolder: '{member}' is {size} pixels; at most {MAX_PIXELS} "
                        "pixels an image are read (resize the images)")
    return im


def list_images(source: str | Path | None) -> Listing:
    """Find the ``train/<class>/*`` and ``test/<class>/*`` images of a folder or zip."""
    if source is None:
        raise DataError("imagefolder needs --data-root: a folder or a zip holding "
                        "train/<class>/* and test/<class>/* images")
    src = Path(source).expanduser()
    if not src.exists():
        raise DataError(f"imagefolder: '{src}' does not exist")
    entries: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    names, zf = _members(src)
    for name in sorted(names):
        parts = name.split("/")
        if "." + parts[-1].rsplit(".", 1)[-1].lower() not in EXTENSIONS:
            continue
        # split/class/file, or top/split/class/file
        for k in (0, 1):
            if len(parts) == k + 3 and parts[k] in entries:
                entries[parts[k]].append((name, parts[k + 1]))
                break
    if not entries["train"]:
        if zf:
            zf.close()
        raise DataError(f"imagefolder: no images under train/<class>/ in '{src}'")
    first = entries["train"][0][0]
    with zf or contextlib.nullcontext():
        shape = _shape_of(_read_member(src, zf, first), first)
    classes = sorted({c for _, c in entries["train"]})
    extra = sorted({c for _, c in entries["test"]} - set(classes))
    if extra:
        raise DataError(f"imagefolder: test classes {extra} of '{src}' are not in train/")
    return Listing(source=src, entries=entries, classes=classes, shape=shape)


def _decode(raw: bytes, member: str, grey: bool) -> np.ndarray:
    from PIL import UnidentifiedImageError

    try:
        with _open_image(raw, member) as im:
            arr = np.asarray(im.convert("L" if grey else "RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"imagefolder: cannot decode '{member}': {exc}") from None
    return arr[None] if grey else arr.transpose(2, 0, 1)  # (C, H, W)


def _cache_path(source: Path, split: str) -> Path:
    st = source.stat()
    key = hashlib.sha1(f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    return cache_dir() / "imagefolder" / f"{source.stem}-{key[:16]}-{split}.pt"


def _decode_split(listing: Listing, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    channels, h, w = listing.shape
    entries = listing.entries[split]
    if not entries:
        raise DataError(f"imagefolder: no images under {split}/<class>/ in '{listing.source}'")
    need = len(entries) * channels * h * w * 5  # uint8 pixels, then their float32 copy
    if need > memory_budget():
        raise DataError(f"imagefolder: the {split} split of '{listing.source}' ({len(entries)} "
                        f"images of {channels}x{h}x{w}) would need {need / 2**30:.1f} GiB; "
                        f"this machine allows {memory_budget() / 2**30:.1f} GiB "
                        f"({MEMORY_SHARE:g} of its memory): use smaller or fewer images")
    out = np.empty((len(entries), channels, h, w), dtype=np.uint8)
    index = {c: i for i, c in enumerate(listing.classes)}
    labels = np.array([index[c] for _, c in entries], dtype=np.int64)
    zf = zipfile.ZipFile(listing.source) if not listing.source.is_dir() else None
    try:
        for i, (member, _) in enumerate(entries):
            raw = _read_member(listing.source, zf, member)
            arr = _decode(raw, member, channels == 1)
            if arr.shape != out.shape[1:]:
                raise DataError(
                    f"imagefolder: '{member}' is {arr.shape[2]}x{arr.shape[1]} but the first "
                    f"image is {w}x{h}: all images must have one size")
            out[i] = arr
    except zipfile.BadZipFile as exc:
        raise DataError(f"imagefolder: cannot read '{listing.source}': {exc}") from None
    finally:
        if zf:
            zf.close()
    return torch.from_numpy(out), torch.from_numpy(labels)


def load_imagefolder(*, root, download: bool = False, split: str, check: bool = True,
                     use_cache: bool = True) -> ImageData:
    """Load a split of a folder or zip of images (decoded once, then cached)."""
    if root is None or not Path(root).expanduser().exists():
        list_images(root)  # raises the explanatory error
    cache = _cache_path(Path(root).expanduser(), split)
    if use_cache and cache.is_file():
        try:  # the key (path, size, mtime) says the source has not changed since
            saved = torch.load(cache, weights_only=True)
            pixels, labels, classes = saved["pixels"], saved["labels"], list(saved["classes"])
        except Exception:  # a broken cache is rebuilt, never trusted
            pixels = None
        if pixels is not None:
            return ImageData(images=pixels.float().div_(255.0), labels=labels, classes=classes,
                             name="imagefolder", split=split)
    listing = list_images(root)
    pixels, labels = _decode_split(listing, split)
    if use_cache:
        saved = {"pixels": pixels, "labels": labels, "classes": listing.classes}
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            safeio.write_with(cache, lambda tmp: torch.save(saved, tmp), "the image cache")
        except (OSError, NormscaleError, RuntimeError):
            pass  # a read-only or full cache only costs speed
    x = pixels.float().div_(255.0)  # (N, C, H, W)
    return ImageData(images=x, labels=labels, classes=list(listing.classes), name="imagefolder",
                     split=split)
