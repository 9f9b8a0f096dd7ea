"""The data layer: seeded random feeds (one rule per dtype), .npz feeds, the sample file, the image-folder reader."""

from __future__ import annotations

import numpy as np
import pytest

from edgeport.data.feeds import DEFAULT_INT_RANGE, int_ranges_from, np_dtype, npz_feeds, random_feeds, random_samples
from edgeport.data.images import ImageOptions, image_feeds, list_images, parse_floats, read_images
from edgeport.data.layout import layout_perm, parse_layout, reference_layout
from edgeport.data.samples import group_keys, load_samples, save_samples
from edgeport.errors import EdgeportError, InputError, UsageError
from edgeport.models import REFERENCE_INT_RANGE, make_feed
from edgeport.spec import IOSpec, TensorSpec

ALL_DTYPES = IOSpec(inputs=[TensorSpec("f32", (64,)), TensorSpec("f16", (64,), "float16"), TensorSpec("bf16", (64,), "bfloat16"),
                            TensorSpec("i64", (4000,), "int64"), TensorSpec("u8", (4000,), "uint8"), TensorSpec("b", (64,), "bool"),
                            TensorSpec("dyn", ("B", 3), "int32")])


def _one_line(exc: EdgeportError) -> str:
    text = exc.one_line()
    assert "\n" not in text and exc.hint, text
    return text


# ------------------------------------------------------------------------------------------------ random feeds


def test_random_values_follow_one_rule_per_dtype():
    s = random_samples(ALL_DTYPES.inputs, 1, seed=3, dims={"B": 5}, int_ranges={"u8": (250, 255)})[0]
    assert [s[k].dtype for k in ("f32", "f16", "bf16", "i64", "u8", "b", "dyn")] == [
        np.float32, np.float16, np.float32, np.int64, np.uint8, np.bool_, np.int32]
    assert s["dyn"].shape == (5, 3)
    f = s["f32"]
    assert -1.0 < float(f.mean()) < 1.0 and 0.5 < float(f.std()) < 1.5  # ~N(0, 1)
    assert set(np.unique(s["i64"]).tolist()) == set(range(DEFAULT_INT_RANGE[0], DEFAULT_INT_RANGE[1] + 1)) == {0, 1}
    assert set(np.unique(s["u8"]).tolist()) == set(range(250, 256))  # the range is closed: 255 is drawn
    assert set(np.unique(s["b"]).tolist()) == {False, True}
    wide = random_samples(ALL_DTYPES.inputs[3:4], 1, 0, default_int_range=(-3, 2))[0]["i64"]
    assert set(np.unique(wide).tolist()) == set(range(-3, 3))


def test_random_feeds_are_seeded_and_checked():
    a, b, c = (random_feeds(ALL_DTYPES, 2, seed, {"B": 2}) for seed in (1, 1, 2))
    assert all(np.array_equal(x[k], y[k]) for x, y in zip(a.samples, b.samples) for k in x)
    assert not np.array_equal(a.samples[0]["f32"], c.samples[0]["f32"])
    assert not np.array_equal(a.samples[0]["f32"], a.samples[1]["f32"])
    assert a.source == "random (seed 1, 2 samples)" and a.to_json()["inputs"]["dyn"] == {"shape": [2, 3], "dtype": "int32"}
    for n in (0, 10_001):
        with pytest.raises(UsageError) as e:
            random_feeds(ALL_DTYPES, n)
        assert "--samples" in _one_line(e.value)
    with pytest.raises(UsageError) as e:
        random_samples(ALL_DTYPES.inputs, 1, 0, int_ranges={"i64": (5, 4)})
    assert "'i64'" in _one_line(e.value)


def test_reference_samples_use_the_wider_integer_range():
    spec = [TensorSpec("ids", (1, 4000), "int64"), TensorSpec("x", (1, 3))]
    feed = make_feed(spec, {}, seed=0)
    assert set(np.unique(feed["ids"]).tolist()) == set(range(REFERENCE_INT_RANGE[0], REFERENCE_INT_RANGE[1] + 1))
    observed = make_feed(spec, {}, seed=0, int_ranges=int_ranges_from([{"ids": np.array([[7, 9]])}]))
    assert set(np.unique(observed["ids"]).tolist()) == {7, 8, 9}
    assert np.array_equal(feed["x"], make_feed(spec, {}, seed=0)["x"]) and feed["x"].dtype == np.float32


def test_int_ranges_and_dtypes():
    assert int_ranges_from([{"t": np.array([4, 9]), "e": np.zeros(0, np.int64)}, {"t": np.array([-2]), "x": np.ones(2)}]) == {"t": (-2, 9)}
    assert int_ranges_from(None) == {}
    assert np_dtype("bfloat16") == np.float32 and np_dtype("int8") == np.int8 and np_dtype("bool") == np.bool_


# ------------------------------------------------------------------------------------------------ sample files and .npz


def test_sample_file_round_trip(tmp_path):
    samples = [{"x": np.arange(6, dtype=np.float16).reshape(2, 3), "enc:ids": np.array([3, 1], np.int64)},
               {"x": np.ones((2, 3), np.float16), "enc:ids": np.array([0, 0], np.int64)}]
    save_samples(tmp_path / "s.npz", samples)
    back = load_samples(tmp_path / "s.npz")
    assert [sorted(s) for s in back] == [["enc:ids", "x"], ["enc:ids", "x"]]
    for a, b in zip(samples, back):
        for k in a:
            assert b[k].dtype == a[k].dtype and np.array_equal(a[k], b[k])
    np.savez(tmp_path / "plain.npz", x=np.zeros(2))
    with pytest.raises(InputError) as e:
        load_samples(tmp_path / "plain.npz")
    assert "'x'" in _one_line(e.value)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError) as e:
        load_samples(tmp_path / "junk.npz")
    _one_line(e.value)


def test_npz_key_schemes():
    a = np.zeros(1)
    inputs, outputs, plain = group_keys({"input:1:x": a, "output:1:y": a, "0:x": a, "x": a, "a:b:c": a})
    assert sorted(inputs) == [0, 1] and list(outputs[1]) == ["y"] and sorted(plain) == ["a:b:c", "x"]


def test_npz_feeds_and_their_errors(tmp_path):
    io = IOSpec(inputs=[TensorSpec("x", (1, 4)), TensorSpec("t", (1, 2), "int32")])
    x, t = np.arange(12, dtype=np.float64).reshape(3, 1, 4), np.arange(6).reshape(3, 1, 2)
    np.savez(tmp_path / "stacked.npz", x=x, t=t)
    f = npz_feeds(tmp_path / "stacked.npz", io, limit=2)
    assert len(f.samples) == 2 and f.samples[1]["x"].dtype == np.float32 and f.samples[1]["t"].dtype == np.int32
    np.testing.assert_array_equal(f.samples[1]["x"], x[1])
    for name, arrays, words in (("empty", {}, "no arrays"), ("short", {"x": x}, "no array 't'"),
                                ("uneven", {"x": x, "t": t[:2]}, "different numbers"),
                                ("mixed", {"x": x, "0:t": t[0]}, "mixes")):
        np.savez(tmp_path / f"{name}.npz", **arrays)
        with pytest.raises(InputError) as e:
            npz_feeds(tmp_path / f"{name}.npz", io)
        assert words in _one_line(e.value)


# ------------------------------------------------------------------------------------------------ images


def _write_images(folder):
    from PIL import Image

    (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (12, 10), (255, 0, 0)).save(folder / "b.png")
    Image.new("RGB", (6, 6), (51, 51, 51)).save(folder / "a.png")
    Image.new("RGB", (8, 8), (0, 0, 255)).save(folder / "sub" / "c.png")
    (folder / "notes.txt").write_text("not an image")


def test_image_folder_is_read_recursively_in_path_order(tmp_path):
    _write_images(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)] == ["a.png", "b.png", "sub/c.png"]
    io = IOSpec(inputs=[TensorSpec("image", (2, 3, 4, 4), layout="NCHW"), TensorSpec("ids", (1, 3), "int64")])
    got = read_images(tmp_path, io, ImageOptions(mean=(0.5,), std=(0.5,)), seed=4)
    assert got.ids == ["a.png", "b.png", "sub/c.png"] and got.random_inputs == ["ids"] and got.layout == "NCHW"
    red, blue = got.samples[1]["image"], got.samples[2]["image"]
    assert red.shape == (2, 3, 4, 4) and red.dtype == np.float32 and np.array_equal(red[0], red[1])  # batch repeats
    np.testing.assert_allclose(red[0, :, 2, 2], [1.0, -1.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(blue[0, :, 2, 2], [-1.0, -1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(got.samples[0]["image"], (0.2 - 0.5) / 0.5, atol=1e-6)
    extras = random_samples(io.inputs[1:], 3, 4)
    assert all(np.array_equal(s["ids"], e["ids"]) for s, e in zip(got.samples, extras))
    bgr = read_images(tmp_path, io, ImageOptions(bgr=True, pixel_scale=1.0), limit=2)
    assert len(bgr.samples) == 2 and np.allclose(bgr.samples[1]["image"][0, :, 0, 0], [0.0, 0.0, 255.0])
    nhwc = IOSpec(inputs=[TensorSpec("image", (1, 5, 6, 1), layout="NHWC")])
    grey = image_feeds(tmp_path, nhwc, limit=1).samples[0]["image"]
    assert grey.shape == (1, 5, 6, 1) and np.allclose(grey, 0.2, atol=1e-6)
    resized = image_feeds(tmp_path, IOSpec(inputs=[TensorSpec("image", (1, 3, "H", "W"))]), resize=(3, 7), mean="0,0,0")
    assert resized.samples[0]["image"].shape == (1, 3, 3, 7) and resized.source.endswith("(3 files, 3x7)")


def test_image_errors_are_one_line(tmp_path):
    io = IOSpec(inputs=[TensorSpec("image", (1, 3, 4, 4))])
    for folder, cls, words in ((tmp_path / "missing", InputError, "not a folder"), (tmp_path, InputError, "no images")):
        with pytest.raises(cls) as e:
            read_images(folder, io)
        assert words in _one_line(e.value)
    _write_images(tmp_path / "imgs")
    imgs = tmp_path / "imgs"
    cases = [(IOSpec(inputs=[TensorSpec("x", (1, 4))]), ImageOptions(), "4-D float"),
             (IOSpec(inputs=[TensorSpec("image", (1, 2, 4, 4))]), ImageOptions(), "2 channels"),
             (io, ImageOptions(resize=(8, 8)), "--resize 8x8"), (io, ImageOptions(mean=(0.1, 0.2)), "--mean has 2 values"),
             (io, ImageOptions(std=(0.0,)), "--std contains 0"), (io, ImageOptions(layout="NCDH"), "not an image layout")]
    for spec, opts, words in cases:
        with pytest.raises(UsageError) as e:
            read_images(imgs, spec, opts)
        assert words in _one_line(e.value)
    with pytest.raises(UsageError) as e:
        parse_floats("0.5,x", "--mean")
    assert "--mean" in _one_line(e.value)
    (imgs / "sub" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(InputError) as e:
        read_images(imgs, io)
    assert "broken.jpg" in _one_line(e.value)


def test_layouts():
    assert layout_perm("NHWC", "NCHW") == (0, 3, 1, 2) and layout_perm("nchw", "NHWC") == (0, 2, 3, 1)
    assert parse_layout(" nhwc ") == "NHWC" and parse_layout("") is None
    assert reference_layout(TensorSpec("x", (1, 3, 4, 4))) == "NCHW" and reference_layout(TensorSpec("s", ())) is None
    for bad in ("NC1", "NNCH"):
        with pytest.raises(UsageError) as e:
            parse_layout(bad)
        _one_line(e.value)
    with pytest.raises(UsageError):
        layout_perm("NCHW", "NCL")
