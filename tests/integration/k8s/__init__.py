"""Tests against a real Kubernetes control plane (tests/harness/k8s.py)."""
