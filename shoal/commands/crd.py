"""`shoal crd`: print the WorkerPool CustomResourceDefinition, generated from the spec model."""

from __future__ import annotations

import click

from worker_runtime.core.crd import render_crd_yaml


@click.command("crd")
def command() -> None:
    """Print the WorkerPool CRD as YAML (pipe it to `kubectl apply -f -`)."""
    click.echo(render_crd_yaml(), nl=False)
