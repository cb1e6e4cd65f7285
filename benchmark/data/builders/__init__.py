"""Built-in datasets, one TFDS builder per file. Adding one = a file + a line in BUILTINS."""

from __future__ import annotations

from benchmark.data.builders._base import BuiltinBuilder
from benchmark.data.builders.fashion_mnist import FashionMnistDebian
from benchmark.data.builders.font_digits import FontDigits
from benchmark.data.builders.font_digits_m import FontDigitsM
from benchmark.data.builders.uci_digits import UciDigits
from benchmark.data.builders.uci_digits_m import UciDigitsM

# transferbench name -> builder class (the TFDS folder name is the class's ``name``).
BUILTINS: dict[str, type[BuiltinBuilder]] = {
    "uci_digits": UciDigits,
    "uci_digits_m": UciDigitsM,
    "font_digits": FontDigits,
    "font_digits_m": FontDigitsM,
    "fashion_mnist": FashionMnistDebian,
}

__all__ = ["BUILTINS", "BuiltinBuilder"]
