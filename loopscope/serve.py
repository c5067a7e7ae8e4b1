"""``loopscope serve``: the dashboard in a browser, through textual-serve.

textual-serve runs a command per browser tab and relays its terminal over a websocket, so
the page is the very dashboard ``loopscope replay`` / ``live`` shows, keys included.  It
listens on 127.0.0.1 unless told otherwise, and another address needs ``--allow-remote``:
whoever reaches the page can read the trace (it may hold application data) and drive the
dashboard.  The command it runs is fixed here (loopscope's own dashboard on the one trace
given); the page exposes nothing else.
"""

from __future__ import annotations

import ipaddress
import shlex
import socket
import sys


class ServeError(Exception):
    """A one-sentence reason why the dashboard cannot be served."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def dashboard_command(trace: str, live: bool) -> str:
    """The shell command textual-serve runs per browser tab (``-P``: see tui/child.py)."""
    return shlex.join([sys.executable, "-P", "-m", "loopscope", "live" if live else "replay",
                       trace])


def serve(trace: str, host: str, port: int, allow_remote: bool, live: bool = False) -> None:
    """Serve the dashboard on ``trace`` at ``http://host:port/`` until interrupted."""
    if not is_loopback(host) and not allow_remote:
        raise ServeError(f"--host {host} would let other machines open the dashboard and read "
                         f"the trace; add --allow-remote if that is what you want")
    try:
        from textual_serve.server import Server
    except ImportError as e:
        raise ServeError(f"the browser dashboard needs textual-serve ({e})") from None
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as e:
            raise ServeError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    print(f"loopscope: the dashboard on {trace} is at {url} (Ctrl+C stops it)", file=sys.stderr,
          flush=True)
    Server(dashboard_command(trace, live), host=host, port=port, title="loopscope",
           public_url=url.rstrip("/")).serve()
