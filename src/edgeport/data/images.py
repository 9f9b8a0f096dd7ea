"""The one image-folder reader: image files -> samples laid out like the model's image input.

The folder is searched **recursively** and files are taken in order of their path relative to it (so
``a.png`` comes before ``sub/b.jpg``); a file counts as an image by its suffix (:data:`IMAGE_SUFFIXES`).
Each image is converted to the input's channel count (1: L, 3: RGB, 4: RGBA), resized (bilinear) to the
input's height and width (or ``resize``), multiplied by ``pixel_scale`` (1/255 by default), optionally turned
BGR, normalised with ``(x - mean) / std`` and laid out like the input (NCHW unless the IOSpec or ``layout``
says otherwise); a batch above 1 repeats the image. Other inputs of the model get seeded random values
(:func:`edgeport.data.feeds.random_samples`). Pillow is imported only here, when a folder is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from edgeport.data.feeds import Feeds, np_dtype, random_samples
from edgeport.data.layout import layout_perm, reference_layout
from edgeport.errors import InputError, UsageError
from edgeport.refdata import Sample
from edgeport.spec import IOSpec, TensorSpec

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


@dataclass(frozen=True)
class ImageOptions:
    """How image files become input tensors."""

    resize: tuple[int, int] | None = None  # (height, width); default: the model's input size
    mean: tuple[float, ...] | None = None  # per channel (or one for all), after pixel scaling
    std: tuple[float, ...] | None = None
    pixel_scale: float = 1.0 / 255.0
    bgr: bool = False  # channel order BGR instead of RGB
    layout: str | None = None  # the image input's layout; default: its IOSpec layout, else NCHW


@dataclass
class Images:
    """What :func:`read_images` read: the files, one sample per file, and the geometry used."""

    folder: Path
    files: list[Path]
    samples: list[Sample]
    input: TensorSpec  # the image input
    size: tuple[int, int]  # (height, width)
    layout: str
    random_inputs: list[str]  # the other inputs, fed seeded random values

    @property
    def ids(self) -> list[str]:
        return [f.relative_to(self.folder).as_posix() for f in self.files]


def parse_floats(text: str | Sequence[float] | None, what: str) -> tuple[float, ...] | None:
    """``0.485,0.456,0.406`` (or a sequence of numbers) -> floats; None or ``""`` -> None."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, str):
        try:
            return tuple(float(x) for x in text.replace(" ", "").split(",") if x)
        except ValueError:
            raise UsageError(f"{what} {text!r} is not a list of numbers", f"write {what} 0.485,0.456,0.406") from None
    return tuple(float(x) for x in text)


def parse_resize(text: str | None) -> tuple[int, int] | None:
    """``224`` or ``224x224`` (height x width)."""
    if not text:
        return None
    parts = str(text).lower().split("x")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise UsageError(f"--resize {text!r} is not HxW", "write --resize 224x224") from None
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2 or min(vals) <= 0:
        raise UsageError(f"--resize {text!r} is not HxW", "write --resize 224x224")
    return vals[0], vals[1]


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted by path; InputError when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder", "pass a folder of .png/.jpg files")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})", "pass a folder of .png/.jpg files")
    return files


def image_input(io: IOSpec) -> TensorSpec:
    """The model's image input: its first 4-D float input."""
    cands = [s for s in io.inputs if s.rank == 4 and np_dtype(s.dtype).kind == "f"]
    if not cands:
        raise UsageError("a folder of images needs a model with a 4-D float (image) input",
                         "pass an .npz of inputs instead")
    return cands[0]


def _geometry(spec: TensorSpec, opts: ImageOptions, dims: dict[str, int] | None) -> tuple[str, dict[str, int]]:
    """(the input's layout, its concrete size per axis letter with H and W as the images are resized to)."""
    layout = (opts.layout or reference_layout(spec) or "NCHW").upper()
    if sorted(layout) != sorted("NCHW"):
        raise UsageError(f"layout {layout} is not an image layout", "use NCHW or NHWC")
    named = dict(zip(layout, spec.concrete(dims or {})))
    if named["C"] not in _MODES:
        raise UsageError(f"input {spec.name!r} has {named['C']} channels in layout {layout}; images have 1, 3 or 4",
                         "say how the model lays out its image input (NCHW or NHWC), or pass an .npz of inputs")
    if opts.resize:
        h, w = opts.resize
        fixed_h, fixed_w = spec.shape[layout.index("H")], spec.shape[layout.index("W")]
        if (isinstance(fixed_h, int) and fixed_h != h) or (isinstance(fixed_w, int) and fixed_w != w):
            raise UsageError(f"--resize {h}x{w} does not fit the model's fixed input {list(spec.shape)}", "drop --resize or match the model")
        named["H"], named["W"] = h, w
    return layout, named


def _per_channel(values: Sequence[float] | None, c: int, what: str, default: float) -> np.ndarray:
    arr = np.asarray(list(values) if values else [default], dtype=np.float32)
    if arr.size not in (1, c):
        raise UsageError(f"{what} has {arr.size} values, the model's image input has {c} channels", f"give 1 or {c} values")
    return arr


def _pixels(path: Path, c: int, h: int, w: int) -> np.ndarray:
    """The image at ``path`` as float32 (h, w, c) in 0..255."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert(_MODES[c]).resize((w, h), Image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.float32)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        # PIL raises DecompressionBombError (not an OSError) for absurd sizes, SyntaxError for some broken files
        raise InputError(f"cannot read image {path}: {' '.join(str(exc).split())[:120]}", "remove or fix the file") from None
    return a.reshape(h, w, c)


def read_images(folder: str | os.PathLike, io: IOSpec, opts: ImageOptions = ImageOptions(), *,
                dims: dict[str, int] | None = None, limit: int | None = None, seed: int = 0) -> Images:
    """One sample per image in ``folder`` (see the module docstring); at most ``limit`` files."""
    folder = Path(folder)
    files = list_images(folder)
    try:
        import PIL  # noqa: F401 - only to say clearly that it is missing
    except ImportError:
        raise UsageError("reading images needs Pillow", "pip install pillow, or pass an .npz of inputs") from None
    spec = image_input(io)
    layout, named = _geometry(spec, opts, dims)
    c, h, w = named["C"], named["H"], named["W"]
    mean = _per_channel(opts.mean, c, "--mean", 0.0)
    std = _per_channel(opts.std, c, "--std", 1.0)
    if np.any(std == 0):
        raise UsageError("--std contains 0", "give non-zero standard deviations")
    files = files[:limit] if limit else files
    others = [s for s in io.inputs if s.name != spec.name]
    extras = random_samples(others, len(files), seed, dims)
    to_layout = layout_perm("NHWC", layout)
    samples = []
    for f, extra in zip(files, extras):
        a = _pixels(f, c, h, w)
        if opts.bgr and c >= 3:
            a = a[..., [2, 1, 0] + list(range(3, c))]
        arr = ((a * np.float32(opts.pixel_scale) - mean) / std)[None].transpose(to_layout)
        if named["N"] > 1:
            arr = np.repeat(arr, named["N"], axis=layout.index("N"))
        samples.append({spec.name: arr.astype(np_dtype(spec.dtype)), **extra})
    return Images(folder, files, samples, spec, (h, w), layout, [o.name for o in others])


def image_feeds(folder: str | os.PathLike, io_spec: IOSpec, *, limit: int | None = None, resize: tuple[int, int] | None = None,
                mean: str | Sequence[float] | None = None, std: str | Sequence[float] | None = None,
                dims: dict[str, int] | None = None, seed: int = 0) -> Feeds:
    """:func:`read_images` as :class:`Feeds` (``mean``/``std`` may be ``"0.5,0.5,0.5"`` strings)."""
    opts = ImageOptions(resize=resize, mean=parse_floats(mean, "--mean"), std=parse_floats(std, "--std"))
    got = read_images(folder, io_spec, opts, dims=dims, limit=limit, seed=seed)
    h, w = got.size
    return Feeds(got.samples, f"images in {got.folder} ({len(got.samples)} files, {h}x{w})")
