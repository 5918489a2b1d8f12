"""Training input: random paired HR/LR crops from folders of HR images.

LR images are made once per image with the BI (or BD) function of ``vsr.quality``, the same
code `vsr bench` scores with, and crops are cut from the pair at aligned positions, as BasicSR
does with DIV2K's LR files. Cropping the HR first and shrinking the crop would put MATLAB's
border handling at every crop edge.

Every batch is a pure function of (seed, step): resuming at step k draws exactly the batches an
uninterrupted run would have drawn, with no generator state to checkpoint.
"""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from vsr.errors import DataError
from vsr.quality import crop_to_multiple, degrade, detail_energy

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def find_images(folders):
    """Every image below the given folders, recursively, sorted for a stable order."""
    paths = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(f"image folder {folder} does not exist: pass --data DIR "
                            "(see training/data/README.md to gather photos)")
        paths += [p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS]
    if not paths:
        raise DataError(f"no images found in {', '.join(map(str, folders))}: expected "
                        f"{', '.join(sorted(IMAGE_EXTENSIONS))} files")
    return sorted(paths)


def read_rgb(path):
    """uint8 RGB (H, W, 3) of an image file (grey images are expanded, alpha is dropped)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"cannot decode image {path}: remove it from the training folder")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class PairedImages:
    """HR images held in memory with their LR versions.

    Args:
        folders: folders of HR images (searched recursively).
        scale: super-resolution factor.
        degradation: ``"BI"`` or ``"BD"`` (see ``vsr.quality``).
        min_size: images with a side below this many HR pixels are skipped.
    """

    def __init__(self, folders, scale=4, degradation="BI", min_size=96, workers=2):
        self.scale = scale
        paths = find_images(folders)

        def load(path):
            hr = crop_to_multiple(read_rgb(path), scale)
            if min(hr.shape[:2]) < min_size:
                return None
            return path, hr, degrade(hr, scale, degradation)

        with ThreadPoolExecutor(workers) as pool:
            loaded = [x for x in pool.map(load, paths) if x is not None]
        if not loaded:
            raise DataError(f"no image in {', '.join(map(str, folders))} is at least {min_size} px")
        self.paths = [p for p, _, _ in loaded]
        self.hr = [h for _, h, _ in loaded]
        self.lr = [lr for _, _, lr in loaded]
        # Pick images in proportion to their area, so every HR pixel is equally likely.
        area = np.array([h.shape[0] * h.shape[1] for h in self.hr], np.float64)
        self.weights = area / area.sum()

    def __len__(self):
        return len(self.hr)

    def batch(self, seed, step, batch_size, hr_crop, min_detail=0.0, tries=8):
        """The batch for ``step``: (lr, hr) float32 in [0, 1], (B, c, c, 3) and (B, sc, sc, 3).

        Random image (area-weighted), aligned crop, random flips and 90-degree rotation. With
        ``min_detail`` > 0 a crop whose HR detail (``vsr.quality.detail_energy``, Y high-pass RMS in
        0-255 units) is below it is drawn again, up to ``tries`` draws in all, keeping the most
        detailed; 0 draws exactly the crops of the first recipes.
        """
        s = self.scale
        c = hr_crop // s
        rng = np.random.default_rng([seed, step])
        lr_out = np.empty((batch_size, c, c, 3), np.uint8)
        hr_out = np.empty((batch_size, c * s, c * s, 3), np.uint8)
        if not min_detail:
            for i, k in enumerate(rng.choice(len(self.hr), size=batch_size, p=self.weights)):
                lr_out[i], hr_out[i] = self._crop(rng, k, c)
        else:
            for i in range(batch_size):
                best = None
                for _ in range(tries):
                    lr, hr = self._crop(rng, rng.choice(len(self.hr), p=self.weights), c)
                    energy = detail_energy(hr)
                    if best is None or energy > best[0]:
                        best = energy, lr, hr
                    if energy >= min_detail:
                        break
                lr_out[i], hr_out[i] = best[1:]
        return lr_out.astype(np.float32) / 255.0, hr_out.astype(np.float32) / 255.0

    def _crop(self, rng, k, c):
        """An aligned (LR c x c, HR sc x sc) crop of image ``k`` at a random place, randomly flipped
        and rotated."""
        s = self.scale
        lr_img, hr_img = self.lr[k], self.hr[k]
        y = rng.integers(0, lr_img.shape[0] - c + 1)
        x = rng.integers(0, lr_img.shape[1] - c + 1)
        lr = lr_img[y:y + c, x:x + c]
        hr = hr_img[y * s:(y + c) * s, x * s:(x + c) * s]
        flip, rot = rng.integers(0, 2), rng.integers(0, 4)
        if flip:
            lr, hr = lr[:, ::-1], hr[:, ::-1]
        return np.rot90(lr, rot), np.rot90(hr, rot)


def make_dataset(images, seed, start_step, steps, batch_size, hr_crop, min_detail=0.0):
    """A tf.data pipeline of ``steps`` batches from ``start_step`` on, prepared in parallel and
    prefetched so the model never waits for input."""
    import tensorflow as tf

    c = hr_crop // images.scale

    def draw(step):
        return images.batch(seed, int(step), batch_size, hr_crop, min_detail)

    def draw_tf(step):
        lr, hr = tf.numpy_function(draw, [step], (tf.float32, tf.float32), stateful=False)
        lr.set_shape((batch_size, c, c, 3))
        hr.set_shape((batch_size, hr_crop, hr_crop, 3))
        return lr, hr

    ds = tf.data.Dataset.range(start_step, start_step + steps)
    ds = ds.map(draw_tf, num_parallel_calls=2, deterministic=True)
    return ds.prefetch(2)


class ValidationSet:
    """Whole validation images (HR cropped to a multiple of the scale) with their LR inputs."""

    def __init__(self, folder, scale=4, degradation="BI", max_side=512):
        self.names, self.hr, self.lr = [], [], []
        for path in find_images([folder]):
            hr = read_rgb(path)
            # Large photos are centre-cropped: validation must stay cheap next to training.
            h, w = hr.shape[:2]
            th, tw = min(h, max_side), min(w, max_side)
            hr = crop_to_multiple(hr[(h - th) // 2:(h - th) // 2 + th, (w - tw) // 2:(w - tw) // 2 + tw], scale)
            self.names.append(path.stem)
            self.hr.append(hr)
            self.lr.append(degrade(hr, scale, degradation))
