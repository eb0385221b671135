"""The command line: `harness run`, `harness ops`, `harness show`. `main(argv) -> exit code`."""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import os
import shlex
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.text import Text

from harness import __version__
from harness.errors import CaseTimeout, HarnessError, unexpected
from harness.limits import memory_limit, time_limit
from harness.paths import COMPILE_BACKENDS, Selection
from harness.registry import fuzzed
from harness.report.text import visible
from harness.timing import stage

if TYPE_CHECKING:
    from harness.cases import BadCase, Case
    from harness.results import CaseResult
    from harness.run import Options

# torch, SymPy and the catalogue are imported when a command needs them: `harness --version` and
# `--help` start in a fraction of a second.


def check_case(case: Case | BadCase, options: Options) -> list[CaseResult]:
    from harness.run import check_case as check

    return check(case, options)


def load_paths(paths: list[str], timeout: float, memory_mb: float) -> list[Case | BadCase]:
    from harness.cases import Limits
    from harness.cases import load_paths as load

    return load(paths, Limits(timeout, memory_mb))

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERRUPTED = 130  # as a shell reports a process stopped by SIGINT


def versions() -> dict[str, str]:
    import flint
    import sympy
    import torch

    return {"harness": __version__, "torch": torch.__version__, "sympy": sympy.__version__,
            "python-flint": flint.__version__, "python": sys.version.split()[0], "cpu": cpu()}


def cpu() -> str:
    """The machine, the vector instructions torch's CPU kernels dispatch to, and the CPU's vendor
    ("x86_64 AVX2 AuthenticAMD"): on another the same torch rounds differently (its vectorised
    loops by instruction set; MKL's BLAS and LAPACK by vendor as well)."""
    import platform

    import torch

    vendor = ""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        with open("/proc/cpuinfo", encoding="ascii") as f:
            vendor = next((line.split(":", 1)[1].strip() for line in f if line.startswith("vendor_id")), "")
    parts = (platform.machine(), torch.backends.cpu.get_cpu_capability(), vendor or platform.processor())
    return " ".join(p for p in parts if p)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harness", description="Exact symbolic verification of torch autograd.")
    p.add_argument("--version", action="version", version=f"harness {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="check case files against the exact reference")
    run.add_argument("paths", nargs="*", default=["cases"], help="case files or folders (default: cases)")
    run.add_argument("-k", dest="keyword", help="only cases whose name matches this (substring or glob)")
    run.add_argument("--reports", default="reports", help="folder for report.json (default: reports)")
    run.add_argument("--allow-target", action="store_true", help="let 'target:' import user code")
    _path_options(run)
    run.add_argument("-v", "--verbose", action="store_true", help="print every case's message")
    run.add_argument("--format", choices=("table", "lines"), dest="form",
                     help="a table, or one plain line per case and dtype (default: a table on a terminal, else lines)")
    run.add_argument("--baseline", help="fail only on regressions against this report.json")
    run.add_argument("--baseline-factor", type=float, default=2.0, help="allowed growth of an error in ulps")
    run.add_argument("--update-baseline", metavar="FILE", help="write this run's report as a baseline")
    run.add_argument("--jobs", type=int, default=1, help="cases in parallel processes")
    run.add_argument("--shard", help="k/n: run the k-th of n deterministic slices of the cases")
    _limit_options(run)
    run.add_argument("--device", help="run every case on this device (cpu, cuda, cuda:N)")
    run.add_argument("--compile", nargs="?", const="inductor", choices=COMPILE_BACKENDS, metavar="BACKEND",
                     help="also run every case through torch.compile (default backend: inductor)")
    _cache_options(run)
    fz = sub.add_parser("fuzz", help="random expressions and points from the catalogue, shrunk on failure")
    fz.add_argument("--seed", type=int, default=0)
    fz.add_argument("--max-examples", type=int, default=100)
    fz.add_argument("--ops", help="comma-separated ops (default: the accurate elementwise set)")
    fz.add_argument("--dtype", action="append",
                    choices=["float64", "float32", "float16", "bfloat16", "complex64", "complex128"],
                    help="repeatable (default float32 and float64; complex ones draw complex expressions)")
    fz.add_argument("--checks", help=f"comma-separated checks to draw (default: all those of the dtypes: "
                                     f"{', '.join(fuzzed('real'))} for real ones; {', '.join(fuzzed('complex'))} for"
                                     " complex ones)")
    fz.add_argument("--max-depth", type=int, default=3)
    fz.add_argument("--range", type=float, nargs=2, default=(-10.0, 10.0), metavar=("LOW", "HIGH"))
    fz.add_argument("--save", metavar="DIR", help="write the shrunk failing case into this folder (default: print it)")
    fz.add_argument("--xfail", metavar="REASON", help="mark the saved case as an expected failure with this reason")
    fz.add_argument("--database", metavar="DIR",
                    help="share findings through Hypothesis's example database in this folder (for example on a "
                         "file system several machines mount): each campaign replays what is stored there first")
    fz.add_argument("--timeout", type=float, default=60.0, help="seconds one example may take (0: none)")
    fz.add_argument("--memory-limit", type=float, default=2000.0, metavar="MB",
                    help="extra memory one example may take (0: no limit)")
    _cache_options(fz)
    ops = sub.add_parser("ops", help="list the op catalogue")
    ops.add_argument("--paths", action="store_true", help="list each check's torch paths and their families")
    show = sub.add_parser("show", help="print a case's exact derivatives")
    show.add_argument("path", help="a case file")
    show.add_argument("-k", dest="keyword", help="only cases whose name matches this")
    show.add_argument("--allow-target", action="store_true", help="let 'target:' import user code")
    _limit_options(show)
    _path_options(show)
    return p


def _limit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, default=300.0,
                   help="seconds loading one file, or one case per dtype, may take (0: none)")
    p.add_argument("--memory-limit", type=float, default=0.0, metavar="MB",
                   help="extra memory loading one file, or one case, may take (0: no limit)")


def _path_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--paths", action="append", default=[], metavar="NAME", dest="only_paths",
                   help="run only torch paths of this name or family (repeatable; `harness ops --paths` lists them)")
    p.add_argument("--skip-paths", action="append", default=[], metavar="NAME",
                   help="do not run torch paths of this name or family (repeatable)")


def _selection(args: argparse.Namespace) -> Selection:
    """--paths and --skip-paths; a name that is no path of any check and no family is bad input."""
    from harness.paths import FAMILIES
    from harness.registry import every_kind, known

    kinds = every_kind()
    for term in [*args.only_paths, *args.skip_paths]:
        if not known(term, kinds):
            raise HarnessError(f"harness {args.command}: {term!r} is no torch path nor a family (families:"
                               f" {', '.join(FAMILIES)}; `harness ops --paths` lists the paths)")
    return Selection(tuple(args.only_paths), tuple(args.skip_paths))


def _cache_options(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--cache", metavar="DIR", help="folder for the symbolic cache (default: HARNESS_CACHE,"
                                                      " else ~/.cache/harness)")
    group.add_argument("--no-cache", action="store_true", help="compute every derivative afresh")


def _use_cache(args: argparse.Namespace) -> None:
    """--cache / --no-cache, for this process and the worker processes it starts."""
    if args.no_cache or args.cache:
        os.environ["HARNESS_CACHE"] = "off" if args.no_cache else str(Path(args.cache).resolve())
        from harness import cache

        cache.use(None if args.no_cache else Path(os.environ["HARNESS_CACHE"]))


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """A reader that closed the pipe (`| head`): the rest of the output goes nowhere and the run
        goes on to its own exit code (rich's default exits 1, which reads as a failure)."""
        self.quiet = True
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """The command's exit code; a reader that closes the pipe early (`| head`) changes nothing."""
    try:
        code = _main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        code = None
    if code is None or _pipe_closed():
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
    return code if code is not None else EXIT_OK


def _pipe_closed() -> bool:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        return False
    return False


def _main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_BAD_INPUT if exc.code else EXIT_OK
    # piped output: whole lines, never wrapped mid-word; no markup or emoji codes read from any text
    console = _Console(highlight=False, soft_wrap=True, markup=False, emoji=False)
    if args.command == "ops":
        return _paths_table(console) if args.paths else _ops(console)
    if args.command in ("run", "show"):
        try:
            args.selection = _selection(args)
        except HarnessError as exc:
            _say(console, str(exc))
            return EXIT_BAD_INPUT
    if args.command == "show":
        return _show(args, console)
    _use_cache(args)
    if args.command == "fuzz":
        return _fuzz(args, console)
    return _run(args, console)


def _say(console: Console, text: str) -> None:
    """Print text that holds user strings: each line with its control characters and escapes shown
    (harness.report.text.visible), never read as markup."""
    for line in text.split("\n"):
        console.print(Text(visible(line)), soft_wrap=True)


def _selected(cases: list[Case | BadCase], keyword: str | None) -> list[Case | BadCase]:
    if not keyword:
        return cases
    return [c for c in cases if keyword in c.name or fnmatch.fnmatch(c.name, keyword)]


def _shard(cases: list[Case | BadCase], shard: str | None) -> list[Case | BadCase]:
    if not shard:
        return cases
    try:
        k, n = (int(part) for part in shard.split("/"))
    except ValueError:
        raise SystemExit(2) from None
    if not 1 <= k <= n:
        raise SystemExit(2)
    return [c for i, c in enumerate(cases) if i % n == k - 1]


def _check_all(cases: list[Case | BadCase], options: Options, jobs: int,
               console: Console) -> tuple[list[CaseResult], int]:
    """Every case, serially or in `jobs` processes; results in case order either way, and how
    many cases finished (fewer than all after Ctrl-C: the run stops, the finished ones count)."""
    results: list[CaseResult] = []
    finished = 0
    try:
        with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
            task = progress.add_task("checking", total=len(cases))
            if jobs > 1:
                for done in _in_processes(cases, options, jobs):
                    results += done
                    finished += 1
                    progress.advance(task)
            else:
                for case in cases:
                    progress.update(task, description=escape(f"checking {visible(case.name)}"))
                    results += check_case(case, options)
                    finished += 1
                    progress.advance(task)
    except KeyboardInterrupt:
        pass
    return results, finished


def _in_processes(cases: list[Case | BadCase], options: Options, jobs: int) -> Iterator[list[CaseResult]]:
    """check_case over `jobs` worker processes, in case order. Workers ignore SIGINT: Ctrl-C
    reaches this process, which stops them at once (no traceback from each worker)."""
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=jobs, initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN))
    try:
        yield from pool.map(check_case, cases, [options] * len(cases), chunksize=1)
    except BaseException:
        for process in list(getattr(pool, "_processes", {}).values()):  # running cases are not waited for
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _print_report(results: list[CaseResult], console: Console, verbose: bool, form: str | None = None) -> None:
    """The table and the counts; a failure to print (a bug, a closed pipe) is one line on stderr,
    after the reports were written, and the exit code still says what the run found."""
    from harness.report.console import print_report

    try:
        print_report(results, console, verbose=verbose, form=form)
    except BrokenPipeError:
        raise
    except Exception as exc:
        print(visible(f"harness: cannot print the report: {unexpected(exc)}"), file=sys.stderr)


def write_reports(results: list[CaseResult], folder: Path) -> None:
    """report.json, junit.xml, summary.md and index.html, each written atomically."""
    with stage("report"):
        _write_reports(results, folder)


def _write_reports(results: list[CaseResult], folder: Path) -> None:
    """Each report on its own: one that cannot be written (a full disk, a bug) is named on stderr
    in one line, and the others are still written."""
    from harness.report import html, jsonfile, junit, markdown, write_atomic

    meta = versions()
    writers = {"report.json": lambda: jsonfile.render(results, meta), "junit.xml": lambda: junit.render(results),
               "summary.md": lambda: markdown.render(results), "index.html": lambda: html.render(results, meta)}
    for name, render in writers.items():
        try:
            write_atomic(folder / name, render())
        except Exception as exc:
            print(visible(f"harness: cannot write {folder / name}: {unexpected(exc)}"), file=sys.stderr)


def _run(args: argparse.Namespace, console: Console) -> int:
    try:
        loaded = load_paths(args.paths, args.timeout, args.memory_limit)
        cases = _shard(_selected(loaded, args.keyword), args.shard)
    except SystemExit:
        _say(console, f"harness run: --shard takes k/n with 1 <= k <= n, got {args.shard!r}")
        return EXIT_BAD_INPUT
    from harness.report import jsonfile, write_atomic
    from harness.run import Options

    options = Options(allow_targets=args.allow_target, timeout=args.timeout, memory_mb=args.memory_limit,
                      device=args.device, compile=args.compile, paths=args.selection)
    results, finished = _check_all(cases, options, max(1, args.jobs), console)
    write_reports(results, Path(args.reports))
    if finished < len(cases):
        _print_report(results, console, args.verbose, args.form)
        _say(console, f"interrupted: {finished} of {len(cases)} cases finished; the reports in {args.reports}"
                      " hold those alone (no baseline was written or gated)")
        return EXIT_INTERRUPTED
    if args.update_baseline:
        write_atomic(Path(args.update_baseline), jsonfile.render(results, versions(), timings=False, slim=True))
    _print_report(results, console, args.verbose, args.form)
    if not cases:
        if not loaded:
            _say(console, f"no case files found under {', '.join(args.paths)}")
        else:
            chosen = " and ".join(filter(None, [f"-k {args.keyword!r}" if args.keyword else "",
                                                f"--shard {args.shard}" if args.shard else ""]))
            _say(console, f"no case selected: {chosen} matches none of the {len(loaded)} cases under"
                          f" {', '.join(args.paths)}")
        return EXIT_BAD_INPUT
    if args.baseline:
        return _gate(results, args, console)
    if any(r.bad_input or r.status == "error" for r in results):  # a file, a limit or a crash: never 1
        return EXIT_BAD_INPUT
    return EXIT_FAIL if any(r.failed for r in results) else EXIT_OK


def _gate(results: list[CaseResult], args: argparse.Namespace, console: Console) -> int:
    from harness import baseline

    try:
        here = cpu()
        gate = baseline.compare(results, baseline.load(Path(args.baseline)), args.baseline_factor, cpu=here)
    except HarnessError as exc:
        _say(console, f"harness run: {exc}")
        return EXIT_BAD_INPUT
    for line in gate.fixed:
        _say(console, f"fixed: {line}")
    for line in gate.regressions:
        _say(console, f"REGRESSION: {line}")
    for line in gate.drift:
        _say(console, f"drift: {line}")
    if gate.other_cpu is not None:
        _say(console, f"error growth is listed, not gated: the baseline was written on {gate.other_cpu}, this run is"
                      f" on {here} (torch's kernels round differently there); --update-baseline on this machine"
                      " gates it")
    drift = f", {len(gate.drift)} drifted" if gate.other_cpu is not None else ""
    console.print(f"baseline {args.baseline}: {len(gate.regressions)} regressions, {len(gate.fixed)} fixed{drift}",
                  markup=False)
    return EXIT_OK if gate.ok else EXIT_FAIL


OPS_COLUMNS = ("op", "torch", "exact definition", "domain", "kinks: torch's convention", "accuracy",
               "critical points (float64)")


def _ops(console: Console) -> int:
    rows = _ops_rows()
    if not console.is_terminal:  # piped: one whole line per op, its fields named
        for row in rows:
            _say(console, f"{row[0]}: " + " | ".join(f"{c}: {v}" for c, v in zip(OPS_COLUMNS[1:], row[1:])))
    else:
        from rich.table import Table

        t = Table(title="op catalogue")
        for column in OPS_COLUMNS:
            t.add_column(column, overflow="fold")
        for row in rows:
            t.add_row(*row)
        console.print(t)
    console.print(f"{len(rows)} ops; accuracy is what torch's kernel is held to (float32/float64)")
    return EXIT_OK


def _ops_rows() -> list[list[str]]:
    """The listing, one row per op: from the store when this catalogue's listing is there (then
    neither SymPy nor torch is imported), else computed from the catalogue and stored. The store's
    folder is keyed by the sources the rows come from and SymPy's version, as the symbolic cache's."""
    import hashlib
    from importlib.metadata import version

    from harness import store

    fingerprint = hashlib.sha256(b"ops listing 1; sympy " + version("sympy").encode()
                                 + store.source_digest("catalogue", "cli.py", "numbers.py")).hexdigest()[:20]
    listing, question = store.Store(store.default_folder(), fingerprint), "harness ops"
    if listing.enabled():
        found = listing.read(listing.path(question), question)
        if isinstance(found, list) and found and all(
                isinstance(r, list) and len(r) == len(OPS_COLUMNS) and all(isinstance(v, str) for v in r)
                for r in found):
            return found
    rows = _ops_computed()
    if listing.enabled():
        listing.write(question, rows)
    return rows


def _ops_computed() -> list[list[str]]:
    from harness.catalogue import CATALOGUE, torch_api
    from harness.numbers import FORMATS

    rows = []
    for op in CATALOGUE:
        kinks = "; ".join(f"{k.where}: {k.convention}" for k in op.kinks) or "none"
        accuracy = "/".join(f"{u:g}" for u in op.ulps) if isinstance(op.ulps, tuple) else f"{op.ulps:g}"
        critical = ", ".join(f"{v:.6g}" for v in op.critical(FORMATS["float64"])) or "-"
        rows.append([op.name, torch_api(op), _exact_text(op), op.domain, kinks, f"{accuracy} ulps", critical])
    return rows


def _exact_text(op: object) -> str:
    """The closed form over x, y (and keyword names), or the op's doc for structural ops."""
    import sympy

    from harness.catalogue import Predicate, Structural, Where, numeric_keywords

    if isinstance(op, Structural | Predicate | Where):
        return op.doc  # type: ignore[attr-defined]
    names = ["x", "y", "z"][: op.arity] + [k for k in numeric_keywords(op) if k not in op.leading]  # type: ignore
    names = names + list(op.leading)  # type: ignore[attr-defined]
    symbols = sympy.symbols(names, real=True)
    try:
        text = str(op.definition(*symbols))  # type: ignore[attr-defined]
    except TypeError:
        text = ""
    return f"{text}  ({op.doc})" if op.doc and op.doc != text else text  # type: ignore[attr-defined]


def _paths_table(console: Console) -> int:
    """One line per torch path, `check: path [families]` (plain text: names stay whole and greppable)."""
    from harness.paths import FAMILIES
    from harness.registry import CHECKS

    console.print("torch paths by check (select them with paths:, --paths, --skip-paths):", markup=False)
    for kind, check in CHECKS.items():
        for path in check.paths:
            console.print(f"{kind}: {path.name.replace('{order}', 'n')} [{', '.join(sorted(path.families))}]",
                          markup=False)
    console.print("families:", markup=False)
    for name, doc in FAMILIES.items():
        console.print(f"{name}: {doc}", markup=False)
    return EXIT_OK


def _show(args: argparse.Namespace, console: Console) -> int:
    from harness.cases import BadCase
    from harness.run import Options
    from harness.show import show

    cases = _selected(load_paths([args.path], args.timeout, args.memory_limit), args.keyword)
    code = EXIT_OK
    options = Options(allow_targets=args.allow_target, paths=args.selection, timeout=args.timeout,
                      memory_mb=args.memory_limit)
    for case in cases:
        if isinstance(case, BadCase):
            _say(console, case.message)
            code = EXIT_BAD_INPUT
            continue
        try:  # one case's boundary, under the same limits as `harness run`'s
            with time_limit(options.timeout), memory_limit(options.memory_mb):
                text, statuses = show(case, options)
            if "error" in statuses:  # it says why in the text; the exit code says so too
                code = EXIT_BAD_INPUT
        except CaseTimeout:
            text, code = f"{case.file}:{case.line}: error: timed out after {options.timeout:g} s", EXIT_BAD_INPUT
        except Exception as exc:
            text, code = f"{case.file}:{case.line}: {unexpected(exc)}", EXIT_BAD_INPUT
        _say(console, text)
    return code


def _fuzz(args: argparse.Namespace, console: Console) -> int:
    from harness.fuzz import fuzz

    ops = [o.strip() for o in args.ops.split(",") if o.strip()] if args.ops is not None else None  # "" names none
    checks = {} if args.checks is None else {"checks": tuple(c.strip() for c in args.checks.split(",") if c.strip())}
    try:
        with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
            task = progress.add_task(f"fuzzing (seed {args.seed})", total=args.max_examples)
            report = fuzz(seed=args.seed, max_examples=args.max_examples, ops=ops,
                          dtypes=tuple(args.dtype or ("float32", "float64")), max_depth=args.max_depth,
                          save=Path(args.save) if args.save else None, xfail=args.xfail,
                          min_value=args.range[0], max_value=args.range[1],
                          progress=lambda n: progress.update(task, completed=n), timeout=args.timeout,
                          memory_mb=args.memory_limit, database=Path(args.database) if args.database else None,
                          **checks)
    except HarnessError as exc:
        _say(console, f"harness fuzz: {exc}")
        return EXIT_BAD_INPUT
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(report.statuses.items()))
    console.print(f"{report.examples} cases in {report.seconds:.1f} s ({report.per_second:.1f}/s): {statuses}",
                  markup=False)
    if report.failure is None:
        console.print("no failure found", markup=False)
        return EXIT_OK
    _say(console, f"minimal failing case: {report.failure.sources[0][1]}")
    for r in report.failure_results:
        if r.failed:
            _say(console, f"  {r.message}")
    if report.saved is not None:
        _say(console, f"saved as {report.saved}; replay with: harness run {shlex.quote(str(report.saved))}")
    else:
        _say(console, "not saved: the same command with --save DIR [--xfail REASON] writes it as a case file")
    return EXIT_FAIL
