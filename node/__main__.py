"""`python -m node` is the `meshboard` command."""

from node.cli import cli

cli()
