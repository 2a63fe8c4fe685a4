"""JVM jars resolved from Maven Central with the machine's ``mvn`` into a local cache.

Each set is a committed pom in this folder (``broker.pom.xml``: the Kafka broker; ``spark.pom.xml``: Spark's Kafka
source). A set is resolved once into ``<cache>/jars/<name>-<pom digest>/`` and marked complete with a stamp file;
later calls return the cached paths without running Maven, so a second run downloads nothing.

    >>> paths = resolve_jars("spark")   # list of local .jar paths for spark.jars
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from streamguard.errors import SetupError

log = logging.getLogger(__name__)

JAR_SETS = ("broker", "spark")
_POM_DIR = Path(__file__).parent
_STAMP = ".complete"


def cache_root() -> Path:
    """Where StreamGuard keeps downloaded jars: ``$STREAMGUARD_CACHE`` or ``~/.cache/streamguard``."""
    configured = os.environ.get("STREAMGUARD_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "streamguard"


def _pom(name: str) -> Path:
    if name not in JAR_SETS:
        raise SetupError(f"unknown jar set {name!r}; known: {', '.join(JAR_SETS)}")
    return _POM_DIR / f"{name}.pom.xml"


def jar_dir(name: str) -> Path:
    """The cache folder for one jar set; its name carries the pom's digest, so editing a pom re-resolves."""
    digest = hashlib.sha256(_pom(name).read_bytes()).hexdigest()[:12]
    return cache_root() / "jars" / f"{name}-{digest}"


def resolve_jars(name: str) -> list[Path]:
    """Return the local jar paths of set ``name``, running Maven only when the cache lacks them."""
    target = jar_dir(name)
    if not (target / _STAMP).exists():
        _run_maven(name, target)
    jars = sorted(target.glob("*.jar"))
    if not jars:
        raise SetupError(f"jar set {name!r} in {target} is empty; delete the folder and run again")
    return jars


def _run_maven(name: str, target: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SetupError("Maven (mvn) is not on PATH; it is needed once to fetch the JVM jars")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    command = [mvn, "-q", "-B", "-f", str(_pom(name)), "dependency:copy-dependencies",
               f"-DoutputDirectory={staging}"]
    log.info("resolving %s jars with Maven into %s", name, target)
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        if completed.returncode != 0:
            tail = (completed.stdout + completed.stderr).strip().splitlines()[-5:]
            raise SetupError(f"mvn failed resolving the {name} jars: {' | '.join(tail)}")
        (staging / _STAMP).write_text("\n".join(sorted(p.name for p in staging.glob("*.jar"))) + "\n")
        if (target / _STAMP).exists():
            return  # another process finished the same set meanwhile; its jars may be in use, keep them
        if target.exists():
            shutil.rmtree(target)  # an incomplete earlier attempt (no stamp)
        staging.rename(target)
    except subprocess.TimeoutExpired as exc:
        raise SetupError(f"mvn did not finish resolving the {name} jars in 15 minutes") from exc
    except OSError as exc:
        if (target / _STAMP).exists():
            return
        raise SetupError(f"could not place the {name} jars in {target}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    size_mb = sum(p.stat().st_size for p in target.glob("*.jar")) / 1e6
    log.info("%s jars ready: %d files, %.0f MB in %s", name, len(list(target.glob("*.jar"))), size_mb, target)


def main() -> None:
    """``python -m streamguard.jars``: resolve every jar set (a no-op when cached) and print where they are."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name in JAR_SETS:
        jars = resolve_jars(name)
        size_mb = sum(p.stat().st_size for p in jars) / 1e6
        print(f"{name}: {len(jars)} jars, {size_mb:.0f} MB in {jars[0].parent}")
