"""The ``audited-openai`` command line: a thin layer over :mod:`audited_openai.query`.

Exit codes: 0 success, 1 nothing matched the id(s) given, 2 usage error (bad option
or value), 3 the database cannot be used (missing, locked, corrupt, or written by a
newer audited_openai). Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click
from rich.console import Console
from rich.table import Table

from audited_openai import query
from audited_openai._errors import (
    AuditedOpenAIError,
    InvalidLogError,
    LogNotFoundError,
)
from audited_openai._repository import GenerationLogRepository

if TYPE_CHECKING:
    from collections.abc import Callable

    from audited_openai._models import GenerationContext

F = TypeVar("F", bound="Callable[..., Any]")
EXIT_NO_MATCH = 1
EXIT_USAGE = 2
EXIT_DATABASE = 3
CLI_BUSY_TIMEOUT_MS = 5_000
_SPAN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

SUMMARY = (
    "id",
    "logged_at",
    "generation_status",
    "model_name",
    "prompt_template_name",
    "prompt_template_version",
    "definitie_id",
    "attempt",
    "tokens_total",
    "duration_ms",
    "error_type",
)


def parse_span(text: str) -> timedelta:
    """Parse ``30s``, ``15m``, ``2h``, ``7d`` or ``1w``."""
    match = _SPAN.match(text)
    if not match:
        raise click.BadParameter(f"{text!r} is not a span like 15m, 2h or 7d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_moment(text: str) -> datetime:
    """Parse a span back from now (``2h``), a date, or an ISO datetime (UTC if naive)."""
    if _SPAN.match(text):
        return datetime.now(timezone.utc) - parse_span(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date, a datetime or a span like 7d") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _moment(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    return None if value is None else parse_moment(value)


def _span(_ctx: click.Context, _param: click.Parameter, value: str) -> timedelta:
    return parse_span(value)


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _guarded(func: F) -> F:
    """Turn the library's errors into one line on stderr and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LogNotFoundError as exc:
            _fail(str(exc), EXIT_NO_MATCH)
        except InvalidLogError as exc:
            _fail(str(exc), EXIT_USAGE)
        except (AuditedOpenAIError, OSError) as exc:
            _fail(_database_message(exc), EXIT_DATABASE)

    return wrapper  # type: ignore[return-value]


def _database_message(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _repo(ctx: click.Context, *, create: bool = False) -> GenerationLogRepository:
    path = ctx.obj["db"]
    if not create and not Path(path).exists():
        _fail(f"no database at {path} (set --db or AUDITED_OPENAI_DB)", EXIT_DATABASE)
    return GenerationLogRepository(path, busy_timeout_ms=CLI_BUSY_TIMEOUT_MS)


def _filters(options: dict[str, Any]) -> dict[str, Any]:
    names = ("since", "until", "status", "model", "template_name", "template_version")
    found = {name: options[name] for name in names if options.get(name) is not None}
    if options.get("definitie") is not None:
        found["definitie_id"] = options["definitie"]
    if options.get("search"):
        found["search"] = options["search"]
    return found


def filter_options(func: F) -> F:
    """The filters shared by ``logs`` and ``export``."""
    for option in reversed(
        [
            click.option(
                "--since", callback=_moment, help="From this date, datetime or span (7d)."
            ),
            click.option("--until", callback=_moment, help="Up to this date, datetime or span."),
            click.option(
                "--status", type=click.Choice(["pending", "success", "failed", "timeout"])
            ),
            click.option("--model", help="Model name as sent."),
            click.option("--template-name", help="Prompt template name."),
            click.option("--template-version", help="Prompt template version."),
            click.option("--definitie", type=int, help="Definitie id."),
            click.option("--search", help='Words or "a phrase" in prompt or response.'),
        ]
    ):
        func = option(func)
    return func


def _console() -> Console:
    return Console(soft_wrap=False)


def _emit_table(
    rows: list[dict[str, Any]], columns: tuple[str, ...], title: str | None = None
) -> None:
    console = _console()
    if console.is_terminal:
        table = Table(title=title)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
        console.print(table)
        return
    if title:
        click.echo(f"# {title}")
    click.echo("\t".join(columns))
    for row in rows:
        click.echo("\t".join("" if row.get(c) is None else str(row.get(c)) for c in columns))


def _summary(ctx: GenerationContext) -> dict[str, Any]:
    response, error = ctx.response, ctx.error
    return {
        "id": ctx.id,
        "logged_at": ctx.to_dict()["logged_at"],
        "generation_status": ctx.status,
        "model_name": ctx.prompt.model_params.name,
        "prompt_template_name": ctx.prompt.template_name,
        "prompt_template_version": ctx.prompt.template_version,
        "definitie_id": ctx.definitie_id,
        "attempt": ctx.attempt,
        "tokens_total": response.tokens_total if response else None,
        "duration_ms": (response.duration_ms if response else None)
        or (error.duration_ms if error else None),
        "error_type": error.error_type if error else None,
    }


def _json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    envvar="AUDITED_OPENAI_DB",
    default="generation_logs.db",
    show_default=True,
    help="The database file (or set AUDITED_OPENAI_DB).",
)
@click.version_option(package_name="audited-openai")
@click.pass_context
def main(ctx: click.Context, db: str) -> None:
    """Read, export and maintain the audit trail of audited OpenAI calls."""
    ctx.ensure_object(dict)
    ctx.obj["db"] = db


@main.command()
@click.option("-n", "limit", type=click.IntRange(min=0), default=20, show_default=True)
@click.option("--after-id", type=int, help="Continue a listing after this id.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@filter_options
@click.pass_context
@_guarded
def logs(
    ctx: click.Context, /, limit: int, after_id: int | None, as_json: bool, **options: Any
) -> None:
    """List generation logs, newest first."""
    repo = _repo(ctx)
    found = query.history(repo, limit=limit, after_id=after_id, **_filters(options))
    rows = [_summary(c) for c in found]
    if as_json:
        _json(rows)
    else:
        _emit_table(rows, SUMMARY)


@main.command()
@click.argument("log_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@_guarded
def show(ctx: click.Context, log_id: int, as_json: bool) -> None:
    """Show one log in full, including the whole prompt."""
    data = _repo(ctx).get(log_id).to_dict()
    if as_json:
        _json(data)
        return
    prompt = data.pop("prompt")
    response, error = data.pop("response"), data.pop("error")
    request_json = data.pop("request_json")
    for key, value in {**data, **{k: v for k, v in prompt.items() if k != "full_text"}}.items():
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value
        click.echo(f"{key}: {shown}")
    for part, values in (("response", response), ("error", error)):
        if values:
            for key, value in values.items():
                if key not in ("content", "traceback") and value is not None:
                    click.echo(f"{part}.{key}: {value}")
    click.echo("\n--- prompt ---")
    click.echo(prompt["full_text"])
    if response and response.get("content") is not None:
        click.echo("\n--- response ---")
        click.echo(response["content"])
    if error and error.get("traceback"):
        click.echo("\n--- traceback ---")
        click.echo(error["traceback"].rstrip())
    click.echo("\n--- request_json ---")
    click.echo(request_json or "")


@main.command()
@click.argument("a", type=int)
@click.argument("b", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@_guarded
def diff(ctx: click.Context, a: int, b: int, as_json: bool) -> None:
    """Diff the prompts of two logs and list the parameters that differ."""
    result = query.diff_prompts(_repo(ctx), a, b)
    if as_json:
        _json({"a": a, "b": b, "diff": result.diff, "parameters": result.parameters})
        return
    click.echo(result.diff or f"(the prompts of {a} and {b} are identical)")
    rows = [{"parameter": k, str(a): v[0], str(b): v[1]} for k, v in result.parameters.items()]
    if rows:
        _emit_table(rows, ("parameter", str(a), str(b)), title="parameters that differ")


@main.command()
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), required=True)
@filter_options
@click.pass_context
@_guarded
def export(
    ctx: click.Context, /, fmt: Literal["csv", "jsonl"], output: str, **options: Any
) -> None:
    """Export the matching logs as CSV or JSON lines, streaming."""
    repo = _repo(ctx)
    console = Console(stderr=True)
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8", newline="") as out:  # noqa: PTH123 - fd from os.open
        if console.is_terminal:
            from rich.progress import Progress  # noqa: PLC0415 - only on a terminal

            with Progress(console=console) as progress:
                task = progress.add_task("exporting", total=None)
                count = query.export(
                    repo,
                    fmt,
                    out,
                    progress=lambda n: progress.update(task, completed=n),
                    **_filters(options),
                )
        else:
            count = query.export(repo, fmt, out, **_filters(options))
    click.echo(f"exported {count} rows to {output}", err=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--since", callback=_moment, help="From this date, datetime or span (7d).")
@click.pass_context
@_guarded
def stats(ctx: click.Context, as_json: bool, since: datetime | None) -> None:
    """Token usage per day, failure rate per template, durations, most expensive."""
    data = query.stats(_repo(ctx), **({"since": since} if since else {}))
    if as_json:
        _json(data)
        return
    _emit_table(
        [{"status": k, "count": v} for k, v in data["by_status"].items()],
        ("status", "count"),
        title="generations by status",
    )
    sections = (
        ("token_usage_by_day", "tokens per day (successful generations)"),
        ("failure_rate_by_template", "failure rate by template"),
        ("duration_percentiles", "duration percentiles (ms)"),
        ("most_expensive", "most expensive generations"),
    )
    for key, title in sections:
        rows = data[key]
        if rows:
            _emit_table(rows, tuple(rows[0]), title=title)


@main.command()
@click.argument("log_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@_guarded
def replay(ctx: click.Context, log_id: int, as_json: bool) -> None:
    """Send a stored request again (OPENAI_API_KEY, OPENAI_BASE_URL) and compare."""
    from audited_openai._client import AuditedOpenAI  # noqa: PLC0415 - the SDK only here

    repo = _repo(ctx)
    repo.get(log_id)
    if not os.environ.get("OPENAI_API_KEY"):
        _fail("replay sends a real request: set OPENAI_API_KEY (and OPENAI_BASE_URL)", EXIT_USAGE)
    result = query.replay(repo, log_id, AuditedOpenAI(repo))
    data = result.__dict__
    if as_json:
        _json(data)
        return
    for key, value in data.items():
        if key not in ("original_text", "replay_text"):
            click.echo(f"{key}: {value}")


@main.command()
@click.option("--older-than", callback=_span, default="15m", show_default=True)
@click.pass_context
@_guarded
def reconcile(ctx: click.Context, older_than: timedelta) -> None:
    """Mark rows pending longer than --older-than as timeout (their process died)."""
    count = _repo(ctx).reconcile(older_than)
    click.echo(f"reconciled {count} stale pending rows")


@main.command()
@click.option("--definitie", type=int, required=True, help="The definitie whose logs go.")
@click.pass_context
@_guarded
def erase(ctx: click.Context, definitie: int) -> None:
    """Erase every log of a definitie, leaving no trace of its text in the file."""
    count = _repo(ctx).erase_definitie(definitie)
    if not count:
        _fail(f"no logs for definitie {definitie}", EXIT_NO_MATCH)
    click.echo(f"erased {count} logs of definitie {definitie}")


@main.command()
@click.pass_context
@_guarded
def scrub(ctx: click.Context) -> None:
    """Remove the leftover bytes of deleted rows from the file and its WAL (VACUUM)."""
    repo = _repo(ctx)
    repo.scrub()
    click.echo(f"scrubbed {repo.path}")


@main.command()
@click.pass_context
@_guarded
def migrate(ctx: click.Context) -> None:
    """Create the database or bring its schema up to date."""
    repo = _repo(ctx, create=True)
    click.echo(f"{repo.path}: schema version {repo.store.schema_version()}")


@main.command()
@click.pass_context
def path(ctx: click.Context) -> None:
    """Print the database file this command would use."""
    click.echo(str(Path(ctx.obj["db"]).resolve()))
