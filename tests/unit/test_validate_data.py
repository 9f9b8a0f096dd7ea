"""Validation inputs (random, .npz, images) and pairing two model files' tensors."""

from __future__ import annotations

import numpy as np
import pytest

from edgeport.errors import InputError, UsageError
from edgeport.manifest import Artifact
from edgeport.spec import IOSpec, TensorSpec
from edgeport.data.feeds import int_ranges_from, npz_feeds, random_feeds
from edgeport.data.images import image_feeds, parse_resize
from edgeport.data.samples import load_samples, save_samples
from edgeport.validate.pair import align, fixed_sizes, infer_perm
from edgeport.validate.parity import _pick_reference, _stage_parent
from edgeport.validate.runner import Target

IO = IOSpec(inputs=[TensorSpec("image", (1, 3, 8, 8), layout="NCHW"), TensorSpec("tokens", ("B", 5), "int64")],
            outputs=[TensorSpec("logits", (1, 10))])


def test_random_feeds_are_seeded_and_typed():
    a = random_feeds(IO, 3, seed=7, dims={"B": 2}, int_ranges={"tokens": (3, 9)})
    b = random_feeds(IO, 3, seed=7, dims={"B": 2}, int_ranges={"tokens": (3, 9)})
    c = random_feeds(IO, 3, seed=8, dims={"B": 2})
    assert len(a.samples) == 3 and "seed 7" in a.source
    assert a.samples[0]["image"].shape == (1, 3, 8, 8) and a.samples[0]["image"].dtype == np.float32
    assert a.samples[0]["tokens"].shape == (2, 5) and a.samples[0]["tokens"].dtype == np.int64
    toks = np.concatenate([s["tokens"].ravel() for s in a.samples])
    assert toks.min() >= 3 and toks.max() <= 9 and len(set(toks.tolist())) > 1
    assert all(np.array_equal(x["image"], y["image"]) for x, y in zip(a.samples, b.samples))
    assert not np.array_equal(a.samples[0]["image"], c.samples[0]["image"])
    assert not np.array_equal(a.samples[0]["image"], a.samples[1]["image"])
    with pytest.raises(UsageError):
        random_feeds(IO, 0)


def test_int_ranges_from_reference():
    assert int_ranges_from([{"t": np.array([4, 9])}, {"t": np.array([2]), "x": np.zeros(2)}]) == {"t": (2, 9)}


def test_npz_layouts(tmp_path):
    io1 = IOSpec(inputs=[TensorSpec("x", (1, 4))], outputs=[TensorSpec("y", (1, 2))])
    x = np.arange(12, dtype=np.float32).reshape(3, 1, 4)
    np.savez(tmp_path / "stacked.npz", x=x)
    f = npz_feeds(tmp_path / "stacked.npz", io1)
    assert len(f.samples) == 3 and np.array_equal(f.samples[2]["x"], x[2]) and f.stored_outputs is None
    np.savez(tmp_path / "single.npz", x=x[0])
    assert len(npz_feeds(tmp_path / "single.npz", io1).samples) == 1
    np.savez(tmp_path / "ref.npz", **{"input:0:x": x[0], "output:0:y": np.ones((1, 2)), "input:1:x": x[1], "output:1:y": np.zeros((1, 2))})
    f = npz_feeds(tmp_path / "ref.npz", io1, limit=1)
    assert len(f.samples) == 1 and f.stored_outputs is not None and f.stored_outputs[0]["y"].sum() == 2
    np.savez(tmp_path / "bad.npz", x=np.zeros((1, 5), np.float32))
    with pytest.raises(InputError, match="shape"):
        npz_feeds(tmp_path / "bad.npz", io1)
    np.savez(tmp_path / "other.npz", z=x)
    with pytest.raises(InputError, match="no array 'x'"):
        npz_feeds(tmp_path / "other.npz", io1)


def test_samples_roundtrip(tmp_path):
    s = [{"a": np.ones(3), "b:c": np.zeros(2)}, {"a": np.zeros(3), "b:c": np.ones(2)}]
    save_samples(tmp_path / "s.npz", s)
    back = load_samples(tmp_path / "s.npz")
    assert len(back) == 2 and np.array_equal(back[1]["b:c"], np.ones(2))


def test_images(tmp_path):
    from PIL import Image

    img = np.zeros((10, 12, 3), np.uint8)
    img[..., 0] = 255  # pure red
    Image.fromarray(img).save(tmp_path / "b.png")
    Image.fromarray(np.full((10, 12, 3), 51, np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not an image")
    io1 = IOSpec(inputs=[TensorSpec("image", (1, 3, 8, 8), layout="NCHW")], outputs=[])
    f = image_feeds(tmp_path, io1, mean="0.5,0.5,0.5", std="0.5")
    assert len(f.samples) == 2
    red = f.samples[1]["image"]  # sorted by name: a.png, b.png
    assert red.shape == (1, 3, 8, 8)
    assert np.allclose(red[0, 0], 1.0) and np.allclose(red[0, 1], -1.0) and np.allclose(red[0, 2], -1.0)
    assert np.allclose(f.samples[0]["image"], (0.2 - 0.5) / 0.5, atol=1e-6)
    nhwc = IOSpec(inputs=[TensorSpec("image", (1, 4, 4, 3), layout="NHWC")], outputs=[])
    assert image_feeds(tmp_path, nhwc, limit=1).samples[0]["image"].shape == (1, 4, 4, 3)
    with pytest.raises(UsageError, match="--mean"):
        image_feeds(tmp_path, io1, mean="1,2")
    with pytest.raises(UsageError, match="4-D"):
        image_feeds(tmp_path, IOSpec(inputs=[TensorSpec("x", (1, 4))], outputs=[]))
    assert parse_resize("224") == (224, 224) and parse_resize("96x128") == (96, 128)
    with pytest.raises(UsageError):
        parse_resize("axb")


def test_infer_perm_and_align():
    assert infer_perm((1, 3, 8, 8), (1, 3, 8, 8)) is None
    assert infer_perm((1, 3, 8, 8), (1, 8, 8, 3)) == (0, 2, 3, 1)
    assert infer_perm((1, 3, 4, 5), (1, 5, 4, 3)) == (0, 3, 2, 1)
    assert infer_perm((1, 3, 8, 8), (1, 3, 8)) is False
    assert infer_perm(("N", 3, 8, 8), (1, 8, 8, 3)) == (0, 2, 3, 1)
    ref = IOSpec(inputs=[TensorSpec("image", (1, 3, 8, 8))], outputs=[TensorSpec("logits", (1, 10)), TensorSpec("emb", (1, 4))])
    cand = IOSpec(inputs=[TensorSpec("serving_default_image:0", (1, 8, 8, 3))],
                  outputs=[TensorSpec("Emb", (1, 4)), TensorSpec("LOGITS", (1, 10))])
    got = align(ref, cand, "a.onnx", "b.tflite")
    assert got.inputs[0].ref_name == "image" and got.inputs[0].perm == (0, 2, 3, 1)
    assert [(o.name, o.ref_name) for o in got.outputs] == [("LOGITS", "logits"), ("Emb", "emb")]
    with pytest.raises(UsageError, match="shape"):
        align(ref, IOSpec(inputs=[TensorSpec("image", (1, 5, 8, 8))], outputs=cand.outputs), "a", "b")
    dyn = IOSpec(inputs=[TensorSpec("image", ("N", 3, "H", "W"))], outputs=ref.outputs)
    assert fixed_sizes(dyn, align(dyn, cand, "a", "b")) == {"N": 1, "H": 8, "W": 8}


def test_stage_parent_and_reference_choice(tmp_path):
    arts = {a.name: a for a in [
        Artifact("pytorch", "pytorch", ""), Artifact("onnx", "onnx", "m.onnx", parent="pytorch"),
        Artifact("saved_model", "saved_model", "sm", parent="onnx", converter="onnx2tf"),
        Artifact("tflite", "tflite", "m.tflite", parent="onnx", converter="onnx2tf"),
        Artifact("tflite-lt", "tflite", "l.tflite", parent="pytorch", converter="litert-torch"),
        Artifact("tflite-int8", "tflite", "q.tflite", parent="onnx", converter="onnx2tf", variant="int8"),
    ]}
    assert _stage_parent(arts["tflite"], arts).name == "saved_model"  # PyTorch -> ONNX -> SavedModel -> TFLite
    assert _stage_parent(arts["tflite-lt"], arts).name == "pytorch"
    assert _stage_parent(arts["onnx"], arts).name == "pytorch"
    assert _stage_parent(arts["pytorch"], arts) is None
    targets = [Target(arts["pytorch"], tmp_path, "torch_eager"), Target(arts["tflite-int8"], tmp_path, "tflite"),
               Target(arts["tflite"], tmp_path, "tflite"), Target(arts["onnx"], tmp_path, "onnxruntime")]
    assert _pick_reference(None, targets, "torch_eager").artifact.name == "pytorch"
    assert _pick_reference("tflite", targets, "torch_eager").artifact.name == "tflite"  # fp32 preferred
    assert _pick_reference("tflite-int8", targets, "torch_eager").artifact.name == "tflite-int8"
    assert _pick_reference("onnx:onnxruntime", targets, "torch_eager").runtime == "onnxruntime"
    assert _pick_reference("tensorflow", targets, "torch_eager") is None
