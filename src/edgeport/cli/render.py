"""How the commands print: the consoles, and the one table layout that fits the medium.

- User and model text (paths, names, values) prints verbatim: the consoles never turn emoji codes
  (``:abc:``) into pictures and never highlight; callers pass such text as :class:`~rich.text.Text`
  or through :func:`rich.markup.escape`, so ``[red]x[/red]`` is text, not markup.
- Colours are off with ``NO_COLOR``, ``TERM=dumb``, ``CI=true`` and when the stream is not a terminal;
  live displays (spinners, running clocks) only on an interactive terminal outside CI (:func:`live_ok`).
- Tables (:func:`print_table`): the full table when the console is at least :data:`WIDE_MIN` columns
  wide and the table fits it (prose wrapped at words, no other cell cut), or when ``--wide`` is given
  (then every cell on one line, beyond the terminal if need be). Otherwise (a pipe or CI log is 80 columns unless ``COLUMNS`` says otherwise) the narrow layout: one
  line per row with the key columns, and the other values on an indented line below it as
  ``header value`` pairs. Neither layout elides a header or a value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Sequence, Union

from rich.console import Console
from rich.text import Text

WIDE_MIN = 100
Cell = Union[str, Text]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def plain_env() -> bool:
    """True when the environment asks for no colours (NO_COLOR, TERM=dumb, CI=true)."""
    env = os.environ
    return env.get("NO_COLOR", "") != "" or env.get("TERM", "").strip().lower() in ("dumb", "unknown") or in_ci()


def make_console(stderr: bool = False) -> Console:
    """A console for command output: no emoji codes, no highlighting, colours as the environment allows."""
    return Console(stderr=stderr, highlight=False, emoji=False, soft_wrap=True,
                   no_color=True if plain_env() else None, force_interactive=False if in_ci() else None)


def live_ok(console: Console) -> bool:
    """May a live display (spinner, running clock) draw on this console?"""
    return console.is_terminal and not console.is_dumb_terminal and console.is_interactive and not in_ci()


def text(value: object, style: str | None = None) -> Text:
    """User or model text as a renderable that is printed exactly as given."""
    return value.copy() if isinstance(value, Text) else Text(str(value), style=style or "")


@dataclass(frozen=True)
class Column:
    header: str
    right: bool = False  # numbers: right-aligned in the full table
    key: bool = False  # shown in the narrow layout's row line; other columns go to the detail line
    wrap: bool = False  # prose (descriptions, reasons) may wrap at words in the full table; other cells never do


@dataclass
class Row:
    cells: Sequence[Cell]  # one per column
    style: str | None = None


@dataclass
class Pairs:
    """A detail line of ``header value`` items: wrapped between items, so no value is split from its unit."""

    items: Sequence[Cell]
    lead: Cell | None = None  # printed before the first item, e.g. an output name


@dataclass
class NarrowRow:
    """A row of the narrow layout: cells of the key columns, and the lines printed under it."""

    cells: Sequence[Cell]
    details: Sequence[Cell | Pairs] = ()
    style: str | None = None


@dataclass
class TableSpec:
    columns: Sequence[Column]
    rows: Sequence[Row] = ()
    title: Cell | None = None
    narrow: Sequence[NarrowRow] | None = None  # default: derived from rows (see narrow_rows)


def narrow_rows(spec: TableSpec) -> list[NarrowRow]:
    """Key cells on the row line; every other non-empty cell as ``header value`` on the line below."""
    out = []
    for row in spec.rows:
        keys = [c for col, c in zip(spec.columns, row.cells) if col.key]
        pairs = [Text(f"{col.header} ", style="dim").append_text(text(c)) for col, c in zip(spec.columns, row.cells)
                 if not col.key and str(c).strip() not in ("", "-")]
        out.append(NarrowRow(keys, [Pairs(pairs)] if pairs else [], row.style))
    return out


def print_table(console: Console, spec: TableSpec, wide: bool | None = None) -> None:
    """Print ``spec`` in the layout that fits ``console`` (see the module docstring)."""
    spec = _drop_empty_columns(spec)
    if not spec.rows:
        if spec.title is not None:
            console.print(text(spec.title, "bold"), soft_wrap=False, overflow="fold")
        console.print("  (none)", style="dim", markup=False)
        return
    if wide or (console.width >= WIDE_MIN and _min_width(spec) <= console.width):
        _print_wide(console, spec, forced=bool(wide))
    else:
        _print_narrow(console, spec)


def _drop_empty_columns(spec: TableSpec) -> TableSpec:
    """A column empty in every row says nothing: left out (unless the narrow rows are given ready-made)."""
    used = [i for i in range(len(spec.columns)) if any(i < len(r.cells) and str(r.cells[i]) != "" for r in spec.rows)]
    if not spec.rows or len(used) == len(spec.columns) or spec.narrow is not None:
        return spec
    return TableSpec([spec.columns[i] for i in used], [Row([r.cells[i] for i in used], r.style) for r in spec.rows],
                     spec.title, None)


def _print_wide(console: Console, spec: TableSpec, forced: bool = False) -> None:
    from rich.table import Table

    table = Table(title=text(spec.title) if spec.title is not None else None, title_justify="left", header_style="bold")
    lows, highs = _content_widths(spec)
    overhead = _min_width(spec) - sum(lows)
    # --wide: every cell on one line, beyond the console if need be; else within it, prose wrapped at words
    width = max(console.width, overhead + sum(highs)) if forced else console.width
    limits = _share(width - overhead, lows, highs)
    for col, limit in zip(spec.columns, limits):
        table.add_column(Text(col.header), justify="right" if col.right else "left", overflow="fold",
                         no_wrap=not col.wrap, max_width=limit if col.wrap else None)
    for row in spec.rows:
        table.add_row(*(text(c) for c in row.cells), style=row.style)
    if width <= console.width:
        console.print(table)
        return
    saved = console._width  # rich's own field: None means "follow the terminal"; restored as it was
    console.width = width
    try:
        console.print(table, crop=False)
    finally:
        console._width = saved


def _min_width(spec: TableSpec) -> int:
    """Width of the full table with prose columns wrapped at words and every other cell on one line."""
    return sum(_content_widths(spec)[0]) + 3 * len(spec.columns) + 1  # a space either side of each cell, the borders


def _content_widths(spec: TableSpec) -> tuple[list[int], list[int]]:
    """Per column: the narrowest width that cuts no word of a prose column and no cell of the others; the natural one."""
    from rich.cells import cell_len

    lows, highs = [], []
    for i, col in enumerate(spec.columns):
        cells = [Text(col.header)] + [text(r.cells[i]) for r in spec.rows if i < len(r.cells)]
        high = max(max((cell_len(line) for line in c.plain.splitlines()), default=0) for c in cells)
        low = max(cell_len(w) for c in cells for w in (c.plain.split() or [""])) if col.wrap else high
        lows.append(low)
        highs.append(high)
    return lows, highs


def _share(room: int, lows: list[int], highs: list[int]) -> list[int]:
    """Widths between ``lows`` and ``highs`` adding up to at most ``room``: short columns are made whole first."""
    widths = list(lows)
    spare = room - sum(lows)
    order = sorted(range(len(lows)), key=lambda i: highs[i] - lows[i])
    for n, i in enumerate(order):
        share = spare // (len(order) - n)  # an even share of what is left, or all this column wants
        give = min(highs[i] - lows[i], share)
        widths[i] += give
        spare -= give
    return widths


def _print_narrow(console: Console, spec: TableSpec) -> None:
    from rich.cells import cell_len

    keys = [c for c in spec.columns if c.key]
    while spec.narrow is None and len(keys) > 1 and _row_width(spec, keys) > console.width:
        keys = keys[:-1]  # the row line must fit: the rightmost key column joins the details
        spec = TableSpec([replace(c, key=c in keys) for c in spec.columns], spec.rows, spec.title, None)
    rows = list(spec.narrow) if spec.narrow is not None else narrow_rows(spec)
    widths = [max([cell_len(c.header)] + [cell_len(str(r.cells[i])) for r in rows if i < len(r.cells)])
              for i, c in enumerate(keys)]
    if spec.title is not None:
        console.print(text(spec.title, "bold"), soft_wrap=False, overflow="fold")
    console.print(_line([Text(c.header) for c in keys], keys, widths), style="bold", soft_wrap=False, overflow="fold")
    for r in rows:
        console.print(_line([text(c) for c in r.cells], keys, widths), style=r.style or "", soft_wrap=False,
                      overflow="fold")
        for d in r.details:
            for part in _detail_lines(console, d, max(20, console.width - 4)):
                console.print(Text("    ") + part, soft_wrap=True)


def _detail_lines(console: Console, detail: Cell | Pairs, width: int) -> list[Text]:
    """``detail`` wrapped to ``width``: prose at words, :class:`Pairs` between items (an item too long alone at words)."""
    if not isinstance(detail, Pairs):
        lines = list(text(detail).wrap(console, width, overflow="fold"))
    else:
        lines, line = [], text(detail.lead) if detail.lead is not None else Text()
        for i, item in enumerate(detail.items):
            piece = text(item)
            sep = ", " if i else (" " if line.cell_len else "")
            if line.cell_len and line.cell_len + len(sep) + piece.cell_len > width:
                lines.append(line.append(","))
                line = piece
            else:
                line = line.append(sep).append_text(piece)
        lines.append(line)
        lines = [part for ln in lines for part in (ln.wrap(console, width, overflow="fold") if ln.cell_len > width else [ln])]
    for ln in lines:
        ln.rstrip()
    return lines


def _row_width(spec: TableSpec, keys: list[Column]) -> int:
    from rich.cells import cell_len

    idx = [i for i, c in enumerate(spec.columns) if c in keys]
    return sum(max([cell_len(spec.columns[i].header)] + [cell_len(str(r.cells[i])) for r in spec.rows]) for i in idx) \
        + 2 * (len(idx) - 1)


def _line(cells: list[Text], cols: Sequence[Column], widths: list[int]) -> Text:
    line = Text()
    for i, (cell, col, width) in enumerate(zip(cells, cols, widths)):
        pad = " " * max(0, width - cell.cell_len)
        last = i == len(cols) - 1
        if col.right:
            line.append(pad)
            line.append_text(cell)
        else:
            line.append_text(cell)
            if not last:
                line.append(pad)
        if not last:
            line.append("  ")
    line.rstrip()  # an empty last cell leaves no trailing blanks
    return line
