"""Rendering: rich on a terminal, tabulate when piped, JSON/YAML for machines."""
