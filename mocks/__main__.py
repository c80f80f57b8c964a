"""Serve all mocks on one port, and the SMTP mock on its own: `python -m mocks [--port 8001] [--smtp-port 8025]`.

`--only /payment` (repeatable) serves only those mocks, so that each partner can have a process of its own.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from mocks import email
from mocks.server import PREFIXES, create_app


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
    parser.add_argument("--smtp-port", type=int, default=8025, help="the SMTP mock (0: none)")
    parser.add_argument("--trust-out", type=Path, default=None,
                        help="write the roots of the TSA and OCSP mocks' PKI to this trust folder before serving")
    parser.add_argument("--only", action="append", choices=PREFIXES, metavar="PREFIX",
                        help=f"serve only this mock (repeatable; one of {', '.join(PREFIXES)}); default: all")
    args = parser.parse_args(argv)
    if args.trust_out is not None:
        from mocks.trust_services import write_default_roots

        write_default_roots(args.trust_out)
    app = create_app(args.only)
    _stop_on_signals()
    smtp = email.start_smtp(email.STORE, args.host, args.smtp_port) if args.smtp_port else None
    smtp_note = f"; SMTP on {args.host}:{args.smtp_port}" if smtp is not None else ""

    try:
        from waitress.server import create_server
    except ImportError:
        from werkzeug.serving import make_server

        server = make_server(args.host, args.port, app, threaded=True)
        print(f"mocks listening on http://{args.host}:{server.server_port} (werkzeug){smtp_note}", flush=True)
        server.serve_forever()  # returns on KeyboardInterrupt
    else:
        wserver = create_server(app, host=args.host, port=args.port, threads=16)
        print(f"mocks listening on http://{args.host}:{wserver.effective_port} (waitress){smtp_note}", flush=True)  # type: ignore[union-attr]
        wserver.run()  # returns on KeyboardInterrupt after stopping its worker threads
    if smtp is not None:
        smtp.stop()
    print("mocks stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
