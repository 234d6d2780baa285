"""One settings object, read from the environment (and ``.env``) once."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Service settings. Each field is read from the environment variable of its name
    in upper case (``DATABASE_URL``, ``VTN_URL``, ...)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    var_dir: Path = Field(Path("var"), description="Folder for local state (dev keys, SQLite)")
    database_url: str = Field(
        "",
        description="SQLAlchemy URL; default SQLite at VAR_DIR/openvpp.db; "
        "postgresql+psycopg://... for PostgreSQL",
    )
    vtn_url: str = Field(
        "http://127.0.0.1:8080/OpenADR2/Simple/2.0b",
        description="URL of the OpenADR VTN that enrolled devices connect to: https:// in "
        "signed mode; plain http:// is development mode, on a loopback host only",
    )
    vtn_enabled: bool = Field(
        True, description="Run the OpenADR VTN beside the API, on VTN_URL's host and port"
    )
    vtn_cert: Path | None = Field(
        None,
        description="PEM certificate of the VTN (TLS and message signatures): signed mode, "
        "with VTN_KEY and VTN_CA_FILE. Unset (all three): development mode, plain HTTP "
        "without signatures, for loopback only",
    )
    vtn_key: Path | None = Field(None, description="PEM private key of VTN_CERT (signed mode)")
    vtn_ca_file: Path | None = Field(
        None,
        description="PEM CA certificate(s) that VEN client certificates must be issued by "
        "(signed mode); each VEN's fingerprint is registered on its enrolment",
    )
    vtn_poll_interval_s: float = Field(10, gt=0, description="How often VENs poll the VTN [s]")
    vtn_report_interval_s: float = Field(
        60, gt=0, description="How often VENs report real power to the VTN [s]"
    )
    online_window_s: float = Field(
        900, gt=0, description="A device is online if it reported within this window [s]"
    )
    max_telemetry_batch: int = Field(50_000, gt=0, description="Readings per POST /v1/telemetry")
    max_bulk_devices: int = Field(10_000, gt=0, description="Devices per POST /v1/devices/bulk")
    dask_scheduler_address: str | None = Field(
        None, description="Dask scheduler (tcp://host:8786); a LocalCluster when unset"
    )
    dask_workers: int = Field(2, gt=0, description="Workers of the LocalCluster")
    dispatch_answer_within_s: float = Field(
        60, gt=0, description="How long a VEN has to answer an event before it is re-planned [s]"
    )
    dispatch_max_rounds: int = Field(3, gt=0, description="Planning rounds per dispatch")
    measure_after_s: float = Field(
        150, ge=0, description="Wait after a window ends for the last reports, then measure [s]"
    )
    live_delivery_every_s: float = Field(
        30, gt=0, description="How often delivered response is measured during a window [s]"
    )
    jobs_enabled: bool = Field(
        True, description="Run background jobs (planning, dispatch, measurement) in this process"
    )
    jobs_parallel: int = Field(
        4, gt=0, le=64, description="Background jobs run at once (plans still one at a time)"
    )
    job_poll_s: float = Field(0.5, gt=0, description="How often the job runner looks for work [s]")
    decompose_above_devices: int = Field(
        2_000, gt=0, description="Fleets larger than this are planned by chunks on Dask"
    )

    chain_rpc_url: str | None = Field(
        None, description="EVM JSON-RPC URL (anvil, a testnet, ...); the embedded EVM when unset"
    )
    chain_id: int | None = Field(
        None, gt=0, description="Chain id the node must report (checked at start-up)"
    )
    chain_sender: str | None = Field(
        None, description="Account the service sends from (an unlocked account of the node)"
    )

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'openvpp.db'}"
        return self

    @model_validator(mode="after")
    def _vtn_mode(self) -> Settings:
        """Signed mode needs all three files; plain HTTP only on loopback."""
        files = {
            "VTN_CERT": self.vtn_cert,
            "VTN_KEY": self.vtn_key,
            "VTN_CA_FILE": self.vtn_ca_file,
        }
        missing = [name for name, path in files.items() if path is None]
        if 0 < len(missing) < len(files):
            given = [name for name in files if name not in missing]
            raise ValueError(
                f"{', '.join(missing)}: signed mode needs VTN_CERT, VTN_KEY and VTN_CA_FILE "
                f"together, but only {', '.join(given)} is set (unset all three for "
                "development mode)"
            )
        if not self.vtn_enabled:
            return self
        for name, path in files.items():
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: no file at {path}")
        address = urlsplit(self.vtn_url)
        if self.vtn_signed and address.scheme != "https":
            raise ValueError(f"VTN_URL: signed mode serves https://, not {self.vtn_url!r}")
        if not self.vtn_signed:
            if address.scheme != "http":
                raise ValueError(
                    f"VTN_URL: development mode serves http://, not {self.vtn_url!r} "
                    "(set VTN_CERT, VTN_KEY and VTN_CA_FILE for signed mode)"
                )
            if not _loopback(address.hostname or ""):
                raise ValueError(
                    f"VTN_URL: plain HTTP is for development on a loopback host only, not "
                    f"{address.hostname!r}; set VTN_CERT, VTN_KEY and VTN_CA_FILE for signed mode"
                )
        return self

    @property
    def vtn_signed(self) -> bool:
        """Signed mode: TLS with client certificates and signed messages."""
        return self.vtn_cert is not None

    @property
    def dev_keys_path(self) -> Path:
        return self.var_dir / "dev-keys.json"

    @property
    def chain_deployment_path(self) -> Path:
        return self.var_dir / "chain-deployment.json"

    @property
    def contracts_cache(self) -> Path:
        return self.var_dir / "contracts"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
