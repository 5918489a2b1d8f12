"""The `vsr` command line: thin click commands over the library.

Errors the user can cause (``VsrError``) are printed as one line on stderr with a non-zero exit
code; ``vsr --debug ...`` shows the traceback instead, and the native libraries' start-up logs that
are otherwise filtered out (``vsr.native_logs``). Commands hold no logic a test would call.
"""

import sys

import click

from vsr.errors import Cancelled, VsrError


class VsrGroup(click.Group):
    """Maps ``VsrError`` and Ctrl-C to a one-line message and the error's exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except VsrError as err:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"vsr: error: {err}", err=True)
            ctx.exit(err.exit_code)
        except KeyboardInterrupt:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo("vsr: interrupted; partial output removed", err=True)
            ctx.exit(Cancelled().exit_code)


@click.group(cls=VsrGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="vsr", prog_name="vsr")
@click.pass_context
def main(ctx, debug):
    """Super-resolve videos and images x4 with SRGAN generators."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    from vsr.startup import cli_logging

    cli_logging()
    if not debug:
        from vsr.native_logs import filter_native_logs

        filter_native_logs()


def _parse_size(ctx, param, value):
    try:
        width, height = (int(v) for v in value.lower().split("x"))
        if width < 1 or height < 1:
            raise ValueError
    except ValueError:
        raise click.BadParameter(f"{value!r}: give WIDTHxHEIGHT in pixels, e.g. 180x144") from None
    return width, height


@main.command("models")
@click.option("--speed", is_flag=True,
              help="Each runtime's ms/frame on this machine and the one --runtime auto uses (cached, "
              "else timed now: seconds per model the first time).")
@click.option("--size", default="180x144", show_default=True, metavar="WxH", callback=_parse_size,
              help="With --speed: the frame size to time.")
@click.option("--model", "names", multiple=True, metavar="NAME",
              help="With --speed: only this model (repeatable) [default: every model with weights].")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="With --speed: time this generator weights file instead.")
@click.option("--verbose", "-v", is_flag=True, help="Say where the time goes (one line per phase).")
def models_command(speed, size, names, weights, verbose):
    """List the named models: scale, parameters, weights present, recorded scores.

    With --speed: how fast each runtime runs them here, and which one --runtime auto picks.
    """
    from vsr.models.registry import describe_models, describe_speed
    from vsr.startup import cli_logging

    cli_logging(verbose)
    if not speed and (names or weights):
        raise click.UsageError("--model and --weights go with --speed")
    for line in describe_speed(names, weights, size) if speed else describe_models():
        click.echo(line)


def _register_optional_commands():
    # Each command lives beside the library code it drives; importing them is cheap (no TensorFlow).
    from vsr.bench.command import bench_command
    from vsr.export_command import export_command
    from vsr.train.command import train_command
    from vsr.video.command import preview_command, upscale_command

    main.add_command(upscale_command)
    main.add_command(preview_command)
    main.add_command(bench_command)
    main.add_command(train_command)
    main.add_command(export_command)


_register_optional_commands()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
