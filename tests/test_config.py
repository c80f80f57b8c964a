"""Settings: TOML defaults, overrides by env, and a production profile that refuses to start unsafe."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.config import load_settings


def test_defaults_are_embedded(monkeypatch):
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    s = load_settings()
    assert s.database.url.startswith("sqlite")
    assert s.broker.url == "filesystem://"
    assert {k.name for k in s.auth.api_keys} == {"dev-portal", "dev-one-stop", "dev-national-portal", "dev-ops"}


def test_env_overrides_nested_keys(monkeypatch):
    monkeypatch.setenv("GATEWAY_DATABASE__URL", "postgresql+psycopg://x@db/gw")
    monkeypatch.setenv("GATEWAY_JOBS__MAX_ATTEMPTS", "3")
    s = load_settings()
    assert s.database.url == "postgresql+psycopg://x@db/gw" and s.jobs.max_attempts == 3


def test_production_refuses_development_keys(monkeypatch, tmp_path):
    monkeypatch.setenv("GATEWAY_ENVIRONMENT", "production")
    monkeypatch.setenv("GATEWAY_DATABASE__URL", "postgresql+psycopg://x@db/gw")
    with pytest.raises(ValidationError, match="development key"):
        load_settings()


# The SMS and post partners' secrets of a production config (payment's are set per test).
PARTNER_SECRETS = ('[notifications.sms.viettel]\npassword = "viettel-s3cret"\n[notifications.sms.vnpt]\n'
                   'api_pass = "vnpt-s3cret"\n[postal]\ncustomer_secret = "post-s3cret"\n'
                   'callback_secret = "cb-s3cret"\n[signature]\nrevocation_mode = "require"\n'
                   'trust_fingerprints = ["' + "b" * 64 + '"]\n[audit]\nchain_key = "chain-s3cret"\n'
                   '[api]\nsession_secret = "a-long-console-s3cret"\n')


def test_production_config_file_with_hashed_keys_starts(monkeypatch, tmp_path):
    cfg = tmp_path / "prod.toml"
    cfg.write_text('environment = "production"\n[database]\nurl = "postgresql+psycopg://gw@db/gw"\n'
                   '[national_portal]\npassword = "s3cret"\n'
                   '[payment.national_platform]\nsecret = "platform-s3cret"\n[payment.vnpay]\nsecret = "vnpay-s3cret"\n'
                   + PARTNER_SECRETS +
                   '[auth]\napi_keys = [{name = "portal", key_sha256 = "' + "a" * 64 + '", roles = ["portal"]}]\n')
    monkeypatch.setenv("GATEWAY_CONFIG", str(cfg))
    s = load_settings()
    assert [k.name for k in s.auth.api_keys] == ["portal"]
    monkeypatch.setenv("GATEWAY_NATIONAL_PORTAL__PASSWORD", "")
    with pytest.raises(ValidationError, match="password missing"):
        load_settings()


def test_production_refuses_the_mocks_payment_secrets(monkeypatch, tmp_path):
    cfg = tmp_path / "prod.toml"
    cfg.write_text('environment = "production"\n[database]\nurl = "postgresql+psycopg://gw@db/gw"\n'
                   '[national_portal]\npassword = "s3cret"\n' + PARTNER_SECRETS +
                   '[auth]\napi_keys = [{name = "portal", key_sha256 = "' + "a" * 64 + '", roles = ["portal"]}]\n')
    monkeypatch.setenv("GATEWAY_CONFIG", str(cfg))
    with pytest.raises(ValidationError, match="payment.national_platform.secret missing or a development value"):
        load_settings()
    monkeypatch.setenv("GATEWAY_PAYMENT__NATIONAL_PLATFORM__SECRET", "platform-s3cret")
    monkeypatch.setenv("GATEWAY_PAYMENT__VNPAY__SECRET", "")
    with pytest.raises(ValidationError, match="payment.vnpay.secret missing"):
        load_settings()
    monkeypatch.setenv("GATEWAY_PAYMENT__VNPAY__SECRET", "vnpay-s3cret")
    assert load_settings().payment.vnpay.secret == "vnpay-s3cret"


@pytest.mark.parametrize(("env", "name", "mock_value"), [
    ("GATEWAY_NOTIFICATIONS__SMS__VIETTEL__PASSWORD", "notifications.sms.viettel.password", "viettel-secret"),
    ("GATEWAY_NOTIFICATIONS__SMS__VNPT__API_PASS", "notifications.sms.vnpt.api_pass", "vnpt-secret"),
    ("GATEWAY_POSTAL__CUSTOMER_SECRET", "postal.customer_secret", "vnpost-secret"),
    ("GATEWAY_POSTAL__CALLBACK_SECRET", "postal.callback_secret", "vnpost-callback-secret"),
])
def test_production_refuses_the_sms_and_post_mocks_secrets(monkeypatch, tmp_path, env, name, mock_value):
    cfg = tmp_path / "prod.toml"
    cfg.write_text('environment = "production"\n[database]\nurl = "postgresql+psycopg://gw@db/gw"\n'
                   '[national_portal]\npassword = "s3cret"\n[payment.national_platform]\nsecret = "p-s3cret"\n'
                   '[payment.vnpay]\nsecret = "v-s3cret"\n' + PARTNER_SECRETS +
                   '[auth]\napi_keys = [{name = "portal", key_sha256 = "' + "a" * 64 + '", roles = ["portal"]}]\n')
    monkeypatch.setenv("GATEWAY_CONFIG", str(cfg))
    load_settings()
    monkeypatch.setenv(env, mock_value)
    with pytest.raises(ValidationError, match=f"{name} missing or a development value"):
        load_settings()


def test_payment_routes_name_exactly_one_key(monkeypatch):
    monkeypatch.setenv("GATEWAY_PAYMENT__ROUTES", '[{"provider": "vnpay"}]')
    with pytest.raises(ValidationError, match="exactly one of procedure_code or unit_code"):
        load_settings()


def test_retention_is_per_procedure_with_a_default_and_one_rule_a_procedure(monkeypatch):
    monkeypatch.setenv("GATEWAY_ARCHIVE__RETENTION", '[{"procedure_code": "1.001193.000.00.00.H56", "years": 0}]')
    archive = load_settings().archive
    assert archive.retention_years("1.001193.000.00.00.H56") == 0  # permanent
    assert archive.retention_years("1.003560.000.00.00.H56") == archive.retention_default_years == 10
    monkeypatch.setenv("GATEWAY_ARCHIVE__RETENTION", '[{"procedure_code": "1.1", "years": 5}, '
                                                     '{"procedure_code": "1.1", "years": 20}]')
    with pytest.raises(ValidationError, match="names 1.1 more than once"):
        load_settings()


def test_checks_trust_what_the_stack_trusts_the_mock_tsas_roots_under_make_run(monkeypatch, tmp_path):
    """`archive verify` and `audit verify` without --trust read Settings.archive_trust_path, as the workers do."""
    from gateway import config

    for name in ("GATEWAY_CONFIG", "GATEWAY_ARCHIVE__TRUST_DIR", "GATEWAY_ARCHIVE__TSA_URL",
                 "GATEWAY_SIGNATURE__TRUST_DIR"):
        monkeypatch.delenv(name, raising=False)
    mock_trust = tmp_path / "var" / "mock-trust"
    monkeypatch.setattr(config, "MOCK_TRUST_DIR", mock_trust)
    # The bundled mock TSA before `make run` wrote its roots: signature.trust_dir.
    assert load_settings().archive_trust_path == config.PROJECT_ROOT / "config" / "trust"
    mock_trust.mkdir(parents=True)
    assert load_settings().archive_trust_path == mock_trust  # `make run` wrote them: the mock TSA's roots
    monkeypatch.setenv("GATEWAY_ARCHIVE__TSA_URL", "https://tsa.example.vn/")  # a real TSA: the signature roots
    assert load_settings().archive_trust_path == config.PROJECT_ROOT / "config" / "trust"
    monkeypatch.setenv("GATEWAY_ARCHIVE__TRUST_DIR", str(tmp_path / "roots"))  # a configured folder wins
    assert load_settings().archive_trust_path == tmp_path / "roots"


def test_a_lease_shorter_than_a_partner_call_is_refused(monkeypatch):
    """Another worker may take a job over once its lease ends: a call of the first worker still alive then could
    land after the newer ones (bench/hosts.py's partition found an older dossier record over a newer one). A call
    may take a timeout to connect and a timeout more before what it wrote is abandoned: the lease must be longer."""
    monkeypatch.setenv("GATEWAY_JOBS__LEASE_SECONDS", "19")
    with pytest.raises(ValidationError, match=r"twice every partner's timeout: national_portal.timeout_seconds 10") \
            as refused:
        load_settings()
    assert "postal" not in str(refused.value)  # the others' 8 s twice end within the lease
    monkeypatch.setenv("GATEWAY_NATIONAL_PORTAL__TIMEOUT_SECONDS", "9")
    assert load_settings().jobs.lease_seconds == 19
