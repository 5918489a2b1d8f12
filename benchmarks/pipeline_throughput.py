"""Pipeline throughput vs the engine alone, and peak memory for short and long inputs.

    python benchmarks/pipeline_throughput.py                      # bicubic, 120 frames of 160x90
    python benchmarks/pipeline_throughput.py --model perpix       # the real generator
    python benchmarks/pipeline_throughput.py --engine-delay 0.2   # a stand-in engine costing 0.2 s/frame
    python benchmarks/pipeline_throughput.py --rss                # peak RSS for 10 s and 60 s inputs

Throughput: one clip (testsrc2 + sine, made with ffmpeg) is decoded into memory and the engine is
timed alone on it (same batches); then the whole pipeline (decode -> engine -> encode, audio copied)
is timed on the same clip. Both after one warm-up batch. The ratio pipeline/engine is what the
overlap buys: near 1.0 means decoding and encoding hide behind the model. With a fast engine
(bicubic) the encoder, working at 4x the resolution, is the bottleneck and the ratio says so.

Memory: each input length runs in a fresh process, so ``ru_maxrss`` is that run's peak; ffmpeg's
peak (largest child) is reported separately.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vsr.video.ffmpeg import ffmpeg_exe
from vsr.video.jobs import upscale_video
from vsr.video.reader import read_frames


def make_clip(path: Path, size: str, fps: int, frames: int) -> Path:
    inputs = f"-f lavfi -i testsrc2=s={size}:r={fps} -f lavfi -i sine=d={frames / fps}"
    encode = f"-frames:v {frames} -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac"
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *inputs.split(), *encode.split(), str(path)],
        check=True,
    )
    return path


class Delayed:
    """Wraps an upscaler and sleeps ``delay`` s per frame: a slow engine that leaves the CPU to ffmpeg."""

    def __init__(self, inner, delay: float):
        self.inner, self.delay, self.scale = inner, delay, inner.scale

    def upscale(self, frames):
        time.sleep(self.delay * len(frames))
        return self.inner.upscale(frames)


def load(args):
    import vsr

    upscaler = vsr.load_model(args.model, weights=args.weights, batch=args.batch)
    return Delayed(upscaler, args.engine_delay) if args.engine_delay else upscaler


def throughput(args) -> dict:
    upscaler = load(args)
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "in.mp4", args.size, args.fps, args.frames)
        frames = read_frames(clip)
        upscaler.upscale(frames[: args.batch])  # warm-up (compilation, caches) outside both timings
        start = time.perf_counter()
        for i in range(0, len(frames), args.batch):
            upscaler.upscale(frames[i : i + args.batch])
        engine_s = time.perf_counter() - start
        summary = upscale_video(
            clip, Path(tmp) / "out.mp4", upscaler, batch=args.batch, preset=args.preset, progress=False
        )
    engine_fps = len(frames) / engine_s
    return {
        "model": args.model + (f" + {args.engine_delay} s/frame" if args.engine_delay else ""),
        "frames": len(frames),
        "input": args.size,
        "batch": args.batch,
        "preset": args.preset,
        "engine_fps": round(engine_fps, 2),
        "pipeline_fps": round(summary.fps, 2),
        "ratio": round(summary.fps / engine_fps, 3),
    }


def rss_child(args) -> dict:
    """Run one pipeline job in this (fresh) process and report its peak memory."""
    upscaler = load(args)
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "in.mp4", args.size, args.fps, args.seconds * args.fps)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        summary = upscale_video(
            clip, Path(tmp) / "out.mp4", upscaler, batch=args.batch, preset=args.preset, progress=False
        )
    return {
        "seconds": args.seconds,
        "frames": summary.frames,
        "input": args.size,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_run_mb": round(before / 1024, 1),
        "ffmpeg_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "pipeline_fps": round(summary.fps, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="bicubic")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", default="160x90", help="input frame size WxH")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--frames", type=int, default=120, help="clip length for the throughput run")
    parser.add_argument("--preset", default="medium", help="libx264 preset of the output")
    parser.add_argument("--engine-delay", type=float, default=0.0, help="extra seconds per frame (simulated model)")
    parser.add_argument("--rss", action="store_true", help="measure peak RSS for 10 s and 60 s inputs instead")
    parser.add_argument("--child-seconds", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child_seconds is not None:
        args.seconds = args.child_seconds
        print(json.dumps(rss_child(args)))
        return
    if not args.rss:
        result = throughput(args)
        print(json.dumps(result))
        print(
            f"engine alone {result['engine_fps']} fps, whole pipeline {result['pipeline_fps']} fps: "
            f"ratio {result['ratio']:.3f}"
        )
        return
    passthrough = [a for a in sys.argv[1:] if a != "--rss"]
    for seconds in (10, 60):
        out = subprocess.run(
            [sys.executable, __file__, *passthrough, "--child-seconds", str(seconds)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(result))
        print(
            f"{seconds} s input ({result['frames']} frames {result['input']}): peak RSS {result['peak_rss_mb']} MB "
            f"(before the run {result['rss_before_run_mb']} MB), ffmpeg peak {result['ffmpeg_peak_rss_mb']} MB"
        )


if __name__ == "__main__":
    main()
