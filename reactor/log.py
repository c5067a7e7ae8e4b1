"""Twisted-style log observers: ``addObserver``, ``msg``, ``err``.

The reactor reports what it cannot hand to anyone — an exception escaping a
timed call or dataReceived, a Deferred collected with an unhandled failure —
through :func:`err`.  Each report goes to two places:

* the observers added with :func:`addObserver`, as the event dictionaries of
  ``twisted.python.log`` (``message``, ``isError``, ``failure``, ``why``,
  ``system``, ``time``), so a test runner can turn a logged error into a test
  error and a tool can collect them, as they do on Twisted;
* the standard :mod:`logging` module (logger ``reactor`` unless the caller
  names another), so an application that only configures ``logging`` still
  sees every error.

``from twisted.python import log`` ports as ``from reactor import log``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from reactor.failure import Failure

__all__ = ["addObserver", "deferr", "err", "msg", "removeObserver", "textFromEventDict"]

Observer = Callable[[dict[str, Any]], None]

_observers: list[Observer] = []
_lock = threading.Lock()  # errors may be reported from pool threads
_default_logger = logging.getLogger("reactor")


def addObserver(observer: Observer) -> None:
    """Call ``observer(event)`` for every message and error from now on."""
    with _lock:
        _observers.append(observer)


def removeObserver(observer: Observer) -> None:
    """Stop calling ``observer`` (ValueError if it was not added)."""
    with _lock:
        _observers.remove(observer)


def _publish(event: dict[str, Any]) -> None:
    """Give ``event`` to every observer.  One that raises is removed (it would
    raise again on the next event) and the removal goes to stdlib logging."""
    with _lock:
        observers = list(_observers)
    for observer in observers:
        try:
            observer(event)
        except Exception:
            try:
                removeObserver(observer)
            except ValueError:
                pass  # removed by another thread meanwhile
            _default_logger.exception("Log observer %r raised; it was removed", observer)


def msg(*message: Any, **kw: Any) -> None:
    """Log an informational message (the parts are joined by spaces); keyword
    arguments go into the event as they are."""
    event = {"message": message, "isError": 0, "system": "-", "time": time.time()}
    event.update(kw)
    _publish(event)
    if message:
        level = logging.ERROR if event["isError"] else logging.INFO
        _default_logger.log(level, "%s", " ".join(str(m) for m in message))


def err(_stuff: Failure | BaseException | None = None, _why: str | None = None,
        logger: logging.Logger | None = None, **kw: Any) -> None:
    """Log an error: ``_stuff`` is a Failure, an exception, or None for the
    exception being handled; ``_why`` says what was being done.  ``logger``
    is the stdlib logger that also gets it (default ``reactor``)."""
    if _stuff is None or isinstance(_stuff, BaseException):
        failure = Failure(_stuff)
    elif isinstance(_stuff, Failure):
        failure = _stuff
    else:
        # Twisted accepts anything here and logs its repr.
        msg(repr(_stuff), why=_why, isError=1, **kw)
        return
    event = {"message": (), "isError": 1, "failure": failure, "why": _why,
             "system": "-", "time": time.time()}
    event.update(kw)
    _publish(event)
    logger = logger or _default_logger
    why = _why or "Unhandled error"
    if failure.tb is not None:
        # Python formats a live traceback best (and handlers can read exc_info).
        logger.error("%s", why, exc_info=(failure.type, failure.value, failure.tb))
    else:
        logger.error("%s\n%s", why, failure.getTraceback().rstrip("\n"))


deferr = err  # Twisted's older name


def unhandled_in_deferred(failure: Failure, logger: logging.Logger, debug: str = "") -> None:
    """Report a Deferred collected with ``failure`` unhandled: observers get
    Twisted's two events (the message, then the failure), stdlib ``logger``
    one record with the traceback.  ``debug`` is the Deferred's creation and
    invocation stacks (defer.setDebugging), shown as Twisted shows them:
    ``(debug: ...)`` before the traceback."""
    now = time.time()
    why = f"(debug: {debug})" if debug else None
    _publish({"message": ("Unhandled error in Deferred:",), "isError": 1, "system": "-",
              "time": now})
    _publish({"message": (), "isError": 1, "failure": failure, "why": why, "system": "-",
              "time": now})
    logger.error("Unhandled error in Deferred:\n%s%s", f"{why}\n" if why else "",
                 failure.getTraceback().rstrip("\n"))


def textFromEventDict(event: dict[str, Any]) -> str | None:
    """The text of an event as Twisted's log files show it: its message, or
    for an error its ``why`` (default "Unhandled Error") and traceback."""
    message = event.get("message")
    if message:
        return " ".join(str(m) for m in message)
    if event.get("isError") and "failure" in event:
        why = event.get("why") or "Unhandled Error"
        return f"{why}\n{event['failure'].getTraceback()}"
    if "format" in event:
        try:
            return event["format"] % event
        except (KeyError, TypeError, ValueError):
            return f"Invalid format string or unformattable object in log message: {event!r}"
    return None
