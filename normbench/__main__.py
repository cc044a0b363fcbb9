"""`python -m normbench` runs the command-line interface."""

from normbench.cli import app

app()
