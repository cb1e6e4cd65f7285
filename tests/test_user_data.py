"""The user's own data (``folder:PATH``, ``npz:PATH``): read through real TFDS into a temp data dir,
re-prepared when a byte changes, and refused with one sentence (exit 2, nothing written) when bad.

Every image is a constant: its value says which class and example it is, so a test can check
that labels still belong to their images after TFDS shuffles the records on write.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from benchmark.cellspec import InputSpec
from benchmark.cli import main
from benchmark.data import data_version, info, load
from benchmark.errors import UserError


def value(label: int, index: int) -> int:
    return 60 * label + 3 * index


def make_folder(root: Path, classes=("ant", "bee", "cat"), per_class=8, fmt="png", sizes=((10, 12),)) -> Path:
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            height, width = sizes[i % len(sizes)]
            Image.fromarray(np.full((height, width), value(c, i), np.uint8)).save(root / name / f"{i:02d}.{fmt}")
    return root


def user_copies(data_dir: Path) -> list[str]:
    return sorted(p.name for kind in ("user_folder", "user_npz") for p in (data_dir / kind).glob("*"))


@pytest.fixture
def data(tmp_path) -> Path:
    return tmp_path / "data"


def test_folder_loads_with_a_stratified_split_and_labels_that_match_images(tmp_path, data):
    make_folder(tmp_path / "bugs", sizes=((10, 12), (20, 24), (10, 12)))
    meta = info(f"folder:{tmp_path / 'bugs'}", data)
    assert meta.kind == "user" and meta.class_names == ("ant", "bee", "cat")
    assert meta.splits == {"train": 18, "test": 6}  # 2 of 8 per class held out
    assert meta.native_shape == (10, 12, 1)  # the median size; grey images stay one channel
    train, test = (load(f"folder:{tmp_path / 'bugs'}", s, data_dir=data) for s in ("train", "test"))
    assert np.array_equal(np.bincount(test.labels), [2, 2, 2])
    seen = {(int(label), int(img[0, 0, 0])) for d in (train, test) for img, label in zip(d.images, d.labels, strict=True)}
    assert seen == {(c, value(c, i)) for c in range(3) for i in range(8)}  # every image once, in the right class
    mapped = load(f"folder:{tmp_path / 'bugs'}@invert", "test", spec=InputSpec(16, 16, 3), data_dir=data)
    assert mapped.images.shape == (6, 16, 16, 3)
    assert np.array_equal(mapped.images[:, 8, 8, 0], 255 - test.images[:, 5, 6, 0])


def test_relative_paths_read_from_the_current_directory(tmp_path, data, monkeypatch):
    make_folder(tmp_path / "bugs", per_class=4)
    monkeypatch.chdir(tmp_path)
    assert load("folder:bugs", "train", data_dir=data).num_classes == 3
    assert info("folder:bugs", data).images_from == f"folder:{tmp_path / 'bugs'}"


def test_train_and_val_subtrees_make_val_the_test_split(tmp_path, data):
    make_folder(tmp_path / "split" / "train", per_class=5, fmt="jpg")
    make_folder(tmp_path / "split" / "val", per_class=2, fmt="bmp")
    meta = info(f"folder:{tmp_path / 'split'}", data)
    assert meta.splits == {"train": 15, "test": 6}
    test = load(f"folder:{tmp_path / 'split'}", "test", data_dir=data)
    assert sorted(int(img[0, 0, 0]) for img in test.images) == sorted(value(c, i) for c in range(3) for i in range(2))


def test_an_edited_image_of_the_same_size_and_mtime_is_prepared_again(tmp_path, data):
    folder = make_folder(tmp_path / "bugs", fmt="bmp", per_class=4)  # BMP: same size for any pixel value
    name = f"folder:{folder}"
    before = load(name, "train", data_dir=data)
    old = data_version(name, data)
    edited = folder / "ant" / "00.bmp"
    stat = edited.stat()
    Image.fromarray(np.full((10, 12), 250, np.uint8)).save(edited)
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert edited.stat().st_size == stat.st_size and edited.stat().st_mtime_ns == stat.st_mtime_ns
    after = load(name, "train", data_dir=data)
    assert data_version(name, data) != old
    values = lambda d: sorted(int(i[0, 0, 0]) for i in d.images)  # noqa: E731
    assert 250 not in values(before) and 250 in values(after) + values(load(name, "test", data_dir=data))
    assert len(user_copies(data)) == 1  # the stale copy is gone


def test_npz_with_keras_split_names_float_pixels_and_class_names(tmp_path, data):
    rng = np.random.default_rng(0)
    y_train, y_test = np.arange(12) % 3, np.array([2, 1, 0])
    path = tmp_path / "arrays.npz"
    np.savez(path, x_train=np.full((12, 5, 6), 0.5, np.float32), y_train=y_train.astype(np.float32),
             x_test=rng.random((3, 5, 6, 3)).astype(np.float32)[..., :1], y_test=y_test,
             class_names=np.array(["low", "mid", "high"]))
    meta = info(f"npz:{path}", data)
    assert meta.class_names == ("low", "mid", "high") and meta.splits == {"train": 12, "test": 3}
    train = load(f"npz:{path}", "train", data_dir=data)
    assert np.all(train.images == 128) and np.array_equal(train.labels, y_train)
    assert np.array_equal(load(f"npz:{path}", "test", data_dir=data).labels, y_test)


def test_npz_x_and_y_are_split_here_stratified(tmp_path, data):
    path = tmp_path / "xy.npz"
    labels = np.arange(40) % 2
    np.savez(path, x=(labels * 100 + np.arange(40))[:, None, None].repeat(4, 1).repeat(4, 2).astype(np.uint8), y=labels)
    train, test = (load(f"npz:{path}", s, data_dir=data) for s in ("train", "test"))
    assert (len(train), len(test)) == (30, 10) and np.array_equal(np.bincount(test.labels), [5, 5])
    assert all(int(img[0, 0, 0]) // 100 == label for img, label in zip(train.images, train.labels, strict=True))
    assert not {int(i[0, 0, 0]) for i in train.images} & {int(i[0, 0, 0]) for i in test.images}


def _bad_inputs(root: Path) -> dict[str, tuple[str, str]]:
    """case -> (dataset name, what the message must name)."""
    make_folder(root / "corrupt")
    (root / "corrupt" / "bee" / "03.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    make_folder(root / "truncated", sizes=((64, 64),))
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)).save(root / "truncated" / "cat" / "05.png")
    whole = (root / "truncated" / "cat" / "05.png").read_bytes()
    (root / "truncated" / "cat" / "05.png").write_bytes(whole[: len(whole) // 2])
    make_folder(root / "empty_class")
    (root / "empty_class" / "dog").mkdir()
    make_folder(root / "one_class", classes=("ant",))
    make_folder(root / "mixed" / "train")
    make_folder(root / "mixed" / "extras")
    np.savez(root / "gap.npz", x=np.zeros((4, 4, 4), np.uint8), y=[0, 2, 0, 2])
    np.savez(root / "negative.npz", x=np.zeros((6, 4, 4), np.uint8), y=[0, 1, -1, 0, 1, 0])
    np.savez(root / "out_of_range.npz", x=np.zeros((4, 4, 4), np.uint8), y=[0, 1, 2, 1], class_names=["a", "b"])
    np.savez(root / "fractional.npz", x=np.zeros((4, 4, 4), np.uint8), y=[0, 1, 0.5, 1])
    np.savez(root / "lengths.npz", x_train=np.zeros((4, 4, 4), np.uint8), y_train=[0, 1, 0],
             x_test=np.zeros((2, 4, 4), np.uint8), y_test=[0, 1])
    return {
        "corrupt image": (f"folder:{root / 'corrupt'}", f"image {root / 'corrupt' / 'bee' / '03.png'} cannot be read"),
        "truncated image": (f"folder:{root / 'truncated'}", f"image {root / 'truncated' / 'cat' / '05.png'} cannot be read"),
        "empty class": (f"folder:{root / 'empty_class'}", f"class folder {root / 'empty_class' / 'dog'} is empty"),
        "single class": (f"folder:{root / 'one_class'}", f"{root / 'one_class'} has a single class folder"),
        "split beside a class": (f"folder:{root / 'mixed'}", f"{root / 'mixed'} has the split folder train/ beside extras/"),
        "label gap": (f"npz:{root / 'gap.npz'}", f"{root / 'gap.npz'}: class 1 has no training example"),
        "missing folder": (f"folder:{root / 'nowhere'}", f"dataset folder {root / 'nowhere'} does not exist"),
        "missing npz": (f"npz:{root / 'nowhere.npz'}", f"npz file {root / 'nowhere.npz'} does not exist"),
        "negative label": (f"npz:{root / 'negative.npz'}", f"{root / 'negative.npz'}: y[2] = -1 is negative"),
        "label out of range": (f"npz:{root / 'out_of_range.npz'}", f"{root / 'out_of_range.npz'}: y has label 2, out of range"),
        "non-integer label": (f"npz:{root / 'fractional.npz'}", f"{root / 'fractional.npz'}: y holds non-integer labels"),
        "x/y lengths": (f"npz:{root / 'lengths.npz'}", f"{root / 'lengths.npz'}: x_train has 4 images but y_train has 3 labels"),
    }


def _suite(path: Path, target: str) -> Path:
    path.write_text(yaml.safe_dump({
        "name": "mine", "input": {"height": 16, "width": 16, "channels": 1},
        "backbone": {"name": "lenet", "params": {"width": 4}}, "sources": [], "targets": [target],
        "strategies": ["scratch"], "labels_per_class": [1], "seeds": 1,
    }))
    return path


def test_bad_input_is_one_sentence_naming_the_path_exit_2_nothing_written(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("TBENCH_DATA_DIR", str(data))
    for case, (name, message) in _bad_inputs(tmp_path).items():
        with pytest.raises(UserError, match="^" + re.escape(message)):
            info(name)
        suite = _suite(tmp_path / "suite.yaml", name)
        assert main(["show", str(suite)]) == 2, case
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (case, err)
        assert not data.exists(), f"{case}: something was written to {data}"


def test_tbench_run_refuses_bad_data_before_opening_the_store(tmp_path):
    make_folder(tmp_path / "one_class", classes=("ant",))
    suite, store = _suite(tmp_path / "suite.yaml", "folder:one_class"), tmp_path / "runs.sqlite"
    env = {**os.environ, "TBENCH_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-m", "benchmark.cli", "run", str(suite), "--store", str(store)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"{tmp_path / 'one_class'} has a single class folder" in done.stderr
    assert not store.exists() and not (tmp_path / "data").exists()


def test_a_path_with_at_sign_is_refused_with_the_reason(tmp_path):
    with pytest.raises(UserError, match="path may not contain '@'"):
        info(f"folder:{tmp_path}/me@home/pets")
    with pytest.raises(UserError, match="has no path after 'npz:'"):
        info("npz:")


def test_tbench_datasets_lists_prepared_user_data_and_says_when_it_changed(tmp_path, capsys):
    folder = make_folder(tmp_path / "bugs", per_class=4)
    data = tmp_path / "data"
    info(f"folder:{folder}", data)
    assert main(["datasets", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "folder:" in line and "bugs" in line)
    assert "3 classes" in row and "ready" in row and "'folder:PATH'" in out
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(folder / "ant" / "new.png")
    assert main(["datasets", "--data-dir", str(data)]) == 0
    assert "changed since" in capsys.readouterr().out


def test_an_edited_source_folder_gets_a_new_source_model(tmp_path, monkeypatch):
    from benchmark.engine.pretrain import cache_key

    monkeypatch.setenv("TBENCH_DATA_DIR", str(tmp_path / "data"))
    folder = make_folder(tmp_path / "bugs", per_class=4)
    key = lambda: cache_key(f"folder:{folder}@rotate=10", InputSpec(16, 16, 1), "lenet", {"width": 4}, {}, 0)  # noqa: E731
    before = key()
    assert key() == before
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(folder / "bee" / "00.png")
    assert key() != before


def test_an_edited_folder_is_a_new_cell_not_a_finished_one(tmp_path, monkeypatch) -> None:
    """The store keys runs by cell identity: editing a user folder must change it, or `tbench run`
    would skip the edited data's runs as already finished and the report reuse old accuracies."""
    from PIL import Image

    from benchmark.config import resolve_suite
    from benchmark.data import clear_cache
    from benchmark.grid import build_grid

    root = tmp_path / "shapes"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(np.full((12, 12), 40 * i + (0 if c == "a" else 20), np.uint8)).save(root / c / f"{i}.png")
    suite = {"name": "edit", "targets": [f"folder:{root}"], "strategies": ["scratch"],
             "labels_per_class": [2], "seeds": 1, "input": {"height": 12, "width": 12, "channels": 1}}
    before = {r.run_id for r in build_grid(resolve_suite(suite)).runs}
    Image.fromarray(np.full((12, 12), 255, np.uint8)).save(root / "a" / "0.png")
    clear_cache()
    after = {r.run_id for r in build_grid(resolve_suite(suite)).runs}
    assert before and after and not before & after
