"""``tbench datasets`` and ``tbench samples`` through the real CLI entry point."""

from __future__ import annotations

import numpy as np
from PIL import Image

from benchmark.cli import main


def test_tbench_datasets_lists_builtins_and_how_to_get_catalog_ones(data_dir, capsys):
    assert main(["datasets", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    for name in ("uci_digits", "font_digits_m", "fashion_mnist", "mnist", "svhn_cropped"):
        assert name in out
    assert "1,347" in out and "tfds build" in out


def test_tbench_samples_writes_a_png_with_one_row_per_domain(data_dir, tmp_path, capsys):
    out = tmp_path / "sheet.png"
    assert main(["samples", "uci_digits", "uci_digits_m", "uci_digits@rotate=90", "-o", str(out), "--per-domain", "4"]) == 0
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape[0] > 100 and image.shape[1] > 200
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50  # real pictures, not a blank canvas
    assert "3 domains × 4 examples" in capsys.readouterr().out


def test_tbench_samples_bad_name_exits_2_with_a_suggestion(tmp_path, capsys):
    assert main(["samples", "uci_digts", "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'uci_digits'" in err
    assert not (tmp_path / "x.png").exists()
