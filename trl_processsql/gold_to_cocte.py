"""Gold SQL to a verified chain of CTEs, deterministically, for SFT data with no LLM in the loop.

:func:`convert_gold_many` rewrites each gold query as CoCTE: uncorrelated subqueries (IN, EXISTS,
scalar, FROM), set-operation branches, single-table filters of inner joins and joins that feed an
aggregation become CTEs with meaningful snake_case names (unique, never a table name or keyword);
a simple single-table query stays one step. Every conversion is checked by execution: the result
must equal the gold's under both comparison modes and every step view must run. A conversion that
fails is reported with its reason (a key of :data:`CONVERSION_FAILURES`), never emitted.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, NamedTuple

import sqlglot
from sqlglot import exp

from .cocte import STEP_SEPARATOR, VIEW_ROWS, CoCTE, _run_queries, _sqlglot_error, parse_cocte, step_view_sql
from .sql.compare import COMPARISON_MODES
from .sql.judge import judge_results
from .sql.render import describe_result
from .sql.sandbox import ExecutionResult

__all__ = ["CONVERSION_FAILURES", "ConversionResult", "convert_gold_many", "gold_to_cocte"]


CONVERSION_FAILURES = {
    "gold_error": "the gold query itself does not run",
    "parse_error": "sqlglot cannot parse the gold query",
    "unsupported": "the query is not one the converter handles",
    "step_error": "a step view of the conversion does not run",
    "execution_error": "the converted query does not run",
    "result_differs": "the converted query returns another result than the gold",
}
"""Why a conversion was not emitted: ``ConversionResult.reason`` is one of these keys."""


@dataclass(frozen=True)
class ConversionResult:
    """A gold query and its verified CoCTE, or the reason (a key of :data:`CONVERSION_FAILURES`) it has none."""

    gold_sql: str
    cocte: CoCTE | None = None
    reason: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.cocte is not None


class _ConversionFailure(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class _Source(NamedTuple):
    alias: str  # the name the query uses for this source, as written
    table: str | None  # the table or CTE it reads (lower case); None for a derived table
    columns: frozenset[str] | None  # its columns (lower case); None if unknown


_FILTER_WORDS = {exp.NEQ: "not", exp.GT: "over", exp.GTE: "at_least", exp.LT: "under", exp.LTE: "at_most", exp.Like: "like"}
_NAME_LENGTH = 40


def _snake(text: str) -> str:
    """``text`` as an ASCII snake_case word ("Home Town" -> "home_town")."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")


def _enclosing_query(node: exp.Expression) -> exp.Expression | None:
    """The SELECT (or set operation) whose scope ``node`` belongs to."""
    parent = node.parent
    while parent is not None and not isinstance(parent, (exp.Select, exp.SetOperation)):
        parent = parent.parent
    return parent


def _branches(query: exp.Expression) -> list[exp.Expression]:
    """The SELECTs a set operation combines, left to right."""
    if isinstance(query, exp.SetOperation):
        return _branches(query.left) + _branches(query.right)
    return [query]


def _conjuncts(condition: exp.Expression) -> list[exp.Expression]:
    if isinstance(condition, exp.And):
        return _conjuncts(condition.left) + _conjuncts(condition.right)
    if isinstance(condition, exp.Paren) and isinstance(condition.this, exp.And):
        return _conjuncts(condition.this)
    return [condition]


def _filter_words(select: exp.Select) -> str:
    """Words naming the first WHERE comparison of a column with a literal ("country = 'France'" -> "france")."""
    where = select.args.get("where")
    if where is None:
        return ""
    for node in where.find_all(exp.EQ, *_FILTER_WORDS, bfs=False):
        if _enclosing_query(node) is not select:
            continue
        column, value = node.this, node.expression
        if isinstance(column, exp.Literal):
            column, value = value, column
        if not (isinstance(column, exp.Column) and isinstance(value, exp.Literal) and _snake(value.name)):
            continue
        value_words = "_".join(_snake(value.name).split("_")[:3])
        if isinstance(node, exp.EQ):
            return value_words if value.is_string else f"{_snake(column.name)}_{value_words}"
        return f"{_snake(column.name)}_{_FILTER_WORDS[type(node)]}_{value_words}"
    return ""


def _projection_words(select: exp.Select) -> str:
    """Words naming a single output column ("avg(age)" -> "avg_age"), else ""."""
    if len(select.expressions) != 1:
        return ""
    expression = select.expressions[0].unalias()
    if isinstance(expression, exp.AggFunc):
        column = expression.find(exp.Column)
        return f"{expression.key}_{_snake(column.name)}" if column else expression.key
    if isinstance(expression, exp.Column) and not isinstance(expression.this, exp.Star):
        return _snake(expression.name)
    return ""


class _GoldConverter:
    """Decomposes one gold query into CTEs, knowing the tables and columns of its database.

    Three rules, applied from the innermost query out:

    - an uncorrelated subquery (``IN``, ``EXISTS``, scalar, ``FROM``) becomes a CTE that the
      query reads instead (correlated ones stay in place: they cannot run alone);
    - in the final query (or in each branch of a final set operation), ``WHERE`` conditions on
      one table of an inner join become a CTE that filters that table first;
    - a join feeding an aggregation becomes a CTE of the joined rows (the columns the
      aggregation needs), and the aggregation reads it;

    then each branch of a final set operation becomes a CTE. The result is only a proposal:
    :func:`convert_gold_many` keeps it only if execution proves it equivalent.
    """

    def __init__(self, tables: dict[str, frozenset[str]]):
        self.tables = tables
        self.columns: dict[str, frozenset[str] | None] = dict(tables)  # tables and the CTEs made so far
        self.origin: dict[str, str] = {}  # CTE name -> the table it mostly reads, for names
        self.ctes: list[tuple[str, exp.Expression]] = []
        self.taken = set(tables)

    def convert(self, gold_sql: str) -> str:
        try:
            tree = sqlglot.parse_one(gold_sql, read="sqlite")
        except (sqlglot.errors.SqlglotError, RecursionError) as exc:
            raise _ConversionFailure("parse_error", _sqlglot_error(gold_sql) or str(exc)) from None
        if not isinstance(tree, (exp.Select, exp.SetOperation)):
            raise _ConversionFailure("unsupported", f"not a query ({tree.key.upper()})")
        self.taken |= {t.alias_or_name.lower() for t in tree.find_all(exp.Table)}
        self.taken |= {a.name.lower() for a in tree.find_all(exp.TableAlias)}
        self._strings_from_identifiers(tree)
        if tree.args.get("with_"):
            return self._render_existing_chain(tree)
        if isinstance(tree, exp.SetOperation):
            self._branches_to_ctes(tree)
        else:
            self._decompose(tree, top=True)
        return self._render(tree)

    # -- names and scopes ----------------------------------------------------------------------

    def _strings_from_identifiers(self, tree: exp.Expression) -> None:
        """Spider writes strings as "France": SQLite reads a double-quoted name that resolves to
        no column as a string. Make those string literals, before CTEs move them to new scopes."""
        known = set(self.taken)
        for columns in self.tables.values():
            known |= columns
        known |= {a.alias.lower() for a in tree.find_all(exp.Alias)}
        known |= {c.name.lower() for a in tree.find_all(exp.TableAlias) for c in a.columns}
        for column in list(tree.find_all(exp.Column)):
            identifier = column.this
            if column.table or not isinstance(identifier, exp.Identifier) or not identifier.quoted:
                continue
            if identifier.name.lower() not in known:
                column.replace(exp.Literal.string(identifier.name))

    def _name(self, words: str) -> str:
        """A unique snake_case CTE name that is no table name and no keyword."""
        name = _snake(words) or "step"
        if len(name) > _NAME_LENGTH:
            name = name[:_NAME_LENGTH].rsplit("_", 1)[0]
        if name[0].isdigit():
            name = f"t_{name}"
        if name in self.tables or name.upper() in sqlglot.tokens.Tokenizer.KEYWORDS:
            name = f"{name}_rows"
        candidate, n = name, 2
        while candidate in self.taken:
            candidate, n = f"{name}_{n}", n + 1
        self.taken.add(candidate)
        return candidate

    def _main_table(self, query: exp.Expression) -> str | None:
        """The table a query reads first, seen through the CTEs made from it."""
        query = _branches(query)[0]
        if not isinstance(query, exp.Select):
            return None
        tables = [s.table for s in self._sources(query).values() if s.table]
        return self.origin.get(tables[0], tables[0]) if tables else None

    def _describe(self, query: exp.Select) -> str:
        """Words for a CTE name: its table, its first filter, and what it projects."""
        words = [self._main_table(query) or "values"]
        filters = _filter_words(query)
        projection = _projection_words(query)
        aggregated = bool(query.expressions) and isinstance(query.expressions[0].unalias(), exp.AggFunc)
        words += [w for w in (filters, projection if aggregated or not filters else "") if w]
        return "_".join(words)

    def _add(self, name: str, body: exp.Expression) -> None:
        self.ctes.append((name, body))
        self.columns[name] = self._output_columns(body)
        table = self._main_table(body)
        if table:
            self.origin[name] = table

    def _sources(self, select: exp.Select) -> dict[str, _Source]:
        """What the FROM clause of ``select`` reads, by the lower-case name the query uses."""
        sources = {}
        from_ = select.args.get("from_")
        nodes = ([from_.this] if from_ else []) + [join.this for join in select.args.get("joins") or []]
        for node in nodes:
            if isinstance(node, exp.Table):
                table = node.name.lower()
                sources[node.alias_or_name.lower()] = _Source(node.alias_or_name, table, self.columns.get(table))
            elif isinstance(node, exp.Subquery):
                sources[node.alias.lower()] = _Source(node.alias, None, self._output_columns(node.this))
            else:
                sources[""] = _Source("", None, None)
        return sources

    def _output_columns(self, query: exp.Expression) -> frozenset[str] | None:
        query = _branches(query)[0]
        if not isinstance(query, exp.Select):
            return None
        sources = self._sources(query)
        names: set[str] = set()
        for expression in query.expressions:
            if isinstance(expression, exp.Star):
                expanded = [s.columns for s in sources.values()]
            elif isinstance(expression, exp.Column) and isinstance(expression.this, exp.Star):
                expanded = [sources[expression.table.lower()].columns] if expression.table.lower() in sources else [None]
            else:
                expanded = [frozenset({expression.output_name.lower()})]
            if any(columns is None for columns in expanded):
                return None
            names.update(*expanded)
        return frozenset(names)

    def _resolve(self, column: exp.Column, sources: dict[str, _Source]) -> str | None:
        """The source (lower-case name) a column of this scope reads, if it is certain."""
        if column.table:
            return column.table.lower() if column.table.lower() in sources else None
        hits = [key for key, s in sources.items() if s.columns is None or column.name.lower() in s.columns]
        return hits[0] if len(hits) == 1 and sources[hits[0]].columns is not None else None

    def _nested_queries(self, select: exp.Expression) -> list[exp.Expression]:
        """Subqueries and EXISTS whose query belongs directly to ``select``'s scope, in text order."""
        return [
            node
            for node in select.find_all(exp.Subquery, exp.Exists, bfs=False)
            if _enclosing_query(node) is select and isinstance(node.this, (exp.Select, exp.SetOperation))
        ]

    def _escapes(self, query: exp.Expression, scopes: tuple[dict[str, _Source], ...] = ()) -> bool:
        """Whether ``query`` reads a name it does not define (a correlated subquery)."""
        if isinstance(query, exp.SetOperation):
            return any(self._escapes(branch, scopes) for branch in (query.left, query.right))
        if isinstance(query, exp.Subquery):
            return self._escapes(query.this, scopes)
        if not isinstance(query, exp.Select):
            return True
        scopes = (*scopes, self._sources(query))
        outputs = {e.alias.lower() for e in query.expressions if isinstance(e, exp.Alias)}
        for column in query.find_all(exp.Column):
            if _enclosing_query(column) is not query:
                continue
            if column.table:
                if not any(column.table.lower() in scope for scope in scopes):
                    return True
            elif column.name.lower() not in outputs and not any(
                s.columns is None or column.name.lower() in s.columns for scope in scopes for s in scope.values()
            ):
                return True
        return any(self._escapes(node.this, scopes) for node in self._nested_queries(query))

    # -- the rules -------------------------------------------------------------------------------

    def _decompose(self, query: exp.Select, top: bool) -> None:
        for node in self._nested_queries(query):
            inner = node.this
            if self._escapes(inner):
                continue
            if isinstance(inner, exp.SetOperation):
                words = self._set_operation_words(inner, self._branches_to_ctes(inner))
            else:
                words = self._describe(inner)  # before its own filters move into CTEs
                self._decompose(inner, top=False)
            name = self._name(words)
            if isinstance(node, exp.Subquery) and isinstance(node.parent, (exp.From, exp.Join)):
                node.replace(self._table(name, node.alias))
            else:
                inner.replace(self._reference(name, self._single_output(inner)))
            self._add(name, inner)
        if top:
            self._filter_tables_first(query)
            self._join_before_aggregating(query)

    def _branches_to_ctes(self, query: exp.SetOperation) -> list[str]:
        """Each SELECT a set operation combines becomes a CTE; returns their names."""
        names = []
        for branch in _branches(query):
            if not isinstance(branch, exp.Select):
                raise _ConversionFailure("unsupported", "a set-operation branch that is not a SELECT")
            words = self._describe(branch)
            self._decompose(branch, top=True)
            names.append(self._name(words))
            branch.replace(self._reference(names[-1], "*"))
            self._add(names[-1], branch)
        return names

    @staticmethod
    def _set_operation_words(query: exp.SetOperation, names: list[str]) -> str:
        """Words for a set operation: tryout_goalie INTERSECT tryout_mid -> tryout_goalie_and_mid."""
        operator = {exp.Union: "or", exp.Intersect: "and", exp.Except: "except"}.get(type(query), "set")
        first, second = names[0].split("_"), names[1].split("_")
        shared = next((i for i, (a, b) in enumerate(zip(first, second)) if a != b), min(len(first), len(second)))
        rest = second[shared:]
        return "_".join(first + [operator] + (rest if rest and not "".join(rest).isdigit() else second))

    def _single_output(self, query: exp.Expression) -> str:
        """The name of the one column a subquery returns (naming it if needed), else "*"."""
        if not isinstance(query, exp.Select) or len(query.expressions) != 1:
            return "*"
        expression = query.expressions[0]
        if isinstance(expression, exp.Star) or (isinstance(expression, exp.Column) and isinstance(expression.this, exp.Star)):
            return "*"
        if not expression.output_name:
            name = _snake(_projection_words(query)) or "value"
            expression.replace(exp.alias_(expression, name))
            return name
        return expression.output_name

    @staticmethod
    def _table(name: str, alias: str = "") -> exp.Table:
        table = exp.Table(this=exp.to_identifier(name))
        if alias and alias.lower() != name:
            table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
        return table

    def _reference(self, name: str, column: str) -> exp.Select:
        """``SELECT column FROM name``: what replaces a query moved into the CTE ``name``."""
        projection = exp.Star() if column == "*" else exp.Column(this=exp.to_identifier(column))
        return exp.Select(expressions=[projection]).from_(self._table(name), copy=False)

    def _filter_tables_first(self, select: exp.Select) -> None:
        """WHERE conditions on one table of an inner join become a CTE filtering that table."""
        where, joins = select.args.get("where"), select.args.get("joins") or []
        if where is None or not joins:
            return
        if any(join.side or (join.kind or "").upper() not in ("", "INNER", "CROSS") for join in joins):
            return  # an outer join: a filter on its optional side must stay after the join
        sources = self._sources(select)
        by_source: dict[str, list[exp.Expression]] = {}
        rest = []
        for condition in _conjuncts(where.this):
            key = self._only_source(condition, select, sources)
            if key is not None and sources[key].table in self.tables:
                by_source.setdefault(key, []).append(condition)
            else:
                rest.append(condition)
        if not by_source:
            return
        nodes = {node.alias_or_name.lower(): node for node in [select.args["from_"].this, *(j.this for j in joins)]}
        for key, conditions in by_source.items():
            for condition in conditions:
                for column in condition.find_all(exp.Column):
                    if _enclosing_query(column) is select and column.table.lower() == key:
                        column.set("table", None)
            table = nodes[key]
            body = exp.Select(expressions=[exp.Star()]).from_(self._table(table.name), copy=False)
            body.set("where", exp.Where(this=exp.and_(*conditions, copy=False)))
            name = self._name(f"{table.name}_{_filter_words(body) or 'filtered'}")
            table.replace(self._table(name, table.alias_or_name))
            self._add(name, body)
        select.set("where", exp.Where(this=exp.and_(*rest, copy=False)) if rest else None)

    def _only_source(self, condition: exp.Expression, select: exp.Select, sources: dict[str, _Source]) -> str | None:
        """The one source a WHERE condition reads, if it reads exactly one and can move before the join."""
        if condition.find(exp.AggFunc, exp.Window) or any(
            self._escapes(node.this) for node in condition.find_all(exp.Subquery, exp.Exists)
        ):
            return None
        keys = set()
        for column in condition.find_all(exp.Column):
            if _enclosing_query(column) is select:
                keys.add(self._resolve(column, sources))
        return keys.pop() if len(keys) == 1 and None not in keys else None

    def _join_before_aggregating(self, select: exp.Select) -> None:
        """A join that feeds GROUP BY or aggregates becomes a CTE of the joined rows."""
        joins = select.args.get("joins") or []
        parts = [*select.expressions, *(select.args.get(k) for k in ("group", "having", "order") if select.args.get(k))]
        aggregated = select.args.get("group") or any(part.find(exp.AggFunc) for part in parts)
        if not joins or not aggregated or select.find(exp.Window):
            return
        if any(isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star)) for e in select.expressions):
            return
        if any(self._escapes(node.this) for part in parts for node in part.find_all(exp.Subquery, exp.Exists)):
            return
        sources = self._sources(select)
        outputs = {e.alias.lower() for e in select.expressions if isinstance(e, exp.Alias)}
        needed: dict[tuple[str, str], list[exp.Column]] = {}  # (source, column) -> the nodes reading it
        spelling: dict[tuple[str, str], str] = {}
        for part in parts:
            for column in part.find_all(exp.Column):
                if _enclosing_query(column) is not select:
                    continue
                key = self._resolve(column, sources)
                if key is None:
                    if not column.table and column.name.lower() in outputs:
                        continue  # ORDER BY an output alias
                    return
                needed.setdefault((key, column.name.lower()), []).append(column)
                spelling.setdefault((key, column.name.lower()), column.name)
        if not needed:  # count(*) over a join: the join keys become the joined rows' columns
            on_columns = [column for join in joins if join.args.get("on") for column in join.args["on"].find_all(exp.Column)]
            for column in on_columns:
                key = self._resolve(column, sources)
                if key is not None:
                    needed.setdefault((key, column.name.lower()), [])
                    spelling.setdefault((key, column.name.lower()), column.name)
        if not needed:
            return
        counts = Counter(name for _, name in needed)
        projections, renames, used = [], {}, set()
        for key, name in needed:
            source = sources[key]
            original = spelling[key, name]
            output = original if counts[name] == 1 else f"{self.origin.get(source.table, source.table or key)}_{original}"
            while output.lower() in used:
                output += "_2"
            used.add(output.lower())
            column = exp.Column(this=exp.to_identifier(original), table=exp.to_identifier(source.alias))
            projections.append(column if output == original else exp.alias_(column, exp.to_identifier(output)))
            renames[key, name] = output
        body = exp.Select(expressions=projections)
        for arg in ("from_", "joins", "where"):
            body.set(arg, select.args.get(arg))
        tables = list(dict.fromkeys(self.origin.get(s.table, s.table) for s in sources.values() if s.table))
        name = self._name("_".join(tables[:3] + [_filter_words(body)]))
        for (key, column_name), columns in needed.items():
            for column in columns:
                column.replace(exp.Column(this=exp.to_identifier(renames[key, column_name])))
        select.set("from_", exp.From(this=self._table(name)))
        select.set("joins", None)
        select.set("where", None)
        self._add(name, body)

    # -- text --------------------------------------------------------------------------------------

    def _render(self, final: exp.Expression) -> str:
        steps = [
            f"{'WITH ' if i == 0 else ''}{name} AS (\n  {body.sql(dialect='sqlite')}\n){',' if i < len(self.ctes) - 1 else ''}"
            for i, (name, body) in enumerate(self.ctes)
        ]
        return STEP_SEPARATOR.join([*steps, final.sql(dialect="sqlite")])

    @staticmethod
    def _render_existing_chain(tree: exp.Expression) -> str:
        """A gold query that already has a WITH clause: its CTEs are the steps, as they are."""
        chain = tree.args["with_"]
        tree.set("with_", None)
        ctes = chain.expressions
        head = "WITH RECURSIVE " if chain.args.get("recursive") else "WITH "
        steps = [
            f"{head if i == 0 else ''}{cte.sql(dialect='sqlite')}{',' if i < len(ctes) - 1 else ''}"
            for i, cte in enumerate(ctes)
        ]
        return STEP_SEPARATOR.join([*steps, tree.sql(dialect="sqlite")])


_TABLES_SQL = "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"


def _read_schemas(db_paths: Iterable[str], runner) -> dict[str, dict[str, frozenset[str]]]:
    """Lower-case table and column names of each database, read through the sandbox."""
    db_paths = sorted(set(db_paths))
    listings = _run_queries(runner, [(db, _TABLES_SQL) for db in db_paths])
    tables = [(db, row[0]) for db, listing in zip(db_paths, listings) if listing.ok for row in listing.rows]
    quoted = ['"' + str(table).replace('"', '""') + '"' for _, table in tables]
    heads = _run_queries(runner, [(db, f"SELECT * FROM {q} LIMIT 0") for (db, _), q in zip(tables, quoted)])
    schemas: dict[str, dict[str, frozenset[str]]] = {db: {} for db in db_paths}
    for (db, table), head in zip(tables, heads):
        schemas[db][str(table).lower()] = frozenset(c.lower() for c in head.columns)
    return schemas


def _verdict(gold_sql: str, cocte: CoCTE, gold: ExecutionResult, final: ExecutionResult, views: list[ExecutionResult]) -> ConversionResult:
    if not gold.ok:
        return ConversionResult(gold_sql, reason="gold_error", detail=f"{gold.status}: {gold.message}")
    if cocte.parse_error or cocte.fallback:
        return ConversionResult(gold_sql, reason="unsupported", detail=f"the CoCTE does not read back: {cocte.parse_error}")
    for step, view in zip([s for s in cocte.steps if s.name], views):
        if not view.ok:
            return ConversionResult(gold_sql, reason="step_error", detail=f"{step.name}: {view.status}: {view.message}")
    if not final.ok:
        return ConversionResult(gold_sql, reason="execution_error", detail=f"{final.status}: {final.message}")
    for mode in COMPARISON_MODES:
        if not judge_results([final], [gold], [gold_sql], mode=mode)[0].correct:
            return ConversionResult(gold_sql, reason="result_differs", detail=f"{mode} comparison: {describe_result(final)}")
    return ConversionResult(gold_sql, cocte)


def convert_gold_many(
    items: Iterable[tuple[str, str | os.PathLike]], runner, *, view_rows: int = VIEW_ROWS
) -> list[ConversionResult]:
    """Convert ``(gold_sql, db_path)`` pairs to CoCTE, verifying every conversion by execution.

    A conversion is kept only if its result equals the gold's under both comparison modes
    (``spider`` with the gold's row order rule, and ``bird``) and every step view runs. With an
    :class:`~trl_processsql.sql.SQLExecutor` as ``runner`` all checks run in one batch (plus two
    small ones that read the schemas).
    """
    items = [(gold, os.fspath(db)) for gold, db in items]
    present = {db for _, db in items if os.path.isfile(db)}
    schemas = _read_schemas(present, runner)
    results: list[ConversionResult | None] = [None] * len(items)
    checks: dict[int, tuple[CoCTE, int, int]] = {}
    queries: list[tuple[str, str]] = []
    for i, (gold, db) in enumerate(items):
        if db not in present:
            results[i] = ConversionResult(gold, reason="gold_error", detail=f"database not found: {db}")
            continue
        try:
            cocte = parse_cocte(_GoldConverter(schemas[db]).convert(gold))
        except _ConversionFailure as failure:
            results[i] = ConversionResult(gold, reason=failure.reason, detail=failure.detail)
            continue
        views = [step_view_sql(cocte, k, view_rows + 1) for k, step in enumerate(cocte.steps) if step.name]
        checks[i] = (cocte, len(queries), len(views))
        queries += [(db, gold), (db, cocte.sql), *((db, view) for view in views)]
    answers = _run_queries(runner, queries)
    for i, (cocte, at, n_views) in checks.items():
        gold, final, *views = answers[at : at + 2 + n_views]
        results[i] = _verdict(items[i][0], cocte, gold, final, views)
    return results


def gold_to_cocte(gold_sql: str, db_path: str | os.PathLike, runner, *, view_rows: int = VIEW_ROWS) -> ConversionResult:
    """Convert one gold query to a verified CoCTE (see :func:`convert_gold_many`).

    >>> import sqlite3, tempfile, os
    >>> from trl_processsql.sql import SQLiteSandbox
    >>> path = os.path.join(tempfile.mkdtemp(), "toy.sqlite")
    >>> with sqlite3.connect(path) as c:
    ...     _ = c.executescript("CREATE TABLE singer (id INT, age INT); INSERT INTO singer VALUES (1, 30), (2, 50);")
    >>> result = gold_to_cocte("SELECT id FROM singer WHERE age > (SELECT avg(age) FROM singer)", path, SQLiteSandbox())
    >>> print(result.cocte.render())
    WITH singer_avg_age AS (
      SELECT AVG(age) AS avg_age FROM singer
    )
    <BLANKLINE>
    SELECT id FROM singer WHERE age > (SELECT avg_age FROM singer_avg_age)
    """
    return convert_gold_many([(gold_sql, db_path)], runner, view_rows=view_rows)[0]
