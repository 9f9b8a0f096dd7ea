"""Reference sample -> an artifact's native feed: the one conversion every runtime, localize and converter check uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeport.errors import UsageError
from edgeport.runtimes.base import native_feed, native_tensor
from edgeport.runtimes.tflite import TFLiteSession
from edgeport.spec import IOSpec, TensorSpec

NHWC = TensorSpec("serving_image", (1, 5, 6, 3), "float32", layout="NHWC", perm=(0, 2, 3, 1), ref_name="image")
TOKENS = TensorSpec("ids", (1, 7), "int32", ref_name="tokens")


def _sample(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"image": rng.standard_normal((1, 3, 5, 6)), "tokens": rng.integers(0, 50, (1, 7), dtype=np.int64)}


def test_native_feed_renames_transposes_and_casts():
    sample = _sample()
    got = native_feed(sample, [NHWC, TOKENS], "model.tflite")
    assert sorted(got) == ["ids", "serving_image"]
    img = got["serving_image"]
    assert img.shape == (1, 5, 6, 3) and img.dtype == np.float32 and img.flags.c_contiguous
    # element (n, c, h, w) of the reference sits at (n, h, w, c) of the native tensor
    assert img[0, 4, 2, 1] == np.float32(sample["image"][0, 1, 4, 2])
    np.testing.assert_array_equal(img, sample["image"].transpose(0, 2, 3, 1).astype(np.float32))
    assert got["ids"].dtype == np.int32
    np.testing.assert_array_equal(got["ids"], sample["tokens"])


def test_bfloat16_inputs_travel_as_float32():
    spec = TensorSpec("x", (2, 3), "bfloat16")
    out = native_tensor(np.arange(6, dtype=np.float64).reshape(2, 3), spec)
    assert out.dtype == np.float32
    assert out[1, 2] == 5.0


def test_missing_input_and_wrong_rank_name_the_artifact():
    with pytest.raises(UsageError, match=r"missing input 'tokens' for model\.tflite"):
        native_feed({"image": _sample()["image"]}, [NHWC, TOKENS], "model.tflite")
    bad = dict(_sample(), image=np.zeros((3, 5, 6)))
    with pytest.raises(UsageError, match=r"input 'image' has rank 3, model\.onnx expects rank 4"):
        native_feed(bad, [NHWC, TOKENS], "model.onnx")


def test_tflite_quantizes_float_feeds_of_quantized_inputs():
    """An int8 input takes round(x / scale + zero_point), clipped to int8, in the artifact's layout."""
    spec = TensorSpec("serving_image", (1, 5, 6, 3), "int8", layout="NHWC", perm=(0, 2, 3, 1), ref_name="image")
    session = TFLiteSession(Path("q.tflite"), IOSpec(inputs=[spec, TOKENS], outputs=[]))
    scale, zero = 0.02, -5
    session._in = {"serving_image": {"dtype": np.int8, "quantization": (scale, zero)}, "ids": {"dtype": np.int32}}
    sample = _sample(1)
    sample["image"][0, 0, 0, 0] = 100.0  # far above int8 range after quantization: clipped to 127
    got = session.to_native(sample)
    img = got["serving_image"]
    assert img.dtype == np.int8 and img.shape == (1, 5, 6, 3) and img.flags.c_contiguous
    assert img[0, 0, 0, 0] == 127
    x = float(sample["image"][0, 2, 3, 4])
    assert img[0, 3, 4, 2] == int(np.clip(np.round(x / scale + zero), -128, 127))
    assert int(np.abs(img.astype(np.int64)).max()) > 0 and len(np.unique(img)) > 20  # a real spread of values
    np.testing.assert_array_equal(got["ids"], sample["tokens"].astype(np.int32))
