"""One module per `shoal` subcommand; each exposes ``command``. See `shoal.cli`."""
