"""Gather the real photographs shipped in Debian wallpaper packages into a flat training folder.

    python training/data/gather_photos.py                 # -> data/photos/, data/val/
    python training/data/gather_photos.py --out /big/photos --val-out /big/val --downscale 1

Training set: the photographs (not drawings, renders or vector art) of four Debian packages, chosen by
looking at every image in them; the allow-lists below are that review. A package that ships one
photograph at several resolutions contributes only the largest copy.

Every output is a PNG, because a decoded photo must not be JPEG-compressed a second time. By default
each photo is also shrunk 2x with an area filter before it is written (``--downscale 2``): the sources
are JPEGs of quality ~70-99 with 4:2:0 chroma, and an SR generator trained with perceptual and
adversarial losses learns to *draw* whatever high-frequency content its targets hold, 8x8 blocking,
ringing and half-resolution colour included. Averaging 2x2 pixels makes chroma full resolution, puts
each 8x8 block inside a 4x4 patch and halves the noise, at the cost of 4x fewer pixels; the smallest
photo is still 640x512, far above a 96x96 HR crop. ``--downscale 1`` keeps the native pixels.

Validation set (``--val-out``): real colour photographs bundled with scikit-image, cropped to a
multiple of 4 so an x4 LR image is exactly HR/4. They come from other sources than the training set,
and the script checks that no validation image matches a training image.

Exit status 1 with a message that names the ``apt-get install`` to run when a package is missing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

# Allow-lists: (file or wallpaper name, one-word note). Decided by looking at every image of the
# package (contact sheets, then full-resolution crops of the doubtful ones).
PHOTOS: dict[str, list[tuple[str, str]]] = {
    # /usr/share/backgrounds/mate/nature/<name>
    "mate-backgrounds": [
        ("Aqua.jpg", "macro"),
        ("Blinds.jpg", "macro"),
        ("Dune.jpg", "grass"),
        ("FreshFlower.jpg", "macro"),
        ("Garden.jpg", "flower"),
        ("GreenMeadow.jpg", "grass"),
        ("LadyBird.jpg", "macro"),
        ("RainDrops.jpg", "macro"),
        ("Storm.jpg", "landscape"),
        ("TwoWings.jpg", "macro"),
        ("Wood.jpg", "texture"),
        ("YellowFlower.jpg", "flower"),
    ],
    # /usr/share/wallpapers/<name>/contents/images/*: the largest real file (the others are symlinks)
    "plasma-workspace-wallpapers": [
        ("BytheWater", "toned"),
        ("ColdRipple", "mono"),
        ("ColorfulCups", "objects"),
        ("DarkestHour", "fog"),
        ("EveningGlow", "hdr"),
        ("FallenLeaf", "macro"),
        ("Grey", "mono"),
        ("Kite", "sky"),
        ("OneStandsOut", "moss"),
        ("Path", "forest"),
        ("summer_1am", "lake"),
    ],
    # /usr/share/backgrounds/<name>
    "lomiri-wallpapers-16.04": [
        ("Bridge_by_Sander_Klootwijk.jpg", "sky"),
        ("Dragonfly_by_Bolly.jpg", "foliage"),
        ("Picture_0B_by_freespace.jpg", "still"),
        ("Picture_1A_by_freespace.jpg", "brushes"),
        ("Wine_by_Jakkub_Mede.jpg", "interior"),
        ("aitzgorri_by_Aitzol_Berasategi.jpg", "landscape"),
        ("analogpattern_by_Peter_Nerlich.jpg", "texture"),
        ("free_by_Peter_Nerlich.jpg", "interior"),
        ("friends_by_Aitzol_Berasategi.jpg", "dogs"),
        ("greentock_by_Peter_Nerlich.jpg", "clock"),
        ("life_by_Aitzol_Berasategi.jpg", "stream"),
        ("picosdeeuropa_by_Aitzol_Berasategi.jpg", "mountain"),
        ("seeding_by_Clements_Engelhardt.jpg", "dandelions"),
        ("sunset_by_Aitzol_Berasategi.jpg", "landscape"),
    ],
    "lomiri-wallpapers-20.04": [
        ("Kleiber_by_Lukas_Baubkus.jpg", "bird"),
    ],
}

# Reviewed and left out, so that an image a new package version adds is reported as unreviewed.
NOT_PHOTOS: dict[str, list[tuple[str, str]]] = {
    "mate-backgrounds": [
        ("Arc-Colors-Transparent-Wallpaper.png", "vector"),
        ("Elephants.jpg", "painting"),
        ("Elephants_3840x2160.jpg", "painting"),
        ("Elephants_5640x3172.jpg", "painting"),
        ("Flow.png", "vector"),
        ("Gulp.png", "vector"),
        ("Silk.png", "vector"),
        ("Spring.png", "vector"),
        ("Waves.png", "vector"),
        ("Float-into-MATE.png", "logo"),
        ("GreenTraditional.jpg", "logo"),
        ("MATE-Stripes-Dark.png", "vector"),
        ("MATE-Stripes-Light.png", "vector"),
        ("Stripes.png", "render"),
        ("Ubuntu-Mate-Cold-no-logo.png", "blur"),
        ("Ubuntu-Mate-Dark-no-logo.png", "blur"),
        ("Ubuntu-Mate-Radioactive-no-logo.png", "blur"),
        ("Ubuntu-Mate-Warm-no-logo.png", "blur"),
    ],
    "plasma-workspace-wallpapers": [
        ("Altai", "render"),
        ("Autumn", "painting"),
        ("Canopee", "render"),
        ("Cascade", "render"),
        ("Cluster", "render"),
        ("Elarun", "vector"),
        ("Flow", "render"),
        ("FlyingKonqui", "cartoon"),
        ("Honeywave", "render"),
        ("IceCold", "render"),
        ("Kay", "vector"),
        ("Kokkini", "render"),
        ("MilkyWay", "vector"),
        ("Opal", "render"),
        ("PastelHills", "render"),
        ("Patak", "render"),
        ("SafeLanding", "illustration"),
        ("Shell", "render"),
        ("Volna", "render"),
    ],
    "lomiri-wallpapers-16.04": [
        ("umang_by_Abhishek_Mudgal.jpg", "gradient"),
    ],
    "lomiri-wallpapers-20.04": [
        ("Fossa_by_Jasper_Roks.jpg", "vector"),
        ("Infinite-Sea_by_Aury88.jpg", "composite"),
        ("Painting-Colors_by__herobrine7gamer.jpg", "vector"),
    ],
}

OUTPUT_PREFIX = {
    "mate-backgrounds": "mate",
    "plasma-workspace-wallpapers": "plasma",
    "lomiri-wallpapers-16.04": "lomiri1604",
    "lomiri-wallpapers-20.04": "lomiri2004",
}

# scikit-image's bundled real colour photographs with a clear licence (see README.md). Left out:
# camera/moon/... (grey), hubble_deep_field/retina/immunohistochemistry (scientific imaging),
# stereo_motorcycle (Middlebury 2014, no stated licence).
VAL_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
MOD = 4  # the model's scale factor


@dataclass(frozen=True)
class Photo:
    package: str
    name: str  # the allow-list entry
    path: Path  # the file chosen for it
    width: int
    height: int

    @property
    def output_name(self) -> str:
        return f"{OUTPUT_PREFIX[self.package]}_{Path(self.name).stem}.png"


def installed_files(package: str) -> list[Path] | None:
    """Regular files (no symlinks) that the installed Debian package owns, or None if it is absent."""
    try:
        status = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", package],
                                capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None  # not a Debian system
    if status.returncode != 0 or status.stdout.strip() != "installed":
        return None
    listing = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=True)
    paths = (Path(line) for line in listing.stdout.splitlines())
    return [p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.is_symlink()]


def entry_of(package: str, path: Path) -> str:
    """The allow-list key a packaged file belongs to: the wallpaper folder for Plasma, else the file."""
    if package == "plasma-workspace-wallpapers":
        return path.parts[path.parts.index("wallpapers") + 1]
    return path.name


def is_candidate(package: str, path: Path) -> bool:
    if package == "plasma-workspace-wallpapers":
        # contents/images/ only: screenshot.* is a thumbnail and images_dark/ a recoloured variant.
        return path.parent.name == "images"
    return True


def select_photos(files_by_package: dict[str, list[Path]]) -> tuple[list[Photo], list[str]]:
    """The largest file of each allow-listed entry, and warnings about images nobody reviewed."""
    photos, warnings = [], []
    for package, files in files_by_package.items():
        allowed = {name for name, _ in PHOTOS[package]}
        reviewed = allowed | {name for name, _ in NOT_PHOTOS[package]}
        groups: dict[str, list[Path]] = {}
        for path in files:
            entry = entry_of(package, path)
            if entry not in reviewed:
                warnings.append(f"unreviewed image in {package}: {path} (left out)")
            elif entry in allowed and is_candidate(package, path):
                groups.setdefault(entry, []).append(path)
        for name, _ in PHOTOS[package]:
            if name not in groups:
                raise SystemExit(f"error: {package} no longer ships {name}; review the allow-list "
                                 f"in {Path(__file__).name}")
            sized = [Photo(package, name, path, *image_size(path)) for path in groups[name]]
            photos.append(max(sized, key=lambda p: p.width * p.height))
    return photos, warnings


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    with Image.open(path) as image:
        return image.size


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; grey and alpha sources are converted."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"error: cannot decode {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def fingerprint(rgb: np.ndarray) -> tuple[float, np.ndarray]:
    """Aspect ratio and a 32x32 grey thumbnail: equal for one photo at different resolutions."""
    height, width = rgb.shape[:2]
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return width / height, cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)


def file_fingerprint(path: Path) -> tuple[float, np.ndarray]:
    # A JPEG decoded at 1/8 scale (DCT scaling) is fast and loses nothing a 32x32 thumbnail keeps.
    # The aspect ratio comes from the header: the reduced decode rounds small sizes up.
    bgr = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_8)
    if bgr is None:
        raise SystemExit(f"error: cannot decode {path}")
    width, height = image_size(path)
    return width / height, fingerprint(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))[1]


def same_picture(a: tuple[float, np.ndarray], b: tuple[float, np.ndarray]) -> bool:
    return abs(a[0] / b[0] - 1.0) < 0.02 and float(np.mean(np.abs(a[1] - b[1]))) < 6.0


def drop_duplicates(photos: list[Photo], prints: dict[Photo, tuple[float, np.ndarray]]
                    ) -> tuple[list[Photo], list[str]]:
    """Keep the largest copy where two allow-listed photos are the same picture (across packages too)."""
    kept: list[Photo] = []
    notes = []
    for photo in sorted(photos, key=lambda p: -p.width * p.height):
        twin = next((k for k in kept if same_picture(prints[k], prints[photo])), None)
        if twin is None:
            kept.append(photo)
        else:
            notes.append(f"duplicate: {photo.path} is {twin.path} at a lower resolution (left out)")
    return sorted(kept, key=lambda p: (list(PHOTOS).index(p.package), p.output_name)), notes


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write atomically, so an interrupted run never leaves a truncated PNG behind."""
    tmp = path.with_name(f".{path.name}.tmp.png")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 6]):
        raise SystemExit(f"error: cannot write {tmp}")
    tmp.replace(path)


def downscale(rgb: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return rgb
    height, width = rgb.shape[:2]
    return cv2.resize(rgb, (width // factor, height // factor), interpolation=cv2.INTER_AREA)


def mod_crop(rgb: np.ndarray, mod: int) -> np.ndarray:
    height, width = rgb.shape[:2]
    return rgb[: height - height % mod, : width - width % mod]


def validation_images() -> dict[str, np.ndarray]:
    import skimage.data

    return {name: mod_crop(getattr(skimage.data, name)(), MOD) for name in VAL_PHOTOS}


def warn_about_strays(folder: Path, expected: set[str]) -> None:
    strays = sorted(p.name for p in folder.glob("*.png") if p.name not in expected)
    if strays:
        print(f"warning: {folder} also holds files this script did not write: {', '.join(strays)}",
              file=sys.stderr)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "data" / "photos",
                        help="training folder (default: data/photos in the repository)")
    parser.add_argument("--val-out", type=Path, default=REPO / "data" / "val",
                        help="validation folder (default: data/val in the repository)")
    parser.add_argument("--downscale", type=int, choices=(1, 2, 3, 4), default=2,
                        help="area-downscale factor applied to every training photo (default: 2, "
                             "to suppress JPEG artefacts; 1 keeps native pixels)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be written and stop")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    files_by_package = {package: installed_files(package) for package in PHOTOS}
    missing = [package for package, files in files_by_package.items() if files is None]
    if missing:
        raise SystemExit(f"error: missing Debian package(s) {', '.join(missing)}; install them with: "
                         f"sudo apt-get install {' '.join(missing)}")

    photos, notes = select_photos(files_by_package)  # type: ignore[arg-type]
    prints = {photo: file_fingerprint(photo.path) for photo in photos}
    photos, duplicate_notes = drop_duplicates(photos, prints)
    for note in notes + duplicate_notes:
        print(note, file=sys.stderr)

    val = validation_images()
    val_prints = {name: fingerprint(rgb) for name, rgb in val.items()}
    for photo in photos:
        clash = [name for name, vp in val_prints.items() if same_picture(vp, prints[photo])]
        if clash:
            raise SystemExit(f"error: validation image {clash[0]} matches training photo {photo.path}")

    if args.dry_run:
        for photo in photos:
            print(f"{photo.output_name:50s} {photo.width}x{photo.height}  <- {photo.path}")
        return 0

    args.out.mkdir(parents=True, exist_ok=True)
    args.val_out.mkdir(parents=True, exist_ok=True)
    megapixels = 0.0
    manifest = ["output\twidth\theight\tpackage\tsource"]
    for photo in photos:
        rgb = downscale(read_rgb(photo.path), args.downscale)
        write_png(args.out / photo.output_name, rgb)
        height, width = rgb.shape[:2]
        megapixels += width * height / 1e6
        manifest.append(f"{photo.output_name}\t{width}\t{height}\t{photo.package}\t{photo.path}")
    (args.out / "SOURCES.tsv").write_text("\n".join(manifest) + "\n")
    warn_about_strays(args.out, {p.output_name for p in photos})

    val_megapixels = 0.0
    for name, rgb in val.items():
        write_png(args.val_out / f"{name}.png", rgb)
        val_megapixels += rgb.shape[0] * rgb.shape[1] / 1e6
    warn_about_strays(args.val_out, {f"{name}.png" for name in val})

    print(f"training: {len(photos)} photos, {megapixels:.1f} megapixels (downscale {args.downscale}) "
          f"in {args.out}")
    print(f"validation: {len(val)} photos, {val_megapixels:.2f} megapixels in {args.val_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
