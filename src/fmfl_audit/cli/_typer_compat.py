"""Help text under typer < 0.21, which the `flower` extra brings in (Flower pins `typer<0.21`).

Those typer releases set an argument's help on the object and then call click's `Argument`
constructor without it; click >= 8.5 takes a `help` argument of its own and resets the attribute
to None, so `--help` lost every argument's text (and once restored, click's own "Positional
arguments" section would repeat typer's "Arguments"). They also escape `[required]` for Rich even
when Rich markup is off, printing `\\[required]`. This restores the text, keeps typer's section
only, and unescapes; on typer >= 0.21 it does nothing.
"""

from __future__ import annotations

from typing import Any


def _typer_below(version: tuple[int, int]) -> bool:
    from importlib.metadata import version as dist_version

    try:
        parts = dist_version("typer").split(".")[:2]
        return (int(parts[0]), int(parts[1])) < version
    except (ValueError, IndexError):
        return False


def patch_argument_help() -> None:
    """Restore argument help text and unescape `\\[...]` on typer < 0.21 (idempotent)."""
    if not _typer_below((0, 21)):
        return
    import typer.core

    cls: Any = typer.core.TyperArgument
    if getattr(cls, "_fmfl_help_patched", False):
        return
    init = cls.__init__

    def __init__(self: Any, *args: Any, help: str | None = None, **kwargs: Any) -> None:
        init(self, *args, help=help, **kwargs)
        self.help = help

    cls.__init__ = __init__
    params: tuple[Any, ...] = (typer.core.TyperArgument, typer.core.TyperOption)
    for param in params:
        param.get_help_record = _unescaped(param.get_help_record)
    cls._fmfl_help_patched = True
    commands: tuple[Any, ...] = (typer.core.TyperCommand, typer.core.TyperGroup)
    for command in commands:
        if hasattr(command, "format_arguments"):  # click >= 8.5: typer lists them itself
            command.format_arguments = lambda self, ctx, formatter: None


def _unescaped(record: Any) -> Any:
    def get_help_record(self: Any, ctx: Any) -> Any:
        rv = record(self, ctx)
        return None if rv is None else (rv[0], rv[1].replace("\\[", "["))

    return get_help_record
