"""cerebroc subcommands, one module each."""
