"""Benchmark data layouts: an image folder (Set5, Set14, yours), Vid4's ``GT/<seq>/``, a video file.

Every item yields its ground truth in batches of uint8 RGB frames (N, H, W, 3), so a long video
never sits in memory whole. Where a layout ships LR inputs (Vid4's ``BIx4/<seq>/``,
``BDx4/<seq>/``), they come along; otherwise the runner makes them from the ground truth.
"""

import os
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vsr.errors import DataError, InputError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
#: Names ``vsr bench`` knows, and their folders under the shared datasets folder.
NAMED_DATASETS = {"vid4": "Vid4", "set5": "Set5", "set14": "Set14"}


@dataclass
class FrameBatch:
    """Consecutive frames of one item: ground truth, and LR inputs when the layout ships them.

    ``hr``: uint8 RGB (N, H, W, 3). ``lr``: uint8 RGB (N, H/s, W/s, 3) or None. ``grey``: the
    files were single-channel (``hr`` repeats the grey value in R, G and B).
    """

    names: list
    hr: np.ndarray
    lr: np.ndarray = None
    grey: bool = False


@dataclass
class BenchItem:
    """One scored unit: an image (1 frame) or a sequence/video (many frames, in order)."""

    name: str
    hr_paths: list = field(default_factory=list)
    lr_dirs: dict = field(default_factory=dict)  # "BIx4" -> folder of same-named LR frames
    video: Path = None

    def __len__(self):
        return len(self.hr_paths)

    def batches(self, batch_size, lr_folder=None, max_frames=None):
        """Yield ``FrameBatch`` objects of at most ``batch_size`` frames, the first ``max_frames`` only.

        ``lr_folder`` (e.g. ``"BIx4"``) picks shipped LR frames when this item has them.
        """
        if self.video is not None:
            yield from _video_batches(self.video, batch_size, max_frames)
            return
        paths = self.hr_paths[:max_frames] if max_frames else self.hr_paths
        lr_dir = self.lr_dirs.get(lr_folder)
        for start in range(0, len(paths), batch_size):
            chunk = paths[start:start + batch_size]
            read = [read_image(p) for p in chunk]
            lr = _stack([_read_lr(lr_dir, p.name) for p in chunk]) if lr_dir else None
            yield FrameBatch(names=[p.stem for p in chunk], hr=_stack([im for im, _ in read]),
                             lr=lr, grey=all(grey for _, grey in read))


@dataclass
class BenchDataset:
    """A named list of items. ``kind`` is ``"images"`` (Set5-like) or ``"video"`` (Vid4, a clip)."""

    name: str
    kind: str
    root: Path
    items: list

    def frame_count(self, max_frames=None):
        """Frames to score (the first ``max_frames`` of each item), or None for a video file,
        whose length is known only once it is decoded."""
        if any(i.video is not None for i in self.items):
            return None
        return sum(min(len(i), max_frames) if max_frames else len(i) for i in self.items)


def shared_datasets_dir():
    """``$VSR_DATASETS``, else ``shared/datasets`` beside the repository checkout; None if absent."""
    env = os.environ.get("VSR_DATASETS")
    path = Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "datasets"
    return path if path.is_dir() else None


def read_image(path):
    """Read an 8-bit image file as uint8 RGB (H, W, 3); returns ``(rgb, was_grey)``."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DataError(f"cannot read image {path}: check the file is a valid image")
    if img.dtype != np.uint8:
        raise DataError(f"{path} is {img.dtype}, not 8-bit: convert it to 8-bit PNG")
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2), True
    code = cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(img, code), False


def _read_lr(folder, name):
    if not (folder / name).is_file():
        raise DataError(f"{folder} lacks {name}: ship every LR frame of the sequence or remove the folder")
    return read_image(folder / name)[0]


def _stack(images):
    shapes = sorted({im.shape for im in images})
    if len(shapes) > 1:
        raise DataError(f"frames of one sequence differ in size {shapes}: resize them to one size")
    return np.stack(images)


def _images_in(folder):
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def open_image_folder(folder, name=None):
    """Each image file in ``folder`` (sorted by name) is an item of one frame."""
    folder = Path(folder)
    images = _images_in(folder)
    if not images:
        raise DataError(f"no images in {folder}: point --data at a folder of PNG/JPEG files")
    items = [BenchItem(name=p.stem, hr_paths=[p]) for p in images]
    return BenchDataset(name=name or folder.name, kind="images", root=folder, items=items)


def open_vid4_folder(folder, name=None):
    """Vid4 layout: ``GT/<seq>/*.png``; optional ``BIx4/<seq>/``, ``BDx4/<seq>/`` with the same file names."""
    folder = Path(folder)
    gt = folder / "GT"
    seqs = sorted(d for d in gt.iterdir() if d.is_dir()) if gt.is_dir() else []
    items = []
    for seq in seqs:
        frames = _images_in(seq)
        if not frames:
            continue
        lr_dirs = {d.name: d / seq.name for d in folder.iterdir()
                   if d.is_dir() and d.name != "GT" and (d / seq.name).is_dir()}
        items.append(BenchItem(name=seq.name, hr_paths=frames, lr_dirs=lr_dirs))
    if not items:
        raise DataError(f"no sequences in {gt}: a Vid4-layout folder holds GT/<sequence>/*.png")
    return BenchDataset(name=name or folder.name, kind="video", root=folder, items=items)


def open_video_file(path):
    """A video file is one item; its frames are read in order by ``vsr.video``'s reader."""
    path = Path(path)
    return BenchDataset(name=path.name, kind="video", root=path.parent,
                        items=[BenchItem(name=path.stem, video=path)])


def open_dataset(target, data=None):
    """Resolve ``vsr bench TARGET [--data DIR]`` to a ``BenchDataset``.

    ``target``: ``vid4``, ``set5``, ``set14`` (from ``data``, or the shared datasets folder when
    ``data`` is None), a folder of images, a Vid4-layout folder (has ``GT/``), or a video file.
    ``data`` may be the dataset's own folder or the folder that holds it (e.g. ``datasets/``).
    """
    key = str(target).lower()
    if key in NAMED_DATASETS:
        return _open_named(key, data)
    path = Path(target)
    if path.is_dir():
        return open_vid4_folder(path) if (path / "GT").is_dir() else open_image_folder(path)
    if path.is_file():
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            raise InputError(f"{path} is one image: pass the folder that holds it")
        return open_video_file(path)
    raise InputError(f"{target} is neither a dataset name ({', '.join(NAMED_DATASETS)}), "
                     "a folder nor a video file: check the path")


def _open_named(key, data):
    title = NAMED_DATASETS[key]
    if data is None:
        base = shared_datasets_dir()
        if base is None or not (base / title).is_dir():
            raise DataError(f"{title} not found: pass --data DIR (the folder holding {title}) "
                            "or set VSR_DATASETS")
        root = base / title
    else:
        data = Path(data)
        root = data / title if (data / title).is_dir() else data
        if not root.is_dir():
            raise DataError(f"--data {data} is not a folder: pass the folder holding {title}")
    if key == "vid4":
        return open_vid4_folder(root, name=title)
    return open_image_folder(root, name=title)


def _read_video(path, batch_size):
    """Decode ``path`` with ``vsr.video``'s reader: lists of up to ``batch_size`` uint8 RGB frames."""
    from vsr.video.probe import probe
    from vsr.video.reader import FrameReader

    info = probe(path)
    if info.video is None or info.is_image:
        raise InputError(f"{path} has no video stream: pass a video file")
    reader = FrameReader(path, info.video.index, queue_size=max(8, 2 * batch_size))
    try:
        reader.start()
        for chunk in reader.batches(batch_size):
            yield [f.pixels for f in chunk]
    finally:
        reader.stop()


def _video_batches(path, batch_size, max_frames):
    index = 0
    with closing(_read_video(path, batch_size)) as chunks:  # closing stops the decoder early
        for frames in chunks:
            if max_frames:
                frames = frames[:max_frames - index]
            yield FrameBatch(names=[f"{index + i:08d}" for i in range(len(frames))], hr=_stack(frames))
            index += len(frames)
            if max_frames and index >= max_frames:
                return
    if index == 0:
        raise DataError(f"no frames decoded from {path}: check it is a video file")
