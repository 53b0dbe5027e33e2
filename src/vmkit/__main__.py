"""`python -m vmkit` runs the CLI."""

from vmkit.cli.main import entry

entry()
