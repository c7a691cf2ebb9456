"""The ``audited-openai`` command line: a thin layer over :mod:`audited_openai.query`.

Exit codes: 0 success, 1 nothing matched the id(s) given, 2 usage error (bad option or
value), 3 the database cannot be used (missing, locked, corrupt, no audit trail, or
written by a newer audited_openai), 4 an unexpected error (a bug: please report it),
5 verify found the trail changed, 6 ``status --check`` found a problem, 130 interrupted.
Errors are one line on stderr, never a traceback. Commands that only read (logs, show,
diff, export, stats, status) open the database read-only: they change nothing, and
read-only files and file systems can be read.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import sys
import textwrap
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click
from rich.console import Console
from rich.table import Table

from audited_openai import query
from audited_openai._errors import AuditedOpenAIError, InvalidLogError, LogNotFoundError
from audited_openai._repository import GenerationLogRepository, redacted
from audited_openai._review import VERDICTS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from decimal import Decimal

    from audited_openai._models import GenerationContext
    from audited_openai._review import Review

F = TypeVar("F", bound="Callable[..., Any]")
EXIT_NO_MATCH, EXIT_USAGE, EXIT_DATABASE, EXIT_BUG, EXIT_INTERRUPTED = 1, 2, 3, 4, 130
EXIT_UNVERIFIED, EXIT_UNHEALTHY = 5, 6
EXIT_CODES = (
    "Exit codes: 0 done; 1 nothing matched the id given; 2 bad usage; 3 the database "
    "cannot be used; 4 an unexpected error (a bug); 5 verify found the trail changed; "
    "6 status --check found a problem; 130 interrupted."
)
CLI_BUSY_TIMEOUT_MS = 5_000
_SPAN = re.compile(r"^\s*(\d{1,9})\s*([smhdw])\s*$")
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
    "cost",
    "cost_currency",
    "actor",
    "session",
)
# On a terminal: (column, header) of a listing; what goes first when it does not fit.
SHORT = (
    ("id", "id"),
    ("logged_at", "logged (UTC)"),
    ("generation_status", "status"),
    ("model_name", "model"),
    ("template", "template"),
    ("definitie_id", "def."),
    ("attempt", "try"),
    ("tokens_total", "tokens"),
    ("duration_ms", "ms"),
    ("money", "cost"),
    ("error_type", "error"),
)
LEAST_USEFUL = ("money", "tokens_total", "duration_ms", "attempt")
WHOLE = (
    "id",
    "logged_at",
    "generation_status",
    "definitie_id",
    "attempt",
    "tokens_total",
    "error_type",
)


def parse_span(text: str) -> timedelta:
    """Parse a positive span: ``30s``, ``15m``, ``2h``, ``7d`` or ``1w``."""
    match = _SPAN.match(text)
    if not match:
        raise click.BadParameter(f"{text!r} is not a span like 15m, 2h or 7d")
    try:
        span = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError:
        raise click.BadParameter(f"{text!r} is longer than any date") from None
    if not span:
        raise click.BadParameter(f"{text!r} is no span: give a positive one like 15m")
    return span


def parse_moment(text: str, *, end_of_day: bool = False) -> datetime:
    """Parse a span back from now (``2h``), a date, or an ISO datetime (UTC if naive).

    With ``end_of_day`` a date means its last millisecond (``--until 2026-11-29`` takes
    the whole day in).
    """
    if _SPAN.match(text):
        try:
            return datetime.now(timezone.utc) - parse_span(text)
        except OverflowError:
            raise click.BadParameter(f"{text!r} reaches back before any date") from None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date, a datetime or a span like 7d") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    if end_of_day and re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", text):
        moment += timedelta(days=1, milliseconds=-1)
    return moment


def _since(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    return None if value is None else parse_moment(value)


def _until(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    return None if value is None else parse_moment(value, end_of_day=True)


def _span(_ctx: click.Context, _param: click.Parameter, value: str) -> timedelta:
    return parse_span(value)


def _db(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.find_root().ensure_object(dict)["db"] = value


def _fail(message: str, code: int) -> None:
    """The error in one line (a value given with a line break in it shows it escaped)."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    click.echo(f"error: {shown}", err=True)
    sys.exit(code)


class _FilePath(click.Path):
    """``click.Path`` that refuses a NUL byte in one line (``os.stat`` would raise)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The path, or a usage error naming the option."""
        if isinstance(value, str) and "\x00" in value:
            self.fail("a path cannot hold a NUL byte", param, ctx)
        return super().convert(value, param, ctx)


def command(*, reads: bool = True, ids: bool = False) -> Callable[[F], F]:
    """A subcommand: ``--db`` here too, errors as one line and an exit code.

    ``ids``: it takes ids as arguments, and ``-1`` is one (not an unknown option).
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except LogNotFoundError as exc:
                _fail(str(exc), EXIT_NO_MATCH)
            except InvalidLogError as exc:
                _fail(str(exc), EXIT_USAGE)
            except (AuditedOpenAIError, OSError) as exc:
                _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, EXIT_DATABASE)
            except KeyboardInterrupt:
                _fail("interrupted", EXIT_INTERRUPTED)
            except (click.exceptions.Exit, click.ClickException, SystemExit):
                raise
            except Exception as exc:
                _fail(f"unexpected {type(exc).__name__}: {exc} (a bug: please report it)", EXIT_BUG)

        guarded.reads = reads  # type: ignore[attr-defined]
        option = click.option(
            "--db",
            callback=_db,
            expose_value=False,
            help="The database file (also before the command, or AUDITED_OPENAI_DB).",
        )
        settings = {"ignore_unknown_options": True} if ids else {}
        made = main.command(epilog=EXIT_CODES, context_settings=settings)
        return made(click.pass_context(option(guarded)))  # type: ignore[return-value]

    return decorate


def _repo(
    ctx: click.Context, *, create: bool = False, read_only: bool | None = None
) -> GenerationLogRepository:
    """The repository of ``--db``: read-only for commands that only read.

    A command that changes rows refuses a database without an audit trail (it is left
    byte for byte as it was) unless it exists to create one (``create``).
    """
    path = ctx.find_root().obj["db"]
    if read_only is None:
        read_only = getattr(ctx.command.callback, "reads", True)
    return _open(ctx, path, read_only=read_only, create=create)


def _open(
    ctx: click.Context, path: str, *, read_only: bool, create: bool = False
) -> GenerationLogRepository:
    if not create and not _is_url(path) and not Path(path).exists():
        _fail(f"no database at {path} (set --db or AUDITED_OPENAI_DB)", EXIT_DATABASE)
    repo = GenerationLogRepository(
        path, busy_timeout_ms=CLI_BUSY_TIMEOUT_MS, read_only=read_only, create=create
    )
    ctx.call_on_close(repo.close)
    return repo


def _is_url(path: str) -> bool:
    return "://" in path


def _filters(options: dict[str, Any]) -> dict[str, Any]:
    names = (
        "since",
        "until",
        "status",
        "model",
        "template_name",
        "template_version",
        "search",
        "actor",
        "session",
        "reviewed",
    )
    found = {name: options[name] for name in names if options.get(name) is not None}
    if options.get("definitie") is not None:
        found["definitie_id"] = options["definitie"]
    return found


def filter_options(func: F) -> F:
    """The filters shared by ``logs`` and ``export``."""
    for option in reversed(
        [
            click.option("--since", callback=_since, help="From this date, datetime or span (7d)."),
            click.option(
                "--until", callback=_until, help="Up to this datetime, or through this date."
            ),
            click.option(
                "--status", type=click.Choice(["pending", "success", "failed", "timeout"])
            ),
            click.option("--model", help="Model name as sent."),
            click.option("--template-name", help="Prompt template name."),
            click.option("--template-version", help="Prompt template version."),
            click.option("--definitie", type=int, help="Definitie id."),
            click.option("--search", help='Words or "a phrase" in prompt or response.'),
            click.option("--actor", help="Who asked (audit_context(actor=...))."),
            click.option("--session", help="The working session (audit_context(session=...))."),
            click.option(
                "--reviewed/--unreviewed",
                default=None,
                help="Only rows of definities reviewed, or not yet reviewed.",
            ),
        ]
    ):
        func = option(func)
    return func


def _console() -> Console:
    return Console(soft_wrap=False)


# On a terminal: shorter headers for the tables' columns (piped and JSON keep the names).
HEADERS = {
    "generations": "calls",
    "tokens_prompt": "prompt",
    "tokens_completion": "answer",
    "tokens_total": "tokens",
    "avg_tokens": "avg",
    "max_tokens": "max",
    "template_name": "template",
    "template_version": "version",
    "prompt_template_name": "template",
    "prompt_template_version": "version",
    "model_name": "model",
    "definitie_id": "def.",
    "duration_ms": "ms",
    "logged_at": "logged (UTC)",
    "failure_rate": "failed",
    "failures": "failed n",
}
CUT_TO = 8  # the fewest characters a cell is cut to (then with an ellipsis)


def _cell(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    return "" if value is None else str(value)


def _fitting(
    rows: list[dict[str, Any]],
    columns: tuple[str, ...],
    width: int,
    headers: dict[str, str],
    *,
    drop_first: tuple[str, ...] = (),
    whole: tuple[str, ...] = (),
) -> dict[str, int]:
    """The columns that fit ``width`` and their widths.

    What does not fit goes: ``drop_first`` in order, then the last columns. A header
    is never cut, nor a cell of ``whole``; another may be, to ``CUT_TO`` characters and
    an ellipsis, the widest first.
    """
    natural = {c: max([len(headers.get(c, c)), *(len(_cell(r, c)) for r in rows)]) for c in columns}
    least = {
        c: natural[c] if c in whole else min(natural[c], max(len(headers.get(c, c)), CUT_TO))
        for c in columns
    }
    kept = list(columns)
    order = [c for c in drop_first if c in kept] + [
        c for c in reversed(columns) if c not in drop_first
    ]
    while len(kept) > 1 and sum(least[c] for c in kept) + 2 * len(kept) > width:
        kept.remove(order.pop(0))
    widths = {c: natural[c] for c in kept}
    room = width - 2 * len(kept)  # two spaces between columns, one to spare
    while sum(widths.values()) > room:
        widest = max((c for c in kept if widths[c] > least[c]), key=lambda c: widths[c])
        widths[widest] -= 1
    return widths


def _emit_table(
    rows: list[dict[str, Any]],
    columns: tuple[str, ...],
    title: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    drop_first: tuple[str, ...] = (),
    whole: tuple[str, ...] = (),
) -> None:
    """A table: on a terminal, one line a row fitting its width, and what did not fit.

    See :func:`_fitting`; piped, tab-separated with every column.
    """
    console = _console()
    if console.is_terminal:
        from rich import box  # noqa: PLC0415 - only on a terminal

        named = HEADERS if headers is None else headers
        widths = _fitting(rows, columns, console.width, named, drop_first=drop_first, whole=whole)
        if title:  # above the table, wrapped at the terminal's width, not the table's
            console.print(title, style="italic")
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
        for column, shown in widths.items():
            table.add_column(
                named.get(column, column), no_wrap=True, overflow="ellipsis", width=shown
            )
        for row in rows:
            table.add_row(*(_cell(row, c) for c in widths))
        console.print(table)
        dropped = [named.get(c, c) for c in columns if c not in widths]
        if dropped:
            console.print(
                f"(not shown in {console.width} columns: {', '.join(dropped)}; --json has all)"
            )
        return
    if title:
        click.echo(f"# {title}")
    click.echo("\t".join(columns))
    for row in rows:
        click.echo("\t".join(_cell(row, c) for c in columns))


def _summary(log: GenerationContext) -> dict[str, Any]:
    response, error = log.response, log.error
    return {
        "id": log.id,
        "logged_at": log.to_dict()["logged_at"],
        "generation_status": log.status,
        "model_name": log.prompt.model_params.name,
        "prompt_template_name": log.prompt.template_name,
        "prompt_template_version": log.prompt.template_version,
        "definitie_id": log.definitie_id,
        "attempt": log.attempt,
        "tokens_total": response.tokens_total if response else None,
        "duration_ms": (response.duration_ms if response else None)
        or (error.duration_ms if error else None),
        "error_type": error.error_type if error else None,
        "cost": log.cost.amount if log.cost else None,
        "cost_currency": log.cost.currency if log.cost and log.cost.amount is not None else None,
        "actor": log.actor,
        "session": log.session,
    }


def _json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class _Commands(click.Group):
    """The command group, whose usage errors are one line (``error: ...``, exit 2)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run a command; click's usage errors come out as this library's other errors."""
        kwargs["standalone_mode"] = False
        try:
            done = super().main(*args, **kwargs)
        except click.UsageError as exc:
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _fail(f"{exc.format_message().rstrip('.')}{where}", EXIT_USAGE)
        except click.Abort:
            _fail("interrupted", EXIT_INTERRUPTED)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        sys.exit(done if isinstance(done, int) else 0)


@click.group(
    cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES
)
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
    ctx.ensure_object(dict).setdefault("db", db)


@command()
@click.option("-n", "limit", type=click.IntRange(min=0), default=20, show_default=True)
@click.option("--after-id", type=int, help="Continue a listing after this id.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@filter_options
def logs(
    ctx: click.Context, /, limit: int, after_id: int | None, as_json: bool, **options: Any
) -> None:
    """List generation logs, newest first."""
    found = query.history(_repo(ctx), limit=limit, after_id=after_id, **_filters(options))
    rows = [_summary(log) for log in found]
    if as_json:
        _json(rows)
    elif _console().is_terminal:
        _listing(rows)
    else:
        _emit_table(rows, SUMMARY)


def _listing(rows: list[dict[str, Any]]) -> None:
    """A listing for people: one line a row, fitting the terminal (80 columns at least)."""
    for row in rows:
        row["logged_at"] = str(row["logged_at"])[:16].replace("T", " ")
        version, name = row["prompt_template_version"], row["prompt_template_name"]
        row["template"] = " ".join(str(v) for v in (version, name) if v)
        row["money"] = _money(row["cost"], row["cost_currency"])
    columns = tuple(column for column, _header in SHORT)
    _emit_table(rows, columns, headers=dict(SHORT), drop_first=LEAST_USEFUL, whole=WHOLE)


@command(ids=True)
@click.argument("log_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON (raw).")
@click.option(
    "--full", is_flag=True, help="The prompt and the request JSON exactly as stored, unfolded."
)
def show(ctx: click.Context, log_id: int, as_json: bool, full: bool) -> None:
    """Show one log: its fields in sections, then the prompt, the answer and the request.

    The prompt and the answer are wrapped to the terminal and the request JSON is
    pretty-printed with long strings folded; --full prints both exactly as stored.
    """
    repo = _repo(ctx)
    log = repo.get(log_id)
    reviews = repo.reviews(log_id=log_id)
    if as_json:
        _json({**log.to_dict(), "reviews": [r.as_dict() for r in reviews]})
        return
    width = min(shutil.get_terminal_size().columns, 100)
    click.echo("\n".join(_record(log.to_dict(), reviews, width=width, full=full)))


def _record(
    data: dict[str, Any], reviews: list[Review], *, width: int, full: bool
) -> Iterator[str]:
    """A log as a person reads it: a heading, the sections, then the long texts."""
    prompt, response, error = data["prompt"], data["response"] or {}, data["error"]
    definitie = data["definitie_id"]
    yield (
        f"Log {data['id']} · {data['status']} · "
        + (f"definitie {definitie}" if definitie is not None else "no definitie")
        + f" · attempt {data['attempt']}"
    )
    yield f"logged {data['logged_at']} · updated {data['updated_at']}"
    for title, fields in _sections(data, prompt, response, error):
        shown = [(name, value) for name, value in fields if value not in (None, "")]
        if shown:
            yield ""
            yield title
            for name, value in shown:
                yield from _field(name, str(value), width)
    if reviews:
        yield ""
        yield "Reviews"
        yield from (f"  {_review_line(review)}" for review in reviews)
    texts = [("prompt", prompt["full_text"]), ("response", response.get("content"))]
    texts.append(("traceback", (error or {}).get("traceback")))
    for name, text in texts:
        if text:
            kept = full or name == "traceback"
            note = "as stored" if kept else "wrapped; --full: as stored"
            yield ""
            yield f"--- {name} ({_plural(len(text), 'character')}, {note}) ---"
            yield text.rstrip("\n") if kept else _wrapped(text, width)
    if data["request_json"]:
        yield ""
        yield from _request_json(data["request_json"], full=full)


Fields = list[tuple[str, object]]


def _sections(
    data: dict[str, Any], prompt: dict[str, Any], response: dict[str, Any], error: Any
) -> list[tuple[str, Fields]]:
    """The fields of a log, each once, in the sections a reader looks for them."""
    error = error or {}
    priced = data["status"] == "success"
    return [
        ("Request", _request_fields(data, prompt)),
        (
            "Response",
            [*_response_fields(response), ("cost", _cost(data["cost"]) if priced else None)],
        ),
        (
            "Error",
            [
                ("type", error.get("error_type")),
                ("HTTP status", error.get("http_status")),
                ("after", _ms(error.get("duration_ms"))),
                ("message", error.get("message")),
            ],
        ),
    ]


def _request_fields(data: dict[str, Any], prompt: dict[str, Any]) -> Fields:
    params = prompt["model_params"]
    tuning = ("temperature", "max_tokens", "top_p", "frequency_penalty", "presence_penalty")
    streamed = "streamed" if data["stream"] else "not streamed"
    return [
        ("endpoint", f"{data['endpoint']}, {streamed}"),
        ("model", params["name"]),
        ("parameters", _joined(f"{k}={params[k]}" for k in tuning if params[k] is not None)),
        ("template", _joined((prompt["template_name"], prompt["template_version"]), " ")),
        ("modules", _joined(prompt["modules_used"] or ())),
        ("call", data["call_id"]),
        ("asked by", data["actor"]),
        ("session", data["session"]),
        ("replay of", f"log {data['replay_of']}" if data["replay_of"] else None),
        ("metadata", _joined(f"{k}={_plain(v)}" for k, v in (data["metadata"] or {}).items())),
    ]


def _response_fields(response: dict[str, Any]) -> Fields:
    return [
        ("tokens", _tokens(response)),
        ("finish", response.get("finish_reason")),
        ("HTTP status", response.get("http_status")),
        ("response id", response.get("response_id")),
        ("created", _created(response.get("created_at"))),
        ("model", response.get("response_model")),
        ("fingerprint", response.get("system_fingerprint")),
        ("duration", _ms(response.get("duration_ms"))),
        ("first token", _ms(response.get("ttft_ms"))),
    ]


def _field(name: str, value: str, width: int) -> Iterator[str]:
    """``  name         value``, the value wrapped under itself (words kept whole)."""
    lead = f"  {name:<13}"
    lines = textwrap.wrap(
        value, max(width - len(lead), 20), break_long_words=False, break_on_hyphens=False
    ) or [""]
    yield lead + lines[0]
    yield from (" " * len(lead) + line for line in lines[1:])


_STARTS_BLOCK = re.compile(r"^(#|[-*+] |\d+[.)] |```|\|)")
_LIST_ITEM = re.compile(r"^\s*([-*+]|\d+[.)]) ")
_HARD_WRAPPED = 60  # a line this long, followed by more of its text, was wrapped by hand


def _wrapped(text: str, width: int) -> str:
    """Paragraphs reflowed to the width, words whole.

    A line continues the one above when that one is long (wrapped by hand) and this one
    starts nothing of its own (a heading, list item, table or code fence); an indented
    line continues a list item.
    """
    blocks: list[str] = []
    previous = ""
    for line in text.rstrip("\n").splitlines():
        continues = (
            len(previous) >= _HARD_WRAPPED
            and line.strip()
            and not _STARTS_BLOCK.match(line)
            and (not line[0].isspace() or _LIST_ITEM.match(blocks[-1]))
            and not blocks[-1].startswith(("#", "```", "|"))
        )
        if continues:
            blocks[-1] += " " + line.strip()
        else:
            blocks.append(line.rstrip())
        previous = line
    return "\n".join(_fill(block, width) for block in blocks)


def _fill(block: str, width: int) -> str:
    if not block.strip() or block.startswith(("```", "|")) or len(block) <= width:
        return block
    bullet = _LIST_ITEM.match(block)
    indent = " " * (bullet.end() if bullet else len(block) - len(block.lstrip()))
    return textwrap.fill(
        block, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
    )


FOLDED_CHARS = 32  # a longer string in the request JSON shows its start and its length


def _request_json(raw: str, *, full: bool) -> Iterator[str]:
    """The request as stored (``--full``), or pretty-printed with long strings folded."""
    size = _plural(len(raw.encode()), "byte")
    try:
        folded = None if full else json.dumps(_fold(json.loads(raw)), indent=2, ensure_ascii=False)
    except ValueError:  # not JSON (an old row, or an SDK that sent something else)
        folded = None
    if folded is None:
        yield f"--- request_json ({size}, as stored) ---"
        yield raw
    else:
        yield f"--- request_json ({size}, long strings folded; --full: as stored) ---"
        yield folded


def _fold(value: Any) -> Any:
    if isinstance(value, str) and len(value) > FOLDED_CHARS:
        rest = len(value) - FOLDED_CHARS
        return f"{value[:FOLDED_CHARS]}… ({_plural(rest, 'more character')})"
    if isinstance(value, dict):
        return {key: _fold(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_fold(item) for item in value]
    return value


def _tokens(response: dict[str, Any]) -> str | None:
    if response.get("tokens_total") is None:
        return None
    prompt, completion = (
        "—" if response.get(key) is None else f"{response[key]:,}"
        for key in ("tokens_prompt", "tokens_completion")
    )
    parts = [f"{prompt} prompt + {completion} completion = {response['tokens_total']:,}"]
    parts += [
        f"{name} {response[key]:,}"
        for name, key in (("cached", "tokens_cached"), ("reasoning", "tokens_reasoning"))
        if response.get(key)
    ]
    return _joined(parts)


def _created(stamp: int | None) -> str | None:
    if stamp is None:
        return None
    moment = datetime.fromtimestamp(stamp, timezone.utc)
    return f"{moment:%Y-%m-%d %H:%M:%S}Z (the API's created, {stamp})"


def _ms(value: object) -> str | None:
    return None if value in (None, "") else f"{int(float(str(value))):,} ms"


def _joined(parts: Iterable[object], between: str = " · ") -> str | None:
    text = between.join(str(part) for part in parts if part not in (None, ""))
    return text or None


def _plain(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _review_line(review: Review) -> str:
    """A review in one line: when, the verdict, who, and the note."""
    at = review.as_dict()["reviewed_at"]
    note = f": {review.note}" if review.note else ""
    where = f"(review {review.id}, log {review.log_id})"
    return f"{at} {review.verdict} by {review.reviewer} {where}{note}"


@command(reads=False)
@click.option("--definitie", type=int, required=True, help="The definitie judged.")
@click.option(
    "--verdict", type=click.Choice(VERDICTS), required=True, help="What the reviewer decided."
)
@click.option("--reviewer", required=True, help="Who judged (as the app names people).")
@click.option("--note", help="Why, in a few words.")
@click.option(
    "--edited-file",
    type=_FilePath(exists=True, dir_okay=False, path_type=Path),
    help="With --verdict edited: the file holding the text as the reviewer changed it.",
)
@click.option("--log", "log_id", type=int, help="The generation judged (default: the latest).")
@click.option("--json", "as_json", is_flag=True, help="Print the review as JSON.")
def review(
    ctx: click.Context,
    /,
    definitie: int,
    verdict: str,
    as_json: bool,
    **said: Any,
) -> None:
    """Record a reviewer's judgement of a generated definitie (chained, never changed)."""
    edited = said["edited_file"]
    made = _repo(ctx).record_review(
        definitie,
        verdict,  # type: ignore[arg-type]  # click.Choice(VERDICTS)
        reviewer=said["reviewer"],
        note=said["note"],
        edited_text=None if edited is None else edited.read_text(encoding="utf-8"),
        log_id=said["log_id"],
    )
    if as_json:
        _json(made.as_dict())
    else:
        click.echo(f"recorded review {made.id} of definitie {definitie}: {_review_line(made)}")


@command()
@click.option("--definitie", type=int, required=True, help="The definitie whose reviews to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with any edited text).")
def reviews(ctx: click.Context, definitie: int, as_json: bool) -> None:
    """List the reviews of a definitie, oldest first."""
    found = _repo(ctx).reviews(definitie_id=definitie)
    if as_json:
        _json([r.as_dict() for r in found])
        return
    if not found:
        _fail(f"no reviews of definitie {definitie}", EXIT_NO_MATCH)
    for made in found:
        click.echo(_review_line(made))


def _cost(cost: dict[str, Any] | None) -> str:
    """A row's cost in words: an amount, unknown (and why it can be), or not priced."""
    if cost is None:
        return "not priced (not a success, or written before schema 11)"
    if cost["amount"] is None:
        return f"unknown: no price for the model or no usage (prices {cost['price_version']})"
    return f"{_money(cost['amount'], cost['currency'])} (prices {cost['price_version']})"


def _money(amount: Decimal | None, currency: str | None) -> str | None:
    """``0.007475 USD``: every stored digit, no trailing zeros (None when unpriced)."""
    if amount is None:
        return None
    return f"{amount:.9f}".rstrip("0").rstrip(".") + (f" {currency}" if currency else "")


@command(ids=True)
@click.argument("a", type=int)
@click.argument("b", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
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


@command()
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "otlp"]), required=True)
@click.option("-o", "--output", help="A file to write (0600), or - for stdout (csv, jsonl).")
@click.option(
    "--endpoint",
    help="otlp: the collector's base URL, e.g. http://localhost:4318 (else OTEL_EXPORTER_OTLP_*).",
)
@filter_options
def export(
    ctx: click.Context,
    /,
    fmt: Literal["csv", "jsonl", "otlp"],
    output: str | None,
    endpoint: str | None,
    **options: Any,
) -> None:
    """Export the matching logs as CSV or JSON lines, or send them as OTLP spans.

    A file appears under its name only once complete: it is written beside it first,
    and an interrupted export leaves nothing. With --format otlp each completed row
    becomes a GenAI span with its original times, sent in batches.
    """
    repo, filters = _repo(ctx), _filters(options)
    if fmt == "otlp":
        if output is not None:
            _fail("--format otlp sends spans to --endpoint; -o is for csv and jsonl", EXIT_USAGE)
        _export_otlp(repo, endpoint, filters)
        return
    if output is None:
        _fail(f"--format {fmt} needs -o FILE (or -o - for stdout)", EXIT_USAGE)
    if endpoint is not None:
        _fail("--endpoint is for --format otlp", EXIT_USAGE)
    assert output is not None  # noqa: S101 - _fail exits
    total = query.count(repo, **filters)
    console = Console(stderr=True)
    with _target(output) as out:
        if console.is_terminal and output != "-":
            from rich.progress import MofNCompleteColumn, Progress  # noqa: PLC0415 - a terminal

            columns = (*Progress.get_default_columns(), MofNCompleteColumn())
            with Progress(*columns, console=console) as progress:
                task = progress.add_task("exporting", total=total)
                count = query.export(
                    repo, fmt, out, progress=lambda n: progress.update(task, completed=n), **filters
                )
        else:
            count = query.export(repo, fmt, out, **filters)
    click.echo(f"exported {_plural(count, 'row')} to {output}", err=True)


def _export_otlp(
    repo: GenerationLogRepository, endpoint: str | None, filters: dict[str, Any]
) -> None:
    try:
        import opentelemetry.sdk  # noqa: F401, PLC0415 - the optional extra
    except ImportError:
        _fail("--format otlp needs OpenTelemetry: pip install 'audited-openai[otel]'", EXIT_USAGE)
    total = query.count(repo, **filters)
    console = Console(stderr=True)
    if console.is_terminal:
        from rich.progress import MofNCompleteColumn, Progress  # noqa: PLC0415 - a terminal

        with Progress(
            *Progress.get_default_columns(), MofNCompleteColumn(), console=console
        ) as bar:
            task = bar.add_task("sending", total=total)
            count = query.export_otlp(
                repo, endpoint, progress=lambda n: bar.update(task, completed=n), **filters
            )
    else:
        count = query.export_otlp(repo, endpoint, **filters)
    where = endpoint or "the OTLP endpoint of OTEL_EXPORTER_OTLP_*"
    click.echo(f"sent {_plural(count, 'span')} to {where}", err=True)


def _target(output: str) -> Any:
    """Standard output, or a file that gets its name only when the export is complete."""
    if output == "-":
        return nullcontext(sys.stdout)
    path = Path(output)
    if not output.strip() or path.is_dir():
        raise click.BadParameter(
            f"{output!r} is not a file name (a file, or - for standard output)", param_hint="'-o'"
        )
    if not path.parent.is_dir():
        raise click.BadParameter(
            f"no directory {str(path.parent)!r} to write {output!r} in", param_hint="'-o'"
        )
    return _complete_file(path)


@contextmanager
def _complete_file(path: Path) -> Iterator[Any]:
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with open(fd, "w", encoding="utf-8", newline="") as out:  # noqa: PTH123 - fd from os.open
            yield out
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


@command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--since", callback=_since, help="From this date, datetime or span (7d).")
def stats(ctx: click.Context, as_json: bool, since: datetime | None) -> None:
    """Token usage per day, failure rate per template, durations, most expensive.

    Every attempt counts: a call the SDK retried twice before it succeeded is two failed
    attempts and one success. Tokens and durations are those of successful attempts.
    """
    data = query.stats(_repo(ctx), **({"since": since} if since else {}))
    if as_json:
        _json(data)
        return
    _emit_table(
        [{"status": k, "attempts": v} for k, v in data["by_status"].items()],
        ("status", "attempts"),
        title="generations by status (every attempt)",
    )
    for row in data["failure_rate_by_template"]:
        row["failure_rate"] = f"{row['failure_rate']:.2f} %"
    for row in data["token_usage_by_day"]:  # the cost in its currency, of the priced rows
        row["cost"] = _money(row["cost"], row.pop("cost_currency"))
    for row in data["most_expensive"]:
        row["cost"] = _money(row["cost"], row.pop("cost_currency"))
    sections = (
        (
            "token_usage_by_day",
            "tokens and cost per day (successful generations; cost: of the priced ones)",
        ),
        (
            "failure_rate_by_template",
            "failure rate by template (failed or timed out, of all attempts)",
        ),
        ("duration_percentiles", "duration percentiles (ms, successful generations)"),
        ("most_expensive", "most expensive generations"),
    )
    for key, title in sections:
        if data[key]:
            _emit_table(data[key], tuple(data[key][0]), title=title)


@command()
@click.argument("a")
@click.argument("b")
@click.option(
    "--by",
    help="template_version (default), template_name, model, or a metadata key.",
)
@click.option("--experiment", help="Only this ab.experiment's rows; --by defaults to its arm.")
@click.option("--since", callback=_since, help="From this date, datetime or span (7d).")
@click.option("--until", callback=_until, help="Up to this datetime, or through this date.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the default when piped).")
def compare(
    ctx: click.Context,
    *,
    a: str,
    b: str,
    by: str | None,
    experiment: str | None,
    since: datetime | None,
    until: datetime | None,
    as_json: bool,
) -> None:
    """Two variants compared: failures, latency, tokens and cost, with a verdict each.

    A and B are two template versions (or values of --by). Rates get 95 % Wilson
    intervals and a two-proportion z test (Fisher's exact test for small counts);
    latency, tokens and cost a Mann-Whitney U test. "No difference shown" means the
    rows so far cannot tell the variants apart at the 5 % level.
    """
    found = query.compare(_repo(ctx), a, b, by=by, experiment=experiment, since=since, until=until)
    if as_json or not _console().is_terminal:
        _json(found)
        return
    for line in compare_lines(found):
        click.echo(line)


def compare_lines(found: dict[str, Any]) -> list[str]:
    """The comparison for a person at a terminal (80 columns)."""
    first, second = found["variants"]
    scope = f" in experiment {found['experiment']}" if found["experiment"] else ""
    money = found["currency"] or "?"

    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("calls", lambda v: f"{v['calls']:,}"),
        ("attempts", lambda v: f"{v['attempts']:,}"),
        ("definities", lambda v: f"{v['definities']:,}"),
        ("failed per attempt", lambda v: _rate(v["attempt_failure"])),
        ("failed per call", lambda v: _rate(v["call_failure"])),
        ("reviewed", lambda v: f"{v['reviewed']:,}"),
        ("approved", lambda v: _rate(v["approval"])),
        ("edited", lambda v: _rate(v["edit"])),
        ("latency p50/p95 ms", lambda v: _pair(v["latency"])),
        ("tokens p50/p95", lambda v: _pair(v["tokens"])),
        (f"cost p50/p95 {money}", lambda v: _pair(v["cost"], ".5f")),
        (f"cost total {money}", lambda v: f"{v['cost']['total'] or 0:,.4f}"),
        ("cost unknown", lambda v: f"{v['cost']['unknown']:,}"),
        ("finish reasons", _reasons),
    ]
    lines = [f"compare by {found['by']}{scope}: completed rows, no replays", ""]
    lines.append(f"{'':22}{_narrow(first['variant']):<28}{_narrow(second['variant'])}")
    lines += [
        f"{label:22}{_narrow(shown(first)):<28}{_narrow(shown(second))}" for label, shown in rows
    ]
    lines += ["", "verdicts (5 % level):"]
    for difference in found["differences"]:
        lines += textwrap.wrap(
            difference["verdict"],
            width=80,
            initial_indent="- ",
            subsequent_indent="  ",
        )
    lines += [f"note: {note}" for note in found["notes"]]
    return lines


def _narrow(text: str) -> str:
    """At most 27 characters: a comparison's column."""
    return text if len(text) <= 27 else text[:26].rstrip() + "\u2026"  # noqa: PLR2004


def _rate(figures: dict[str, Any]) -> str:
    if figures["rate"] is None:
        return "-"
    low, high = figures["low"] * 100, figures["high"] * 100
    return f"{figures['rate'] * 100:.1f} % ({low:.1f}-{high:.1f})"


def _pair(figures: dict[str, Any], scale: str = ",.0f") -> str:
    if figures["n"] == 0:
        return "-"
    return f"{figures['p50']:{scale}} / {figures['p95']:{scale}}"


def _reasons(v: dict[str, Any]) -> str:
    return ", ".join(f"{k} {n}" for k, n in list(v["finish_reasons"].items())[:2]) or "-"


@command(reads=False, ids=True)
@click.argument("log_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def replay(ctx: click.Context, log_id: int, as_json: bool) -> None:
    """Send a stored request again (OPENAI_API_KEY, OPENAI_BASE_URL) and compare."""
    from audited_openai._client import AuditedOpenAI  # noqa: PLC0415 - the SDK only here

    repo = _repo(ctx)
    repo.get(log_id)
    if not os.environ.get("OPENAI_API_KEY"):
        _fail("replay sends a real request: set OPENAI_API_KEY (and OPENAI_BASE_URL)", EXIT_USAGE)
    with AuditedOpenAI(repo) as client:
        result = query.replay(repo, log_id, client)
    if as_json:
        _json(result.__dict__)
        return
    click.echo(f"original: log {result.original_id}; replay: log {result.replay_id}")
    click.echo(f"same text: {'yes' if result.same_text else 'no'}")
    for label, delta, unit in (
        ("tokens", result.tokens_delta, ""),
        ("duration", result.duration_delta_ms, " ms"),
    ):
        click.echo(f"{label}: {'unknown' if delta is None else f'{delta:+d}{unit}'}")
    click.echo("\n--- original response ---")
    click.echo(result.original_text or "")
    click.echo("\n--- replayed response ---")
    click.echo(result.replay_text or "")


@command(reads=False)
@click.option("--older-than", callback=_span, default="15m", show_default=True)
def reconcile(ctx: click.Context, older_than: timedelta) -> None:
    """Mark rows pending longer than --older-than as timeout (their process died)."""
    count = _repo(ctx).reconcile(older_than)
    click.echo(f"reconciled {_plural(count, 'stale pending row')}")


@command(reads=False)
@click.option("--definitie", type=int, required=True, help="The definitie whose logs go.")
@click.option("--dry-run", is_flag=True, help="Say what would be erased, erase nothing.")
@click.option("--yes", is_flag=True, help="Do not ask (needed when not on a terminal).")
def erase(ctx: click.Context, definitie: int, dry_run: bool, yes: bool) -> None:
    """Erase every log of a definitie, leaving no trace of its text in the file."""
    repo = _repo(ctx, read_only=dry_run)
    found = repo.get_all_for_definitie(definitie)
    if not found:
        _fail(f"no logs for definitie {definitie}", EXIT_NO_MATCH)
    ids = ", ".join(str(log.id) for log in found)
    what = f"{_plural(len(found), 'log')} of definitie {definitie} (ids {ids})"
    if dry_run:
        click.echo(f"would erase {what}")
        return
    if not yes:
        if not _interactive():
            _fail(
                "erase asks before it deletes: pass --yes (or --dry-run to see what goes)",
                EXIT_USAGE,
            )
        if not click.confirm(f"Erase {what}? This cannot be undone"):
            click.echo("nothing erased")
            return
    with _spinner(f"erasing {what}"):
        count = repo.erase_definitie(definitie)
    click.echo(f"erased {_plural(count, 'log')} of definitie {definitie}")


@command(reads=False)
@click.option("--keep", help="Keep rows and reviews this long: 400d, 60w, 18mo, 2y.")
@click.option("--force", is_flag=True, help="Allow a policy under six months.")
@click.option("--clear", is_flag=True, help="Remove the policy: keep everything for good.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def retention(
    ctx: click.Context, keep: str | None, force: bool, clear: bool, as_json: bool
) -> None:
    """Show or set how long the trail is kept (stored in the database; `retain` applies it)."""
    if keep is not None and clear:
        _fail("give --keep or --clear, not both", EXIT_USAGE)
    repo = _repo(ctx, read_only=keep is None and not clear)
    if clear:
        said = "retention policy removed" if repo.clear_retention() else "there was no policy"
        click.echo(f"{said}: every row is kept")
        return
    policy = repo.set_retention(keep, force=force) if keep is not None else repo.retention()
    if as_json:
        _json(None if policy is None else {**asdict(policy), "set_at": _iso(policy.set_at)})
    elif policy is None:
        click.echo("no retention policy: every row is kept (set one with --keep 2y)")
    else:
        forced = " (under six months, forced)" if policy.forced else ""
        click.echo(
            f"rows and reviews are kept {policy.keep} ({policy.keep_days} days){forced}; "
            f"set {policy.set_at:%Y-%m-%d %H:%M} UTC by {policy.set_by}"
        )


@command(reads=False)
@click.option("--dry-run", is_flag=True, help="Count what would go, remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def retain(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Remove rows and reviews older than the policy (as erase does), except those held."""
    repo = _repo(ctx, read_only=dry_run)
    with _spinner("applying the retention policy") if not dry_run else nullcontext():
        found = repo.retain(dry_run=dry_run)
    if as_json:
        _json(found)
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {_plural(found['rows'], 'row')} and {_plural(found['reviews'], 'review')} "
        f"logged before {found['before']} (kept {found['keep']}); "
        f"{_plural(found['held'], 'older row')} kept by a legal hold"
    )


@command(reads=False)
@click.option("--definitie", type=int, required=True, help="The definitie to keep.")
@click.option("--reason", required=True, help="Why (a case number, a request).")
def hold(ctx: click.Context, definitie: int, reason: str) -> None:
    """Put a definitie under a legal hold: neither retain nor erase removes its rows."""
    made = _repo(ctx).hold(definitie, reason)
    click.echo(f"definitie {made.definitie_id} is on hold: {made.reason}")


@command(reads=False)
@click.option("--definitie", type=int, required=True, help="The definitie to release.")
def release(ctx: click.Context, definitie: int) -> None:
    """Lift a definitie's legal hold."""
    _repo(ctx).release(definitie)
    click.echo(f"definitie {definitie} is no longer on hold")


@command()
@click.option("--definitie", type=int, required=True, help="The definitie to put in it.")
@click.option("-o", "--output", required=True, type=_FilePath(dir_okay=False), help="The zip.")
@click.option(
    "--key",
    required=True,
    type=_FilePath(exists=True, dir_okay=False),
    help="Sign it with this Ed25519 private key (PEM; `audited-openai keygen` makes one).",
)
def dossier(ctx: click.Context, definitie: int, output: str, key: str) -> None:
    """Write the record of one definitie, checkable with no database (check-dossier)."""
    from audited_openai import dossier as dossiers  # noqa: PLC0415 - only here

    found = dossiers.build(_repo(ctx, read_only=False), definitie, output, key)
    click.echo(
        f"dossier of definitie {definitie} written to {output}: "
        f"{_plural(found['rows'], 'row')}, {_plural(found['reviews'], 'review')}, "
        f"{_plural(found['events'], 'event')} proven in a chain of {found['trail_events']:,} "
        f"({found['bytes']:,} bytes)"
    )


@main.command("check-dossier", epilog=EXIT_CODES)
@click.argument("path", type=_FilePath(exists=True, dir_okay=False))
@click.option(
    "--public-key",
    required=True,
    type=_FilePath(exists=True, dir_okay=False),
    help="The signer's Ed25519 public key (PEM).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def check_dossier(path: str, public_key: str, as_json: bool) -> None:
    """Check a dossier with no database: exit 0 when it holds, 5 when not."""
    from audited_openai import dossier as dossiers  # noqa: PLC0415 - only here

    try:
        problems, facts = dossiers.check(path, public_key)
    except InvalidLogError as exc:
        _fail(str(exc), EXIT_USAGE)
    if as_json:
        _json({"ok": not problems, "problems": problems, **facts})
    elif problems:
        for problem in problems:
            click.echo(f"problem: {problem}")
        click.echo(f"NOT verified: {_plural(len(problems), 'problem')} in {path}")
    else:
        click.echo(
            f"dossier holds: definitie {facts['definitie_id']}, {_plural(facts['rows'], 'row')}, "
            f"{_plural(facts['reviews'], 'review')}, {_plural(facts['events'], 'event')} in a "
            f"chain of {facts['trail_events']:,} signed at {facts['signed_at']} (signature valid)"
        )
    sys.exit(EXIT_UNVERIFIED if problems else 0)


@main.command(epilog=EXIT_CODES)
@click.option("-o", "--output", required=True, type=_FilePath(dir_okay=False), help="The key.")
def keygen(output: str) -> None:
    """Make an Ed25519 key pair: OUTPUT (private, mode 0600) and OUTPUT.pub."""
    from audited_openai import _checkpoint  # noqa: PLC0415 - only here

    try:
        public = _checkpoint.generate_keys(output)
    except InvalidLogError as exc:
        _fail(str(exc), EXIT_USAGE)
    click.echo(f"private key {output} (keep it away from the database), public key {public}")


@command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def holds(ctx: click.Context, as_json: bool) -> None:
    """List the legal holds."""
    found = _repo(ctx).holds()
    if as_json:
        _json([{**asdict(h), "held_at": _iso(h.held_at)} for h in found])
        return
    if not found:
        click.echo("no legal holds")
    for made in found:
        click.echo(
            f"definitie {made.definitie_id}: {made.reason} "
            f"(since {made.held_at:%Y-%m-%d %H:%M} UTC, {made.held_by})"
        )


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@command(reads=False)
def scrub(ctx: click.Context) -> None:
    """Remove the leftover bytes of deleted rows from the file and its WAL (VACUUM)."""
    repo = _repo(ctx)
    with _spinner(f"scrubbing {repo.path} (rewrites the whole file)"):
        repo.scrub()
    click.echo(f"scrubbed {repo.path}")


def _interactive() -> bool:
    """Whether someone at a terminal can answer a question."""
    return sys.stdin.isatty()


def _spinner(message: str) -> Any:
    """A spinner with ``message`` on a terminal, nothing when piped."""
    console = Console(stderr=True)
    return console.status(message) if console.is_terminal else nullcontext()


@command(reads=False)
def migrate(ctx: click.Context) -> None:
    """Create the database or bring its schema up to date (adopting the spec's table)."""
    repo = _repo(ctx, create=True)
    click.echo(f"{repo.path}: schema version {repo.store.schema_version()}")


@command()
def path(ctx: click.Context) -> None:
    """Print the database this command would use (a URL without its password)."""
    db = ctx.find_root().obj["db"]
    click.echo(redacted(db) if _is_url(db) else str(Path(db).resolve()))


@command(reads=False)
@click.option("--from", "source", required=True, help="The trail to copy (read only).")
@click.option("--to", "target", required=True, help="Where to copy it (created or migrated).")
def copy(ctx: click.Context, source: str, target: str) -> None:
    """Copy a whole trail to another store, say a SQLite file to PostgreSQL.

    Run it again and it copies only what is new or has been completed since: a row is
    known by its call and attempt. Ids are the target's own.
    """
    src = _open(ctx, source, read_only=True)
    dst = _open(ctx, target, read_only=False, create=True)
    total = query.count(src)
    console = Console(stderr=True)
    if console.is_terminal:
        from rich.progress import MofNCompleteColumn, Progress  # noqa: PLC0415 - a terminal

        with Progress(
            *Progress.get_default_columns(), MofNCompleteColumn(), console=console
        ) as bar:
            task = bar.add_task("copying", total=total)
            done = query.copy(src, dst, progress=lambda n: bar.update(task, completed=n))
    else:
        done = query.copy(src, dst)
    click.echo(
        f"copied {_plural(done.inserted, 'row')}, completed {done.completed}, "
        f"{done.present} already there, from {src.path} to {dst.path}"
    )
    if done.failed:
        _fail(
            f"{_plural(len(done.failed), 'row')} could not be copied: {done.failed[0]}",
            EXIT_DATABASE,
        )


@command()
@click.option("-o", "--output", default="-", show_default=True, help="A file (0600), or -.")
@click.option(
    "--key",
    type=_FilePath(dir_okay=False),
    help="Sign it with this Ed25519 private key (PEM, e.g. `openssl genpkey -algorithm ed25519`).",
)
@click.option("--record", is_flag=True, help="Note it in the database too, for `status`.")
def checkpoint(ctx: click.Context, output: str, key: str | None, record: bool) -> None:
    """Write the chain's head (events, hash, time) to keep away from the database.

    `verify --checkpoint FILE` later shows whether the trail up to it was rewritten
    or its tail cut off; signed, the checkpoint itself cannot be forged.
    """
    found = query.checkpoint(_repo(ctx, read_only=not record), key=key, record=record)
    with _target(output) as out:
        out.write(json.dumps(found, indent=2) + "\n")
    if output != "-":
        signed = "signed " if "signature" in found else ""
        click.echo(f"{signed}checkpoint of {found['events']} events written to {output}", err=True)


@command()
@click.option("--checkpoint", "checkpoint_file", type=_FilePath(dir_okay=False))
@click.option("--public-key", type=_FilePath(dir_okay=False), help="Check its signature.")
@click.option("--record", is_flag=True, help="Note the result in the database, for `status`.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def verify(
    ctx: click.Context,
    checkpoint_file: str | None,
    public_key: str | None,
    record: bool,
    as_json: bool,
) -> None:
    """Recompute the tamper-evident chain and check every row against it.

    Reports every row changed, deleted or inserted outside the library, every event
    changed, swapped, inserted or missing, and (with --checkpoint) a rewritten or
    truncated chain. Exit 0 only when all holds, 5 when not. With --record the result
    is noted in the database, where `status` shows it.
    """
    if public_key is not None and checkpoint_file is None:
        _fail("--public-key checks the signature of a --checkpoint: give one", EXIT_USAGE)
    repo = _repo(ctx, read_only=not record)
    console = Console(stderr=True)
    if console.is_terminal and not as_json:
        from rich.progress import MofNCompleteColumn, Progress  # noqa: PLC0415 - a terminal

        with Progress(
            *Progress.get_default_columns(), MofNCompleteColumn(), console=console
        ) as bar:
            task = bar.add_task("verifying", total=None)
            result = query.verify(
                repo,
                checkpoint=checkpoint_file,
                public_key=public_key,
                progress=lambda n, total: bar.update(task, completed=n, total=total),
                record=record,
            )
    else:
        result = query.verify(
            repo, checkpoint=checkpoint_file, public_key=public_key, record=record
        )
    if as_json:
        _json(result.as_dict())
    else:
        for problem in result.problems:
            click.echo(f"problem: {problem.message}")
        for note in result.notes():
            click.echo(f"note: {note}")
        click.echo(result.summary())
    if not result.ok:
        sys.exit(EXIT_UNVERIFIED)


@command()
@click.option("--since", callback=_since, help="Count definities created from then (7d, a date).")
@click.option(
    "--pending-after",
    callback=_span,
    default="15m",
    show_default=True,
    help="A row pending longer than this is stale (its process died).",
)
@click.option(
    "--disk-days",
    type=click.FloatRange(min=0),
    default=7.0,
    show_default=True,
    help="Warn when the volume fills up within this many days at the current rate.",
)
@click.option("--check", is_flag=True, help="Print only the problems; exit 6 if there are any.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the default when piped).")
def status(
    ctx: click.Context,
    *,
    since: datetime | None,
    pending_after: timedelta,
    disk_days: float,
    check: bool,
    as_json: bool,
) -> None:
    """The trail's health: definities without a log, stale rows, failures, size, chain.

    With --check (for cron or a monitoring system) it prints one line per problem and
    exits 6 when there is one: a generated definitie without a successful generation
    log, a row pending past --pending-after, a failed last `verify --record`, a volume
    full within --disk-days. Nothing is printed when all is well.
    """
    found = query.status(_repo(ctx), since=since, pending_after=pending_after, disk_days=disk_days)
    if check:
        for problem in found["problems"]:
            click.echo(f"problem: {problem['message']}")
    elif as_json or not _console().is_terminal:
        _json(found)
    else:
        for line in _health_lines(found):
            click.echo(line)
    if check and found["problems"]:
        sys.exit(EXIT_UNHEALTHY)


def _health_lines(found: dict[str, Any]) -> list[str]:
    """The status report for a person at a terminal (80 columns)."""
    schema = found["schema"]
    current = "current" if schema["current"] else f"this library reads {schema['supported']}"
    lines = [f"{found['store']} ({found['backend']}, schema {schema['version']}, {current})"]
    definities = found["definities"]
    if definities["host_table"]:
        since = f" since {definities['since']}" if definities["since"] else ""
        lines.append(
            f"definities: {definities['generated']} generated{since}, "
            f"{len(definities['without_log'])} without a successful generation log"
        )
    else:
        lines.append("definities: no definities table in this database (not checked)")
    pending = found["pending"]
    lines.append(
        f"pending: {pending['n']} in all, {pending['stale']} for more than "
        f"{int(pending['after_s'] // 60)} min"
        + (f" (oldest: log {pending['oldest_id']}, {pending['oldest']})" if pending["n"] else "")
    )
    lines.append("")
    lines.append(
        f"{'':16}{'attempts':>9}{'failed':>8}{'rate':>8}{'p50 ms':>8}{'p95 ms':>8}  top error"
    )
    words = {"day": "last 24 hours", "week": "last 7 days", "previous_week": "7 days before"}
    for name, period in found["periods"].items():
        rate = "—" if period["failure_rate"] is None else f"{period['failure_rate']:.1f}%"
        top = period["top_errors"][0] if period["top_errors"] else None
        error = f"{top['error_type']} ({top['n']})" if top else ""
        lines.append(
            f"{words[name]:16}{period['completed']:>9}{period['failures']:>8}{rate:>8}"
            f"{_or_dash(period['p50_ms']):>8}{_or_dash(period['p95_ms']):>8}  {error[:22]}"
        )
    lines.append("")
    lines += _storage_lines(found["size"], found["chain"])
    lines.append("")
    lines.extend(f"problem: {problem['message']}" for problem in found["problems"])
    if not found["problems"]:
        lines.append("no problems")
    return lines


def _storage_lines(size: dict[str, Any], chain: dict[str, Any]) -> list[str]:
    """The size, the room left and the chain's records, a line each."""
    lines = []
    stored = [f"{_bytes(size['database_bytes'])} database"]
    if size["wal_bytes"] is not None:
        stored.append(f"{_bytes(size['wal_bytes'])} WAL")
    if size["table_bytes"] is not None:
        stored.append(f"{_bytes(size['table_bytes'])} trail")
    lines.append(f"size: {', '.join(stored)}; {size['rows']} rows, {size['rows_per_day']} a day")
    if size["free_bytes"] is not None:
        room = "no rows lately" if size["days_left"] is None else f"{size['days_left']} days"
        lines.append(f"room: {_bytes(size['free_bytes'])} free on the volume ({room} at that rate)")
    head = chain["head"][:16] if chain["head"] else "(empty)"
    lines.append(f"chain: {chain['events']} events, head {head}")
    for kind in ("checkpoint", "verify"):
        record = chain[f"last_{kind}"]
        said = "none recorded (--record)"
        if record is not None:
            said = f"{_age(record['age_s'])} ago ({record['at']}), {record['events']} events"
            if kind == "verify":
                said += f": {record['summary']}"
        lines.append(f"last {kind}: {said}")
    return lines


def _or_dash(value: Any) -> str:
    return "—" if value is None else str(value)


def _bytes(count: int | None) -> str:
    if count is None:
        return "?"
    size, unit = float(count), "B"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":  # noqa: PLR2004
            break
        size /= 1024
    return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"
