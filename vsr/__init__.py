"""vsr: x4 video and image super-resolution with SRGAN generators.

Public API::

    import vsr
    up = vsr.load_model("perpix")                 # an Upscaler: uint8 (N,H,W,3) -> (N,4H,4W,3)
    vsr.upscale_video("in.mp4", "out.mp4", up)    # streams, keeps audio, atomic output
    vsr.upscale_image("in.png", "out.png", up)
    vsr.upscale_video("in.mp4", "part.mp4", up, start=83, duration=10)   # ffmpeg's -ss/-t
    vsr.preview("in.mp4", "pick.png", {"bicubic": vsr.load_model("bicubic"), "mse": vsr.load_model("mse")},
                at=83)                            # the same crop from each model, side by side
"""

import os

# TensorFlow's C++ start-up chatter (CUDA probes, oneDNN notes) is noise for a CLI user.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"


def load_model(name="perpix", weights=None, **options):
    """See ``vsr.models.registry.load_model``."""
    from vsr.models.registry import load_model as _load

    return _load(name, weights, **options)


def upscale_video(src, dst, upscaler, **options):
    """See ``vsr.video.jobs.upscale_video``."""
    from vsr.video.jobs import upscale_video as _run

    return _run(src, dst, upscaler, **options)


def upscale_image(src, dst, upscaler, **options):
    """See ``vsr.video.jobs.upscale_image``."""
    from vsr.video.jobs import upscale_image as _run

    return _run(src, dst, upscaler, **options)


def preview(src, dst, upscalers, **options):
    """See ``vsr.video.preview.make_preview``."""
    from vsr.video.preview import make_preview

    return make_preview(src, dst, upscalers, **options)


__all__ = ["load_model", "upscale_video", "upscale_image", "preview", "__version__"]
