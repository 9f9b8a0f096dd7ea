"""Calibration and held-out data for quantization (numpy and Pillow only).

Where the data comes from (``--calibration DATA``, :func:`load_dataset`):

- an ``.npy`` file (single-input models): ``(N, *input shape)`` stacks N samples; ``(N, C, H, W)`` for
  an input of batch 1 is N samples too;
- an ``.npz`` file: arrays named after the inputs, stacked the same way, or ``K:NAME`` /
  ``input:K:NAME`` keys (reference.npz style); an optional ``labels`` array holds one class per sample;
- a folder of images (:mod:`edgeport.data.images`: searched recursively, sorted by path): each image is
  converted to the model's channel count, resized, multiplied by ``pixel_scale`` (1/255 by default),
  normalised with ``(x - mean) / std`` and laid out like the PyTorch model's image input;
- ``module:function`` or ``path/file.py:function``: a function returning an iterable of feeds, each a
  dict ``{input name: array}``, one array (single-input models) or a tuple in input order; a dict may
  carry a ``label`` entry;
- a labelled data set that ships with a package (``dataset``, ``--dataset digits``; see
  ``sample_models.DATASETS``): inputs and labels in one option, from the split the trained samples never saw.

Everything is read in the *reference* (PyTorch) layout. ``data_layout`` names the layout arrays are
stored in when it differs (``NHWC`` arrays for an ``NCHW`` model); for image folders it names the layout
the model's image input uses when the manifest does not say. Converting to the layout each converted
model expects (``NHWC`` for a SavedModel made by onnx2tf) uses the artifact's IOSpec (:func:`to_artifact`).

:func:`split` shuffles the samples with a seed and splits them into calibration samples and held-out
samples: accuracy is measured on the held-out ones only, and a held-out sample identical to a
calibration sample is dropped. Random data is used only when asked for (``allow_random``) and is marked
``random`` so reports can warn.

Modules: :mod:`.dataset` (options and the plain data), :mod:`.arrays` (.npy, .npz, labels),
:mod:`.user_function`, :mod:`.sources` (every kind of source), :mod:`.splitting`, :mod:`.feeding` (samples in
each converter's layout), :mod:`.synthetic` (image-like PNGs for demos and tests).
"""

from edgeport.quantize.calibration.arrays import read_labels, read_npy, read_npz
from edgeport.quantize.calibration.dataset import MAX_SAMPLES, CalibrationOptions, Dataset, Item, Split
from edgeport.quantize.calibration.feeding import FeedReader, representative_dataset, to_artifact
from edgeport.quantize.calibration.sources import load_dataset, random_dataset, read_images, read_named_dataset
from edgeport.quantize.calibration.splitting import prepare, split
from edgeport.quantize.calibration.synthetic import write_synthetic_images
from edgeport.quantize.calibration.user_function import load_callable, read_module

__all__ = [
    "MAX_SAMPLES", "CalibrationOptions", "Dataset", "FeedReader", "Item", "Split", "load_callable", "load_dataset",
    "prepare", "random_dataset", "read_images", "read_labels", "read_module", "read_named_dataset", "read_npy",
    "read_npz", "representative_dataset", "split", "to_artifact", "write_synthetic_images",
]
