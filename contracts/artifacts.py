"""Contract sources compiled on first use and cached by what went into them.

An artifact (ABI, bytecode, compiler version) is cached as
``<cache>/<Name>-<key>.json`` where the key hashes the contract's source, every
snekmate module it can import (the installed snekmate version) and the compiler
version; change any of them and the contract is compiled again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

SOURCES = Path(__file__).parent / "sources"
CONTRACTS = ("OVPPToken", "DeviceRegistry", "RewardDistributor")


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    compiler: str
    key: str


def default_cache() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "openvpp" / "contracts"


def cache_key(name: str, sources: Path = SOURCES) -> str:
    digest = hashlib.sha256()
    digest.update((sources / f"{name}.vy").read_bytes())
    digest.update(f"vyper {version('vyper')} snekmate {version('snekmate')}".encode())
    return digest.hexdigest()[:16]


def load_artifact(name: str, cache: Path | None = None, sources: Path = SOURCES) -> Artifact:
    """The compiled contract ``name``, from the cache or compiled now (and cached)."""
    if not (sources / f"{name}.vy").is_file():
        raise ValueError(f"contract: no source {name}.vy in {sources}")
    cache = cache or default_cache()
    key = cache_key(name, sources)
    path = cache / f"{name}-{key}.json"
    if path.is_file():
        data = json.loads(path.read_text())
        return Artifact(name, data["abi"], data["bytecode"], data["compiler"], key)
    import vyper.cli.vyper_compile as vyper_compile  # slow to import; only when compiling

    output = vyper_compile.compile_files([sources / f"{name}.vy"], ("abi", "bytecode"))
    [compiled] = output.values()
    artifact = Artifact(name, compiled["abi"], compiled["bytecode"], version("vyper"), key)
    cache.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(
        json.dumps(
            {"abi": artifact.abi, "bytecode": artifact.bytecode, "compiler": artifact.compiler}
        )
    )
    temporary.replace(path)  # atomic: a reader never sees half a file
    return artifact
