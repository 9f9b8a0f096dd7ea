"""Keyword options of the library API are parsed as the CLI parses them."""

from __future__ import annotations

import pytest

from edgeport.api import _calibration_values
from edgeport.errors import UsageError


def test_mean_and_std_from_strings_and_sequences():
    got = _calibration_values({"mean": "0.485, 0.456,0.406", "std": [0.229, 0.224, 0.225], "resize": "32x48"})
    assert got["mean"] == (0.485, 0.456, 0.406)
    assert got["std"] == (0.229, 0.224, 0.225)
    assert got["resize"] == (32, 48)
    assert _calibration_values({"mean": "", "std": None}) == {"mean": None, "std": None}


def test_bad_mean_is_a_usage_error_naming_the_option():
    with pytest.raises(UsageError, match=r"--std '0\.2,x' is not a list of numbers"):
        _calibration_values({"std": "0.2,x"})
