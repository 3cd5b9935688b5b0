"""``python -m harness publish``: asv's site plus our report, viewable offline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.results_args import error_exit


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "publish", help="asv publish + offline UI + the HTML report, linked both ways",
        description="Run `asv publish` into html_dir (results/html for this project), install "
                    "asv-tachyon's self-contained UI over it (asv's own page needs jQuery and "
                    "flot from the network; it stays as index.legacy.html), write the report "
                    "to html_dir/report/index.html and link the two pages. The site is built "
                    "aside and swapped in at the end: an interrupted publish keeps the old "
                    "site. Serve it over HTTP to view it (asv preview, or any static server).")
    parser.add_argument("--config", default="asv.conf.json",
                        help="asv configuration whose results_dir and html_dir are used "
                             "(default: asv.conf.json)")
    parser.add_argument("--html-dir", default=None,
                        help="write the site here instead of the configuration's html_dir")
    parser.add_argument("--title", default="Benchmark report", help="the report's title")
    parser.add_argument("--no-plots", action="store_true", help="leave the report's figures out")
    parser.set_defaults(func=run)


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (shorter to read)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run(args: argparse.Namespace) -> int:
    from harness.reporting.publish import PublishError, publish

    try:
        site = publish(args.config, html_dir=args.html_dir, title=args.title,
                       plots=not args.no_plots, log=lambda line: print(line, file=sys.stderr))
    except PublishError as exc:
        return error_exit(exc)
    for message in site.warnings:
        print(f"warning: {message}", file=sys.stderr)
    html_dir = _shown(site.html_dir)
    default_config = Path(args.config).resolve() == Path("asv.conf.json").resolve()
    config = "" if default_config else f" --config {args.config}"
    print(f"published {site.results} results of {site.commits} commit(s) to {html_dir}/\n"
          f"  benchmark graphs: {_shown(site.index)}  (asv's classic pages: index.legacy.html,"
          " they need network)\n"
          f"  report:           {_shown(site.report)}\n"
          "view them over HTTP (the pages fetch their data; file:// does not work):\n"
          f"  asv preview{config}{'' if args.html_dir is None else ' --html-dir ' + html_dir}"
          "          # http://127.0.0.1:8080/\n"
          f"  python -m http.server --bind 127.0.0.1 --directory {html_dir} 8080")
    return 0
