"""`python -m relay` is the `relay` command."""

from relay.process.cli import main

main()
