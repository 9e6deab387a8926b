"""Redis plumbing: connections, reconnect backoff, the Lua scripts and an embedded server."""
