"""The `shoal` command line: thin entry points over worker_runtime and the operator."""
