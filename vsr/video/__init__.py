"""Video and image I/O around the upscaler: ffmpeg discovery, probing, decoding, encoding, the pipeline.

No TensorFlow here: the pipeline takes any object with ``scale`` and ``upscale(frames)``.
Public entry points live in :mod:`vsr.video.jobs` (``upscale_video``, ``upscale_image``,
``upscale_path``); the ``vsr upscale`` command is :mod:`vsr.video.command`.
"""
