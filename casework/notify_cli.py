"""`casework notifications`: the notification outbox on its own: run it, see where it stands, requeue
the rows that were given up."""

from __future__ import annotations

import json
import signal
import threading
import time

import click

from activities.delivery import sender_for, service_for
from activities.outbox import open_outbox
from casework.config import outbox_env
from casework.local_data import case_store_for_reading, require_sqlite_files
from casework.logs import configure_logging
from casework.stores import open_case_store


def add_commands(cli: click.Group) -> None:
    cli.add_command(notifications)


@click.command()
@click.argument("action", type=click.Choice(["run", "status", "requeue-dead", "skip-history"]))
@click.option("--json", "as_json", is_flag=True, help="machine-readable JSON on stdout")
@click.pass_obj
def notifications(obj, action: str, as_json: bool) -> None:
    """The notification outbox: run it alone, status, requeue-dead, skip-history (start following at
    the store's head: nothing before it is sent)."""
    settings = obj.settings()
    if action == "run":
        configure_logging(settings.log_format, settings.log_level)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        sender = sender_for(settings)  # a refused webhook configuration touches no file, the store's included
        service_for(settings, open_case_store(settings), sender).run(stop)
        return
    # The other actions read or adjust what the engine made: never create an outbox or a store.
    store = case_store_for_reading(settings)
    if settings.event_store == "sqlite":
        require_sqlite_files(settings, "notification outbox", settings.data_dir / "outbox.db")
    outbox = open_outbox(outbox_env(settings))
    if action == "requeue-dead":
        n = outbox.requeue_dead(time.time())
        print(json.dumps({"requeued": n}) if as_json else f"requeued {n} notifications")
        return
    if action == "skip-history":
        n = outbox.skip_to(store.name, store.recorder.max_notification_id() or 0)
        print(json.dumps({"skipped": n}) if as_json else f"skipped {n} events")
        return
    counts = {**outbox.counts(), "position": outbox.position(store.name),
              "head": store.recorder.max_notification_id() or 0}
    print(json.dumps(counts) if as_json else "  ".join(f"{k} {v}" for k, v in counts.items()))
