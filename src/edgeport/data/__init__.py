"""Model inputs as numpy data, for every command: seeded random feeds, .npz feeds, image folders, sample files.

A *sample* is a ``{input name: array}`` in the reference (PyTorch) layout (:data:`edgeport.refdata.Sample`).

- :mod:`edgeport.data.feeds`: the numpy dtype of a spec dtype, seeded random samples (one rule for every
  dtype), samples from a user's .npz, and the :class:`~edgeport.data.feeds.Feeds` that validate and bench run;
- :mod:`edgeport.data.images`: the one image-folder reader (recursive, sorted by relative path);
- :mod:`edgeport.data.layout`: axis-letter layouts (``NCHW``, ``NHWC``) and the transposes between them;
- :mod:`edgeport.data.samples`: the sample-file format (.npz keys ``K:NAME``) that carries samples to worker
  processes and back.

This layer stands on numpy, :mod:`edgeport.spec`, :mod:`edgeport.errors`, :mod:`edgeport.refdata` and
:mod:`edgeport.fsutil` only (Pillow when reading images), so convert, runtimes, validate, bench and quantize
can all use it and the device profile carries it.
"""
