"""Synthetic wrong steps from gold chains of CTEs: step labels that need no model.

:func:`mutate_step` changes one step of a verified gold CoCTE in one of the ways a policy gets
SQL wrong (:data:`MUTATIONS`) and leaves every other step as written. Whether the change really
makes the answer wrong is decided later by execution (see :mod:`.builder`): only mutants whose
final result differs from the gold's are kept, and then the steps before the mutated one are
right and the mutated step and all after it are wrong.
"""

from __future__ import annotations

import random
import re

import sqlglot
from sqlglot import exp

from ..cocte import STEP_SEPARATOR, CoCTE, parse_cocte
from ..sql.schema import DatabaseSchema

__all__ = ["MUTATIONS", "mutate_step"]

MUTATIONS = (
    "column", "comparison", "literal", "aggregate", "join_key", "drop_filter", "add_filter", "table",
    "connector", "distinct", "order", "limit", "negation", "count", "group_by", "sort_key", "projection",
    "join_type", "set_operation",
)
"""The kinds of error :func:`mutate_step` can plant, one per call."""

_CTE_BODY = re.compile(r"^(.*?\bAS\s*(?:NOT\s+)?(?:MATERIALIZED\s*)?\()(.*)(\)\s*,?\s*)$", re.IGNORECASE | re.DOTALL)
_WRONG_COMPARISON = {exp.EQ: exp.NEQ, exp.NEQ: exp.EQ, exp.GT: exp.LT, exp.LT: exp.GT, exp.GTE: exp.LTE, exp.LTE: exp.GTE}
_WRONG_AGGREGATE = {exp.Max: exp.Min, exp.Min: exp.Max, exp.Avg: exp.Sum, exp.Sum: exp.Avg}
_NEGATABLE = (exp.In, exp.Like, exp.Exists, exp.Between, exp.Is)
_SET_OPERATIONS = (exp.Union, exp.Intersect, exp.Except)


def _split_step(text: str, is_cte: bool) -> tuple[str, str, str] | None:
    """``(head, query, tail)`` of a step: for a CTE, the query inside ``name AS ( ... )``."""
    if not is_cte:
        return "", text, ""
    match = _CTE_BODY.match(text)
    return match.groups() if match else None


class _Mutator:
    def __init__(self, tree: exp.Expression, schema: DatabaseSchema, rng: random.Random):
        self.tree, self.rng = tree, rng
        self.columns = {t.name.lower(): [c.name for c in t.columns] for t in schema.tables}
        self.examples = {(t.name.lower(), c.name.lower()): c.examples for t in schema.tables for c in t.columns}
        self.aliases = {}
        for table in tree.find_all(exp.Table):
            if table.name.lower() in self.columns:
                self.aliases[table.alias_or_name.lower()] = table.name.lower()

    def _table_of(self, column: exp.Column) -> str | None:
        if column.table:
            return self.aliases.get(column.table.lower())
        real = set(self.aliases.values())
        return real.pop() if len(real) == 1 else None

    def _pick(self, nodes):
        nodes = list(nodes)
        return self.rng.choice(nodes) if nodes else None

    def _other_column(self, column: exp.Column) -> bool:
        table = self._table_of(column)
        choices = [c for c in self.columns.get(table, []) if c.lower() != column.name.lower()]
        if not choices:
            return False
        column.set("this", exp.to_identifier(self.rng.choice(choices)))
        return True

    def _column_in_scope(self) -> exp.Column | None:
        """A column of a table the query reads, qualified where it reads several."""
        tables = [(alias, table) for alias, table in sorted(self.aliases.items()) if self.columns[table]]
        if not tables:
            return None
        alias, table = self.rng.choice(tables)
        return exp.column(self.rng.choice(self.columns[table]), table=alias if len(self.aliases) > 1 else None)

    def column(self) -> bool:
        columns = [c for c in self.tree.find_all(exp.Column) if not c.find_ancestor(exp.Join)]
        return bool(columns) and self._other_column(self.rng.choice(columns))

    def join_key(self) -> bool:
        keys = [c for join in self.tree.find_all(exp.Join) for c in join.find_all(exp.Column)]
        return bool(keys) and self._other_column(self.rng.choice(keys))

    def comparison(self) -> bool:
        node = self._pick(n for n in self.tree.find_all(*_WRONG_COMPARISON) if not n.find_ancestor(exp.Join))
        if node is None:
            return False
        node.replace(_WRONG_COMPARISON[type(node)](this=node.this.copy(), expression=node.expression.copy()))
        return True

    def aggregate(self) -> bool:
        node = self._pick(self.tree.find_all(*_WRONG_AGGREGATE))
        if node is None:
            return False
        node.replace(_WRONG_AGGREGATE[type(node)](this=node.this.copy()))
        return True

    def literal(self) -> bool:
        node = self._pick(n for n in self.tree.find_all(exp.Literal) if not n.find_ancestor(exp.Limit))
        if node is None:
            return False
        if node.is_string:
            sibling = node.parent.this if isinstance(node.parent, exp.Binary) else None
            known = self._examples_for(sibling) if isinstance(sibling, exp.Column) else ()
            others = [v for v in known if v != node.this and "…" not in v]
            node.replace(exp.Literal.string(self.rng.choice(others) if others else node.this + "x"))
        else:
            number = float(node.this)
            changed = number + self.rng.choice((1, -1)) if number.is_integer() else number * 1.5
            node.replace(exp.Literal.number(int(changed) if number.is_integer() else round(changed, 4)))
        return True

    def _examples_for(self, column: exp.Column) -> tuple[str, ...]:
        return self.examples.get((self._table_of(column) or "", column.name.lower()), ())

    def drop_filter(self) -> bool:
        where = self._pick(self.tree.find_all(exp.Where, exp.Having))
        if where is None:
            return False
        condition = where.this
        if isinstance(condition, exp.Connector):
            kept = condition.left if self.rng.random() < 0.5 else condition.right
            condition.replace(kept.copy())
        else:
            where.pop()
        return True

    def add_filter(self) -> bool:
        select = self.tree if isinstance(self.tree, exp.Select) else self.tree.find(exp.Select)
        candidates = [(alias, table) for alias, table in self.aliases.items()]
        if select is None or not candidates:
            return False
        alias, table = self.rng.choice(candidates)
        valued = [(c, self.examples[(table, c.lower())]) for c in self.columns[table] if self.examples.get((table, c.lower()))]
        if not valued:
            return False
        name, examples = self.rng.choice(valued)
        value = self.rng.choice([v for v in examples if "…" not in v] or [examples[0]])
        literal = exp.Literal.number(value) if re.fullmatch(r"-?\d+(\.\d+)?", value) else exp.Literal.string(value)
        qualifier = alias if len(self.aliases) > 1 else None
        select.where(exp.EQ(this=exp.column(name, table=qualifier), expression=literal), copy=False)
        return True

    def connector(self) -> bool:
        """``AND`` for ``OR`` or back, outside join conditions: a filter too loose or too strict."""
        node = self._pick(n for n in self.tree.find_all(exp.And, exp.Or) if not n.find_ancestor(exp.Join))
        if node is None:
            return False
        other = exp.Or if isinstance(node, exp.And) else exp.And
        node.replace(other(this=node.this.copy(), expression=node.expression.copy()))
        return True

    def distinct(self) -> bool:
        """``DISTINCT`` added or dropped: duplicates where the question wants none, or the reverse."""
        select = self.tree if isinstance(self.tree, exp.Select) else self.tree.find(exp.Select)
        if select is None:
            return False
        select.set("distinct", None if select.args.get("distinct") else exp.Distinct())
        return True

    def order(self) -> bool:
        """One sort key's direction flipped: the largest for the smallest."""
        node = self._pick(self.tree.find_all(exp.Ordered))
        if node is None:
            return False
        node.set("desc", not node.args.get("desc"))
        return True

    def limit(self) -> bool:
        """The ``LIMIT`` dropped: every row where the question asks for the first few."""
        node = self.tree.args.get("limit")
        if node is None:
            return False
        node.pop()
        return True

    def negation(self) -> bool:
        """A filter turned into its opposite: ``NOT IN`` for ``IN``, ``LIKE`` for ``NOT LIKE``, and so on."""
        node = self._pick(
            n for n in self.tree.find_all(exp.Not, *_NEGATABLE)
            if n.find_ancestor(exp.Where, exp.Having) and not isinstance(n.parent, exp.Not)
        )
        if node is None:
            return False
        node.replace(node.this.copy() if isinstance(node, exp.Not) else exp.Not(this=node.copy()))
        return True

    def count(self) -> bool:
        """``COUNT(DISTINCT x)`` for ``COUNT(x)`` or ``COUNT(*)``, or back: rows counted, not things."""
        node = self._pick(self.tree.find_all(exp.Count))
        if node is None:
            return False
        inner = node.this
        if isinstance(inner, exp.Distinct):
            if len(inner.expressions) != 1:
                return False
            node.set("this", inner.expressions[0].copy())
            return True
        if isinstance(inner, exp.Star):
            inner = self._column_in_scope()
            if inner is None:
                return False
        node.set("this", exp.Distinct(expressions=[inner.copy()]))
        return True

    def group_by(self) -> bool:
        """A grouping key replaced by another column of its table: one group per name, not per id."""
        keys = [c for group in self.tree.find_all(exp.Group) for c in group.find_all(exp.Column)]
        return bool(keys) and self._other_column(self.rng.choice(keys))

    def sort_key(self) -> bool:
        """Sorted by another column of the same table: the first rows by the wrong measure."""
        keys = [c for ordered in self.tree.find_all(exp.Ordered) for c in ordered.find_all(exp.Column)]
        return bool(keys) and self._other_column(self.rng.choice(keys))

    def projection(self) -> bool:
        """A selected column dropped, or one the question did not ask for added."""
        select = self.tree if isinstance(self.tree, exp.Select) else self.tree.find(exp.Select)
        if select is None:
            return False
        if len(select.expressions) > 1 and self.rng.random() < 0.5:
            self.rng.choice(select.expressions).pop()
            return True
        extra = self._column_in_scope()
        if extra is None:
            return False
        select.select(extra, copy=False)
        return True

    def join_type(self) -> bool:
        """An inner join made ``LEFT`` or the reverse: rows without a match kept where they should go, or lost."""
        node = self._pick(j for j in self.tree.find_all(exp.Join) if j.args.get("on"))
        if node is None:
            return False
        node.set("side", None if node.side else "LEFT")
        node.set("kind", None)
        return True

    def set_operation(self) -> bool:
        """``UNION``, ``INTERSECT`` and ``EXCEPT`` swapped: both branches right, combined the wrong way."""
        node = self._pick(self.tree.find_all(*_SET_OPERATIONS))
        if node is None:
            return False
        other = self.rng.choice([k for k in _SET_OPERATIONS if not isinstance(node, k)])
        swapped = other(**node.copy().args)
        swapped.set("distinct", True)  # SQLite has no INTERSECT ALL or EXCEPT ALL
        if node is self.tree:
            self.tree = swapped
        else:
            node.replace(swapped)
        return True

    def table(self) -> bool:
        node = self._pick(t for t in self.tree.find_all(exp.Table) if t.name.lower() in self.columns)
        others = [t for t in self.columns if node is not None and t != node.name.lower()]
        if not others:
            return False
        alias = node.alias_or_name
        node.set("this", exp.to_identifier(self.rng.choice(others)))
        if not node.alias:
            node.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
        return True


def mutate_step(cocte: CoCTE, index: int, kind: str, schema: DatabaseSchema, rng: random.Random) -> CoCTE | None:
    """``cocte`` with step ``index`` changed by a mutation of ``kind``, or None where it does not apply.

    Only that step's query is rewritten (by sqlglot); every other step keeps its exact text.
    """
    if kind not in MUTATIONS:
        raise ValueError(f"unknown mutation {kind!r}: choose one of {', '.join(MUTATIONS)}")
    step = cocte.steps[index]
    parts = _split_step(step.text, step.name is not None)
    if parts is None:
        return None
    head, query, tail = parts
    try:
        tree = sqlglot.parse_one(query, read="sqlite")
    except (sqlglot.errors.SqlglotError, RecursionError):
        return None
    before = tree.sql(dialect="sqlite")
    mutator = _Mutator(tree, schema, rng)
    if not getattr(mutator, kind)():
        return None
    after = mutator.tree.sql(dialect="sqlite")
    if after == before:
        return None
    indent = query[: len(query) - len(query.lstrip())]
    trailing = query[len(query.rstrip()) :]
    steps = [s.text for s in cocte.steps]
    steps[index] = f"{head}{indent}{after}{trailing}{tail}"
    mutant = parse_cocte(STEP_SEPARATOR.join(steps))
    if mutant.fallback or len(mutant.steps) != len(cocte.steps):
        return None
    return mutant
