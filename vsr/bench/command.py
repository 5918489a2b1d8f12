"""``vsr bench``: score models on Vid4, Set5, Set14, a folder of images or your own clip."""

from pathlib import Path

import click

DEFAULT_CHANNEL = "y"


def _default_models():
    """``bicubic`` plus every registered network whose bundled weights file is present."""
    from vsr.models.registry import MODELS
    from vsr.models.weights import read_manifest, weights_dir

    manifest, folder = read_manifest(), weights_dir()
    present = [name for name, spec in MODELS.items() if spec.arch is not None
               and name in manifest and (folder / manifest[name].file).is_file()]
    return ["bicubic"] + present


@click.command("bench")
@click.argument("target")
@click.option("--data", type=click.Path(exists=True, file_okay=False),
              help="Folder of the named dataset (default: the shared datasets folder, $VSR_DATASETS).")
@click.option("--models", "models", metavar="LIST",
              help="Comma-separated models scored side by side: names, or NAME=FILE for a "
                   "generator weights file such as a training run's export (default: bicubic plus "
                   "every model whose weights are present).")
@click.option("--degradation", type=click.Choice(["BI", "BD"], case_sensitive=False), default="BI",
              show_default=True, help="BI: MATLAB bicubic down; BD: Gaussian blur (sigma 1.6) + decimate.")
@click.option("--crop-border", type=click.IntRange(min=0),
              help="Pixels cropped from each edge before scoring [default: the scale for image "
                   "sets, 0 for video sets].")
@click.option("--channel", type=click.Choice(["y", "rgb"], case_sensitive=False),
              default=DEFAULT_CHANNEL, show_default=True, help="Score BT.601 Y or all RGB channels.")
@click.option("--tof/--no-tof", default=None,
              help="Score temporal consistency (tOF) [default: on for video sets].")
@click.option("--niqe/--no-niqe", default=True, show_default=True,
              help="Score NIQE, a no-reference naturalness measure (lower is more natural; "
                   "vsr.quality.niqe, its model fitted to the training photos).")
@click.option("--max-frames", type=click.IntRange(min=1),
              help="Score only the first N frames of each sequence or video.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Write table.txt, frames.csv, results.json and PSNR plots here.")
@click.option("--overwrite", is_flag=True, help="Replace the report files in an existing --out folder.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def bench_command(target, data, models, degradation, crop_border, channel, tof, niqe, max_frames,
                  out_dir, overwrite, quiet):
    """Score super-resolution quality (PSNR/SSIM, tOF, NIQE) on TARGET.

    TARGET is vid4, set5, set14, a folder of images, a Vid4-layout folder (GT/<seq>/, optional
    BIx4/ or BDx4/) or a video file. The ground truth is degraded x4 (unless LR frames are
    shipped), upscaled by each model and scored per frame.
    """
    from vsr.bench.datasets import open_dataset
    from vsr.bench.report import format_table, write_report
    from vsr.bench.runner import run_quality_bench
    from vsr.errors import OutputError
    from vsr.models.registry import load_labelled

    if out_dir and not overwrite and Path(out_dir).exists() and any(Path(out_dir).iterdir()):
        raise OutputError(f"report folder {out_dir} already has files: add --overwrite to replace "
                          "them, or choose another --out")
    dataset = open_dataset(target, data)
    names = [n.strip() for n in models.split(",") if n.strip()] if models else _default_models()
    results = run_quality_bench(dataset, load_labelled(names), degradation=degradation,
                                crop_border=crop_border, channel=channel.lower(),
                                progress=not quiet, temporal=tof, max_frames=max_frames, niqe=niqe)
    click.echo(format_table(results))
    if out_dir:
        written = write_report(results, out_dir)
        if not quiet:
            click.echo(f"wrote {len(written)} files to {out_dir}", err=True)
