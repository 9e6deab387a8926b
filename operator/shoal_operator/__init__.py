"""The Shoal operator (kopf): reconciles WorkerPool resources."""
