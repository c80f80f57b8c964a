"""Serve all mocks on one port: `python -m mocks [--host 127.0.0.1] [--port 8001]`."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from mocks.server import create_app


def _stop_on_signals() -> None:
    # SIGTERM takes the same clean path as Ctrl-C; SIGINT is set explicitly because
    # shells start background jobs with it ignored, which Python would inherit.
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mocks", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    app = create_app()
    _stop_on_signals()

    try:
        from waitress.server import create_server
    except ImportError:
        from werkzeug.serving import make_server

        server = make_server(args.host, args.port, app, threaded=True)
        print(f"mocks listening on http://{args.host}:{server.server_port} (werkzeug)", flush=True)
        server.serve_forever()  # returns on KeyboardInterrupt
    else:
        wserver = create_server(app, host=args.host, port=args.port, threads=16)
        print(f"mocks listening on http://{args.host}:{wserver.effective_port} (waitress)", flush=True)  # type: ignore[union-attr]
        wserver.run()  # returns on KeyboardInterrupt after stopping its worker threads
    print("mocks stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
