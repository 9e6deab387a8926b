"""The local driver behind `shoal up` and `shoal demo` (layer 3, beside the operator).

Pure parts: `restarts` (crash backoff), `scale_down` (which workers to stop), `process_env`,
`redis_target`, `local_pool`, `report`. I/O: `process_pool` (worker processes), `supervisor`
(the tick loop), `view` (rich or JSON lines), `run_local` and `demo`. See docs/local.md.
"""
