"""The producer side: what a producer or an admin calls (enqueue, flows, events, snapshots)."""
