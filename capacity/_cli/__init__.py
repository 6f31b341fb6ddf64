"""One module per ``capacity`` subcommand; ``capacity.cli`` registers them."""
