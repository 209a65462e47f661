#!/usr/bin/env python3
"""Runs one of Qubes' admin tools, unmodified, against Odyssey's admin socket.

usage: run-tool.py CLIENT_DIR SOCKET TOOL [ARG...]
  CLIENT_DIR  what scripts/qubes-client printed
  SOCKET      Odyssey's admin socket (qubesd's is /var/run/qubesd.sock)
  TOOL        a module of qubesadmin.tools, e.g. qvm_clone, qvm_prefs
              (or `events` to print admin.Events as `SUBJECT EVENT k=v...`
              lines, through the client's own EventsDispatcher)

Only two settings differ from a Qubes dom0: the socket path (the client's
configuration variable) and the local connection class (the client picks it
by the presence of /etc/qubes-release, which an Odyssey host has not).
"""
import asyncio
import importlib
import sys


def main():
    if len(sys.argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    client_dir, socket_path, tool = sys.argv[1:4]
    sys.path.insert(0, client_dir)
    import qubesadmin
    import qubesadmin.app
    import qubesadmin.config
    qubesadmin.config.QUBESD_SOCKET = socket_path
    qubesadmin.Qubes = qubesadmin.app.QubesLocal
    if tool == "events":
        return print_events(qubesadmin)
    module = importlib.import_module("qubesadmin.tools." + tool)
    return module.main(sys.argv[4:])


def print_events(qubesadmin):
    """Prints every event (flushed at once) until the daemon hangs up."""
    import qubesadmin.events
    app = qubesadmin.Qubes()
    dispatcher = qubesadmin.events.EventsDispatcher(app, enable_cache=False)

    def show(subject, event, **kwargs):
        args = " ".join("{}={}".format(k, v) for k, v in sorted(kwargs.items()))
        print("{} {} {}".format(subject if subject is not None else "dom0", event, args).rstrip(), flush=True)

    dispatcher.add_handler("*", show)
    print("listening", flush=True)
    try:
        asyncio.run(dispatcher.listen_for_events(reconnect=False))
    except Exception as e:  # the daemon going away ends the stream
        print("ended {}".format(type(e).__name__), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
