"""``folder:PATH``: a user's image folder (ImageFolder layout) read into arrays, or a one-sentence error.

Layout: one sub-folder per class, images anywhere below it (any format Pillow reads; hidden
files and files with other extensions are ignored)::

    PATH/cat/0001.jpg  PATH/dog/a.png ...          -> seeded, stratified 75/25 train/test split
    PATH/train/cat/... PATH/test/cat/...           -> the given split (val/ kept as "validation")
    PATH/train/cat/... PATH/val/cat/...            -> val/ is the test split (ImageNet layout)

Class names are the sub-folder names, sorted (label i = i-th name). Images are decoded with
Pillow (EXIF orientation applied), converted to RGB if any image has colour (grey otherwise)
and, when their sizes differ, resized to one stored size: the median height and width, scaled
down to fit 224×224. The suite's input spec then resizes them like any dataset.

Every check runs before anything is written: a missing folder, an image Pillow cannot decode
(named), an empty class folder, fewer than two classes, an image outside a class folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from benchmark.errors import UserError

SPLIT_DIRS = ("train", "val", "test")
TEST_FRACTION = 0.25
SPLIT_SEED = 0
MAX_SIDE = 224
_EXIF_ORIENTATION = 0x0112
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def image_extensions() -> frozenset[str]:
    """Lower-case file suffixes Pillow can open (``.png``, ``.jpg``, ``.webp``, ...)."""
    Image.init()
    return frozenset(ext.lower() for ext in Image.registered_extensions())


def _visible(entries: list[os.DirEntry]) -> list[os.DirEntry]:
    return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)


def image_files(folder: Path, extensions: frozenset[str]) -> list[Path]:
    """Image files under ``folder`` (recursively, hidden ones left out), sorted by path."""
    found = []
    for here, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(here) / f for f in files if not f.startswith(".") and Path(f).suffix.lower() in extensions)
    return sorted(found)


def _class_tree(root: Path, extensions: frozenset[str]) -> dict[str, list[Path]]:
    """``{class name: image files}`` of one ImageFolder tree; raises for an empty class or stray images."""
    with os.scandir(root) as it:
        entries = _visible(list(it))
    stray = [e.name for e in entries if e.is_file() and Path(e.name).suffix.lower() in extensions]
    if stray:
        raise UserError(f"{root / stray[0]} is not inside a class folder; put each class's images in their "
                        f"own sub-folder ({root}/CLASS/{stray[0]})")
    classes = {}
    for entry in entries:
        if entry.is_dir():
            files = image_files(Path(entry.path), extensions)
            if not files:
                raise UserError(f"class folder {entry.path} is empty: it holds no image file Pillow reads "
                                "(.png, .jpg, .bmp, .gif, .tif, .webp, ...); add images or remove the folder")
            classes[entry.name] = files
    if not classes:
        raise UserError(f"{root} has no class sub-folders; put the images of each class in their own "
                        f"sub-folder ({root}/CLASS/IMAGE.png)")
    return classes


def list_files(path: Path) -> dict[str, dict[str, list[Path]]]:
    """``{split: {class: files}}`` for the folder at ``path``; ``"all"`` when it has no split sub-trees."""
    if not path.exists():
        raise UserError(f"dataset folder {path} does not exist (relative paths are read from the current "
                        f"directory, {Path.cwd()})")
    if not path.is_dir():
        raise UserError(f"{path} is not a folder; 'folder:' needs a folder with one sub-folder per class "
                        "('npz:' reads a .npz file)")
    extensions = image_extensions()
    with os.scandir(path) as it:
        subdirs = {e.name for e in _visible(list(it)) if e.is_dir()}
    splits_given = sorted(subdirs & set(SPLIT_DIRS))
    if splits_given and not subdirs <= set(SPLIT_DIRS):
        other = sorted(subdirs - set(SPLIT_DIRS))[0]
        raise UserError(f"{path} has the split folder {splits_given[0]}/ beside {other}/; put every class folder "
                        "inside train/ and test/ (or val/), or use no split folders at all")
    if subdirs and subdirs <= set(SPLIT_DIRS):
        if "train" not in subdirs:
            raise UserError(f"{path} has {', '.join(sorted(subdirs))}/ but no train/; add {path}/train/CLASS/... "
                            "or put the class folders directly in it")
        trees = {split: _class_tree(path / split, extensions) for split in SPLIT_DIRS if split in subdirs}
        if "test" not in trees:
            trees["test"] = trees.pop("val")  # ImageNet layout: val is the held-out split
        elif "val" in trees:
            trees["validation"] = trees.pop("val")
        if "test" not in trees:
            raise UserError(f"{path} has train/ but no test/ or val/; add one, or put the class folders "
                            "directly in it for a seeded 75/25 split")
        classes = trees["train"]
        for split, tree in trees.items():
            unknown = sorted(set(tree) - set(classes))
            if unknown:
                raise UserError(f"{path}/{split} has class folder {unknown[0]!r} that {path}/train lacks; "
                                "every class needs training images")
    else:
        trees = {"all": _class_tree(path, extensions)}
        classes = trees["all"]
    if len(classes) < 2:
        raise UserError(f"{path} has a single class folder ({next(iter(classes))}); a classification task "
                        "needs at least two classes")
    return trees


def stratified_split(labels: np.ndarray, seed: int = SPLIT_SEED, test_fraction: float = TEST_FRACTION
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)``: per class, a seeded ``test_fraction`` (at least one when the
    class has two or more examples, never all of them) goes to test."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_test = min(max(round(len(members) * test_fraction), 1), len(members) - 1)
        test.extend(members[:n_test])
        train.extend(members[n_test:])
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(test, dtype=np.int64))


def _unreadable(file: Path, err: Exception) -> UserError:
    return UserError(f"image {file} cannot be read ({type(err).__name__}: {err}); replace or delete it")


def _probe(file: Path) -> tuple[int, int, str]:
    """``(height, width, mode)`` from the header, after EXIF rotation; nothing decoded yet."""
    try:
        with Image.open(file) as image:
            height, width = image.height, image.width
            if image.getexif().get(_EXIF_ORIENTATION) in (5, 6, 7, 8):  # rotated by 90 degrees
                height, width = width, height
            return height, width, image.mode
    except Exception as err:  # Pillow raises many types for bad files; every one is the user's file
        raise _unreadable(file, err) from None


def _decode(file: Path, height: int, width: int, channels: int) -> np.ndarray:
    try:
        with Image.open(file) as image:
            side = max(height, width)  # either orientation: EXIF may still rotate it
            image.draft("RGB" if channels == 3 else "L", (side, side))  # JPEG: decode at reduced size
            image = _to_mode(ImageOps.exif_transpose(image), channels)
            if (image.height, image.width) != (height, width):
                image = image.resize((width, height), Image.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
            return array if channels == 3 else array[..., None]
    except Exception as err:
        raise _unreadable(file, err) from None


def _to_mode(image: Image.Image, channels: int) -> Image.Image:
    """``RGB`` or ``L``; 16-bit grey is scaled to 8 bits, not clipped."""
    if image.mode.startswith("I"):
        grey = np.clip(np.asarray(image, dtype=np.float64) / 257.0, 0, 255)
        image = Image.fromarray(np.rint(grey).astype(np.uint8), mode="L")
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8), mode="L")
    return image.convert("RGB" if channels == 3 else "L")


def stored_size(sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """``(height, width)`` every image is stored at: the one size they share, else the median,
    scaled down to fit ``MAX_SIDE``."""
    if len(set(sizes)) == 1 and max(sizes[0]) <= MAX_SIDE:
        return sizes[0]
    height, width = (float(np.median([s[i] for s in sizes])) for i in (0, 1))
    scale = min(1.0, MAX_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def read_folder(path: Path) -> tuple[dict[str, dict[str, np.ndarray]], tuple[str, ...]]:
    """``({split: {"image": uint8[N,H,W,C], "label": int64[N]}}, class_names)``; ``UserError`` on bad input."""
    trees = list_files(path)
    class_names = tuple(trees["all" if "all" in trees else "train"])
    files = [(split, f, class_names.index(c)) for split, tree in trees.items() for c, fs in tree.items() for f in fs]
    probes = [_probe(f) for _split, f, _label in files]
    channels = 1 if all(mode in _GREY_MODES for _h, _w, mode in probes) else 3
    height, width = stored_size([(h, w) for h, w, _mode in probes])
    pixels = np.empty((len(files), height, width, channels), dtype=np.uint8)
    for i, (_split, file, _label) in enumerate(files):
        pixels[i] = _decode(file, height, width, channels)
    labels = np.asarray([label for _s, _f, label in files], dtype=np.int64)
    split_of = np.asarray([s for s, _f, _l in files])
    if "all" in trees:
        train, test = stratified_split(labels)
        if not len(test):
            raise UserError(f"{path} has one image per class, too few to split into train and test; "
                            "add images, or give train/ and test/ sub-folders")
        return {"train": {"image": pixels[train], "label": labels[train]},
                "test": {"image": pixels[test], "label": labels[test]}}, class_names
    return {s: {"image": pixels[split_of == s], "label": labels[split_of == s]} for s in trees}, class_names
