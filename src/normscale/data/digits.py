"""scikit-learn's bundled 8x8 digits: a real data set that needs no download.

1,797 grey images of hand-written digits, pixels 0..16 (UCI optdigits test
part). normscale splits them in a fixed way: the first 1,437 images (80%) are
the training set and the last 360 the test set (the split of
``train_test_split(test_size=0.2, shuffle=False)``); the images are ordered by
writer, so the two sets share few writers.
"""

from __future__ import annotations

import torch

from normscale.data.base import ImageData

N_TRAIN = 1437  # 80% of 1797


def load_digits(*, root=None, download: bool = False, split: str, check: bool = True) -> ImageData:
    """Load a split of the 8x8 digits as (N, 1, 8, 8) float32 images in [0, 1]."""
    from sklearn.datasets import load_digits as _sk_load  # import here: sklearn is slow to import

    bunch = _sk_load()
    x = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (1797, 1, 8, 8)
    y = torch.as_tensor(bunch.target, dtype=torch.int64)  # (1797,)
    rows = slice(0, N_TRAIN) if split == "train" else slice(N_TRAIN, None)
    return ImageData(images=x[rows].contiguous(), labels=y[rows].contiguous(),
                     classes=[str(d) for d in range(10)], name="digits", split=split)
