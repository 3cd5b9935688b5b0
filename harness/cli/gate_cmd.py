"""``python -m harness gate BASE HEAD``: a pull request's regression gate (see harness.reporting.gate)."""

from __future__ import annotations

import argparse

from harness import names
from harness.cli.arg_types import int_at_least, parse_bytes, positive_ratio
from harness.cli.results_args import add_format_argument, error_exit

DESCRIPTION = f"""\
Run the asv suite on BASE and HEAD where results are missing, compare HEAD with BASE with asv
compare's statistics, and fail (exit status 1) when a time or memory figure regressed.

Steps: BASE and HEAD are resolved to full hashes with git in the asv project's repository
(the config's "repo" when it is a local directory, else the config's directory). Unless
--no-run, `asv machine --yes` registers this machine when asv knows no entry for it, then one
`asv run --skip-existing-successful --record-samples --interleave-rounds HASHFILE:...` runs both
commits in the environments of the config (real builds of each commit, e.g. virtualenvs: not
--python=same). asv takes the benchmarks from the working tree and the project from each
commit. asv's output goes to stderr; its exit status 2 (some benchmarks failed) is not an
error, the failures are judged. Then the two commits' results (one machine, the environments
just run) are compared.

Judged: time figures (time_ benchmarks, the meter plugin's coldtime_) with --factor; memory
figures (unit bytes: peakmem_, mem_, track_ with unit bytes, e.g. the suite's exact
{names.TRACK_PEAK} / {names.TRACK_ANON}, and the meter plugin's peakincrement_,
anonincrement_, fileincrement_, storageread_, readcalls_) with --memory-factor. A figure regresses when HEAD / BASE exceeds its
factor and, where there are samples, asv's test finds the difference significant; a memory
figure must also grow by more than --memory-floor. A benchmark of any unit that fails on HEAD
but did not fail on BASE is a regression too. Shown but not judged: other units (GB/s,
counts), track_ figures in seconds (asv keeps one value per run: no samples to tell noise from
change), failures on both sides, results missing on one side, skips.

Unless --confirm 0 (or --no-run), the time figures judged regressions are measured again on
both commits, in fresh processes, and stay regressions only if the re-run finds them again.

Exit status: 0 no regression, 1 regression, 2 cannot judge (bad arguments, unknown revision,
asv failed, no results)."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "gate", help="run asv on BASE and HEAD; exit 1 when a time or memory figure regressed",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", metavar="BASE", help="the reference commit (hash, branch, tag)")
    parser.add_argument("head", metavar="HEAD", help="the commit judged (hash, branch, tag)")
    parser.add_argument("--factor", type=positive_ratio, default=1.1,
                        help="time: smallest ratio HEAD/BASE that counts as a regression "
                             "(default 1.1, asv's)")
    parser.add_argument("--memory-factor", type=positive_ratio, default=1.1,
                        help="memory (bytes): the same for memory figures (default 1.1)")
    parser.add_argument("--memory-floor", type=parse_bytes, default=None,
                        metavar="BYTES",
                        help="memory: changes up to this size are noise whatever their ratio "
                             "(default 1MiB; 0 judges by ratio alone)")
    parser.add_argument("--confirm", type=int_at_least(0), default=1, metavar="N",
                        help="re-measure time regressions N times on both commits and keep "
                             "only those found every time (default 1; 0: the first verdict "
                             "stands). One asv round is one process, and one slow process on a "
                             "busy machine can make unchanged code look slower")
    parser.add_argument("--config", default="asv.conf.json",
                        help="the asv configuration (default: asv.conf.json)")
    parser.add_argument("--bench", "-b", action="append", default=[], metavar="REGEX",
                        help="only benchmarks whose name(params) matches (asv run --bench; "
                             "repeatable)")
    parser.add_argument("--no-run", action="store_true",
                        help="do not run asv: judge the results already in results_dir")
    parser.add_argument("--machine", default=None,
                        help="asv machine name (default: asv's, the host name)")
    parser.add_argument("--show-stderr", action="store_true",
                        help="show the benchmarks' stderr in asv's output (asv run -e)")
    add_format_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.reporting import gate
    from harness.reporting.report import format_table
    from harness.reporting.results import ResultsFileError

    try:
        result = gate.run_gate(
            args.config, args.base, args.head, factor=args.factor,
            memory_factor=args.memory_factor,
            memory_floor=(gate.DEFAULT_MEMORY_FLOOR if args.memory_floor is None
                          else args.memory_floor),
            confirm=args.confirm, bench=args.bench, run=not args.no_run, machine=args.machine,
            show_stderr=args.show_stderr)
    except (gate.GateError, ResultsFileError, FileNotFoundError, ValueError) as exc:
        return error_exit(exc)
    print(format_table(args.format, *result.table_rows()))
    print("\n" + result.summary())
    if result.problem:
        error_exit(result.problem)
    return {gate.PASS: 0, gate.FAIL: 1, gate.CANNOT_JUDGE: 2}[result.verdict]
