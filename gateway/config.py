"""Typed settings: config/default.toml, then the file named by GATEWAY_CONFIG, then GATEWAY_* env vars."""

from __future__ import annotations

import hashlib
import os
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, IPvAnyNetwork, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MOCK_TRUST_DIR = PROJECT_ROOT / "var" / "mock-trust"  # where `make run`'s TSA and OCSP mocks write their roots
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "default.toml"

# The mocks' secrets, in config/default.toml: fine on a laptop, refused in production.
DEVELOPMENT_SECRETS = frozenset({"payment-secret", "VNPAYSECRET", "viettel-secret", "vnpt-secret", "vnpost-secret",
                                 "vnpost-callback-secret"})

Role = Literal["portal", "one_stop", "national_portal", "ops"]


class DatabaseSettings(BaseModel):
    url: str = "sqlite:///var/gateway.db"
    pool_size: int = 10
    # A host that vanishes (cut off, frozen) leaves half-open connections: the server's end of a session that
    # was in a transaction keeps its row locks, and jobs behind them wait, until the server learns the
    # client is gone; the client's end may wait as long for an answer. PostgreSQL only; see
    # docs/operations.md#more-than-one-host. The server ends a session idle inside a transaction this long
    # (no statement of the gateway's idles in a transaction: partner calls are made outside them) ...
    idle_in_transaction_timeout_seconds: float = Field(10.0, gt=0)
    # ... a statement waits this long at most for a row lock (0: as long as it takes), so that a frozen host's
    # locks cost a request a 503 after a few seconds, not a thread of the healthy host for as long as it lasts
    # (its threads all waiting, the balancer took the healthy host out too) ...
    lock_timeout_seconds: float = Field(5.0, ge=0)
    # ... both ends probe an idle connection after this long (TCP keepalives, 3 probes a third of it apart) ...
    keepalive_seconds: float = Field(10.0, ge=3)
    # ... and give up on data the other end has not acknowledged after this long (TCP_USER_TIMEOUT).
    tcp_user_timeout_seconds: float = Field(20.0, gt=0)
    connect_timeout_seconds: int = Field(10, ge=1)


class BrokerSettings(BaseModel):
    url: str = "filesystem://"
    data_folder: str = "var/broker"
    queue_prefix: str = "gateway"
    publish_timeout_seconds: float = 2.0
    # AMQP heartbeats on the workers' consuming connections: a worker cut off is declared gone by RabbitMQ
    # after about two of them and its unacknowledged messages go to the others; the worker, hearing nothing,
    # reconnects. 0 turns them off (messages then wait for the sweeper's republish_after_seconds).
    heartbeat_seconds: float = Field(30.0, ge=0)


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 20 * 1024 * 1024
    session_secret: str = "dev-session-secret"  # signs the ops console's session cookie


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
    # A wake-up waits this long before its drain claims, and the wake-ups of the same queue that come meanwhile
    # are covered by that drain: a quiet gateway sends bigger batches (jobs/worker.py Gathering). 0: none.
    gather_seconds: float = Field(0.25, ge=0, le=5)
    # A queue's partner counts as down after failed calls in a row for this many dossiers; then failures
    # cost no attempts (see jobs/partner_outage.py).
    outage_after_keys: int = Field(3, ge=1)
    sample_every_seconds: float = Field(60.0, gt=0)  # each worker samples the queues for the console's chart
    # The jobs table's planner statistics are refreshed this often (see store/outbox.py refresh_statistics).
    analyze_every_seconds: float = Field(15.0, gt=0)


class PortalReconcileSettings(BaseModel):
    """Reconciliation with the national portal (docs/operations.md#drift-with-the-national-portal): each dossier's
    record there read back (TraCuuHoSo) and compared with what the gateway sent, on a budget."""

    enabled: bool = True
    # Every dossier in scope is read back once in this window: the coverage the console and metrics show.
    window_hours: float = Field(24.0, gt=0)
    first_check_after_seconds: float = Field(600.0, ge=0)  # a new dossier's first look, once its sync is through
    finished_days: float = Field(30.0, ge=0)  # finished dossiers stay in scope this long after their final status
    # The budget, shared by every worker: look-ups a second at most, and at most page_size queued per scan.
    rate_per_second: float = Field(5.0, gt=0)
    page_size: int = Field(200, ge=1, le=5000)
    scan_interval_seconds: float = Field(5.0, gt=0)
    recheck_after_seconds: float = Field(120.0, gt=0)  # a repaired dossier is read again this soon after
    busy_recheck_seconds: float = Field(60.0, gt=0)  # a dossier with jobs still on their way is looked at again
    max_repairs: int = Field(3, ge=1)  # a repair that has not held after this many tries goes to an operator
    check_attempts: int = Field(3, ge=1)  # tries of one look-up before it is a dead letter
    lookup_max_bytes: int = Field(1_048_576, ge=1024)  # a larger TraCuuHoSo answer is not trusted


class NationalPortalSettings(BaseModel):
    flavour: Literal["session", "lgsp"] = "session"
    base_url: str = "http://127.0.0.1:8001/national-portal"
    unit_code: str = "000.00.00.H56"
    username: str = "gateway"
    password: str = ""
    lgsp_client_id: str = ""
    lgsp_client_secret: str = ""
    # Some LGSPs also want the `lgspaccesstoken` header: Base64 of {"AccessKey","SecretKey","AppName",
    # "PartnerCode","PartnerCodeCus"} as the LGSP issues it (build one with national_portal.client.lgsp_access_token).
    lgsp_access_token: str = ""
    timeout_seconds: float = 10.0
    # The portal's dossier record (DongBoHoSoMC) carries no service level: a dossier it hands us without
    # MucDo takes its procedure's level from this catalogue (MaTTHC -> level), else default_level.
    procedure_levels: dict[str, Literal["mot_phan", "toan_trinh"]] = {}
    default_level: Literal["mot_phan", "toan_trinh"] = "mot_phan"
    reconcile: PortalReconcileSettings = PortalReconcileSettings()


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


SmsProviderName = Literal["viettel", "vnpt"]


class ViettelSmsSettings(BaseModel):
    """Viettel brandname SMS (SOAP, wsCpMt)."""

    wsdl_url: str = "http://127.0.0.1:8001/sms/viettel/bulkapi?wsdl"
    user: str = "gateway"
    password: str = ""
    cp_code: str = "GATEWAY"
    brandname: str = "UBND-TINH"
    timeout_seconds: float = Field(8.0, gt=0)


class VnptSmsSettings(BaseModel):
    """VNPT brandname SMS (JSON, send_sms_list with one registered free-text template)."""

    url: str = "http://127.0.0.1:8001/sms/vnpt/api/send_sms_list"
    api_user: str = "gateway"
    api_pass: str = ""
    label_id: str = "UBND-TINH"
    template_id: str = "GW-TB-01"
    contract_id: str = "HD-2026-01"
    agent_id: str = "AG01"
    timeout_seconds: float = Field(8.0, gt=0)


class SmsSettings(BaseModel):
    providers: list[SmsProviderName] = Field(default_factory=lambda: ["viettel", "vnpt"], min_length=1)  # by priority
    diacritics: bool = False  # False: Vietnamese without marks, in GSM-7 (160 characters a message, not 70)
    skip_after_failures: int = Field(3, ge=1)  # a provider failing this many times in a row is skipped...
    skip_seconds: float = Field(60.0, gt=0)  # ...for this long, and the next one takes over
    viettel: ViettelSmsSettings = ViettelSmsSettings()
    vnpt: VnptSmsSettings = VnptSmsSettings()


class EmailSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8025
    sender: str = "Bộ phận Một cửa <motcua@example.gov.vn>"
    starttls: bool = False
    username: str = ""
    password: str = ""
    timeout_seconds: float = Field(10.0, gt=0)


class NotificationSettings(BaseModel):
    enabled: bool = True  # tell citizens of each status change by SMS and email
    templates_dir: str = ""  # empty: the Vietnamese templates shipped in gateway/templates/notifications
    lookup_url: str = "https://dichvucong.gov.vn"  # where citizens look their dossier up, named in messages
    sms: SmsSettings = SmsSettings()
    email: EmailSettings = EmailSettings()


class PostalParty(BaseModel):
    name: str = "Bộ phận Một cửa UBND tỉnh"
    address: str = "1 Đường Trần Phú"
    province: str = "Hà Nội"
    tel: str = "0243825123"
    email: str = "motcua@example.gov.vn"


class PostalSettings(BaseModel):
    """VNPost public-post (BCCI) delivery of results."""

    base_url: str = "http://127.0.0.1:8001/postal"
    customer_code: str = "GATEWAY"
    customer_key: str = "gateway"
    customer_secret: str = ""
    callback_secret: str = ""  # HMAC-SHA256 key of its tracking callbacks (X-VNPost-Signature)
    timeout_seconds: float = Field(8.0, gt=0)
    poll_every_seconds: float = Field(1800.0, gt=0)  # ask for tracking of each open delivery this often
    scan_interval_seconds: float = Field(30.0, gt=0)  # how often a worker looks for deliveries to poll
    max_cod_vnd: int = Field(50_000_000, gt=0)
    sender: PostalParty = PostalParty()


class SlaSettings(BaseModel):
    """The 8-working-hour rule: a new dossier must be accepted, refused or sent back within it."""

    acknowledge_within_hours: float = Field(8.0, gt=0)
    extra_days_off: list[date] = []  # the province's own days off, beyond the national holidays
    extra_working_days: list[date] = []  # a Saturday worked to make up for a bridged day off
    scan_interval_seconds: float = Field(60.0, gt=0)  # how often a worker looks for new breaches


class SignatureSettings(BaseModel):
    """PDF signature verification: which roots to trust, how hard to check revocation, the sandbox's limits."""

    trust_dir: str = "config/trust"  # public/ and government/ sub-folders of PEM or DER roots
    trust_fingerprints: list[str] = []  # SHA-256 of the roots: when set, any other root file stops the start
    revocation_mode: Literal["soft-fail", "hard-fail", "require"] = "soft-fail"  # require: fail closed
    fetch_revocation: bool = False  # fetch CRLs / OCSP named in the certificates (else embedded data only)
    fetch_timeout_seconds: float = Field(5.0, gt=0)
    revocation_cache_seconds: float = Field(300.0, gt=0)
    accept_digital_signature_only: bool = True  # digitalSignature without nonRepudiation is enough
    max_pdf_bytes: int = Field(20 * 1024 * 1024, gt=0)
    sandbox_processes: int = Field(2, ge=1, le=64)
    time_limit_seconds: float = Field(10.0, gt=0)
    memory_limit_mb: int = Field(768, ge=128)
    verify_attachments: bool = True  # verify a filed dossier's PDF attachments in a job

    @property
    def trust_path(self) -> Path:
        path = Path(self.trust_dir)
        return path if path.is_absolute() else PROJECT_ROOT / path


class WebhookSettings(BaseModel):
    """The optional push of the change feed to the one-stop software, signed Standard Webhooks style."""

    url: str = ""  # empty: no push (the one-stop software reads the feed)
    secret: str = "whsec_b25lLXN0b3Atd2ViaG9vay1zZWNyZXQtZGV2"  # "whsec_" + base64 of the key
    timeout_seconds: float = Field(5.0, gt=0)
    batch_size: int = Field(100, ge=1, le=500)  # feed items per POST
    push_interval_seconds: float = Field(1.0, gt=0)


class LogSettings(BaseModel):
    format: Literal["text", "json"] = "text"  # json: one object per line, for a log shipper


class AuditSettings(BaseModel):
    chain_key: str = "dev-audit-chain-key"  # HMAC key of the audit hash chain; keep it out of the database
    seal_interval_seconds: float = Field(1.0, gt=0)  # how often a worker seals new records into the chain

    @property
    def key(self) -> bytes:
        return self.chain_key.encode()


class RetentionRule(BaseModel):
    procedure_code: str = Field(min_length=1, max_length=64)
    years: int = Field(ge=0)  # 0: kept permanently (vĩnh viễn)


class ArchiveSettings(BaseModel):
    """The electronic archive (docs/archive.md): a sealed BagIt package per finished dossier."""

    enabled: bool = True
    folder: str = "var/archive"  # written once per package; production: a mounted store that is backed up
    tsa_url: str = "http://127.0.0.1:8001/tsa/"  # the province's RFC 3161 time-stamping authority
    tsa_timeout_seconds: float = Field(10.0, gt=0)
    trust_dir: str = ""  # roots for TSA and signer certificates when verifying; empty: signature.trust_dir
    fetch_revocation: bool = True  # ask the OCSP responders and CRLs the certificates name, to embed their answers
    fetch_timeout_seconds: float = Field(5.0, gt=0)
    agency: str = "UBND tỉnh"  # the fonds (phông lưu trữ) the packages belong to
    agency_code: str = "000.00.00.H56"  # its code in the national list of agency codes
    retention_default_years: int = Field(10, ge=0)  # [assumed] when no rule names the procedure; 0: permanent
    retention: list[RetentionRule] = []
    timestamp_digest: Literal["sha256", "sha384", "sha512"] = "sha256"  # the imprint algorithm of new tokens
    renew_before_days: float = Field(180, ge=0)  # a new archive timestamp this long before the TSA certificate ends
    weak_digests: list[str] = ["md5", "sha1"]  # a timestamp made with one of these is renewed at once
    renew_retry_hours: float = Field(24, gt=0)  # a renewal that could not help (the TSA's certificate ends as soon)
    minimise_after_days: float = Field(30, ge=0)  # then the database drops attachment and result bodies
    scan_interval_seconds: float = Field(30.0, gt=0)  # how often the worker looks for renewals and minimisation
    audit_anchor_minutes: float = Field(5.0, ge=0)  # how often the audit chain's head is timestamped; 0: never
    # Batches (docs/archive.md): packages sealed under one archive timestamp, at most this many ...
    batch_size: int = Field(50, ge=1, le=500)
    # ... once the oldest has waited this long for others to fill its batch (a full backlog goes at once).
    batch_wait_seconds: float = Field(10.0, ge=0)
    batch_lease_seconds: float = Field(300.0, gt=0)  # a batch's claim; then another worker may take it over
    # A batch's packages are held in memory until its timestamp: past this many MB made, the ones made go under a
    # timestamp of their own, so a batch of large dossiers never holds more (sealing.py).
    batch_memory_mb: float = Field(64.0, gt=0)
    # Sealing yields to the other queues: it waits while more than `defer_backlog` of their jobs are due and
    # unclaimed, but never more than `defer_max_seconds` past its batch's time (0: it never waits).
    defer_backlog: int = Field(100, ge=1)
    defer_max_seconds: float = Field(600.0, ge=0)

    @field_validator("weak_digests")
    @classmethod
    def _lower(cls, names: list[str]) -> list[str]:
        return [n.strip().lower() for n in names]

    @model_validator(mode="after")
    def _strong_enough(self) -> ArchiveSettings:
        if self.timestamp_digest in self.weak_digests:  # every renewal would make another weak token
            raise ValueError(f"archive.timestamp_digest {self.timestamp_digest} is listed in archive.weak_digests")
        return self

    @property
    def path(self) -> Path:
        path = Path(self.folder)
        return path if path.is_absolute() else PROJECT_ROOT / path

    @field_validator("retention")
    @classmethod
    def _one_rule_a_procedure(cls, rules: list[RetentionRule]) -> list[RetentionRule]:
        codes = [r.procedure_code for r in rules]
        if twice := sorted({c for c in codes if codes.count(c) > 1}):
            raise ValueError(f"archive.retention names {', '.join(twice)} more than once")
        return rules

    def tsa_is_bundled_mock(self, mock_port: int = 8001) -> bool:
        """The TSA is the mocks server of `make run` (on this machine, at `mock_port`) and no trust folder is set:
        the archive then trusts the roots that mock writes to MOCK_TRUST_DIR."""
        return not self.trust_dir and self.tsa_url.startswith(f"http://127.0.0.1:{mock_port}/")

    def retention_years(self, procedure_code: str) -> int:
        """The retention period of a procedure's packages, in years (0: permanent): its rule, or the default."""
        rule = next((r for r in self.retention if r.procedure_code == procedure_code), None)
        return rule.years if rule else self.retention_default_years


class ApiKey(BaseModel):
    name: str
    key: str | None = None  # plaintext: development only
    key_sha256: str | None = None
    roles: list[Role]
    rate_per_minute: int | None = Field(None, ge=1)  # None: auth.rate_limit_per_minute

    @model_validator(mode="after")
    def _hash_given(self) -> ApiKey:
        if self.key_sha256 is None:
            if self.key is None:
                raise ValueError(f"api key {self.name!r} needs key or key_sha256")
            self.key_sha256 = hashlib.sha256(self.key.encode()).hexdigest()
        return self


class AuthSettings(BaseModel):
    api_keys: list[ApiKey] = []  # besides these, keys added at run time live in the database (hashed)
    key_cache_seconds: float = Field(2.0, ge=0)  # a revoked database key stops working within this
    rate_limit_per_minute: int = Field(0, ge=0)  # per key, unless the key says otherwise; 0: no limit
    rate_limit_redis_url: str = ""  # one limit across API processes; empty: each process counts alone
    # Partners' callbacks accepted only from these networks (CIDR), by partner: payment, postal,
    # national_portal. A partner not named, or an empty list: any source.
    callback_networks: dict[Literal["payment", "postal", "national_portal"], list[IPvAnyNetwork]] = {}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_nested_delimiter="__", extra="ignore")

    environment: Literal["development", "production"] = "development"
    database: DatabaseSettings = DatabaseSettings()
    broker: BrokerSettings = BrokerSettings()
    api: ApiSettings = ApiSettings()
    jobs: JobSettings = JobSettings()
    national_portal: NationalPortalSettings = NationalPortalSettings()
    payment: PaymentSettings = PaymentSettings()
    notifications: NotificationSettings = NotificationSettings()
    postal: PostalSettings = PostalSettings()
    sla: SlaSettings = SlaSettings()
    signature: SignatureSettings = SignatureSettings()
    audit: AuditSettings = AuditSettings()
    archive: ArchiveSettings = ArchiveSettings()
    log: LogSettings = LogSettings()
    webhooks: WebhookSettings = WebhookSettings()
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

    @property
    def archive_trust_path(self) -> Path:
        """The roots archive packages and audit anchors are judged against, by the worker and by every CLI check
        alike: archive.trust_dir; else, under `make run` (the TSA is the bundled mock, which has written its
        roots), MOCK_TRUST_DIR; else signature.trust_dir."""
        if self.archive.trust_dir:
            path = Path(self.archive.trust_dir)
            return path if path.is_absolute() else PROJECT_ROOT / path
        if self.archive.tsa_is_bundled_mock() and MOCK_TRUST_DIR.is_dir():
            return MOCK_TRUST_DIR
        return self.signature.trust_path

    def secrets(self) -> list[str]:
        """Every configured secret: the logs mask them wherever they appear."""
        sms, pay = self.notifications.sms, self.payment
        return [s for s in (self.national_portal.password, self.national_portal.lgsp_client_secret,
                            self.national_portal.lgsp_access_token,
                            pay.national_platform.secret, pay.vnpay.secret, sms.viettel.password, sms.vnpt.api_pass,
                            self.notifications.email.password, self.postal.customer_secret,
                            self.postal.callback_secret, self.audit.chain_key,
                            *(k.key for k in self.auth.api_keys)) if s]

    @model_validator(mode="after")
    def _heartbeats_outlast_a_drain(self) -> Settings:
        # A consumer sends its heartbeats between messages; RabbitMQ drops a connection silent for two of them.
        # A drain (one message's work) longer than that would lose the connection in the middle of every drain.
        beat = self.broker.heartbeat_seconds
        if beat and 2 * beat <= self.jobs.drain_seconds:
            raise ValueError(f"broker.heartbeat_seconds ({beat:g}) must be more than half of jobs.drain_seconds "
                             f"({self.jobs.drain_seconds:g}), or 0")
        return self

    def partner_timeouts(self) -> dict[str, float]:
        """The HTTP partners that leased jobs call, with their timeouts (adapters/base.py PerThreadHttp)."""
        pay, sms = self.payment, self.notifications.sms
        return {"national_portal": self.national_portal.timeout_seconds,
                "payment.national_platform": pay.national_platform.timeout_seconds,
                "payment.vnpay": pay.vnpay.timeout_seconds, "notifications.sms.viettel": sms.viettel.timeout_seconds,
                "notifications.sms.vnpt": sms.vnpt.timeout_seconds, "postal": self.postal.timeout_seconds}

    @model_validator(mode="after")
    def _a_lease_outlasts_a_call(self) -> Settings:
        # A call may take its partner's timeout to connect, and what it wrote is abandoned (by the kernel too) a
        # timeout later; only then may another worker take the job over, or the late call could land after the
        # newer ones and undo them at the partner. A call that could not end within the lease left is not made
        # (adapters/base.py before_calling), so a lease of less than two timeouts would never let one start.
        short = {name: t for name, t in self.partner_timeouts().items() if 2 * t >= self.jobs.lease_seconds}
        if short:
            raise ValueError(f"jobs.lease_seconds ({self.jobs.lease_seconds:g}) must be more than twice every "
                             "partner's timeout: " + ", ".join(f"{name}.timeout_seconds {t:g}"
                                                               for name, t in short.items()))
        return self

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
        if not (self.national_portal.lgsp_client_secret or self.national_portal.lgsp_access_token) \
                and self.national_portal.flavour == "lgsp":
            problems.append("national_portal.lgsp_client_secret missing")
        sms = self.notifications.sms
        for name, secret in (("payment.national_platform.secret", self.payment.national_platform.secret),
                             ("payment.vnpay.secret", self.payment.vnpay.secret),
                             ("notifications.sms.viettel.password", sms.viettel.password),
                             ("notifications.sms.vnpt.api_pass", sms.vnpt.api_pass),
                             ("postal.customer_secret", self.postal.customer_secret),
                             ("postal.callback_secret", self.postal.callback_secret)):
            if not secret or secret in DEVELOPMENT_SECRETS:
                problems.append(f"{name} missing or a development value")
        if self.api.session_secret.startswith("dev-") or len(self.api.session_secret) < 16:
            problems.append("api.session_secret missing, short or a development value")
        if self.webhooks.url and self.webhooks.secret == WebhookSettings().secret:
            problems.append("webhooks.secret is the development value")
        if not self.audit.chain_key or self.audit.chain_key.startswith("dev-"):
            problems.append("audit.chain_key missing or a development value")
        if self.signature.revocation_mode != "require":
            problems.append("signature.revocation_mode must be \"require\" (no revocation data is no pass)")
        if not self.signature.trust_fingerprints:
            problems.append("signature.trust_fingerprints missing (pin the trusted roots)")
        if problems:
            raise ValueError("production config refused: " + "; ".join(problems))
        return self


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)
