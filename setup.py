from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent

setup(
    name="vsr",
    version="0.1.0",
    description="x4 video and image super-resolution with SRGAN generators (Per-Pix loss)",
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["vsr", "vsr.*"]) + ["vsr._weights"],
    # The repository keeps weights at the top level (design card); installs carry them inside
    # the package so `pip install .` finds them too (see vsr/models/weights.py).
    package_dir={"vsr._weights": "weights"},
    package_data={"vsr._weights": ["*.h5", "*.json", "*.md"], "vsr.quality": ["niqe_pristine.json"]},
    include_package_data=False,
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.3",
        "numpy>=1.26",
        "opencv-python-headless>=4.8",
        "pillow>=9.4",  # EXIF of images (vsr/video/image.py)
        "ffmpeg-python>=0.2",
        "imageio-ffmpeg>=0.5",
        "av>=18",  # probing (vsr/video/probe.py): FFmpeg's structures, its own libraries
        "click>=8.1",
        "tqdm>=4.66",
        "h5py>=3.10",
        # LiteRT/XNNPACK runs the generator ~1.75x faster than TensorFlow on the CPU
        # (benchmarks/engine_speed.py); `--runtime auto` falls back to TensorFlow without it.
        "ai-edge-litert>=2.0; platform_system != 'Windows'",
    ],
    extras_require={
        "train": ["pyyaml>=6", "tensorboard>=2.16", "matplotlib>=3.8"],
        # benchmarks/engine_speed.py's outside reference.
        "bench": ["openvino>=2024.0"],
        "dev": ["pytest>=8", "scikit-image>=0.22", "matplotlib>=3.8", "pyyaml>=6", "psutil>=5.9",
                "jax[cpu]>=0.4.30"],
    },
    entry_points={"console_scripts": ["vsr=vsr.cli:main"]},
)
