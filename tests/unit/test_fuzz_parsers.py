"""Fuzzing (hypothesis, bounded): the spec parsers, the manifest reader and the reference reader
either return a valid result or raise an EdgeportError — never another exception type."""

from __future__ import annotations

import io
import json
import tarfile
import os

from hypothesis import HealthCheck, given, settings, strategies as st

from edgeport.errors import EdgeportError
from tests.figures import add
from edgeport.manifest import MANIFEST_NAME, SCHEMA, Manifest
from edgeport.refdata import load_reference
from edgeport.spec import TensorSpec, parse_input_spec, parse_shape

# Deterministic by default so that CI stays reproducible; EDGEPORT_FUZZ_RANDOM=1 explores new inputs
# (what it finds becomes a regression test below, like test_regression_bundle_member_name_too_long).
FUZZ = settings(max_examples=int(os.environ.get("EDGEPORT_FUZZ_EXAMPLES", "1000")), deadline=None,
                derandomize=os.environ.get("EDGEPORT_FUZZ_RANDOM") != "1",
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
dim_text = st.one_of(st.integers(-5, 10**7).map(str), st.text("NBseqxX0123456789_,:- ", max_size=6))
shape_text = st.one_of(st.text(max_size=40), st.lists(dim_text, max_size=7).map("x".join))
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True), st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.text(max_size=10), c, max_size=4)), max_leaves=20)


@FUZZ
@given(shape_text)
def test_parse_shape(text):
    add("fuzz examples")
    try:
        shape = parse_shape(text)
    except EdgeportError:
        return
    for d in shape:
        assert (isinstance(d, int) and d > 0) or (isinstance(d, str) and d and "x" not in d.lower())


@FUZZ
@given(st.one_of(st.text(max_size=50), st.tuples(st.text(max_size=8), shape_text, st.text(max_size=8)).map(":".join)))
def test_parse_input_spec(text):
    add("fuzz examples")
    try:
        spec = parse_input_spec(text)
    except EdgeportError:
        return
    assert isinstance(spec, TensorSpec) and spec.name


@FUZZ
@given(json_values)
def test_tensor_spec_from_json(data):
    add("fuzz examples")
    try:
        TensorSpec.from_json(data if isinstance(data, dict) else {"name": "x", "shape": data})
    except EdgeportError:
        pass


def _manifest_like(draw_value):
    base = {"schema": SCHEMA, "model": {"io": {"inputs": [{"name": "x", "shape": [1, 3]}], "outputs": []}},
            "artifacts": [{"name": "onnx", "format": "onnx", "path": "model.onnx"}], "reference": {}}
    return base, draw_value


@FUZZ
@given(st.sampled_from(["model", "artifacts", "reference", "attempts", "tools", "extra"]), json_values, st.booleans())
def test_manifest_reader(tmp_path_factory, key, value, nest):
    add("fuzz examples")
    root = tmp_path_factory.mktemp("m")
    data, _ = _manifest_like(value)
    if nest and isinstance(data.get(key), list) and data[key]:
        data[key][0] = value if isinstance(value, dict) else {"name": value}
    else:
        data[key] = value
    (root / MANIFEST_NAME).write_text(json.dumps(data, allow_nan=True))
    try:
        m = Manifest.load(root)
        m.verify()
    except EdgeportError:
        pass


@FUZZ
@given(st.binary(max_size=400))
def test_manifest_reader_raw_bytes(tmp_path_factory, blob):
    add("fuzz examples")
    root = tmp_path_factory.mktemp("r")
    (root / MANIFEST_NAME).write_bytes(blob)
    try:
        Manifest.load(root)
    except EdgeportError:
        pass


@settings(max_examples=150, deadline=None, derandomize=FUZZ.derandomize, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600), st.booleans())
def test_reference_reader(tmp_path_factory, blob, zip_header):
    add("fuzz examples")
    p = tmp_path_factory.mktemp("n") / "reference.npz"
    p.write_bytes((b"PK\x03\x04" if zip_header else b"") + blob)
    try:
        load_reference(p)
    except EdgeportError:
        pass


def test_regression_infinite_dimension_in_spec():
    """Found by test_tensor_spec_from_json: an infinite dimension raised OverflowError."""
    import pytest

    with pytest.raises(EdgeportError):
        TensorSpec.from_json({"name": "x", "shape": [float("inf")]})
    with pytest.raises(EdgeportError):
        TensorSpec.from_json({"name": "x", "shape": [1, 2], "perm": [0, 0]})


# ---- the bundle reader: random archives (hostile names, links, devices, random bytes) -------------------
member_name = st.one_of(
    st.sampled_from(["manifest.json", "model.tflite", "reference.npz", "a/b.onnx", "../evil", "/etc/evil", "a/../../evil",
                     "./x", "", ".", "a//b", "C:\\evil", "a/\x00b", "~/evil", "x" * 300]),
    st.text(alphabet="ab./\\:~-_ \x00", max_size=20),
)
member_kind = st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
                               tarfile.FIFOTYPE])
member = st.tuples(member_name, member_kind, st.binary(max_size=64), member_name)


def _build_tar(members, compress: bool) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if compress else "w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, data, link in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = link
            if kind == tarfile.REGTYPE:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def _check_bundle_bytes(tmp_path_factory, blob: bytes) -> None:
    from edgeport.bundle import open_bundle

    d = tmp_path_factory.mktemp("fuzzb")
    (d / "in.bundle.tar.gz").write_bytes(blob)
    dest = d / "extracted"
    try:
        root, _ = open_bundle(d / "in.bundle.tar.gz", dest)
    except EdgeportError:
        pass
    else:
        assert root == dest
    # whatever happened, nothing was written outside the extraction folder
    outside = {p.name for p in d.iterdir()} - {"in.bundle.tar.gz", "extracted"}
    assert not outside, outside
    for p in dest.rglob("*") if dest.exists() else []:
        assert not p.is_symlink() and (p.is_dir() or p.is_file()), p


@FUZZ
@given(st.lists(member, max_size=6), st.booleans())
def test_bundle_reader_archives(tmp_path_factory, members, compress):
    add("fuzz examples")
    try:
        blob = _build_tar(members, compress)
    except (ValueError, UnicodeError, tarfile.TarError):
        return  # tarfile itself refuses to write this member (e.g. a name with NUL)
    _check_bundle_bytes(tmp_path_factory, blob)


@FUZZ
@given(st.binary(max_size=600), st.booleans())
def test_bundle_reader_raw_bytes(tmp_path_factory, blob, gz):
    add("fuzz examples")
    if gz:
        import gzip

        blob = gzip.compress(blob)
    _check_bundle_bytes(tmp_path_factory, blob)


def test_regression_bundle_member_name_too_long(tmp_path_factory):
    """Found by the bundle fuzzer: a 300-character member name crashed extraction with ENAMETOOLONG."""
    from edgeport.bundle import open_bundle
    from edgeport.errors import InputError

    d = tmp_path_factory.mktemp("longname")
    (d / "b.tar").write_bytes(_build_tar([("x" * 300, tarfile.REGTYPE, b"data", "")], compress=False))
    try:
        open_bundle(d / "b.tar", d / "extracted")
    except InputError as exc:
        assert "255" in exc.message
    else:
        raise AssertionError("a 300-character member name was accepted")
    assert not any((d / "extracted").iterdir()) if (d / "extracted").exists() else True
