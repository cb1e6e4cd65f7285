"""No target test image in a source's training data: the check ``tbench run`` makes per pair.

Every loaded example knows its base image: ``(images_from, split, base_index)``, where
``images_from`` names the dataset whose images it was made from (``uci_digits`` for
``uci_digits_m`` and for ``uci_digits@rotate=45``; a user dataset's content-fingerprinted path)
and ``base_index`` its position in that dataset's split (kept through class subsets). Derived
and blended domains keep their base's ids, so a pair leaks when the target's *test* ids meet the
source's *train* ids. Verbatim copies across datasets are caught too: the SHA-256 of every raw
image (as loaded, before resizing to the suite's input) is compared as well.

The grid's own rule (``benchmark.grid``) is the other half: a source built from the target's
*train* images would reveal target labels beyond the budget, so such cells are skipped.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

import numpy as np

from benchmark.errors import UserError
from benchmark.pretrained.sources import is_pretrained


def base_ids(name: str, split: str, data_dir: str | os.PathLike | None = None) -> set[tuple[str, str, int]]:
    """``{(images_from, split, base_index)}`` of every example of ``name``'s ``split``."""
    from benchmark import data

    meta = data.info(name, data_dir)
    domain = data.load(name, split=split, data_dir=data_dir)
    family = meta.images_from or meta.name
    index = domain.metadata.get("base_index", np.arange(len(domain.labels)))
    return {(family, split, int(i)) for i in index}


def image_hashes(name: str, split: str, data_dir: str | os.PathLike | None = None) -> set[str]:
    """SHA-256 of every image of the split at native resolution (after the name's input ops)."""
    from benchmark import data

    images = np.asarray(data.load(name, split=split, data_dir=data_dir).images)
    return {hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest() for img in images}


def leaked_images(source: str, target: str, data_dir: str | os.PathLike | None = None, *,
                  memo: dict | None = None) -> int:
    """How many of ``target``'s test images are in ``source``'s training data (ids or bytes).

    memo: a dict shared by calls that may read the same split (``check_pairs``: each split is
    loaded and hashed once, not once per pair it is in)."""
    memo = {} if memo is None else memo

    def get(fn, name: str, split: str) -> set:
        key = (fn.__name__, name, split)
        if key not in memo:
            memo[key] = fn(name, split, data_dir)
        return memo[key]

    by_id = get(base_ids, source, "train") & get(base_ids, target, "test")
    if by_id:
        return len(by_id)
    return len(get(image_hashes, source, "train") & get(image_hashes, target, "test"))


def check_pairs(pairs: Iterable[tuple[str, str]], *, file: str,
                data_dir: str | os.PathLike | None = None) -> None:
    """Raise ``UserError`` naming the first (source, target) pair whose source trains on target
    test images. Called before any run starts, so nothing is written."""
    memo: dict = {}
    for source, target in sorted(set(pairs)):
        if is_pretrained(source):  # imagenet: a model without images here (docs/pretrained.md)
            continue
        count = leaked_images(source, target, data_dir, memo=memo)
        if count:
            raise UserError(f"the pair {source} → {target} leaks: {count} image(s) of {target}'s test split "
                            f"are in {source}'s training data, so its accuracy would not measure transfer; "
                            "remove the pair or use a source built from other images", file=file, field="sources")
