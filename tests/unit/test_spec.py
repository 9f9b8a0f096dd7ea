import pytest

from edgeport.errors import UsageError
from edgeport.spec import TensorSpec, parse_input_spec, parse_input_specs, parse_shape, to_artifact_layout, to_reference_layout


def test_parse_shape_static_and_dynamic():
    assert parse_shape("1x3x224x224") == (1, 3, 224, 224)
    assert parse_shape("Nx3x224x224") == ("N", 3, 224, 224)
    assert parse_shape("B,seq,16") == ("B", "seq", 16)
    assert parse_shape("scalar") == ()


@pytest.mark.parametrize("bad", ["1x0x3", "1x-3", "1xx3", "3x2.5", "1x3x224x224x", "x", "1x99999999"])
def test_parse_shape_rejects(bad):
    with pytest.raises(UsageError) as exc:
        parse_shape(bad)
    assert bad in exc.value.message or "dimension" in exc.value.message
    assert exc.value.hint


def test_input_spec_forms():
    assert parse_input_spec("1x3x8x8") == TensorSpec("input_0", (1, 3, 8, 8), "float32")
    assert parse_input_spec("x:Nx3x8x8") == TensorSpec("x", ("N", 3, 8, 8), "float32")
    assert parse_input_spec("tok:1x16:int64") == TensorSpec("tok", (1, 16), "int64")
    assert parse_input_spec("1x16:fp16").dtype == "float16"


@pytest.mark.parametrize("bad", ["x:1x3:float99", "a:b:c:d", "9x:1x3", "x:1x3:"])
def test_input_spec_rejects(bad):
    with pytest.raises(UsageError):
        parse_input_spec(bad)


def test_duplicate_names_rejected():
    with pytest.raises(UsageError, match="duplicate"):
        parse_input_specs(["x:1x3", "x:1x4"])


def test_layout_roundtrip():
    import numpy as np

    spec = TensorSpec("x", (1, 8, 8, 3), layout="NHWC", perm=(0, 2, 3, 1))
    a = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    nhwc = to_artifact_layout(a, spec)
    assert nhwc.shape == (2, 4, 5, 3)
    assert np.array_equal(to_reference_layout(nhwc, spec), a)
    assert TensorSpec.from_json(spec.to_json()) == spec
