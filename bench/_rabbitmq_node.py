"""A RabbitMQ node of one's own: its own data, logs, Erlang cookie and ports, beside the machine's broker, which
it leaves alone. The multi-host harness runs one in a namespace (_hosts_stack.py); a test that stops its broker
runs one so that the machine's, which every other test process uses, stays up (tests/test_reliability.py).

Debian's `rabbitmqctl` wrapper runs as the rabbitmq user, with that user's cookie; the node's own `rabbitmqctl`
below is called with the node's HOME, where the node wrote its cookie."""

from __future__ import annotations

import subprocess
from pathlib import Path

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
CTL = Path("/usr/lib/rabbitmq/bin/rabbitmqctl")


class RabbitMQNode:
    def __init__(self, home: Path, name: str, host: str, port: int, dist_port: int | None = None) -> None:
        self.home, self.name, self.host, self.port = home, f"{name}@localhost", host, port
        home.mkdir(parents=True, exist_ok=True)
        # loopback_users = none: guest may connect from another host's address (the harness's namespaces).
        (home / "rabbitmq.conf").write_text(f"listeners.tcp.default = {host}:{port}\nloopback_users = none\n")
        (home / "enabled_plugins").write_text("[].\n")
        (home / "env.conf").write_text("")
        self.env = {"HOME": str(home), "RABBITMQ_NODENAME": self.name, "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
                    "RABBITMQ_LOG_BASE": str(home / "log"), "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
                    "RABBITMQ_CONF_ENV_FILE": str(home / "env.conf"), "RABBITMQ_PID_FILE": str(home / "pid"),
                    "ERL_EPMD_ADDRESS": "127.0.0.1"}
        if dist_port is not None:  # else AMQP's port + 20000, which may be taken (the machine's node: 25672)
            self.env["RABBITMQ_DIST_PORT"] = str(dist_port)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.host}:{self.port}//"

    def server_argv(self) -> list[str]:
        """The node in the foreground, its settings given through `env` (a namespace's exec keeps argv only)."""
        return ["env", *(f"{k}={v}" for k, v in self.env.items()), str(SERVER)]

    def ctl(self, *args: str, timeout: float = 120) -> None:
        subprocess.run([str(CTL), "-n", self.name, *args], env={"HOME": str(self.home), "PATH": "/usr/bin:/bin"},
                       check=True, capture_output=True, timeout=timeout)
