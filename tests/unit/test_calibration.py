"""Calibration data for quantization: readers, layouts, the calibration/held-out split, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeport.errors import EdgeportError, InputError, UsageError
from edgeport.quantize import calibration as cal
from edgeport.spec import IOSpec, TensorSpec

IMAGE_IO = IOSpec(inputs=[TensorSpec("image", (1, 3, 8, 8), "float32", "NCHW", ref_name="image")],
                  outputs=[TensorSpec("logits", (1, 10), "float32", ref_name="logits")])
TWO_IO = IOSpec(inputs=[TensorSpec("image", (1, 3, 8, 8), "float32", "NCHW"), TensorSpec("features", (1, 4), "float32")],
                outputs=[TensorSpec("logits", (1, 10))])
# What onnx2tf's SavedModel takes: NHWC, with the perm that maps the reference layout to it.
NHWC_IO = IOSpec(inputs=[TensorSpec("image", (1, 8, 8, 3), "float32", "NHWC", perm=(0, 2, 3, 1), ref_name="image")],
                 outputs=[TensorSpec("logits", (1, 10), ref_name="logits")])


def _one_line(exc: EdgeportError) -> str:
    text = exc.one_line()
    assert "\n" not in text and exc.hint, text
    return text


# ------------------------------------------------------------------------------------------------ .npy / .npz


def test_npy_stack_is_split_into_samples(tmp_path):
    arr = np.random.default_rng(0).standard_normal((5, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", arr)
    ds = cal.read_npy(tmp_path / "x.npy", IMAGE_IO)
    assert len(ds.items) == 5 and ds.items[2].feed["image"].shape == (1, 3, 8, 8)
    np.testing.assert_array_equal(ds.items[2].feed["image"][0], arr[2])
    np.save(tmp_path / "y.npy", arr[:, None])  # (N, 1, 3, 8, 8) works too
    assert len(cal.read_npy(tmp_path / "y.npy", IMAGE_IO).items) == 5


def test_npy_in_nhwc_is_transposed_with_the_layout_option(tmp_path):
    nchw = np.arange(2 * 3 * 8 * 8, dtype=np.float32).reshape(2, 3, 8, 8)
    np.save(tmp_path / "x.npy", nchw.transpose(0, 2, 3, 1))
    with pytest.raises(InputError) as e:
        cal.read_npy(tmp_path / "x.npy", IMAGE_IO)
    assert "--calibration-layout" in _one_line(e.value)
    ds = cal.read_npy(tmp_path / "x.npy", IMAGE_IO, data_layout="NHWC")
    np.testing.assert_array_equal(ds.items[1].feed["image"][0], nchw[1])


def test_npz_named_stacks_labels_and_keyed_samples(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "d.npz", image=rng.standard_normal((4, 3, 8, 8)).astype(np.float32),
             features=rng.standard_normal((4, 4)).astype(np.float32), labels=np.array([3, 1, 4, 1]))
    ds = cal.read_npz(tmp_path / "d.npz", TWO_IO)
    assert [i.label for i in ds.items] == [3, 1, 4, 1] and ds.has_labels
    assert ds.items[0].feed["features"].shape == (1, 4)
    np.savez(tmp_path / "k.npz", **{"0:image": np.zeros((1, 3, 8, 8), np.float32), "1:image": np.ones((1, 3, 8, 8), np.float32)})
    assert len(cal.read_npz(tmp_path / "k.npz", IMAGE_IO).items) == 2


def test_npz_errors_are_one_line(tmp_path):
    np.savez(tmp_path / "a.npz", image=np.zeros((4, 3, 8, 8), np.float32))
    with pytest.raises(InputError) as e:
        cal.read_npz(tmp_path / "a.npz", TWO_IO)
    assert "features" in _one_line(e.value)
    np.savez(tmp_path / "b.npz", image=np.zeros((4, 3, 9, 9), np.float32))
    with pytest.raises(InputError) as e:
        cal.read_npz(tmp_path / "b.npz", IMAGE_IO)
    assert "(1, 3, 9, 9)" in _one_line(e.value)
    np.savez(tmp_path / "c.npz", image=np.zeros((4, 3, 8, 8), np.float32), features=np.zeros((3, 4), np.float32))
    with pytest.raises(InputError):
        cal.read_npz(tmp_path / "c.npz", TWO_IO)


# ------------------------------------------------------------------------------------------------ images


def test_image_folder_resize_normalise_and_layout(tmp_path):
    from PIL import Image

    (tmp_path / "sub").mkdir()
    Image.new("RGB", (20, 10), (255, 0, 0)).save(tmp_path / "a.png")
    Image.new("RGB", (8, 8), (0, 0, 255)).save(tmp_path / "sub" / "b.jpg")
    opts = cal.CalibrationOptions(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    ds = cal.read_images(tmp_path, IMAGE_IO, opts)
    assert [i.id for i in ds.items] == ["a.png", "sub/b.jpg"]
    a = ds.items[0].feed["image"]
    assert a.shape == (1, 3, 8, 8) and a.dtype == np.float32
    np.testing.assert_allclose(a[0, :, 4, 4], [1.0, -1.0, -1.0], atol=1e-6)  # red, NCHW, (x - 0.5) / 0.5
    bgr = cal.read_images(tmp_path, IMAGE_IO, cal.CalibrationOptions(bgr=True))
    np.testing.assert_allclose(bgr.items[0].feed["image"][0, :, 4, 4], [0.0, 0.0, 1.0], atol=1e-6)
    nhwc_model = IOSpec(inputs=[TensorSpec("image", (1, 8, 8, 3), "float32", "NHWC")])
    assert cal.read_images(tmp_path, nhwc_model, cal.CalibrationOptions()).items[0].feed["image"].shape == (1, 8, 8, 3)


def test_image_folder_errors(tmp_path):
    with pytest.raises(InputError) as e:
        cal.read_images(tmp_path, IMAGE_IO, cal.CalibrationOptions())
    assert "no images" in _one_line(e.value)
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    with pytest.raises(UsageError) as e:
        cal.read_images(tmp_path, IMAGE_IO, cal.CalibrationOptions(resize=(16, 16)))
    assert "--resize" in _one_line(e.value)
    with pytest.raises(UsageError):
        cal.read_images(tmp_path, IMAGE_IO, cal.CalibrationOptions(mean=(0.1, 0.2)))
    token_io = IOSpec(inputs=[TensorSpec("tokens", (1, 16), "int64")])
    with pytest.raises(UsageError):
        cal.read_images(tmp_path, token_io, cal.CalibrationOptions())
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(InputError) as e:
        cal.read_images(tmp_path, IMAGE_IO, cal.CalibrationOptions())
    assert "bad.png" in _one_line(e.value)


def test_synthetic_images_are_image_like(tmp_path):
    paths = cal.write_synthetic_images(tmp_path, 3, size=(24, 32), seed=1)
    ds = cal.read_images(tmp_path, IOSpec(inputs=[TensorSpec("image", (1, 3, 24, 32), "float32", "NCHW")]), cal.CalibrationOptions())
    assert len(paths) == len(ds.items) == 3
    a = ds.items[0].feed["image"]
    assert 0.0 <= a.min() and a.max() <= 1.0 and a.std() > 0.05
    assert not np.array_equal(a, ds.items[1].feed["image"])


# ------------------------------------------------------------------------------------------------ module:function


def test_module_function_feeds(tmp_path):
    (tmp_path / "feeds.py").write_text(
        "import numpy as np\n"
        "def dicts():\n"
        "    for k in range(6):\n"
        "        yield {'image': np.full((1, 3, 8, 8), k, np.float32), 'label': k % 2}\n"
        "def arrays():\n"
        "    return [np.zeros((1, 3, 8, 8), np.float32)] * 3\n"
        "def nothing():\n"
        "    return []\n"
        "def broken():\n"
        "    raise RuntimeError('boom')\n")
    ds = cal.read_module(f"{tmp_path / 'feeds.py'}:dicts", IMAGE_IO, limit=4)
    assert len(ds.items) == 4 and [i.label for i in ds.items] == [0, 1, 0, 1]
    assert len(cal.read_module(f"{tmp_path / 'feeds.py'}:arrays", IMAGE_IO, limit=10).items) == 3
    for fn, words in (("nothing", "no feeds"), ("broken", "boom"), ("missing", "no function")):
        with pytest.raises(InputError) as e:
            cal.read_module(f"{tmp_path / 'feeds.py'}:{fn}", IMAGE_IO, limit=10)
        assert words in _one_line(e.value)


# ------------------------------------------------------------------------------------------------ split


def _items(n: int) -> cal.Dataset:
    return cal.Dataset([cal.Item({"image": np.full((1, 3, 8, 8), k, np.float32)}, f"s{k}") for k in range(n)], "test", "npz")


def test_split_never_shares_samples():
    sp = cal.split(_items(50), cal.CalibrationOptions(samples=30, holdout=10))
    assert len(sp.calibration) == 30 and len(sp.holdout) == 10
    assert not {i.id for i in sp.calibration} & {i.id for i in sp.holdout}
    again = cal.split(_items(50), cal.CalibrationOptions(samples=30, holdout=10))
    assert [i.id for i in again.holdout] == [i.id for i in sp.holdout]  # seeded


def test_split_drops_held_out_duplicates_of_calibration_samples():
    ds = _items(10)
    ds.items += [cal.Item(dict(i.feed), i.id + "-copy") for i in ds.items]  # every sample twice
    sp = cal.split(ds, cal.CalibrationOptions(samples=10, holdout=10))
    digests = {i.digest() for i in sp.calibration}
    assert all(i.digest() not in digests for i in sp.holdout)
    assert any("identical" in n for n in sp.notes)


def test_split_with_little_data_holds_some_out_and_says_so():
    sp = cal.split(_items(20), cal.CalibrationOptions(samples=100, holdout=32))
    assert len(sp.holdout) >= 1 and len(sp.calibration) + len(sp.holdout) == 20
    assert any("only 20 samples" in n for n in sp.notes)
    with pytest.raises(InputError):
        cal.split(_items(1), cal.CalibrationOptions())


def test_separate_eval_data_is_the_holdout():
    sp = cal.split(_items(5), cal.CalibrationOptions(samples=5, holdout=3), eval_data=_items(8))
    assert len(sp.calibration) == 5  # eval samples 0-4 equal calibration samples: only 5-7 are held out
    assert sorted(i.id for i in sp.holdout) == ["s5", "s6", "s7"]
    fresh = cal.Dataset([cal.Item({"image": np.full((1, 3, 8, 8), 100 + k, np.float32)}, f"e{k}") for k in range(8)], "eval", "npz")
    sp = cal.split(_items(5), cal.CalibrationOptions(samples=5, holdout=3), eval_data=fresh)
    assert len(sp.holdout) == 3 and all(i.id.startswith("e") for i in sp.holdout)


def test_random_data_only_when_allowed():
    with pytest.raises(UsageError) as e:
        cal.prepare(IMAGE_IO, cal.CalibrationOptions(), need_calibration=True)
    assert "--random-calibration" in _one_line(e.value)
    sp = cal.prepare(IMAGE_IO, cal.CalibrationOptions(allow_random=True, samples=8, holdout=4), need_calibration=True)
    assert sp.random and len(sp.calibration) == 8 and any("RANDOM" in n for n in sp.notes)
    sp = cal.prepare(IMAGE_IO, cal.CalibrationOptions(samples=8, holdout=4), need_calibration=False)
    assert sp.random and any("random inputs" in n for n in sp.notes)


def test_load_dataset_errors(tmp_path):
    for source, cls in ((str(tmp_path / "missing"), InputError), (str(tmp_path / "x.npz"), InputError)):
        with pytest.raises(cls) as e:
            cal.load_dataset(source, IMAGE_IO, cal.CalibrationOptions(), 10)
        _one_line(e.value)
    (tmp_path / "data.txt").write_text("1 2 3")
    with pytest.raises(UsageError) as e:
        cal.load_dataset(str(tmp_path / "data.txt"), IMAGE_IO, cal.CalibrationOptions(), 10)
    _one_line(e.value)
    with pytest.raises(InputError):
        cal.load_dataset("no_such_module_xyz:feeds", IMAGE_IO, cal.CalibrationOptions(), 10)


def test_labels_csv_by_image_name(tmp_path):
    items = [cal.Item({}, "a.png"), cal.Item({}, "sub/b.png")]
    (tmp_path / "l.csv").write_text("file,label\na.png,3\nb.png,7\n")
    cal.read_labels(tmp_path / "l.csv", items)
    assert [i.label for i in items] == [3, 7]
    (tmp_path / "l.txt").write_text("1\n2\n")
    cal.read_labels(tmp_path / "l.txt", items)
    assert [i.label for i in items] == [1, 2]
    (tmp_path / "short.txt").write_text("1\n")
    with pytest.raises(InputError):
        cal.read_labels(tmp_path / "short.txt", items)


# ------------------------------------------------------------------------------------------------ converter layouts


def test_feeds_follow_the_artifact_layout():
    x = np.arange(3 * 8 * 8, dtype=np.float32).reshape(1, 3, 8, 8)
    feed = cal.to_artifact({"image": x}, NHWC_IO)
    assert feed["image"].shape == (1, 8, 8, 3) and feed["image"].flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(feed["image"], x.transpose(0, 2, 3, 1))
    reader = cal.FeedReader([{"image": x}, {"image": x + 1}], NHWC_IO)
    assert len(reader) == 2 and reader.get_next() is not None and reader.get_next() is not None
    assert reader.get_next() is None
    reader.rewind()
    assert reader.get_next()["image"].shape == (1, 8, 8, 3)
    gen = cal.representative_dataset([{"image": x}], NHWC_IO)
    assert [list(d) for d in gen()] == [["image"]]


def test_wrong_layout_for_the_converter_is_a_clear_error():
    with pytest.raises(InputError) as e:
        cal.to_artifact({"image": np.zeros((1, 8, 8, 3), np.float32)}, NHWC_IO)  # NHWC given where NCHW is expected
    assert "PyTorch model's layout" in _one_line(e.value)
    with pytest.raises(InputError):
        cal.to_artifact({"other": np.zeros((1, 3, 8, 8), np.float32)}, NHWC_IO)


def test_split_to_json_is_plain_data():
    sp = cal.split(_items(12), cal.CalibrationOptions(samples=8, holdout=4))
    d = json.loads(json.dumps(sp.to_json()))
    assert d["calibration_samples"] == 8 and d["holdout_samples"] == 4 and not d["random"]


# ------------------------------------------------------------------------------------------------ --dataset (one option: data and labels)

DIGITS_IO = IOSpec(inputs=[TensorSpec("image", (1, 1, 8, 8), "float32", "NCHW", ref_name="image")],
                   outputs=[TensorSpec("logits", (1, 10), "float32", ref_name="logits")])


def test_dataset_gives_labelled_disjoint_calibration_and_holdout():
    pytest.importorskip("sklearn")
    opts = cal.CalibrationOptions(dataset="digits", samples=100, holdout=cal.MAX_SAMPLES, seed=0)
    split = cal.prepare(DIGITS_IO, opts, need_calibration=True)
    assert len(split.calibration) == 100 and len(split.holdout) + len(split.calibration) <= 597
    assert len(split.holdout) >= 480  # every test image not calibrated on, minus exact duplicates
    assert split.has_labels and all(i.label is not None for i in split.calibration)
    assert not {i.id for i in split.calibration} & {i.id for i in split.holdout}
    assert not {i.digest() for i in split.calibration} & {i.digest() for i in split.holdout}
    assert all(i.id.startswith("digits:test[") for i in split.holdout)  # never the training split
    assert sorted({i.label for i in split.holdout}) == list(range(10))
    x = split.holdout[0].feed["image"]
    assert x.shape == (1, 1, 8, 8) and x.dtype == np.float32 and -1.0 < float(x.min()) < 0.0 < float(x.max()) < 2.0
    assert "digits data set" in split.source and split.to_json()["labels"] is True


def test_dataset_errors_are_one_line():
    pytest.importorskip("sklearn")
    with pytest.raises(UsageError) as e:
        cal.prepare(DIGITS_IO, cal.CalibrationOptions(dataset="mnist"), need_calibration=True)
    assert "digits" in _one_line(e.value)
    with pytest.raises(InputError) as e:
        cal.prepare(IMAGE_IO, cal.CalibrationOptions(dataset="digits"), need_calibration=True)
    assert "[1, 1, 8, 8]" in _one_line(e.value) and "[1, 3, 8, 8]" in e.value.one_line()
    with pytest.raises(UsageError):
        cal.prepare(DIGITS_IO, cal.CalibrationOptions(dataset="digits", source="x.npz"), need_calibration=True)
    with pytest.raises(UsageError):
        cal.prepare(TWO_IO, cal.CalibrationOptions(dataset="digits"), need_calibration=True)
