"""One settings object, read from the environment (and ``.env``) once."""

from __future__ import annotations

from pathlib import Path

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
        description="URL of the OpenADR VTN that enrolled devices connect to",
    )
    vtn_enabled: bool = Field(
        True, description="Run the OpenADR VTN beside the API, on VTN_URL's host and port"
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

    @property
    def dev_keys_path(self) -> Path:
        return self.var_dir / "dev-keys.json"

    @property
    def chain_deployment_path(self) -> Path:
        return self.var_dir / "chain-deployment.json"

    @property
    def contracts_cache(self) -> Path:
        return self.var_dir / "contracts"
