"""What watches the workers: metrics, heartbeats, health, probes, alerts, logs, status store."""
