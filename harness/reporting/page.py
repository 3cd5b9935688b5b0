"""The HTML report as one page: the answer, the interactive figures, then the details.

``render_page(report)`` lays out a ``harness.reporting.report.Report``: the answer tables per
problem (class ``answer``), every interactive figure (a ``div.plot`` with its Plotly JSON in a
``<script type="application/json">`` beside it, drawn when it nears the window, then marked
``data-drawn="yes"``), download links, the full results table (id
``results-table``: a click on a header sorts by that column, the box above it filters rows by
words), skipped and failed rows counted behind a fold, the other sections folded, and the PNG
figures (for papers) folded last. plotly.js is embedded once, and only when there is a figure:
the page needs no network. Every ``<script>`` element the page carries is marked
``data-harness``; every text from the results is escaped.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from harness.reporting.answer import ANSWER_HEADERS, answer_rows
from harness.reporting.report import ANSWER_NOTE, ANSWER_TITLE, Report, Section, html_table

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; color: #222; max-width: 1400px; }
h1 { margin: 0.3em 0; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
h3 { margin: 1em 0 0.2em; font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.4em 0 1.2em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; }
th { background: #f0f0f0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.lead { font-size: 1.05em; color: #333; margin: 0.2em 0; }
.answers { display: grid; grid-template-columns: repeat(auto-fill, minmax(620px, 1fr));
           gap: 0 2em; }
.reading { margin: 0.2em 0 0.3em; }
table.answer tr:first-child td { font-weight: 600; }
table.answer td:first-child { color: #555; }
.note { color: #666; font-size: 0.85em; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(600px, 1fr));
           gap: 1em; }
figure { margin: 0; } figure.wide { grid-column: 1 / -1; } figcaption { color: #555; font-size: 0.85em; }
.plot { min-height: 300px; border: 1px solid #eee; }
img { max-width: 100%; }
nav { margin-bottom: 0.5em; } nav a { margin-right: 1.5em; }
details { margin: 0.6em 0; } summary { cursor: pointer; }
summary h2 { display: inline; border: none; font-size: 1.2em; }
#results-table th { cursor: pointer; user-select: none; }
#results-table th[aria-sort=ascending]::after { content: " \\25B2"; }
#results-table th[aria-sort=descending]::after { content: " \\25BC"; }
#results-table td:nth-child(n+3) { white-space: nowrap; }
#results-filter { padding: 0.3em; width: 28em; }
"""

# Renders each figure from its JSON, sorts the results table on a header click (numbers by
# data-sort, text otherwise) and filters its rows by every word typed.
SCRIPT = """
(function () {
  // A figure is drawn when it comes near the window: the first screen shows at once.
  function draw(div) {
    if (div.hasAttribute('data-drawn')) return;
    div.setAttribute('data-drawn', 'pending');
    var spec = JSON.parse(document.getElementById(div.id + '-data').textContent);
    Plotly.newPlot(div, spec.data, spec.layout, {responsive: true, displaylogo: false})
      .then(function () { div.setAttribute('data-drawn', 'yes'); });
  }
  var plots = document.querySelectorAll('div.plot');
  if ('IntersectionObserver' in window) {
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) { observer.unobserve(entry.target); draw(entry.target); }
      });
    }, {rootMargin: '400px'});
    plots.forEach(function (div) { observer.observe(div); });
  } else {
    plots.forEach(draw);
  }
  var table = document.getElementById('results-table');
  if (!table) return;
  var body = table.tBodies[0], shown = document.getElementById('results-count');
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  function key(row, col) {
    var cell = row.cells[col], sort = cell.getAttribute('data-sort');
    return sort === null ? cell.textContent : parseFloat(sort);
  }
  headers.forEach(function (th, col) {
    th.addEventListener('click', function () {
      var ascending = th.getAttribute('aria-sort') !== 'ascending';
      headers.forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a, col), y = key(b, col);
        var d = (typeof x === 'number' && typeof y === 'number') ? x - y
          : String(x).localeCompare(String(y), undefined, {numeric: true});
        return ascending ? d : -d;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  document.getElementById('results-filter').addEventListener('input', function (event) {
    var words = event.target.value.toLowerCase().split(/\\s+/).filter(Boolean), count = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var text = row.textContent.toLowerCase();
      var match = words.every(function (w) { return text.indexOf(w) >= 0; });
      row.hidden = !match;
      if (match) count++;
    });
    shown.textContent = count + ' of ' + body.rows.length + ' rows';
  });
})();
"""


def _script(kind: str, text: str, extra: str = "") -> str:
    """A script element we wrote (marked ``data-harness``); ``text`` must be safe in it."""
    return f'<script data-harness="{kind}"{extra}>{text}</script>'


def render_page(report: Report, links: Sequence[tuple[str, str]] = (),
                downloads: Sequence[tuple[str, str]] = ()) -> str:
    title = html.escape(report.title)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{title}</title><style>{STYLE}</style>"]
    parts.append("</head><body>")
    if links:
        parts.append("<nav>" + "".join(f'<a href="{html.escape(href)}">{html.escape(text)}</a>'
                                       for text, href in links) + "</nav>")
    parts.append(f"<h1>{title}</h1>")
    parts += [f'<p class="lead">{html.escape(line)}</p>' for line in report.lead]
    parts += _answer_part(report)
    parts += _figures_part(report)
    parts.append('<h2 id="details">Details</h2>')
    if downloads:
        parts.append("<p>The data behind this page, one row per benchmark, parameter "
                     "combination and result file: " + ", ".join(
                         f'<a href="{html.escape(href)}" download="{html.escape(text)}">'
                         f"{html.escape(text)}</a>" for text, href in downloads) + ".</p>")
    for section in report.sections:
        parts += _section_part(section)
    if report.figures:
        parts.append("<details><summary><h2>Figures for papers (PNG)</h2></summary>")
        for figure_title, png in report.figures:
            data = base64.b64encode(png).decode("ascii")
            parts.append(f'<figure><img alt="{html.escape(figure_title)}" '
                         f'src="data:image/png;base64,{data}"><figcaption>'
                         f"{html.escape(figure_title)}</figcaption></figure>")
        parts.append("</details>")
    if report.interactive:
        # Last in the page: the answer shows before the browser has parsed 4.8 MB of script.
        parts.append(_script("plotly", _plotly_js()))
    parts.append(_script("page", SCRIPT))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _answer_part(report: Report) -> list[str]:
    if not report.answers:
        return []
    parts = [f'<h2 id="answer">{html.escape(ANSWER_TITLE)}</h2>', '<div class="answers">']
    for answer in report.answers:
        parts.append(f'<section><h3>{html.escape(answer.problem)}</h3>'
                     f'<p class="reading">{html.escape(answer.reading)}</p>'
                     f'{html_table(ANSWER_HEADERS, answer_rows(answer), css_class="answer")}'
                     "</section>")
    parts.append("</div>")
    parts.append(f'<p class="note">{html.escape(ANSWER_NOTE)}</p>')
    return parts


def _figures_part(report: Report) -> list[str]:
    if not report.interactive:
        return []
    parts = ['<h2 id="figures">Figures</h2>',
             ('<p class="note">Hover a point for its full combination; drag to zoom, '
             "double-click to zoom out; click a legend entry to hide or show a strategy "
             "(double-click: only that one).</p>"), '<div class="figures">']
    for k, (figure_title, spec, wide) in enumerate(report.interactive):
        parts.append(('<figure class="wide">' if wide else "<figure>")
                     + f'<div class="plot" id="plot-{k}" role="img" '
                     f'aria-label="{html.escape(figure_title)}"></div>'
                     + _script("figure", spec, f' type="application/json" id="plot-{k}-data"')
                     + f"<figcaption>{html.escape(figure_title)}</figcaption></figure>")
    parts.append("</div>")
    return parts


def _section_part(section: Section) -> list[str]:
    parts = [(f"<details{' open' if section.open else ''}><summary><h2>"
             f"{html.escape(section.title)}</h2></summary>")]
    parts += [f"<p>{html.escape(note)}</p>" for note in section.notes]
    for k, (caption, headers, rows) in enumerate(section.tables):
        if k == 0 and section.sort_keys is not None:
            parts.append(f"<h3>{html.escape(caption)}</h3>")
            parts.append('<p><input id="results-filter" type="search" placeholder="filter: '
                         'words in any column, e.g. hdf5 time_matvec">'
                         f' <span id="results-count">{len(rows)} of {len(rows)} rows</span>'
                         " (click a column's header to sort)</p>")
            parts.append(html_table(headers, rows, css_class="results", table_id="results-table",
                                    sort_keys=section.sort_keys))
        elif k > 0 and section.sort_keys is not None:
            parts.append(f"<details><summary>{html.escape(caption)}</summary>"
                         f"{html_table(headers, rows)}</details>")
        else:
            parts.append(f"<h3>{html.escape(caption)}</h3>")
            parts.append(html_table(headers, rows))
    parts.append("</details>")
    return parts


def _plotly_js() -> str:
    from harness.reporting.interactive import plotly_js

    script = plotly_js()
    if "</script" in script.lower():  # would end the element early; never so far
        raise ValueError("plotly.js holds '</script': cannot embed it inline")
    return script
