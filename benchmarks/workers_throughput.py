"""Segmented runs: throughput of 1 vs 2 worker processes, and the time a resume saves after a crash.

    python benchmarks/workers_throughput.py                        # bicubic, 240 frames of 160x90
    python benchmarks/workers_throughput.py --engine-delay 0.05    # + 50 ms a frame that leaves the CPU idle
    python benchmarks/workers_throughput.py --model perpix --weights gen.weights.h5

Each measurement is one fresh process running a whole job (interpreter start, model load in each
worker, decode -> upscale -> encode of every segment, the final join), timed from outside, as a user
would see it. ``--engine-delay`` wraps the model in a sleep per frame: a stand-in for a GPU, which keeps
the model's time off the CPU, so it shows what N workers give where the hardware has N devices.

Resume: a segmented run (1 worker) is killed with SIGKILL once half its segments are done, then the
same command is run again; the saving is (uninterrupted run) - (the run after the kill).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline_throughput import make_clip  # testsrc2 + sine, x264 defaults (a keyframe every 250 frames)


class Delayed:
    """Builds the named model and sleeps ``delay`` s per frame in it (picklable: a worker builds its own)."""

    def __init__(self, factory, delay: float):
        self.factory, self.delay = factory, delay

    def __call__(self):
        return _Sleepy(self.factory(), self.delay)

    def identity(self) -> dict:
        return {**self.factory.identity(), "engine_delay": self.delay}

    def gpus(self) -> int:
        return 0


class _Sleepy:
    def __init__(self, inner, delay):
        self.inner, self.delay, self.scale = inner, delay, inner.scale

    def upscale(self, frames):
        time.sleep(self.delay * len(frames))
        return self.inner.upscale(frames)


def job(args) -> None:
    """One whole job in this process (``--job``); prints its summary as JSON."""
    from vsr.video.command import ModelFactory
    from vsr.video.jobs import upscale_path

    factory = ModelFactory(args.model, args.weights, args.batch)
    if args.engine_delay:
        # Pickled by module name so worker processes can import it: this file, not __main__.
        from workers_throughput import Delayed as Importable

        factory = Importable(factory, args.engine_delay)
    [result] = upscale_path(
        args.job[0],
        args.job[1],
        factory,
        workers=args.workers,
        segment_seconds=args.segment_seconds,
        batch=args.batch,
        preset=args.preset,
        progress=False,
    )
    s = result.summary
    print(json.dumps({"frames": s.frames, "seconds": s.seconds, "notes": s.notes}), flush=True)


def job_command(args, src: Path, dst: Path, workers: int) -> list[str]:
    command = [sys.executable, __file__, "--job", str(src), str(dst), "--workers", str(workers)]
    command += ["--model", args.model, "--batch", str(args.batch), "--preset", args.preset]
    command += ["--segment-seconds", str(args.segment_seconds), "--engine-delay", str(args.engine_delay)]
    return command + (["--weights", str(args.weights)] if args.weights else [])


def timed(command: list[str]) -> tuple[float, dict]:
    start = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - start, json.loads(out.strip().splitlines()[-1])


def killed_half_way(command: list[str], work: Path, segments: int) -> tuple[float, int]:
    """Run ``command`` and SIGKILL it once half its segments are done; (seconds it ran, segments done)."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    while proc.poll() is None:
        done = len([p for p in work.glob("seg-*.json") if p.stat().st_size]) if work.exists() else 0
        if done >= segments // 2:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    return time.perf_counter() - start, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bicubic")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", default="160x90")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--segment-seconds", type=float, default=1.0)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--engine-delay", type=float, default=0.0, help="seconds per frame added to the model")
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--job", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.job:
        return job(args)

    segments = max(1, round(args.frames / args.fps / args.segment_seconds))
    report: dict = {
        "model": args.model + (f" + {args.engine_delay} s/frame" if args.engine_delay else ""),
        "clip": f"{args.frames} frames {args.size}, {segments} segments of {args.segment_seconds} s",
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory() as tmp:
        src = make_clip(Path(tmp) / "in.mp4", args.size, args.fps, args.frames)
        for workers in (1, 2):
            wall, summary = timed(job_command(args, src, Path(tmp) / f"w{workers}.mp4", workers))
            report[f"workers_{workers}"] = {"wall_s": round(wall, 2), "fps": round(summary["frames"] / wall, 1)}
        report["speedup_2_vs_1"] = round(report["workers_1"]["wall_s"] / report["workers_2"]["wall_s"], 2)

        dst = Path(tmp) / "resumed.mp4"
        command = job_command(args, src, dst, 1)
        ran, done = killed_half_way(command, Path(f"{dst}.vsr-work"), segments)
        rerun, summary = timed(command)
        full = report["workers_1"]["wall_s"]
        report["resume"] = {
            "uninterrupted_s": full,
            "killed_after_s": round(ran, 2),
            "segments_done_at_kill": f"{done}/{segments}",
            "rerun_s": round(rerun, 2),
            "saved_s": round(full - rerun, 2),
            "saved_fraction": round(1 - rerun / full, 2),
            "notes": summary["notes"],
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
