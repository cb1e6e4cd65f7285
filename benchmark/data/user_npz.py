"""``npz:PATH``: a user's NumPy ``.npz`` file read into arrays, or a one-sentence error.

Array names (``np.savez(PATH, x=..., y=...)``):

* ``x`` and ``y``: every example; split 75/25 into train and test, seeded and stratified;
* or ``x_train``, ``y_train``, ``x_test``, ``y_test`` (Keras' ``load_data()`` names), and
  optionally ``x_val``, ``y_val`` (kept as split ``validation``);
* optionally ``class_names``: one string per class.

``x``: ``N×H×W`` or ``N×H×W×C`` (C = 1 or 3), uint8 (0..255), another integer type with values
in 0..255, or float: in [0, 1] (scaled by 255) or in [0, 255]. ``y``: ``N`` integer class
labels 0..K-1 (floats holding whole numbers are accepted), K = ``len(class_names)`` or
``max(y) + 1``; every class needs at least one training example. Every check runs before
anything is written.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from benchmark.data.user_folder import stratified_split
from benchmark.errors import UserError

SPLIT_KEYS = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test"), "validation": ("x_val", "y_val")}
KNOWN = {"x", "y", "class_names", *(k for pair in SPLIT_KEYS.values() for k in pair)}
LAYOUT = "x and y, or x_train, y_train, x_test, y_test (optional x_val, y_val, class_names)"


def _arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise UserError(f"npz file {path} does not exist (relative paths are read from the current "
                        f"directory, {Path.cwd()})")
    if not path.is_file():
        raise UserError(f"{path} is not a file; 'npz:' needs a .npz file ('folder:' reads an image folder)")
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path} is not an .npz file (not a zip archive); write it with "
                        "numpy.savez(PATH, x=images, y=labels)")
    try:
        with np.load(path, allow_pickle=False) as found:
            return {key: found[key] for key in found.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise UserError(f"{path} is not a readable .npz file ({type(err).__name__}: {err}); write it "
                        "with numpy.savez(PATH, x=images, y=labels)") from None


def _pairs(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """``{split or "all": (x, y, "x_NAME")}`` from the array names."""
    unknown = sorted(set(arrays) - KNOWN)
    if unknown:
        raise UserError(f"{path} has array {unknown[0]!r}, which transferbench does not know; name the arrays {LAYOUT}")
    split_given = {k for pair in SPLIT_KEYS.values() for k in pair} & set(arrays)
    if split_given and ({"x", "y"} & set(arrays)):
        raise UserError(f"{path} has both x/y and {sorted(split_given)[0]}; give either x and y (split here) "
                        "or the split arrays, not both")
    wanted = {"all": ("x", "y")} if not split_given else {
        s: keys for s, keys in SPLIT_KEYS.items() if s != "validation" or set(keys) & set(arrays)}
    missing = [k for keys in wanted.values() for k in keys if k not in arrays]
    if missing:
        raise UserError(f"{path} has no array {missing[0]!r}; name the arrays {LAYOUT}")
    return {split: (arrays[xk], arrays[yk], xk) for split, (xk, yk) in wanted.items()}


def _labels(path: Path, y: np.ndarray, name: str, n: int) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise UserError(f"{path}: {name} has shape {y.shape}; labels are one integer per example, shape (N,)")
    if y.shape[0] != n:
        x_name = "x" + name[1:]
        raise UserError(f"{path}: {x_name} has {n} images but {name} has {y.shape[0]} labels; they must match")
    if y.dtype.kind not in "iuf" or (y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y)))):
        bad = np.flatnonzero(~(np.isfinite(y) & (y == np.round(y))))[0] if y.dtype.kind == "f" else 0
        raise UserError(f"{path}: {name} holds non-integer labels ({y.dtype}, e.g. {name}[{bad}] = {y[bad]}); "
                        "labels are class indices 0..K-1")
    if n and y.min() < 0:
        bad = int(np.argmin(y))
        raise UserError(f"{path}: {name}[{bad}] = {y[bad]} is negative; labels are class indices 0..K-1")
    return y.astype(np.int64)


def _images(path: Path, x: np.ndarray, name: str, scale: float) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise UserError(f"{path}: {name} has shape {x.shape}; images are N×H×W (grey) or N×H×W×C with C 1 or 3")
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind not in "iuf":
        raise UserError(f"{path}: {name} has dtype {x.dtype}; images are uint8 (0..255) or float (0..1 or 0..255)")
    if x.size and not (np.all(np.isfinite(x)) and x.min() >= 0 and x.max() <= 255):
        raise UserError(f"{path}: {name} has values outside 0..255 (min {x.min()}, max {x.max()}); "
                        "give uint8 pixels, or floats in [0, 1] or [0, 255]")
    return np.clip(np.rint(x.astype(np.float64) * scale), 0, 255).astype(np.uint8)


def read_npz(path: Path) -> tuple[dict[str, dict[str, np.ndarray]], tuple[str, ...]]:
    """``({split: {"image": uint8[N,H,W,C], "label": int64[N]}}, class_names)``; ``UserError`` on bad input."""
    arrays = _arrays(path)
    pairs = _pairs(path, arrays)
    floats = [x for x, _y, _n in pairs.values() if x.dtype.kind == "f" and x.size]
    # Floats all within [0, 1] are unit-scale pixels; otherwise they are 0..255.
    scale = 255.0 if floats and all(np.nanmax(x) <= 1.0 for x in floats) else 1.0
    splits = {}
    for split, (x, y, x_name) in pairs.items():
        images = _images(path, x, x_name, scale)
        splits[split] = {"image": images, "label": _labels(path, y, "y" + x_name[1:], images.shape[0])}
    shapes = {s: a["image"].shape[1:] for s, a in splits.items()}
    if len(set(shapes.values())) > 1:
        raise UserError(f"{path}: the splits' images differ in shape ({', '.join(f'{s} {v}' for s, v in shapes.items())}); "
                        "give every split the same H×W×C")
    train = splits["all" if "all" in splits else "train"]
    if not len(train["label"]):
        raise UserError(f"{path}: {'x' if 'all' in splits else 'x_train'} holds no images")
    highest = max(int(a["label"].max()) for a in splits.values() if len(a["label"]))
    if "class_names" in arrays:
        class_names = tuple(str(c) for c in np.asarray(arrays["class_names"]).ravel())
        if highest >= len(class_names):
            split = next(s for s, a in splits.items() if len(a["label"]) and a["label"].max() == highest)
            y_name = "y" if split == "all" else "y_" + {"validation": "val"}.get(split, split)
            raise UserError(f"{path}: {y_name} has label {highest}, out of range for the {len(class_names)} "
                            f"class_names (labels 0..{len(class_names) - 1})")
    else:
        class_names = tuple(str(c) for c in range(highest + 1))
    counts = np.bincount(train["label"], minlength=len(class_names))
    if len(class_names) < 2:
        raise UserError(f"{path} has a single class (every label is 0); a classification task needs at least two")
    if counts.min() == 0:
        missing = int(np.argmin(counts))
        named = f" ({class_names[missing]!r})" if "class_names" in arrays else ""
        raise UserError(f"{path}: class {missing}{named} has no training example; labels must be 0..K-1 with every "
                        f"class in training (labels found: {', '.join(str(c) for c in np.flatnonzero(counts))})")
    if "all" in splits:
        keep_train, keep_test = stratified_split(train["label"])
        if not len(keep_test):
            raise UserError(f"{path} has one example per class, too few to split into train and test")
        splits = {"train": {k: v[keep_train] for k, v in train.items()},
                  "test": {k: v[keep_test] for k, v in train.items()}}
    return splits, class_names
