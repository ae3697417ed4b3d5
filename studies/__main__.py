"""`python -m studies …` is the `avatune` command (for child processes and PATH-less shells)."""

from studies.cli import main

main()
