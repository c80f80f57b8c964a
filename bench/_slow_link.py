"""A slow, lossy database link, in user space: this kernel has no netem (`tc qdisc ... netem` is unknown).

    python bench/_slow_link.py --listen 198.18.0.2:6543 --to 127.0.0.1:5432 [--delay-ms 20] [--loss 0.01]

A TCP relay, run in the database host's namespace. It passes bytes through untouched until it gets SIGUSR1;
then, like `netem delay 20ms loss 1%` on the database host's interface (its egress: the answers), every chunk
from the server waits `--delay-ms` before it goes on, and one chunk in a hundred waits another `--rto-ms`
(200 ms, Linux's least retransmission timeout: what a lost segment costs a TCP stream), holding back those
behind it as TCP's in-order delivery does. SIGUSR2 makes the link fast again. Connections are never dropped:
1 % segment loss slows TCP down, it does not reset it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import sys
import time


class Link:
    def __init__(self, delay: float, loss: float, rto: float) -> None:
        self.delay, self.loss, self.rto = delay, loss, rto
        self.slow = False
        self.chunks = self.lost = 0

    def hold(self) -> float:
        """Seconds a chunk from the server waits now."""
        if not self.slow:
            return 0.0
        self.chunks += 1
        if random.random() < self.loss:
            self.lost += 1
            return self.delay + self.rto
        return self.delay


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: Link | None) -> None:
    """Copy until EOF; with a link, each chunk leaves at its own release time, in order."""
    release = 0.0
    try:
        while data := await reader.read(65536):
            if link is not None and (hold := link.hold()):
                release = max(release, time.monotonic() + hold)
                await asyncio.sleep(release - time.monotonic())
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def serve(listen: tuple[str, int], to: tuple[str, int], link: Link) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*to)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, server_w, None), pipe(server_r, client_w, link))

    server = await asyncio.start_server(handle, *listen)
    loop = asyncio.get_running_loop()

    def switch(slow: bool) -> None:
        link.slow = slow
        print(f"link {'slow' if slow else 'fast'} (chunks held {link.chunks}, lost {link.lost})", flush=True)

    loop.add_signal_handler(signal.SIGUSR1, switch, True)
    loop.add_signal_handler(signal.SIGUSR2, switch, False)
    print(f"relaying {listen[0]}:{listen[1]} -> {to[0]}:{to[1]}", flush=True)
    async with server:
        await server.serve_forever()


def _address(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", type=_address, required=True)
    p.add_argument("--to", type=_address, required=True)
    p.add_argument("--delay-ms", type=float, default=20.0)
    p.add_argument("--loss", type=float, default=0.01)
    p.add_argument("--rto-ms", type=float, default=200.0)
    a = p.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(a.listen, a.to, Link(a.delay_ms / 1000, a.loss, a.rto_ms / 1000)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
