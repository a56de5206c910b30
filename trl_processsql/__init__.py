"""trl-processsql: process-supervised text-to-SQL on the Hugging Face stack.

Importing the package is cheap: heavy modules (torch, transformers, trl) load only where a
submodule needs them.
"""

__version__ = "0.1.0.dev0"
