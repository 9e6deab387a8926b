import json

from worker_runtime.config import WorkerSettings, with_ca_file, with_password
from worker_runtime.core.spec import RedisSpec, load_workerpool
from worker_runtime.core.worker_env import redis_url_of, termination_grace_seconds, worker_env

MANIFEST = {
    "apiVersion": "shoal.dev/v1alpha1",
    "kind": "WorkerPool",
    "metadata": {"name": "emails"},
    "spec": {
        "image": "registry.example/emails:1.4",
        "queues": ["emails", "emails-bulk"],
        "concurrency": 10,
        "maxJobsPerWorker": 40,
        "timeoutSeconds": 120,
        "retry": {"attempts": 4, "backoff": {"type": "fixed", "delaySeconds": 3}},
    },
}


def test_worker_env_round_trips_through_worker_settings() -> None:
    spec = load_workerpool(MANIFEST).spec
    env = worker_env(spec)
    settings = WorkerSettings.model_validate(env)
    assert settings.queues == ["emails", "emails-bulk"]
    assert (settings.concurrency, settings.max_jobs_per_worker) == (10, 40)
    assert settings.shutdown_grace_seconds == 120
    defaults = settings.queue_defaults()
    assert defaults.timeout_seconds == 120
    assert defaults.retry.attempts == 4
    assert defaults.retry.backoff.type == "fixed"
    assert defaults.retry.backoff.delay_seconds == 3
    assert json.loads(env["WORKER_RETRY"])["backoff"]["delaySeconds"] == 3
    assert "WORKER_RATE_LIMIT" not in env
    assert termination_grace_seconds(spec) == 135


def test_redis_url_of_spec_forms() -> None:
    assert redis_url_of(None, default="redis://d:6379/0") == "redis://d:6379/0"
    assert redis_url_of(RedisSpec(url="redis://r:1/2"), default=None) == "redis://r:1/2"
    spec = RedisSpec(host="r.svc", port=6380, db=3, username="app", tls=True)
    assert redis_url_of(spec, default=None) == "rediss://app@r.svc:6380/3"


def test_password_from_env_joins_a_url_without_one() -> None:
    assert with_password("redis://h:6379/0", "p@ss") == "redis://:p%40ss@h:6379/0"
    assert with_password("redis://u@h:6379/0", "x") == "redis://u:x@h:6379/0"
    assert with_password("redis://:a@h/0", "b") == "redis://:a@h/0"
    assert with_password("redis://h/0", None) == "redis://h/0"
    settings = WorkerSettings.model_validate({"REDIS_URL": "redis://h:1/0", "REDIS_PASSWORD": "s"})
    assert settings.resolved_redis_url() == "redis://:s@h:1/0"


def test_the_default_redis_spec_form_keeps_the_default_url() -> None:
    spec = RedisSpec.model_validate({"passwordSecretRef": {"name": "r", "key": "pw"}})
    assert redis_url_of(spec, default="redis://d:6379/0") == "redis://d:6379/0"


def test_a_ca_file_is_what_the_workers_client_trusts() -> None:
    settings = WorkerSettings.model_validate(
        {"REDIS_URL": "rediss://h:6380/0", "REDIS_PASSWORD": "s", "REDIS_CA_FILE": "/ca/ca.crt"}
    )
    assert settings.resolved_redis_url() == "rediss://:s@h:6380/0?ssl_ca_certs=%2Fca%2Fca.crt"
    # One CA: a URL's own ssl_ca_certs is replaced, other parameters kept.
    got = with_ca_file("rediss://h/0?ssl_ca_certs=/old&socket_timeout=5", "/new")
    assert got == "rediss://h/0?socket_timeout=5&ssl_ca_certs=%2Fnew"
    assert with_ca_file("rediss://h/0", None) == "rediss://h/0"


def test_key_prefix_reaches_the_workers_settings() -> None:
    manifest = {**MANIFEST, "spec": {**MANIFEST["spec"], "redis": {"keyPrefix": "team-a"}}}
    env = worker_env(load_workerpool(manifest).spec)
    assert WorkerSettings.model_validate(env).key_prefix == "team-a"
    assert "SHOAL_KEY_PREFIX" not in worker_env(load_workerpool(MANIFEST).spec)
