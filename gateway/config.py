"""Typed settings: config/default.toml, then the file named by GATEWAY_CONFIG, then GATEWAY_* env vars."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "default.toml"

# The mocks' secrets, in config/default.toml: fine on a laptop, refused in production.
DEVELOPMENT_SECRETS = frozenset({"payment-secret", "VNPAYSECRET"})

Role = Literal["portal", "one_stop", "national_portal", "ops"]


class DatabaseSettings(BaseModel):
    url: str = "sqlite:///var/gateway.db"
    pool_size: int = 10


class BrokerSettings(BaseModel):
    url: str = "filesystem://"
    data_folder: str = "var/broker"
    queue_prefix: str = "gateway"
    publish_timeout_seconds: float = 2.0


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 20 * 1024 * 1024


class JobSettings(BaseModel):
    max_attempts: int = Field(8, ge=1)
    backoff_base_seconds: float = Field(2.0, gt=0)
    backoff_cap_seconds: float = Field(300.0, gt=0)
    lease_seconds: float = Field(60.0, gt=0)
    sweep_interval_seconds: float = Field(1.0, gt=0)
    republish_after_seconds: float = Field(60.0, gt=0)
    worker_threads: int = Field(4, ge=1)
    batch_size: int = Field(50, ge=1, le=500)  # jobs claimed and sent to a partner together
    drain_seconds: float = Field(20.0, gt=0)  # a consumer's time slice before it hands the queue on


class NationalPortalSettings(BaseModel):
    flavour: Literal["session", "lgsp"] = "session"
    base_url: str = "http://127.0.0.1:8001/national-portal"
    unit_code: str = "000.00.00.H56"
    username: str = "gateway"
    password: str = ""
    lgsp_client_id: str = ""
    lgsp_client_secret: str = ""
    timeout_seconds: float = 10.0


ProviderName = Literal["national_platform", "vnpay"]


class NationalPlatformSettings(BaseModel):
    """The national portal's payment platform (INIT / QUERY / GET_BILL, MaXacThuc)."""

    base_url: str = "http://127.0.0.1:8001/payment/platform"
    partner: str = "GATEWAY"  # MaDoiTac
    secret: str = ""
    timeout_seconds: float = Field(8.0, gt=0)


class VNPaySettings(BaseModel):
    base_url: str = "http://127.0.0.1:8001/payment/vnpay"
    tmn_code: str = "GATEWAY1"
    secret: str = ""
    return_url: str = "http://127.0.0.1:8000/payment-return"  # where VNPay sends the citizen back
    timeout_seconds: float = Field(8.0, gt=0)


class PaymentRoute(BaseModel):
    """Which provider serves a procedure, or a unit (the first part of a dossier code)."""

    provider: ProviderName
    procedure_code: str | None = None
    unit_code: str | None = None

    @model_validator(mode="after")
    def _one_key(self) -> PaymentRoute:
        if (self.procedure_code is None) == (self.unit_code is None):
            raise ValueError("a payment route names exactly one of procedure_code or unit_code")
        return self


class PaymentSettings(BaseModel):
    default_provider: ProviderName = "national_platform"
    routes: list[PaymentRoute] = []
    expires_after_minutes: float = Field(30.0, gt=0)  # how long a citizen has to pay
    reconcile_after_seconds: float = Field(300.0, gt=0)  # first QUERY of a payment whose callback has not come
    reconcile_every_seconds: float = Field(300.0, gt=0)  # and again this often while it stays pending
    expiry_grace_seconds: float = Field(300.0, ge=0)  # a pending payment is called expired this long after expiry
    scan_interval_seconds: float = Field(5.0, gt=0)  # how often a worker looks for payments to reconcile
    national_platform: NationalPlatformSettings = NationalPlatformSettings()
    vnpay: VNPaySettings = VNPaySettings()


class ApiKey(BaseModel):
    name: str
    key: str | None = None  # plaintext: development only
    key_sha256: str | None = None
    roles: list[Role]

    @model_validator(mode="after")
    def _hash_given(self) -> ApiKey:
        if self.key_sha256 is None:
            if self.key is None:
                raise ValueError(f"api key {self.name!r} needs key or key_sha256")
            self.key_sha256 = hashlib.sha256(self.key.encode()).hexdigest()
        return self


class AuthSettings(BaseModel):
    api_keys: list[ApiKey] = []


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_nested_delimiter="__", extra="ignore")

    environment: Literal["development", "production"] = "development"
    database: DatabaseSettings = DatabaseSettings()
    broker: BrokerSettings = BrokerSettings()
    api: ApiSettings = ApiSettings()
    jobs: JobSettings = JobSettings()
    national_portal: NationalPortalSettings = NationalPortalSettings()
    payment: PaymentSettings = PaymentSettings()
    auth: AuthSettings = AuthSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = [DEFAULT_CONFIG]
        if extra := os.environ.get("GATEWAY_CONFIG"):
            files.append(Path(extra))
        # Later files win in TomlConfigSettingsSource's deep merge.
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=files)

    @model_validator(mode="after")
    def _production_is_locked_down(self) -> Settings:
        if self.environment != "production":
            return self
        problems = [f"development key {k.name!r}" for k in self.auth.api_keys
                    if k.name.startswith("dev-") or (k.key or "").startswith("dev-")]
        problems += [f"plaintext key {k.name!r}" for k in self.auth.api_keys if k.key is not None]
        if self.database.url.startswith("sqlite"):
            problems.append("SQLite database")
        if not self.national_portal.password and self.national_portal.flavour == "session":
            problems.append("national_portal.password missing")
        if not self.national_portal.lgsp_client_secret and self.national_portal.flavour == "lgsp":
            problems.append("national_portal.lgsp_client_secret missing")
        for name, secret in (("payment.national_platform.secret", self.payment.national_platform.secret),
                             ("payment.vnpay.secret", self.payment.vnpay.secret)):
            if not secret or secret in DEVELOPMENT_SECRETS:
                problems.append(f"{name} missing or a development value")
        if problems:
            raise ValueError("production config refused: " + "; ".join(problems))
        return self


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)
