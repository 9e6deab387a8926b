"""Test harness shared by Shoal's test tiers (real Kubernetes cluster, ports, polling)."""
