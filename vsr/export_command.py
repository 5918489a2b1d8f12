"""``vsr export``: a thin click command over :func:`vsr.export.export_model`."""

from pathlib import Path

import click

from vsr.export import FORMATS, PRECISIONS


@click.command("export")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--model", default="perpix", show_default=True, help="Named model (see `vsr models`).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True,
              help="savedmodel: a folder for TensorFlow Serving / cloud prediction; "
                   "tflite: one LiteRT file for mobile and edge.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="float32", show_default=True,
              help="float16: half-size TFLite weights; float16 compute in the SavedModel (GPU serving).")
@click.option("--weights", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Generator weights file instead of the bundled ones.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def export_command(out, model, fmt, precision, weights, overwrite):
    """Export a model to OUT for serving: uint8 RGB frames (N, H, W, 3) in, (N, 4H, 4W, 3) out."""
    from vsr.export import export_model

    path = export_model(model, fmt, out, precision=precision, weights=weights, overwrite=overwrite)
    click.echo(f"wrote {path} ({fmt}, {precision})")
