"""The pieces every report is made of: one self-contained HTML document, no network.

Figures are PNG (or GIF) data URIs, the style sheet is inline, and nothing points outside the
file: even text that quotes a web address is written with an entity (``https&#58;//``) so the
file holds no URL a browser could fetch. Tables are real ``<table>`` elements whose cells hold
the numbers read from the run's files; ``data-key`` / ``data-value`` attributes carry the full
value for scripts and tests.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ganscope.io import atomic_write_text
from ganscope.render import figure_png

CSS = """
:root { --fg: #1d2330; --muted: #5b6475; --line: #d8dce4; --bg: #ffffff; --soft: #f4f6f9;
        --accent: #2f5fb3; --bad: #a3262a; --good: #1f7a3a; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); background: var(--bg); }
header { background: var(--soft); border-bottom: 1px solid var(--line); padding: 14px 28px 10px; }
header h1 { margin: 4px 0 2px; font-size: 24px; }
header .sub { color: var(--muted); margin: 0; }
nav.top { font-size: 14px; }
nav.top a { margin-right: 14px; }
main { padding: 8px 28px 40px; max-width: 1280px; }
section { margin-top: 26px; }
h2 { font-size: 20px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 17px; margin-bottom: 6px; }
a { color: var(--accent); }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13.5px; display: block;
        max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid var(--line); padding: 4px 9px; text-align: left;
         vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
pre { background: var(--soft); border: 1px solid var(--line); padding: 10px; overflow-x: auto;
      font-size: 12.5px; }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 13px; }
.strip { display: flex; flex-wrap: wrap; gap: 10px; }
.strip figure { margin: 0; }
.strip img { width: 250px; image-rendering: pixelated; }
pre.cols { column-count: 3; column-gap: 28px; }
.note { background: #fff8e1; border-left: 4px solid #e0a800; padding: 8px 12px; margin: 10px 0; }
.skip { background: #fdecea; border-left: 4px solid var(--bad); padding: 8px 12px; }
.ok { color: var(--good); font-weight: 600; }
.flag { color: var(--bad); font-weight: 600; }
.muted { color: var(--muted); }
ul.toc { columns: 2; }
footer { color: var(--muted); font-size: 12.5px; padding: 12px 28px;
         border-top: 1px solid var(--line); }
"""

_MIME = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


class Raw(str):
    """Markup that is already safe (made by these helpers): not escaped again."""


def esc(value: Any) -> str:
    """Escape text for HTML; web addresses lose their '://' (as an entity) so nothing in the
    file is a URL a browser would fetch."""
    if isinstance(value, Raw):
        return value
    text = html.escape(str(value), quote=True)
    return re.sub(r"(?i)\b(https?|ftp|wss?):(?=//)", r"\1&#58;", text)


def tag(name: str, content: Any = "", **attrs: Any) -> Raw:
    a = "".join(f' {k.rstrip("_").replace("_", "-")}="{esc(v)}"' for k, v in attrs.items()
                if v is not None and v is not False)
    return Raw(f"<{name}{a}>{esc(content) if not isinstance(content, Raw) else content}"
               f"</{name}>")


def join(parts: Iterable[Any]) -> Raw:
    return Raw("".join(p if isinstance(p, Raw) else esc(p) for p in parts))


def p(text: Any, cls: str | None = None) -> Raw:
    return tag("p", text, class_=cls)


def pre(text: str, cls: str | None = None) -> Raw:
    return tag("pre", text, class_=cls)


def link(text: Any, href: str) -> Raw:
    if re.match(r"(?i)^[a-z][a-z0-9+.-]*:", href):
        raise ValueError(f"reports link only within themselves or to sibling files, not {href}")
    return tag("a", text, href=href)


def section(sid: str, title: Any, *body: Any, level: int = 2) -> Raw:
    return Raw(f'<section id="{esc(sid)}">' + tag(f"h{level}", title) + join(body)
               + "</section>")


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def img_bytes(data: bytes, alt: str, caption: Any = None, mime: str = "image/png",
              cls: str | None = None) -> Raw:
    img = f'<img src="{data_uri(data, mime)}" alt="{esc(alt)}">'
    cap = tag("figcaption", caption) if caption is not None else ""
    return Raw(f'<figure{f" class={chr(34)}{esc(cls)}{chr(34)}" if cls else ""}>{img}{cap}'
               "</figure>")


def img_file(path: str | Path, alt: str, caption: Any = None) -> Raw:
    path = Path(path)
    return img_bytes(path.read_bytes(), alt, caption, _MIME.get(path.suffix.lower(), "image/png"))


def img_figure(fig: Any, alt: str, caption: Any = None, dpi: int = 90) -> Raw:
    """A matplotlib Figure rendered to PNG in memory (nothing written next to the run)."""
    return img_bytes(figure_png(fig, dpi=dpi), alt, caption)


def strip(items: Sequence[tuple[Path, str]]) -> Raw:
    """Small images side by side (sample grids over epochs), each with its caption."""
    return Raw('<div class="strip">' + "".join(img_file(f, cap, cap) for f, cap in items)
               + "</div>")


def cell(value: Any, spec: str | None = None, key: str | None = None) -> Raw:
    """A table cell; numbers are right-aligned, formatted with ``spec`` and keep their full
    value in ``data-value``."""
    if isinstance(value, Raw):
        return Raw(f"<td>{value}</td>")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            text = str(value)
        elif spec == "d":
            text = str(round(value))
        else:
            text = format(value, spec) if spec else str(value)
        k = f' data-key="{esc(key)}"' if key else ""
        return Raw(f'<td class="num"{k} data-value="{esc(repr(value))}">{esc(text)}</td>')
    if value is None:
        return Raw("<td>-</td>")
    return Raw(f"<td>{esc(value)}</td>")


def table(head: Sequence[Any], rows: Iterable[Sequence[Any]], cls: str | None = None,
          tid: str | None = None) -> Raw:
    """``rows`` hold plain values (escaped), numbers (right-aligned) or already made cells."""
    h = "".join(f"<th>{esc(c)}</th>" for c in head)
    body = []
    for r in rows:
        cells = [c if isinstance(c, Raw) and c.startswith("<td") else cell(c) for c in r]
        body.append("<tr>" + "".join(cells) + "</tr>")
    attrs = (f' class="{esc(cls)}"' if cls else "") + (f' id="{esc(tid)}"' if tid else "")
    return Raw(f"<table{attrs}><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody>"
               "</table>")


def kv_table(items: Iterable[tuple[Any, Any]], cls: str | None = "kv") -> Raw:
    """A two-column table of (name, value) rows, names as row headers."""
    rows = "".join(f"<tr><th>{esc(k)}</th>{cell(v)}</tr>" for k, v in items)
    return Raw(f'<table{f" class={chr(34)}{esc(cls)}{chr(34)}" if cls else ""}><tbody>{rows}'
               "</tbody></table>")


def page(title: str, body: Any, *, subtitle: Any = None, nav: Sequence[tuple[str, str]] = (),
         footer: Any = None) -> str:
    """A whole HTML document: inline style, no script, no external resource."""
    nav_html = ""
    if nav:
        nav_html = '<nav class="top">' + "".join(link(t, h) for t, h in nav) + "</nav>"
    sub = p(subtitle, "sub") if subtitle is not None else ""
    foot = tag("footer", footer) if footer is not None else ""
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<header>{nav_html}<h1>{esc(title)}</h1>{sub}</header>"
            f"<main>{body if isinstance(body, Raw) else esc(body)}</main>{foot}</body></html>\n")


def write(path: str | Path, document: str) -> Path:
    path = Path(path)
    atomic_write_text(path, document)
    return path
