"""The `gateway` command: serve the API, run a worker, migrate, handle dead letters, run everything."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from operator import length_hint
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar, get_args

import click

from gateway import log_format
from gateway.config import MOCK_TRUST_DIR, Role, load_settings
from gateway.store.database import migrate as run_migrations

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

    from gateway.bootstrap import Gateway
    from gateway.services.progress import Track

T = TypeVar("T")


def bootstrap() -> Gateway:
    # Imported when a command runs, not with this module: `serve` must set PROMETHEUS_MULTIPROC_DIR before
    # anything imports prometheus_client.
    from gateway.bootstrap import bootstrap as wire
    from gateway.signature.trust_store import TrustStoreError

    try:
        return wire()
    except TrustStoreError as exc:  # the operator's to fix: say what, not where in our code
        raise click.ClickException(f"refusing to start: {exc}") from None


def _logging(level: str) -> None:
    try:
        settings = load_settings()
    except ValueError:  # a refused config: the command says why when it bootstraps; log plainly till then
        log_format.configure(level)
        return
    log_format.configure(level, settings.log.format, settings.secrets())


@click.group()
@click.option("--log-level", default=lambda: os.environ.get("GATEWAY_LOG_LEVEL", "info"), show_default="info")
def main(log_level: str) -> None:
    """Integration gateway for Vietnam's online public services."""
    _logging(log_level)


@main.command()
def migrate() -> None:
    """Bring the database schema up to date (Alembic)."""
    gateway = bootstrap()
    run_migrations(gateway.settings.database.url)
    click.echo("database migrated")


@main.command()
@click.option("--host", default=None, help="default: api.host")
@click.option("--port", default=None, type=int, help="default: api.port")
@click.option("--workers", default=1, show_default=True, help="gunicorn worker processes")
@click.option("--threads", default=8, show_default=True, help="threads per gunicorn worker")
def serve(host: str | None, port: int | None, workers: int, threads: int) -> None:
    """Serve the HTTP API with gunicorn."""
    # The processes count requests in one directory, so that any of them answers /metrics for all.
    metrics_dir = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    from gunicorn.app.base import BaseApplication

    settings = bootstrap().settings
    bind = f"{host or settings.api.host}:{port or settings.api.port}"

    class _App(BaseApplication):
        def load_config(self) -> None:
            for key, value in {"bind": bind, "workers": workers, "threads": threads, "worker_class": "gthread",
                               "accesslog": None, "graceful_timeout": 10, "timeout": 60,
                               "child_exit": _forget_metrics_of}.items():
                self.cfg.set(key, value)

        def load(self):  # noqa: ANN202 - gunicorn's hook; each worker process builds its own app
            from gateway.app import create_app

            return create_app()

    try:
        _App().run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _forget_metrics_of(_server: object, worker: object) -> None:
    """gunicorn's child_exit hook: a dead process's gauges leave the shared directory with it."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]


@main.command()
@click.option("--threads", default=None, type=int, help="consumer threads (default: jobs.worker_threads)")
@click.option("--no-sweeper", is_flag=True, help="leave sweeping to other workers")
@click.option("--metrics-port", default=None, type=int, help="serve this worker's Prometheus metrics on this port")
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
def worker(threads: int | None, no_sweeper: bool, metrics_port: int | None, metrics_host: str) -> None:
    """Run a worker: consume jobs, retry, sweep."""
    from gateway.bootstrap import build_worker

    gateway = bootstrap()
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host)
    if threads:
        gateway.settings.jobs.worker_threads = threads
    w = build_worker(gateway)
    signal.signal(signal.SIGTERM, lambda *_: w.stopping.set())
    w.start(sweeper=not no_sweeper)
    with contextlib.suppress(KeyboardInterrupt):
        w.wait()
    w.stop()


@main.group("dead-letters")
def dead_letters_group() -> None:
    """List, retry or discard dead letters."""


@dead_letters_group.command("list")
@click.option("--queue", default=None)
def dl_list(queue: str | None) -> None:
    from gateway.api.views import job
    from gateway.services.ops import dead_letters

    rows = dead_letters.list_dead(bootstrap().context, queue=queue)
    click.echo(json.dumps([job(r) for r in rows], ensure_ascii=False, indent=2))


@dead_letters_group.command("retry")
@click.argument("job_id", type=int)
def dl_retry(job_id: int) -> None:
    _operate("retry", job_id)


@dead_letters_group.command("discard")
@click.argument("job_id", type=int)
def dl_discard(job_id: int) -> None:
    _operate("discard", job_id)


@dead_letters_group.command("retry-all")
@click.option("--queue", default=None, help="only this queue")
@click.option("--kind", default=None, help="only this kind of job")
def dl_retry_all(queue: str | None, kind: str | None) -> None:
    """Give every dead letter (of a queue, of a kind) fresh attempts."""
    _settle_all("retry", queue, kind)


@dead_letters_group.command("discard-all")
@click.option("--queue", default=None, help="only this queue")
@click.option("--kind", default=None, help="only this kind of job")
def dl_discard_all(queue: str | None, kind: str | None) -> None:
    """Give up on every dead letter (of a queue, of a kind)."""
    _settle_all("discard", queue, kind)


def _settle_all(action: Literal["retry", "discard"], queue: str | None, kind: str | None) -> None:
    from gateway.services.ops import dead_letters

    gateway = bootstrap()
    try:
        ids = [job["id"] for job in dead_letters.list_dead(gateway.context, queue=queue, kind=kind, limit=10**9)]
        with _progress(f"{action} {len(ids)} dead letters", ids) as bar:
            done = dead_letters.settle_each(gateway.context, action, bar, actor=_operator())
    finally:
        gateway.close()
    click.echo(f"dead letters: {action} done for {done} of {len(ids)}")


def _progress(label: str, items: Iterable[T], *, length: int | None = None,
              hidden: bool = False) -> ProgressBar[T]:
    """A bar for long work: drawn on a terminal, on stderr so that stdout stays for what scripts read; only
    the label when stderr is not a terminal; nothing at all when hidden (output asked for as JSON)."""
    length = length_hint(items) if length is None else length
    # Redrawn a few hundred times at most: a big chain has millions of records.
    return click.progressbar(items, length=length, label=label, file=sys.stderr, hidden=hidden, show_pos=True,
                             show_percent=True, update_min_steps=max(1, length // 500))


def _tracked(label: Callable[[int], str], *, hidden: bool = False) -> Track:
    """A service's Track drawn as a `_progress` bar, labelled for how many items there are."""
    def track(items: Iterable[T], length: int, /) -> Iterator[T]:
        with _progress(label(length), items, length=length, hidden=hidden) as bar:
            yield from bar
    return track


def _operate(action: str, job_id: int) -> None:
    from gateway.services.errors import NotFound
    from gateway.services.ops import dead_letters

    gateway = bootstrap()
    try:
        getattr(dead_letters, action)(gateway.context, job_id, actor=_operator())
    except NotFound as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        gateway.close()
    click.echo(f"dead letter {job_id}: {action} done")


@main.group("keys")
def keys_group() -> None:
    """API keys kept in the database: add, revoke, list (in effect without a restart)."""


@keys_group.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True,
              type=click.Choice(get_args(Role)))
@click.option("--rate", "rate_per_minute", type=int, default=None, help="requests a minute (default: the setting)")
def keys_add(name: str, roles: tuple[str, ...], rate_per_minute: int | None) -> None:
    """Create a key and print it: it is shown this once, and only its hash is kept."""
    from gateway.services.errors import ServiceError

    gateway = bootstrap()
    try:
        key = gateway.keys.add(name, list(roles), rate_per_minute=rate_per_minute, actor=_operator())
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        gateway.close()
    click.echo(key)


@keys_group.command("revoke")
@click.argument("name")
def keys_revoke(name: str) -> None:
    from gateway.services.errors import ServiceError

    gateway = bootstrap()
    try:
        gateway.keys.revoke(name, actor=_operator())
    except ServiceError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        gateway.close()
    click.echo(f"key {name} revoked")


@keys_group.command("list")
def keys_list() -> None:
    gateway = bootstrap()
    try:
        click.echo(json.dumps(gateway.keys.describe(), ensure_ascii=False, indent=2))
    finally:
        gateway.close()


def _operator() -> str:
    return f"cli:{os.environ.get('USER', 'operator')}"


@main.group("audit")
def audit_group() -> None:
    """The audit log's hash chain."""


_TRUST_HELP = ("folder of trusted roots (public/, government/); default: the configured stack's "
               "(archive.trust_dir; under `make run` the mock TSA's var/mock-trust; else signature.trust_dir)")


def _trust_folder(given: Path | None) -> Path:
    """The roots a CLI check judges signatures and timestamps against: --trust, or what the stack's workers use."""
    if given is not None:
        return given
    try:
        return load_settings().archive_trust_path
    except ValueError as exc:
        raise click.ClickException(f"no --trust given and the configuration is refused: {exc}") from None


@audit_group.command("verify")
@click.option("--seal/--no-seal", default=True, show_default=True, help="seal new records first")
@click.option("--all-anchors", is_flag=True, help="check every TSA anchor's signature, not only the newest 20")
@click.option("--trust", "trust_dir", type=click.Path(path_type=Path), default=None, help=_TRUST_HELP)
def audit_verify(seal: bool, all_anchors: bool, trust_dir: Path | None) -> None:
    """Check the chain and its TSA anchors; exit 1 and name each edited, missing or moved record, and records
    cut from the end up to the newest anchor."""
    from gateway.services.archive.offline import roots_from
    from gateway.services.audit import chain as audit_chain
    from gateway.signature.trust_store import TrustStoreError

    folder = _trust_folder(trust_dir)
    try:
        roots = roots_from(folder)
    except (TrustStoreError, OSError) as exc:
        raise click.ClickException(f"cannot read the trusted roots in {folder}: {exc}") from None
    # Said first, on stderr: stdout is the JSON report alone, which says it again as its first key.
    click.echo(f"trusting roots from {folder} ({len(roots)} roots)", err=True)
    gateway = bootstrap()
    try:
        if seal:
            audit_chain.seal_all(gateway.engine, gateway.settings.audit.key)
        report = audit_chain.verify(gateway.engine, gateway.settings.audit.key, roots,
                                    track=_tracked(lambda n: f"verify {n} audit records"),
                                    **({"anchor_signatures": None} if all_anchors else {}))
    finally:
        gateway.close()
    click.echo(json.dumps({"trust": f"{folder} ({len(roots)} roots)", **report}, ensure_ascii=False, indent=2))
    if not report["ok"]:
        sys.exit(1)


@main.group("archive")
def archive_group() -> None:
    """The electronic archive's packages (docs/archive.md)."""


@archive_group.command("verify")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--trust", "trust_dir", type=click.Path(path_type=Path), default=None, help=_TRUST_HELP)
@click.option("--expect", default=None, metavar="CODE[.vNNNN]",
              help="fail unless the package holds this dossier (and version); without it a file named for "
                   "another package gets a note, not a failure")
@click.option("--json", "as_json", is_flag=True, help="the report as JSON")
@click.option("--at", "at", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="verify as of this UTC date (default: now), e.g. after a TSA certificate has ended")
def archive_verify(path: Path, trust_dir: Path | None, expect: str | None, as_json: bool,
                   at: datetime | None) -> None:
    """Check a package offline (the zip, or the bag unpacked): every file, the timestamps, the PDFs' LTV
    signatures. Prints a verdict per item; exit 1 when any item fails. Needs no database and no network."""
    import logging

    from gateway.services.archive.offline import verify_path

    # pyHanko logs each failed check with its traceback; the verdicts say it once, for a reader.
    for name in ("pyhanko", "pyhanko_certvalidator"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    track = _tracked(lambda n: f"verify {path.name}: {n} checks", hidden=as_json)
    report = verify_path(path, _trust_folder(trust_dir), at.replace(tzinfo=UTC) if at else None, track=track,
                         expect=expect)
    click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2) if as_json else report.text())
    if not report.ok:
        sys.exit(1)


@main.group("reconcile")
def reconcile_group() -> None:
    """Compare what partners hold with what the gateway sent."""


@reconcile_group.command("portal")
@click.option("--code", "codes", multiple=True, metavar="CODE", help="only this dossier (repeatable)")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="only dossiers changed since this UTC date (default: every dossier in scope)")
@click.option("--json", "as_json", is_flag=True, help="the outcome as JSON")
def reconcile_portal(codes: tuple[str, ...], since: datetime | None, as_json: bool) -> None:
    """Read dossiers back from the national portal now (TraCuuHoSo) and compare them with what was sent: what the
    gateway owns is queued again through the outbox, the rest is an operator's finding (the console's drift page).
    Paced at national_portal.reconcile.rate_per_second. Exit 1 when a finding waits for an operator, 2 when the
    portal looks down."""
    from gateway.services.portal_drift import findings
    from gateway.services.portal_drift.reconciler import PortalDown

    gateway = bootstrap()
    try:
        chosen = list(codes) or findings.in_scope(gateway.context, since=since.replace(tzinfo=UTC) if since else None)
        track = _tracked(lambda n: f"read back {n} dossiers", hidden=as_json)
        try:
            results = gateway.drift.run(chosen, track=track)
        except PortalDown as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
    finally:
        gateway.close()
    outcomes: dict[str, int] = {}
    for result in results:
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
    report = {"checked": len(results), "outcomes": dict(sorted(outcomes.items())),
              "repairs_queued": sum(1 for r in results if r.repair_jobs),
              "waiting_for_operator": sum(1 for r in results if r.state == "operator"),
              "dossiers": [r.as_dict() for r in results if r.outcome != "clean"]}
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        click.echo(f"{report['checked']} dossiers read back: " + ", ".join(f"{k} {v}" for k, v in outcomes.items()))
        for r in results:
            if r.outcome != "clean":
                what = "repair queued" if r.repair_jobs else r.state or ""
                click.echo(f"  {r.code}: {r.outcome} {what} {r.detail or ''}".rstrip())
    if report["waiting_for_operator"]:
        sys.exit(1)


@main.command("api-reference")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="write here, not to stdout")
def api_reference(output: str | None) -> None:
    """Print docs/api.md: every route, rendered from the OpenAPI document (needs no database)."""
    from gateway.api.openapi import build
    from gateway.api.reference import render
    from gateway.app import route_map

    text = render(build(route_map()))
    if output is None:
        click.echo(text, nl=False)
    else:
        with open(output, "w", encoding="utf-8") as out:
            out.write(text)


def _wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)  # polling a server that is starting, not papering over a race


@main.command("run-all")
@click.option("--mock-port", default=8001, show_default=True)
def run_all(mock_port: int) -> None:
    """Development: migrate, then run the mocks, the API and a worker until Ctrl-C."""
    gateway = bootstrap()
    run_migrations(gateway.settings.database.url)
    # A SIGTERM (a supervisor, `timeout`) must stop the children too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    exe = [sys.executable, "-m"]
    mocks, env = [*exe, "mocks", "--port", str(mock_port)], dict(os.environ)
    archive = gateway.settings.archive
    if archive.tsa_is_bundled_mock(mock_port):
        # The TSA is the mock, with a PKI of its own made at start: the archive trusts its roots, so packages
        # verify (and can be minimised) under `make run` too, and so does a CLI check run beside it
        # (Settings.archive_trust_path). A configured archive.trust_dir is left alone.
        mocks += ["--trust-out", str(MOCK_TRUST_DIR)]
        env["GATEWAY_ARCHIVE__TRUST_DIR"] = str(MOCK_TRUST_DIR)
    procs = [subprocess.Popen(mocks)]
    _wait_until_up(f"http://127.0.0.1:{mock_port}/healthz", procs[0])  # the roots are written before it serves
    procs += [subprocess.Popen([*exe, "gateway", "serve", "--workers", "1"], env=env),
              subprocess.Popen([*exe, "gateway", "worker"], env=env)]
    try:
        while all(p.poll() is None for p in procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                procs[0].wait(timeout=1)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
