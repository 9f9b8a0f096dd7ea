"""Image-like PNGs drawn here, seeded, for demos and tests of calibration on image folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def write_synthetic_images(folder: str | os.PathLike, n: int, size: tuple[int, int] = (96, 96), seed: int = 0) -> list[Path]:
    """Write ``n`` image-like PNGs (smooth colour fields, gradients and filled shapes) for demos and tests.

    Nothing is downloaded: the images are drawn here, seeded. They are not natural images, but their
    statistics (smooth regions, edges, a few dominant colours) are far closer to them than noise is.
    """
    from PIL import Image, ImageDraw, ImageFilter

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    paths = []
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for k in range(n):
        low = rng.random((4, 4, 3)).astype(np.float32)
        base = np.asarray(Image.fromarray((low * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
        angle = rng.uniform(0, 2 * np.pi)
        grad = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)[..., None] * rng.uniform(-80, 80, size=3)
        img = Image.fromarray(np.clip(base + grad, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(1, 5))):
            x0, y0 = rng.integers(0, w - 8), rng.integers(0, h - 8)
            x1, y1 = x0 + rng.integers(8, max(9, w // 2)), y0 + rng.integers(8, max(9, h // 2))
            colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
            shape = int(rng.integers(0, 3))
            if shape == 0:
                draw.ellipse((x0, y0, x1, y1), fill=colour)
            elif shape == 1:
                draw.rectangle((x0, y0, x1, y1), fill=colour)
            else:
                draw.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=colour)
        img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.3, 1.5))))
        noisy = np.asarray(img, dtype=np.float32) + rng.normal(0, 4, size=(h, w, 3))
        path = folder / f"synthetic_{k:04d}.png"
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths
