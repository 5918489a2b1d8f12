"""Bundled generator weights: where they live, the manifest schema, checksum, loading.

``weights/manifest.json`` (schema 1)::

    {"schema": 1,
     "models": {
       "<name>": {
         "file": "<name>.weights.h5",        # Keras 3 weights file beside the manifest
         "sha256": "<hex>",                  # of that file; checked before every load
         "arch": {"blocks": 16, "channels": 64, "scale": 4},
         "recipe": "training/recipes/....yaml",
         "steps": 12345, "cpu_hours": 3.2, "data": "what it was trained on",
         "scores": {"set5": {"psnr_y": 30.1, "ssim_y": 0.85}, ...}   # measured by `vsr bench`
       }}}

The folder is found in this order: ``$VSR_WEIGHTS_DIR``; the copy installed inside the package
(``vsr/_weights``, for ``pip install .``); the repository's ``weights/`` (editable installs, clones).
"""

import hashlib
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from vsr.errors import WeightsError

MANIFEST = "manifest.json"
SCHEMA = 1


def weights_dir():
    """The folder holding ``manifest.json`` and the bundled weights files."""
    env = os.environ.get("VSR_WEIGHTS_DIR")
    if env:
        return Path(env)
    package = Path(__file__).resolve().parents[1]
    installed, repo = package / "_weights", package.parent / "weights"
    return installed if installed.is_dir() else repo


@dataclass
class WeightsEntry:
    """One model's record in the manifest."""

    name: str
    file: str
    sha256: str
    arch: dict
    recipe: str = ""
    steps: int = 0
    cpu_hours: float = 0.0
    data: str = ""
    scores: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, name, d):
        known = {k: d[k] for k in _RECORD_FIELDS if k in d}
        missing = {"file", "sha256", "arch"} - known.keys()
        if missing:
            raise WeightsError(f"manifest entry '{name}' lacks {sorted(missing)}: fix weights/{MANIFEST}")
        extra = {k: v for k, v in d.items() if k not in known}
        return cls(name=name, extra=extra, **known)

    def to_dict(self):
        return {**{k: getattr(self, k) for k in _RECORD_FIELDS}, **self.extra}


#: The manifest keys of an entry: every field but the name (the dict key) and ``extra``.
_RECORD_FIELDS = tuple(f.name for f in fields(WeightsEntry) if f.name not in ("name", "extra"))


def read_manifest(folder=None):
    """Return ``{name: WeightsEntry}`` from ``folder/manifest.json`` (empty if there is none)."""
    path = Path(folder or weights_dir()) / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise WeightsError(f"{path} is not valid JSON ({err}): restore it from git") from err
    if data.get("schema") != SCHEMA:
        raise WeightsError(f"{path} has schema {data.get('schema')!r}, expected {SCHEMA}: upgrade vsr")
    return {name: WeightsEntry.from_dict(name, d) for name, d in data.get("models", {}).items()}


def write_manifest_entry(entry, folder=None):
    """Add or replace one entry in ``folder/manifest.json`` (written atomically)."""
    path = Path(folder or weights_dir()) / MANIFEST
    data = {"schema": SCHEMA, "models": {}}
    if path.is_file():
        data = json.loads(path.read_text())
    data.setdefault("models", {})[entry.name] = entry.to_dict()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def sha256_of(path):
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def bundled_weights(name):
    """(path, entry) of model ``name``'s bundled weights, verified by sha256.

    Raises ``WeightsError`` naming the file and how to get it when it is missing or does not match.
    """
    folder = weights_dir()
    entry = read_manifest(folder).get(name)
    own = (f"train them with `vsr train --config training/recipes/{name}-photos.yaml`, then pass the "
           f"export as `vsr upscale --weights FILE` or `vsr bench --models {name}=FILE`")
    if entry is None:
        ready = sorted(n for n, e in read_manifest(folder).items() if (folder / e.file).is_file())
        others = f"pick one that has them ({', '.join(['bicubic', *ready])}; `vsr models` lists them)"
        raise WeightsError(f"this vsr has no weights for model '{name}' yet (none in {folder / MANIFEST}): "
                           f"{others}, or {own}")
    how = f"reinstall vsr (pip install from a complete clone, which carries weights/), or {own}"
    path = folder / entry.file
    if not path.is_file():
        raise WeightsError(f"weights file {path} is missing: {how}")
    actual = sha256_of(path)
    if actual != entry.sha256:
        raise WeightsError(f"weights file {path} is corrupt or truncated (sha256 {actual[:12]}... "
                           f"!= manifest {entry.sha256[:12]}...): {how}")
    return path, entry


def infer_generator_arch(path):
    """Read blocks, channels and scale of an SRGAN generator from its Keras ``.weights.h5`` file.

    Lets ``--weights FILE`` load any file the trainer exported without a side manifest.
    """
    import h5py

    # Keras 3 names the groups by layer class and order (conv2d, conv2d_1, ...), not by layer name.
    try:
        with h5py.File(path, "r") as f:
            layers = f["layers"] if "layers" in f else {}
            convs = sorted((n for n in layers if n.startswith("conv2d")),
                           key=lambda n: int(n.rsplit("_", 1)[1]) if "_" in n[6:] else 0)
            bns = [n for n in layers if n.startswith("batch_normalization")]
            if not convs or layers[convs[0]]["vars"]["0"].shape[:3] != (9, 9, 3):
                raise WeightsError(f"{path} is not an SRGAN generator weights file: pass a file "
                                   "written by `vsr train` (generator) or the matching --model")
            channels = int(layers[convs[0]]["vars"]["0"].shape[-1])
            with_bias = sum(1 for n in convs if "1" in layers[n]["vars"])
    except OSError as err:
        raise WeightsError(f"cannot read weights file {path} ({err}): is it a complete Keras "
                           ".weights.h5 file?") from err
    # BatchNorm: two per residual block plus the body's; biased convs: head, up-convs, tail.
    return {"blocks": (len(bns) - 1) // 2, "channels": channels, "scale": 2 ** (with_bias - 2)}


def load_weights_into(model, path):
    """Load a ``.weights.h5`` file into ``model``, turning Keras's errors into a ``WeightsError``."""
    try:
        model.load_weights(str(path))
    except (OSError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise WeightsError(f"cannot load weights from {path} ({first}): the file is truncated or "
                           "was made for another architecture") from err
