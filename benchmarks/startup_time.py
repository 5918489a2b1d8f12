"""Where `vsr upscale`'s start-up time goes, before and after the cache of converted models.

    python benchmarks/startup_time.py                                  # this checkout: cold, then warm cache
    git worktree add /tmp/vsr-before 7d2551b                           # the code before the cache (issue #14)
    python benchmarks/startup_time.py --before /tmp/vsr-before         # adds its figures ("before")
    python benchmarks/startup_time.py --model mse --rounds 3 --inputs image

Each run is a fresh `python -m vsr upscale IN OUT --model mse` process, timed from its start to its
exit by this script (wall), on two inputs made from the bundled sample: a 72x72 PNG and the clip's
first second (15 frames of 160x90). This checkout runs with `-v`, which logs one line per start-up
phase (`vsr: start-up: NAME 1.23 s`: TensorFlow's import, building the generator, loading its
weights, folding BatchNorm, converting to LiteRT, timing the runtimes for `--runtime auto`, the first
model call, ...); they are tabled per run (a "LiteRT interpreter" line falls inside the timing or the
first call that needed it; the rest do not overlap). Runs:

* before: the checkout given by ``--before`` (no cache, LiteRT always), if any, ``--rounds`` times;
* cold: this checkout with an empty cache folder (converts, times TensorFlow against LiteRT, caches);
* warm: the same cache again, ``--rounds`` times: what every later run costs;

Repeated runs are reported as their median wall time with the range beside it (the phases shown
are those of the median run).
* warm --runtime tf: TensorFlow forced (imports it, builds and folds the model; no conversion).

The cache lives in a temporary folder (VSR_CACHE_DIR), never the user's. Run it on a quiet machine:
another busy process makes every figure larger.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASE = re.compile(r"vsr: start-up: (.+?) (\d+\.\d+) s$")  # perhaps after a progress bar's text
IN_ALL = re.compile(r"; (\d+\.\d+) s in all")


def ffmpeg_exe():
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_inputs(folder: Path) -> dict[str, Path]:
    sample = REPO / "samples" / "big_buck_bunny_4s.mp4"
    image, clip = folder / "in72.png", folder / "clip1s.mp4"
    ff = [ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(sample)]
    subprocess.run([*ff, "-frames:v", "1", "-vf", "crop=72:72", str(image)], check=True)
    subprocess.run([*ff, "-t", "1", "-c:v", "libx264", "-c:a", "aac", str(clip)], check=True)
    return {"image": image, "clip": clip}


def run_upscale(checkout: Path, src: Path, dst: Path, model: str, cache: Path, extra=(), verbose=True):
    env = {**os.environ, "PYTHONPATH": str(checkout), "VSR_CACHE_DIR": str(cache)}
    env.pop("VSR_NO_CACHE", None)
    cmd = [sys.executable, "-m", "vsr", "upscale", str(src), str(dst), "--model", model, "--overwrite",
           *extra, *(["-v"] if verbose else [])]
    started = time.perf_counter()
    # in the checkout: `python -m` puts the working folder first on sys.path, before PYTHONPATH
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=checkout)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    phases = []
    for line in proc.stderr.splitlines():
        m = PHASE.search(line.strip())
        if m:
            phases.append((m.group(1), float(m.group(2))))
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    m = IN_ALL.search(summary)
    choice = next((line.split("vsr: runtime ", 1)[1] for line in proc.stderr.splitlines()
                   if "vsr: runtime auto for" in line), "")
    return {"wall": wall, "phases": phases, "summary": summary, "in_all": float(m.group(1)) if m else None,
            "choice": choice}


def median_run(runs: list[dict]) -> dict:
    """The run of median wall time (the upper one of an even count), with every run's wall time."""
    ordered = sorted(runs, key=lambda r: r["wall"])
    return {**ordered[len(ordered) // 2], "walls": [r["wall"] for r in runs]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mse", help="named model (default mse, the bundled one)")
    parser.add_argument("--before", type=Path, help="a checkout of the code before the cache, for comparison")
    parser.add_argument("--rounds", type=int, default=3, help="before and warm runs per input (median shown; default 3)")
    parser.add_argument("--inputs", default="image,clip", help="comma-separated: image, clip (default both)")
    args = parser.parse_args(argv)
    if args.before:
        args.before = args.before.resolve()
        if not (args.before / "vsr").is_dir():
            parser.error(f"--before {args.before}: no vsr/ package there (a checkout of the repository)")
    kinds = [k.strip() for k in args.inputs.split(",") if k.strip()]

    rows, details = [], []
    with tempfile.TemporaryDirectory(prefix="vsr-startup-") as tmp:
        tmp = Path(tmp)
        inputs = make_inputs(tmp)
        for kind in kinds:
            src = inputs[kind]
            dst = tmp / f"out-{kind}{src.suffix}"
            cache = tmp / f"cache-{kind}"
            runs = []
            rounds = max(1, args.rounds)
            if args.before:
                before = [run_upscale(args.before, src, dst, args.model, tmp / "unused", verbose=False)
                          for _ in range(rounds)]
                runs.append(("before (--before checkout)", median_run(before)))
            runs.append(("cold cache", run_upscale(REPO, src, dst, args.model, cache)))
            warm = [run_upscale(REPO, src, dst, args.model, cache) for _ in range(rounds)]
            runs.append(("warm cache", median_run(warm)))
            runs.append(("warm cache, --runtime tf",
                         run_upscale(REPO, src, dst, args.model, cache, extra=("--runtime", "tf"))))
            for label, r in runs:
                rows.append((kind, label, r))
                details.append((f"{kind}, {label}", r))

    print(f"\n`vsr upscale --model {args.model}`, a fresh process per run; wall = process start to exit\n")
    print("| input | run | wall s | range s | summary's 'in all' s |")
    print("|---|---|---:|---:|---:|")
    for kind, label, r in rows:
        in_all = f"{r['in_all']:.1f}" if r["in_all"] is not None else "-"
        spread = f"{min(r['walls']):.1f}-{max(r['walls']):.1f} ({len(r['walls'])} runs)" if "walls" in r else "1 run"
        print(f"| {kind} | {label} | {r['wall']:.1f} | {spread} | {in_all} |")
    for title, r in details:
        if not r["phases"]:
            continue
        print(f"\n{title}: {r['wall']:.1f} s wall")
        for name, seconds in r["phases"]:
            print(f"  {seconds:7.2f} s  {name}")
        if r["choice"]:
            print(f"  (runtime {r['choice']})")
        print(f"  summary: {r['summary']}")


if __name__ == "__main__":
    main()
