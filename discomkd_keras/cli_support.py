"""What the `discomkd-keras` commands share: the one-line error exit, NAME=VALUE
options, the quiet backend start-up, the errors a command reports as one line and
the summary of a run's test results."""

import contextlib
import sys
import traceback

import click

from discomkd_keras.methods import JOINT_CLASSIFIER


def fail(message):
    click.echo(f"Error: {message}", err=True)
    sys.exit(2)


def pairs(values, what, cast=str):
    """Parse repeated NAME=VALUE options into a dict."""
    out = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint=what)
        name, value = item.split("=", 1)
        try:
            out[name.strip()] = cast(value.strip())
        except ValueError:
            raise click.BadParameter(f"bad value in {item!r}", param_hint=what) from None
    return out


@contextlib.contextmanager
def quiet_backend_start(verbose=False):
    """Import Keras and its backend inside this block, hiding TensorFlow's C++
    start-up lines (oneDNN, CUDA probing), which go to the process's stderr
    before Python could filter them; `verbose` shows them."""
    if verbose:
        yield
        return
    from discomkd_keras.edge_demo.runtime import quiet_native_stderr

    with quiet_native_stderr():
        yield
        import keras
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf
            tf.config.list_physical_devices()  # the CUDA probe prints here


def errors():
    """The project's own error types: a user's mistake (data, option, run, export,
    model card), each said in one line (exit 2). Anything else is a bug: see
    `BugReportingGroup`."""
    from discomkd_keras.config import ConfigError
    from discomkd_keras.data import DataError
    from discomkd_keras.edge_demo.model_card import ModelCardError
    from discomkd_keras.export import ExportError
    from discomkd_keras.run_directory import RunError
    return DataError, ConfigError, ExportError, RunError, ModelCardError


BUG_EXIT = 1
INTERRUPTED_EXIT = 130  # 128 + SIGINT, as a shell reports it
REPORT_BUG = ("This is a bug in discomkd-keras, not a problem with your input: please report it "
              "on the project's issue tracker with the traceback above, the command line and "
              "`discomkd-keras --version`.")


class BackendCommand(click.Command):
    """A command that starts Keras and its backend (quietly, see quiet_backend_start)
    once its arguments are parsed: `--help` and usage errors never pay for it."""

    def invoke(self, ctx):
        with quiet_backend_start(verbose="--verbose" in sys.argv[1:]):
            pass
        return super().invoke(ctx)


# The sections of a command's --help, in this order; an option no section names goes to
# the last one.
HELP_SECTIONS = ("Data", "Model", "Training", "Run", "Advanced")


class SectionedCommand(BackendCommand):
    """A command whose --help lists its options in sections (`HELP_SECTIONS`), from the
    `section` attribute `help_sections` gives its options."""

    def format_options(self, ctx, formatter):
        records = [(getattr(p, "section", None), p.get_help_record(ctx))
                   for p in self.get_params(ctx)]
        records = [(s, r) for s, r in records if r is not None]
        if not any(s for s, _ in records):
            return super().format_options(ctx, formatter)
        for section in HELP_SECTIONS:
            rows = [r for s, r in records if (s or HELP_SECTIONS[-1]) == section]
            if rows:
                with formatter.section(f"{section} options"):
                    formatter.write_dl(rows)


def help_sections(**sections):
    """Decorate a click command (outermost): {section: "param names separated by spaces"}
    puts those options in that --help section."""
    def decorate(command):
        names = {name: section.replace("_", " ").capitalize()
                 for section, text in sections.items() for name in text.split()}
        for param in command.params:
            if param.name in names:
                param.section = names.pop(param.name)
        if names:
            raise AssertionError(f"help_sections names unknown options {sorted(names)}")
        return command
    return decorate


def deprecated(old, new):
    """The one-line note an old option name gets (stderr; the command goes on)."""
    click.echo(f"Note: {old} is deprecated; use {new}.", err=True)


class BugReportingGroup(click.Group):
    """A command group under which a user's mistake is one "Error:" line (exit 2,
    from `fail` or click's own usage errors) and anything unexpected keeps its
    traceback, with a request to report it (exit 1)."""

    command_class = SectionedCommand

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt as err:  # Ctrl-C: a run says how to resume (RunInterrupted)
            click.echo(f"\n{err}" if str(err) else "\nInterrupted.", err=True)
            sys.exit(INTERRUPTED_EXIT)
        except errors() as err:  # a command that did not catch its own
            fail(str(err))
        except Exception:
            traceback.print_exc()
            click.echo(f"\n{REPORT_BUG}", err=True)
            sys.exit(BUG_EXIT)


def image_size_items(values):
    """{modality or "*": [H, W]} from repeated `[MOD=]H,W` options."""
    out = {}
    for item in values:
        name, _, size = item.rpartition("=")
        try:
            h, w = (int(v) for v in size.lower().replace("x", ",").split(","))
        except ValueError:
            h = w = 0
        if h < 1 or w < 1:
            raise click.BadParameter(f"expected [MOD=]H,W with positive integers, got {item!r}",
                                     param_hint="--image-size")
        out[name.strip() or "*"] = [h, w]
    return out


def knob_value(text):
    """A scene knob's value: one number, or LOW,HIGH."""
    values = [float(v) for v in text.split(",")]
    return values if len(values) > 1 else values[0]


def print_summary(run_dir, results, config=None):
    teacher = JOINT_CLASSIFIER in results
    skipped = ((config or {}).get("data_report") or {}).get("skipped_files")
    if skipped:
        click.echo("\nFiles left out as unreadable (--skip-bad-files): "
                   + ", ".join(f"{m} {n:,}" for m, n in skipped.items())
                   + f" (examples in {run_dir}/config.json, data_report)")
    what = "the multi-modal teacher" if teacher else "each modality's classifier"
    click.echo(f"\nTest split, {what} at its best validation epoch:")
    click.echo(f"  {'model' if teacher else 'modality':<12}{'accuracy':>10}{'weighted F1':>13}"
               f"{'macro F1':>10}{'best epoch':>12}{'params':>12}")
    for m, r in results.items():
        macro = r.get("test_macro_f1")  # None in a results.json from before macro F1
        macro = f"{macro:>10.4f}" if macro is not None else f"{'-':>10}"
        click.echo(f"  {m:<12}{r['test_accuracy']:>10.4f}{r['test_weighted_f1']:>13.4f}{macro}"
                   f"{r['best_epoch']:>12}{r['parameters']:>12,}")
    if run_dir is None:  # a multi-worker run's worker other than the chief
        click.echo("\nThe chief saved the run; this worker kept no files.")
        return
    click.echo(f"\nRun saved in {run_dir} (plots in {run_dir}/plots). Next:")
    click.echo(f"  discomkd-keras evaluate {run_dir}")
    if teacher:
        click.echo(f"  discomkd-keras train --method kd --teacher {run_dir} ...  (same data options)")
    else:
        click.echo(f"  discomkd-keras export {run_dir} --modality {next(iter(results))}")
