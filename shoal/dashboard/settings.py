"""The dashboard's configuration (from `shoal dashboard`'s options or the chart's env)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from worker_runtime.core.keys import DEFAULT_PREFIX


class DashboardSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    redis_url: str = "redis://localhost:6379/0"
    prefix: str = DEFAULT_PREFIX
    host: str = "127.0.0.1"  # loopback by default: the dashboard is an admin tool
    port: int = Field(default=8700, ge=0, le=65535)
    queues: tuple[str, ...] = ()  # shown even before any worker or key names them
    kube: bool = False
    namespaces: tuple[str, ...] = ()  # with kube: empty means every namespace
    kubeconfig: str | None = None  # with kube: None means in-cluster, else the default file
    allow_writes: bool = False
    token: str | None = None
    show_payloads: bool = False
    page_size: int = Field(default=50, ge=1, le=1000)
    sample_seconds: float = Field(default=2.0, gt=0)  # queue sampling (and SSE) period
    history_seconds: float = Field(default=3600.0, gt=0)  # sparkline window

    @model_validator(mode="after")
    def _writes_need_a_token(self) -> DashboardSettings:
        if self.allow_writes and not self.token:
            raise ValueError(
                "--allow-writes needs a token (--token or SHOAL_DASHBOARD_TOKEN), "
                "at least 16 characters"
            )
        if self.token is not None and len(self.token) < 16:
            raise ValueError("the dashboard token must be at least 16 characters")
        return self
