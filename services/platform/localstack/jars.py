"""The broker's jars: the version the pom names, the classpath Maven resolves (cached), Java."""

import hashlib
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from services.platform.localstack.errors import LocalStackError

CACHE_DIR_ENV = "SHOUWANG_CACHE_DIR"  # where resolved jars are kept (default ~/.cache/shouwang)

DEPLOY_DIR = Path(__file__).resolve().parents[3] / "deploy" / "local"
DEFAULT_POM = DEPLOY_DIR / "pom.xml"
MIN_JAVA = 17
MVN_TIMEOUT_SECONDS = 900


def _cache_dir() -> Path:
    configured = os.environ.get(CACHE_DIR_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "shouwang"


def kafka_version(pom: Path = DEFAULT_POM) -> str:
    """The Kafka version the pom resolves (its `kafka.version` property)."""
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ElementTree.parse(pom).getroot().find("m:properties/m:kafka.version", namespace)
    if node is None or not (node.text or "").strip():
        raise LocalStackError(f"{pom} has no <kafka.version> property")
    return node.text.strip()


def resolve_classpath(
    pom: Path = DEFAULT_POM, *, mvn: str = "mvn", cache_dir: Path | None = None
) -> str:
    """The broker's runtime classpath, resolved by Maven from `pom` and cached by its hash.

    The cache file is named after the pom's SHA-256, so editing the pom re-resolves; a cached
    classpath whose jars have gone (a cleaned ~/.m2) is resolved again too.
    """
    cache_dir = cache_dir or _cache_dir()
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    cached = cache_dir / f"kafka-{digest}.classpath"
    if cached.exists():
        classpath = cached.read_text().strip()
        if classpath and all(Path(jar).exists() for jar in classpath.split(os.pathsep)):
            return classpath

    executable = shutil.which(mvn)
    if executable is None:
        raise LocalStackError(
            f"`{mvn}` (Apache Maven) is not on PATH; it resolves the Kafka jars from Maven Central"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.partial")
    command = [
        executable,
        "-q",
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(pom),
        "dependency:build-classpath",
        f"-Dmdep.outputFile={partial}",
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=MVN_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise LocalStackError(f"mvn took over {MVN_TIMEOUT_SECONDS} s resolving {pom}") from exc
    if result.returncode != 0 or not partial.exists():
        output = (result.stdout + result.stderr).strip().splitlines()
        partial.unlink(missing_ok=True)
        raise LocalStackError(
            f"mvn failed (exit {result.returncode}) resolving {pom}:\n" + "\n".join(output[-30:])
        )
    partial.replace(cached)  # atomic, so a concurrent reader never sees half a file
    return cached.read_text().strip()


def java_major_version(java: str = "java") -> int:
    """The major version of the `java` on PATH; raises when there is none."""
    executable = shutil.which(java)
    if executable is None:
        raise LocalStackError(f"`{java}` is not on PATH; the local Kafka broker needs Java 17+")
    result = subprocess.run(
        [executable, "-version"], capture_output=True, text=True, timeout=60, check=False
    )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        raise LocalStackError(f"cannot read the version of {executable}: {result.stderr.strip()}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8.0" means Java 8
