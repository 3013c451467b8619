"""`casework notifications`: the notification outbox on its own: run it, see where it stands, requeue
the rows that were given up."""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time

from activities.delivery import sender_for, service_for
from activities.outbox import open_outbox
from casework.config import Settings, load_settings, outbox_env
from casework.logs import configure_logging
from casework.stores import open_case_store


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("notifications", help="the notification outbox: run it alone, status, requeue-dead, "
                                              "skip-history")
    p.add_argument("action", choices=["run", "status", "requeue-dead", "skip-history"],
                   help="skip-history: start following at the store's head (nothing before it is sent)")
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace, settings: Settings | None = None) -> int:
    settings = settings or load_settings()
    if args.action == "run":
        configure_logging(settings.log_format, settings.log_level)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        sender = sender_for(settings)  # a refused webhook configuration touches no file, the store's included
        service_for(settings, open_case_store(settings), sender).run(stop)
        return 0
    outbox = open_outbox(outbox_env(settings))
    if args.action == "requeue-dead":
        print(f"requeued {outbox.requeue_dead(time.time())} notifications")
        return 0
    store = open_case_store(settings)
    if args.action == "skip-history":
        print(f"skipped {outbox.skip_to(store.name, store.recorder.max_notification_id() or 0)} events")
        return 0
    counts = {**outbox.counts(), "position": outbox.position(store.name),
              "head": store.recorder.max_notification_id() or 0}
    print(json.dumps(counts) if args.json else "  ".join(f"{k} {v}" for k, v in counts.items()))
    return 0
