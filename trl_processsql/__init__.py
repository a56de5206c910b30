"""trl-processsql."""
