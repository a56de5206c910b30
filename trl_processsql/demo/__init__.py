"""The Gradio demo: a question or a pasted query, explained as executed chain-of-CTE steps.

The pure pieces (databases, step records, model loading) import without gradio; the app itself
is :func:`trl_processsql.demo.app.build_demo` (``pip install -e ".[demo]"`` from a clone).
"""

from .databases import DemoError, prepare_upload, sample_database, sample_databases
from .explain import Explanation, StepView, explain_sql

__all__ = ["DemoError", "Explanation", "StepView", "explain_sql", "prepare_upload", "sample_database", "sample_databases"]
