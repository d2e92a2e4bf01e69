"""The HTTP limits of one server instance: a request head's size and line count, the time a
whole head may take, the keep-alive idle time, and the number of open connections. Enforced by
:mod:`server.http_protocol` (below the app: middleware runs only once a head is complete, too late
for all of them). Light on imports: the CLI reads its flags before anything heavy is loaded."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class HttpLimits:
    """What one server instance accepts; the CLI fills it from flags and environment variables."""

    max_head_bytes: int = 32 * 1024  # request line + headers; past it: 431 and close
    max_header_lines: int = 128
    head_timeout_s: float = 20.0  # a whole head, from its first byte (or from connect)
    keepalive_timeout_s: float = 15.0  # idle between requests; above httpx's 5 s expiry
    max_connections: int = 11_000  # 10,000 streams plus room for requests; past it: 503

    def __post_init__(self) -> None:
        if min(self.max_head_bytes, self.max_header_lines, self.max_connections) < 1:
            raise ValueError("HTTP limits must be positive")
        if self.head_timeout_s <= 0 or self.keepalive_timeout_s <= 0:
            raise ValueError("HTTP timeouts must be positive")


def add_arguments(serve: argparse.ArgumentParser) -> None:
    """``--max-head-bytes``, ``--head-timeout``, ``--keepalive-timeout``, ``--max-connections``,
    each defaulting to its ``CONCORD_*`` environment variable, else to :class:`HttpLimits`."""
    env, d = os.environ, HttpLimits()
    group = serve.add_argument_group("HTTP limits")
    group.add_argument(
        "--max-head-bytes",
        type=int,
        default=int(env.get("CONCORD_MAX_HEAD_BYTES", d.max_head_bytes)),
        help=f"request line + headers; larger: 431 (default {d.max_head_bytes})",
    )
    group.add_argument(
        "--head-timeout",
        type=float,
        default=float(env.get("CONCORD_HEAD_TIMEOUT", d.head_timeout_s)),
        help=f"seconds for a whole request head (default {d.head_timeout_s:g})",
    )
    group.add_argument(
        "--keepalive-timeout",
        type=float,
        default=float(env.get("CONCORD_KEEPALIVE_TIMEOUT", d.keepalive_timeout_s)),
        help=f"seconds an idle connection is kept open (default {d.keepalive_timeout_s:g})",
    )
    group.add_argument(
        "--max-connections",
        type=int,
        default=int(env.get("CONCORD_MAX_CONNECTIONS", d.max_connections)),
        help=f"open connections, streams included; more: 503 (default {d.max_connections})",
    )


def from_arguments(args: argparse.Namespace) -> HttpLimits:
    """The limits the flags of :func:`add_arguments` describe (``ValueError`` if not positive)."""
    return HttpLimits(
        max_head_bytes=args.max_head_bytes,
        head_timeout_s=args.head_timeout,
        keepalive_timeout_s=args.keepalive_timeout,
        max_connections=args.max_connections,
    )


def raise_open_files_limit(max_connections: int) -> None:
    """Lift the soft open-files limit towards what ``max_connections`` needs (one descriptor
    each, plus the database and logs); warn when the hard limit keeps it lower."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return
    import logging

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max_connections + 256
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):
        want = soft
    if want < max_connections + 256:
        logging.getLogger(__name__).warning(
            "open-files limit %d is below --max-connections %d: raise it (ulimit -n)",
            want,
            max_connections,
        )
