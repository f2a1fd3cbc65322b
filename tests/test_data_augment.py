"""Batch normalisation and augmentation against brute-force per-image references."""

from __future__ import annotations

import pytest
import torch

from normscale.data import augment, info, normalize
from normscale.data.augmentation import affine
from normscale.errors import ParameterError


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_normalize_per_channel():
    x = torch.rand(4, 3, 5, 5)
    inf = info("cifar10")
    y = normalize(x, inf)
    for c in range(3):
        assert torch.allclose(y[:, c], (x[:, c] - inf.mean[c]) / inf.std[c])


def test_crop_flip_is_a_crop_of_the_padded_image_or_its_mirror():
    x = torch.rand(64, 2, 8, 8)  # pad = 8 // 8 = 1
    out = augment(x, "crop_flip", generator=_gen())
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    seen_offsets, flips = set(), 0
    for i in range(len(x)):
        matches = [(dy, dx, f) for dy in range(3) for dx in range(3) for f in (False, True)
                   if torch.equal(out[i], (lambda c: c.flip(2) if f else c)(
                       padded[i, :, dy:dy + 8, dx:dx + 8]))]
        assert matches, f"image {i} is not a padded crop"
        seen_offsets.add(matches[0][:2])
        flips += matches[0][2]
    assert len(seen_offsets) == 9 and 16 < flips < 48  # all offsets drawn; about half flipped


def test_affine_integer_shift_and_quarter_turn_are_exact():
    x = torch.rand(2, 1, 6, 6)
    shifted = affine(x, angle_deg=torch.zeros(2), shift=torch.tensor([[2.0, 0.0], [0.0, -1.0]]))
    want0 = torch.zeros_like(x[0])
    want0[:, :, 2:] = x[0, :, :, :-2]  # 2 px to the right, black fill
    want1 = torch.zeros_like(x[1])
    want1[:, :-1, :] = x[1, :, 1:, :]  # 1 px up
    assert torch.equal(shifted[0], want0) and torch.equal(shifted[1], want1)
    turned = affine(x, angle_deg=torch.full((2,), 90.0), shift=torch.zeros(2, 2))
    # positive angles turn counter-clockwise on screen, as in torchvision
    assert torch.equal(turned, torch.rot90(x, k=1, dims=(2, 3)))


def test_affine_augmentation_is_small_and_seeded():
    x = torch.rand(32, 1, 28, 28)
    a = augment(x, "affine", generator=_gen(5))
    assert torch.equal(a, augment(x, "affine", generator=_gen(5)))
    assert not torch.equal(a, augment(x, "affine", generator=_gen(6)))
    # at most 10 degrees and 3 px: most of the mass stays, and images do change
    kept = (a * x).sum((1, 2, 3)) / (x * x).sum((1, 2, 3))
    assert float(kept.min()) > 0.5 and not torch.equal(a, x)
    assert a.shape == x.shape and a.dtype == x.dtype


def test_none_and_bad_kind():
    x = torch.rand(3, 1, 4, 4)
    assert augment(x, "none", generator=_gen()) is x
    with pytest.raises(ParameterError, match="The 'kind' parameter of augment"):
        augment(x, "cutout", generator=_gen())
