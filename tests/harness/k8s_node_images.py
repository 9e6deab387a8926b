"""Images for a node without a registry: a local pause image, and Docker images as tarballs.

The pause image (the pod sandbox) is a static C program that waits for a signal, ``docker
import``ed under a name derived from its source. Project images go from Docker to the node with
``docker save`` -> ``ctr images import``; the tarball is cached by image id (its content hash),
so a re-run with an unchanged image skips the save.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "shoal" / "e2e"
PAUSE_SOURCE = b"""#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
static void bye(int s) { (void)s; exit(0); }
int main(void) { signal(SIGINT, bye); signal(SIGTERM, bye); for (;;) pause(); }
"""


def _run(*args: str | Path, timeout: float = 300) -> str:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        cmd = " ".join(map(str, args))
        raise RuntimeError(f"{cmd} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


def docker_image_id(ref: str) -> str | None:
    done = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", ref], capture_output=True, text=True
    )
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_pause_image() -> str:
    """The pod sandbox image: a static C program that waits for a signal, named by its hash."""
    ref = f"shoal-e2e/pause:{hashlib.sha256(PAUSE_SOURCE).hexdigest()[:12]}"
    if docker_image_id(ref) is None:
        with tempfile.TemporaryDirectory() as tmp:
            src, root = Path(tmp) / "pause.c", Path(tmp) / "root"
            src.write_bytes(PAUSE_SOURCE)
            root.mkdir()
            _run("gcc", "-static", "-O2", "-s", "-o", root / "pause", src)
            tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
            subprocess.run(
                ["docker", "import", "-c", 'ENTRYPOINT ["/pause"]', "-", ref],
                stdin=tar.stdout, check=True, capture_output=True,
            )  # fmt: skip
            tar.wait()
    return ref


def saved_image(ref: str, cache_dir: Path = CACHE_DIR / "images") -> Path:
    """``docker save`` of ``ref``, cached by image id (its content hash): re-runs reuse it."""
    image_id = docker_image_id(ref)
    if image_id is None:
        raise RuntimeError(f"image {ref!r} is not in Docker; build it first")
    stem = ref.replace("/", "_").replace(":", "_")
    path = cache_dir / f"{stem}-{image_id.removeprefix('sha256:')[:16]}.tar"
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        for old in cache_dir.glob(f"{stem}-*.tar"):  # one tarball per name is enough
            old.unlink(missing_ok=True)
        part = path.with_suffix(".part")
        _run("docker", "save", "-o", part, ref)
        part.rename(path)
    return path
