"""Peak memory of `vsr upscale` on a 1080p input (x4: 7680x4320 output), bicubic and the generator.

    python benchmarks/memory_peak.py                              # both models, 3 frames, default budget
    python benchmarks/memory_peak.py --models bicubic --frames 30 --max-memory 1G
    python benchmarks/memory_peak.py --codec libx264 --preset medium   # the encoder's own peak at 8K

Each case runs in a fresh process (so its peak is that run's alone) through the same call as the CLI
(``upscale_path`` with a ``ModelFactory``) and reports, separately:

- ``python peak``: the vsr process's own peak RSS (``VmHWM``): what ``--max-memory`` bounds;
- ``ffmpeg peak``: the ffmpeg children's, summed, sampled every 0.2 s with psutil (the x264 encoder
  at 8K). Not ``RUSAGE_CHILDREN``: a child started by vfork reports the parent's RSS at that moment;
- ``notes``: the summary's, which say when the memory plan (``vsr.video.memory``) lowered the batch
  or the engine's tiles to fit the budget.

``/usr/bin/time -v vsr upscale ...`` reports the larger of the two peaks, not their sum: at 8K with
libx264 that is usually the encoder. The generator is the full-size one (16 blocks, 64 channels) with
random weights, as in ``benchmarks/engine_speed.py``: memory does not depend on the weights' values.
The output is FFV1 by default, the cheapest encoder at 8K, since the point is vsr's memory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_clip(path: Path, size: str, frames: int) -> Path:
    from vsr.video.ffmpeg import ffmpeg_exe

    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
         "-frames:v", str(frames), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )
    return path


def child(args) -> None:
    """One case in this (fresh) process; prints one JSON line."""
    from vsr.video.command import ModelFactory
    from vsr.video.jobs import upscale_path

    weights = None
    model = args.model
    if model == "generator":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from engine_speed import random_weights_file

        weights = random_weights_file(args.tmp)
        model = "perpix"
    options = {"max_memory": args.max_memory} if args.max_memory else {}
    children_peak = [0]

    def sample():
        import psutil

        me = psutil.Process()
        while True:
            total = 0
            for kid in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += kid.memory_info().rss
            children_peak[0] = max(children_peak[0], total)
            time.sleep(0.2)

    threading.Thread(target=sample, daemon=True).start()
    out = Path(args.tmp) / f"out-{args.model}.{'mkv' if args.codec == 'ffv1' else 'mp4'}"
    started = time.perf_counter()
    [result] = upscale_path(
        args.clip, out, ModelFactory(model, weights, args.batch, None, "float32", args.runtime),
        batch=args.batch, codec=args.codec, preset=args.preset, overwrite=True, progress=False,
        segment_seconds=0, **options,
    )
    hwm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print(json.dumps({
        "model": args.model,
        "frames": result.summary.frames,
        "seconds": round(time.perf_counter() - started, 1),
        "python_peak_gb": round(hwm / 1e9, 2),
        "ffmpeg_peak_gb": round(children_peak[0] / 1e9, 2),
        "notes": result.summary.notes,
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bicubic,generator", help="comma-separated: bicubic, generator")
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--max-memory", default=None, help="passed as --max-memory (default: vsr's default budget)")
    parser.add_argument("--codec", default="ffv1")
    parser.add_argument("--preset", default=None)
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--clip", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "in.mp4", args.size, args.frames)
        print(f"{args.size} input, {args.frames} frames, --batch {args.batch}, "
              f"--max-memory {args.max_memory or '(default)'}, {args.codec} output")
        print(f"{'model':<10} {'python peak':>12} {'ffmpeg peak':>12} {'seconds':>8}  notes")
        for model in args.models.split(","):
            passthrough = [a for a in sys.argv[1:] if not a.startswith("--models")]
            if "--models" in sys.argv:
                i = sys.argv.index("--models")
                passthrough = sys.argv[1:i] + sys.argv[i + 2:]
            proc = subprocess.run(
                [sys.executable, __file__, *passthrough, "--child", "--model", model, "--clip", str(clip), "--tmp", tmp],
                capture_output=True, text=True, check=False,
            )
            if proc.returncode != 0:
                print(f"{model:<10} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{model:<10} {r['python_peak_gb']:>9.2f} GB {r['ffmpeg_peak_gb']:>9.2f} GB {r['seconds']:>8.1f}  "
                  f"{'; '.join(r['notes']) or '-'}")


if __name__ == "__main__":
    main()
