"""The model formats edgeport knows: one frozen entry per format, and everything else derives from it.

A format's facts live here only: the suffixes (or folder marker) that identify a bare file of it, how it
is named to users, whether ``edgeport convert --to`` makes it, whether a device bundle carries it, its
place in the conversion chain (the order validate's stage table follows), and the worker entry that reads
the inputs and outputs a bare file declares. Which runtimes load a format is the runtime registry's fact
(:func:`edgeport.runtimes.runtimes_for`). The manifest's format list, ``--to``'s choices, validate's and
bench's file detection and the bundle's contents are all read from :data:`FORMATS`.

Importing this module imports nothing heavy (it is read by ``edgeport --help``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Format:
    name: str  # the manifest's word ("tflite")
    label: str  # how messages name it (".tflite", "SavedModel")
    suffixes: tuple[str, ...] = ()  # a bare file with one of these suffixes is of this format
    folder_markers: tuple[str, ...] = ()  # a folder holding one of these files is of this format
    target: bool = False  # edgeport convert --to can make it
    deployable: bool = False  # a device bundle carries it
    stage: int = 0  # place in the conversion chain: pytorch 0 ... tflite 4 (validate's stage order)
    probe: str | None = None  # "module:function" worker entry: the IOSpec JSON a bare file declares

    def matches(self, path: Path) -> bool:
        if path.is_dir():
            return any((path / m).exists() for m in self.folder_markers)
        return path.suffix.lower() in self.suffixes


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("pytorch", "PyTorch model", stage=0),
    Format("torchscript", "TorchScript", suffixes=(".pt", ".pth", ".ts", ".jit", ".ptl"), target=True, stage=1),
    Format("exported_program", "ExportedProgram", suffixes=(".pt2",), stage=1),
    Format("onnx", "ONNX", suffixes=(".onnx",), target=True, deployable=True, stage=2,
           probe="edgeport.runtimes.job:probe_onnx"),
    Format("saved_model", "SavedModel", folder_markers=("saved_model.pb", "saved_model.pbtxt"), target=True, stage=3,
           probe="edgeport.runtimes.job:probe_saved_model"),
    Format("tflite", ".tflite", suffixes=(".tflite",), target=True, deployable=True, stage=4,
           probe="edgeport.runtimes.job:probe_tflite"),
)}



def register(fmt: Format) -> Format:
    FORMATS[fmt.name] = fmt
    return fmt


def unregister(name: str) -> None:
    FORMATS.pop(name, None)


def targets() -> tuple[str, ...]:
    """What edgeport convert --to can make, in chain order."""
    return tuple(f.name for f in sorted(FORMATS.values(), key=lambda f: f.stage) if f.target)


def deployable() -> tuple[str, ...]:
    """What a device bundle carries."""
    return tuple(f.name for f in FORMATS.values() if f.deployable)


def model_suffixes() -> tuple[str, ...]:
    """Every suffix that names a model file of a known format."""
    return tuple(s for f in FORMATS.values() for s in f.suffixes)


def format_of(path: str | Path) -> str | None:
    """The format of a bare model file or folder by its suffix or marker file (None when none matches)."""
    p = Path(path)
    for f in FORMATS.values():
        if f.matches(p):
            return f.name
    return None


def label(name: str) -> str:
    f = FORMATS.get(name)
    return f.label if f else name


def stage(name: str) -> int:
    """Place of a format in the conversion chain (unknown formats sort last)."""
    f = FORMATS.get(name)
    return f.stage if f else len(FORMATS)
