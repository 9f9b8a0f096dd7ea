#!/usr/bin/env python
"""Where LiteRT's XNNPACK delegate is slow on this machine: the measurements behind edgeport's rewrites.

    .venv/bin/python benchmarks/xnnpack_probe.py [--only recurrent|depthwise]

Builds tiny .tflite models with TensorFlow's converter (so the graph is exactly the one named) and times
``invoke()`` at 1 thread (median of 300 after 20 warm-up calls):

- recurrent: a chain of N steps ``h = tanh((h @ R)[:, :128])`` with R 128x512 (an LSTM's recurrent
  product), unrolled for N = 1 ... 100 with one shared R; at N = 100 also with 100 distinct R, with R a
  run-time input (XNNPACK's dynamic weights), on the builtin kernels (no delegate), and as a WHILE loop
  whose body holds the one product; then a whole LSTM cell (input projection for all steps as one matmul
  before the loop) as a WHILE loop that carries only (h, c, a running sum) and one that also writes every
  step's h (a TensorArray, what an LSTM's sequence output needs);
- depthwise: a 40x40x48 depthwise convolution for kernel shapes from 2x2 to 9x9.

Prints the tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

H, T, F = 128, 100, 32


def _time(buf: bytes, builtin: bool = False, runs: int = 300) -> float:
    """Median ms of ``invoke()`` at 1 thread on random inputs."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    extra = {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES} if builtin else {}
    it = Interpreter(model_content=buf, num_threads=1, **extra)
    it.allocate_tensors()
    rng = np.random.default_rng(0)
    for d in it.get_input_details():
        it.set_tensor(d["index"], rng.standard_normal(d["shape"]).astype(np.float32))
    for _ in range(20):
        it.invoke()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        it.invoke()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def _convert(fn, signature) -> bytes:  # noqa: ANN001
    import tensorflow as tf

    f = tf.function(fn, input_signature=signature)
    return tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f).convert()


def recurrent() -> list[tuple[str, float]]:
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    mats = [tf.constant(rng.standard_normal((H, 4 * H)).astype(np.float32) * 0.1) for _ in range(T)]
    h_spec = [tf.TensorSpec([1, H], tf.float32)]

    def chain(n: int, distinct: bool = False):  # noqa: ANN202
        def fn(h):  # noqa: ANN001, ANN202
            for t in range(n):
                h = tf.tanh(tf.matmul(h, mats[t if distinct else 0])[:, :H])
            return h
        return fn

    rows = [(f"unrolled, {n} steps, one shared R", _time(_convert(chain(n), h_spec))) for n in (1, 2, 5, 10, 20, 50, T)]
    rows.append((f"unrolled, {T} steps, {T} distinct R", _time(_convert(chain(T, True), h_spec))))
    rows.append((f"unrolled, {T} steps, builtin kernels", _time(_convert(chain(T), h_spec), builtin=True)))

    def dynamic(h, r):  # noqa: ANN001, ANN202
        for _ in range(T):
            h = tf.tanh(tf.matmul(h, r)[:, :H])
        return h
    rows.append((f"unrolled, {T} steps, R a run-time input", _time(_convert(dynamic, h_spec + [tf.TensorSpec([H, 4 * H])]))))

    def loop(h):  # noqa: ANN001, ANN202
        _, h = tf.while_loop(lambda i, h: i < T, lambda i, h: (i + 1, tf.tanh(tf.matmul(h, mats[0])[:, :H])), [0, h])
        return h
    rows.append((f"WHILE loop, {T} steps", _time(_convert(loop, h_spec))))
    rows += [(f"LSTM cell in a WHILE loop, {T} steps, {what}", _time(_convert(_lstm_loop(keep_y, rng), [tf.TensorSpec([T, F])])))
             for keep_y, what in ((False, "carrying h, c and a sum"), (True, "writing every h (TensorArray)"))]
    return rows


def _lstm_loop(keep_y: bool, rng):  # noqa: ANN001, ANN202
    import numpy as np
    import tensorflow as tf

    w, r, b = (tf.constant(rng.standard_normal(s).astype(np.float32) * 0.1) for s in ((F, 4 * H), (H, 4 * H), (4 * H,)))

    def fn(x):  # noqa: ANN001, ANN202
        xp = tf.matmul(x, w) + b  # the input projection of every step: one matmul

        def body(t, h, c, acc):  # noqa: ANN001, ANN202
            g = tf.reshape(tf.gather(xp, [t]), [1, 4 * H]) + tf.matmul(h, r)
            c = tf.sigmoid(g[:, H:2 * H]) * c + tf.sigmoid(g[:, :H]) * tf.tanh(g[:, 2 * H:3 * H])
            h = tf.sigmoid(g[:, 3 * H:]) * tf.tanh(c)
            return t + 1, h, c, (acc.write(t, h[0]) if keep_y else acc + h)

        acc = tf.TensorArray(tf.float32, size=T) if keep_y else tf.zeros([1, H])
        out = tf.while_loop(lambda t, *a: t < T, body, [0, tf.zeros([1, H]), tf.zeros([1, H]), acc])[3]
        return out.stack() if keep_y else out
    return fn


def _depthwise(kernel):  # noqa: ANN001, ANN202
    """A depthwise convolution with ``kernel`` as a constant (a default argument would make it a model input)."""
    import tensorflow as tf

    k = tf.constant(kernel)
    return lambda x: tf.nn.depthwise_conv2d(x, k, [1, 1, 1, 1], "VALID")


def depthwise() -> list[tuple[str, float]]:
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    c, s = 48, 40
    rows = []
    for kh, kw in ((2, 2), (3, 3), (3, 7), (4, 4), (5, 5), (4, 7), (6, 6), (7, 5), (7, 7), (9, 9)):
        buf = _convert(_depthwise(rng.standard_normal((kh, kw, c, 1)).astype(np.float32)),
                       [tf.TensorSpec([1, s + kh - 1, s + kw - 1, c], tf.float32)])
        rows.append((f"depthwise {kh}x{kw} ({kh * kw} taps), {s}x{s}x{c}", _time(buf)))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--only", choices=("recurrent", "depthwise"))
    args = ap.parse_args(argv)
    for name, probe in (("recurrent", recurrent), ("depthwise", depthwise)):
        if args.only in (None, name):
            print(f"{name} (1 thread, median of 300 invokes)")
            for label, ms in probe():
                print(f"  {label:58s} {ms * 1e3:9.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
