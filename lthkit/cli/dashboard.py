"""``python -m lthkit dashboard``: notebook 3's dashboard as a web app (Voilà)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import LthkitError

#: The app notebook that ``lthkit dashboard`` serves: one cell that makes notebook 3's Dashboard.
DASHBOARD_APP = Path(__file__).resolve().parents[1] / "course" / "app" / "dashboard.ipynb"


def dashboard_command_line(port: int, token: str, *, open_browser: bool = True) -> list[str]:
    """The Voilà command line that serves :data:`DASHBOARD_APP` on loopback with ``token``.

    Voilà shows the cells' outputs only (no code), on 127.0.0.1 alone, and refuses a request
    without the token; ``port_retries=0``: the port printed is the port served.
    """
    return [sys.executable, "-m", "voila", str(DASHBOARD_APP), "--Voila.ip=127.0.0.1", f"--port={port}",
            "--Voila.port_retries=0", f"--token={token}", "--VoilaConfiguration.strip_sources=True",
            *([] if open_browser else ["--no-browser"])]


def run(args: argparse.Namespace) -> int:
    import importlib.util
    import secrets
    import socket

    if importlib.util.find_spec("voila") is None:
        raise LthkitError("voila is not installed: pip install -r requirements.txt (it pins voila)")
    if not 0 <= args.port <= 65535:
        raise LthkitError(f"--port must be in 0..65535, got {args.port}")
    port = args.port
    if port == 0:  # a free loopback port, chosen here so that the URL below is the one served
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    token = args.token or secrets.token_hex(24)
    print(f"lthkit dashboard: serving the Explore dashboard at http://127.0.0.1:{port}/?token={token}", flush=True)
    print("(Ctrl-C stops it; runs are cached like the notebooks')", flush=True)
    # This process becomes Voilà (no parent left to orphan it): Ctrl-C or a signal stops the server itself.
    command = dashboard_command_line(port, token, open_browser=not args.no_browser)
    os.execv(command[0], command)
    return 0  # not reached


def add_parser(commands) -> None:
    """``dashboard``: notebook 3's dashboard as a Voilà app on loopback."""
    dashboard = commands.add_parser(
        "dashboard", help="serve notebook 3's Explore dashboard as a web app (Voilà, no code cells)",
        description="Serve the Explore dashboard of notebook 3 as a standalone web page with Voilà: the same "
                    "controls, Run, progress and plot, no code cells. It listens on 127.0.0.1 only and needs the "
                    "token in the printed URL.")
    dashboard.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    dashboard.add_argument("--token", default=None, help="the access token (default: a random one)")
    dashboard.add_argument("--no-browser", action="store_true", help="only print the URL, open no browser")
    dashboard.set_defaults(handler=run)
