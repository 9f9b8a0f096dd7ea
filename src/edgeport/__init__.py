"""edgeport: take a PyTorch model to TorchScript, ONNX, TF SavedModel and TFLite, and prove it still works.

The library API mirrors the CLI (see :mod:`edgeport.api`)::

    result = edgeport.convert(module, (example,), to="torchscript,onnx", out="out/")
    report = edgeport.validate("out/")

``edgeport.convert``, ``.validate``, ``.bench`` and ``.quantize`` are also the names of the subpackages
that implement them, so each of those four modules is made callable: calling it calls the function of
:mod:`edgeport.api`, and ``edgeport.convert.plan`` & co. stay importable as before. The subpackages'
``__init__`` modules import nothing heavy, and :mod:`edgeport.api` loads on the first call, so
``import edgeport`` imports neither torch nor TensorFlow (nor numpy).
"""

import importlib as _importlib
import types as _types

__version__ = "0.1.0"

_COMMANDS = ("convert", "validate", "bench", "quantize")
__all__ = ["__version__", *_COMMANDS]


class _CommandModule(_types.ModuleType):
    """A subpackage that is also its command's library function (see the package docstring)."""

    def __call__(self, *args, **kwargs):
        from edgeport import api

        return getattr(api, self.__name__.rpartition(".")[2])(*args, **kwargs)


for _name in _COMMANDS:
    _importlib.import_module(f"{__name__}.{_name}").__class__ = _CommandModule
del _name
