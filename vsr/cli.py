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
    if not debug:
        from vsr.native_logs import filter_native_logs

        filter_native_logs()


@main.command("models")
def models_command():
    """List the named models: scale, parameters, weights present, recorded scores."""
    from vsr.models.registry import describe_models

    for line in describe_models():
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
