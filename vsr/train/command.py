"""`vsr train`: a thin click command over ``vsr.train.trainer.Trainer``."""

import click

from vsr.models.registry import PRECISIONS


@click.command("train")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Recipe YAML (see training/recipes/).")
@click.option("--data", "data_dirs", multiple=True, type=click.Path(file_okay=False),
              help="HR image folder(s) to train on; replaces the recipe's train_dirs.")
@click.option("--val", "val_dir", type=click.Path(file_okay=False), help="Validation image folder.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Run folder for checkpoints, logs and export [runs/<recipe name>].")
@click.option("--steps", type=int, default=None, help="Train until this step (overrides the recipe).")
@click.option("--resume", is_flag=True, help="Continue from the run folder's latest checkpoint.")
@click.option("--init-weights", type=click.Path(exists=True), default=None,
              help="Start from this generator weights file (e.g. committed milestone weights), or "
                   "from a checkpoint or run folder: generator, Adam's moments and step, under any recipe.")
@click.option("--start-step", type=click.IntRange(min=0), default=None,
              help="With --init-weights: continue the step count, lr schedule and batch sequence.")
@click.option("--perceptual-weights", "feature_weights", type=click.Path(dir_okay=False), default=None,
              help="Weights file of the content-loss network (e.g. VGG19 ImageNet notop .h5).")
@click.option("--precision", type=click.Choice(("auto",) + PRECISIONS), default="auto", show_default=True,
              help="Compute precision of the generator and discriminator (weights, Adam and the "
                   "feature network stay float32). auto: float16 on a GPU, float32 on the CPU; bf16 "
                   "trains ~1.8x faster on CPUs with AMX and slower on those without; validation "
                   "always runs in float32.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or notes; errors only.")
def train_command(config_path, data_dirs, val_dir, out_dir, steps, resume, init_weights, start_step,
                  feature_weights, precision, quiet):
    """Train a generator from a recipe; resumable, logs to the run folder."""
    from vsr.train.config import TrainConfig
    from vsr.train.trainer import Trainer

    cfg = TrainConfig.from_yaml(config_path, train_dirs=list(data_dirs) or None, val_dir=val_dir,
                                steps=steps, feature_weights=feature_weights,
                                init_weights=init_weights, start_step=start_step)
    out_dir = out_dir or f"runs/{cfg.name}"
    from vsr.runtime import warn_if_emulated

    warn_if_emulated(precision)
    summary = Trainer(cfg, out_dir, progress=not quiet, precision=precision).run(resume=resume)
    click.echo(f"{cfg.name}: step {summary['step']}, best validation PSNR (Y) "
               f"{summary['best_psnr']:.2f} dB; exported to {out_dir}/export/")
