#!/usr/bin/env python3
"""Runs one of Qubes' admin tools, unmodified, against Odyssey's admin socket.

usage: run-tool.py [--record FILE] CLIENT_DIR SOCKET TOOL [ARG...]
  CLIENT_DIR  what scripts/qubes-client printed
  SOCKET      Odyssey's admin socket (qubesd's is /var/run/qubesd.sock)
  TOOL        a module of qubesadmin.tools, e.g. qvm_clone, qvm_prefs
              (or `events` to print admin.Events as `SUBJECT EVENT k=v...`
              lines, through the client's own EventsDispatcher)

--record FILE appends every request and reply, byte for byte, to FILE (one
JSON object a line: {"request": ..., "reply": ...}, both UTF-8 text with NUL
bytes as \u0000): the client talks to a relay socket that passes each call
on to SOCKET. Not for `events` (a stream, not a call).

Only two settings differ from a Qubes dom0: the socket path (the client's
configuration variable) and the local connection class (the client picks it
by the presence of /etc/qubes-release, which an Odyssey host has not); and,
with $ODYSSEY_QREXEC_CLIENT, where dom0's qrexec-client is (tests: a link to
ody under that name instead of /usr/lib/qubes/qrexec-client).
"""
import asyncio
import importlib
import os
import sys


def main():
    args = sys.argv[1:]
    record = None
    if args[:1] == ["--record"] and len(args) >= 2:
        record, args = args[1], args[2:]
    if len(args) < 3:
        sys.stderr.write(__doc__)
        return 2
    client_dir, socket_path, tool = args[:3]
    sys.argv = [sys.argv[0]] + args
    sys.path.insert(0, client_dir)
    import qubesadmin
    import qubesadmin.app
    import qubesadmin.config
    qubesadmin.config.QUBESD_SOCKET = relay(socket_path, record) if record else socket_path
    qubesadmin.Qubes = qubesadmin.app.QubesLocal
    # Where Odyssey's answer to dom0's qrexec-client is, if not at Qubes' own
    # path (/usr/lib/qubes/qrexec-client, what `make install-qubes-compat` links).
    if os.environ.get("ODYSSEY_QREXEC_CLIENT"):
        qubesadmin.config.QREXEC_CLIENT = os.environ["ODYSSEY_QREXEC_CLIENT"]
    if tool == "events":
        return print_events(qubesadmin)
    module = importlib.import_module("qubesadmin.tools." + tool)
    return module.main(sys.argv[4:])


def relay(socket_path, record):
    """A socket beside a temporary directory that passes each whole call
    (request until EOF, then the whole reply) to socket_path, recording both."""
    import json
    import os
    import socket
    import tempfile
    import threading
    path = os.path.join(tempfile.mkdtemp(prefix="qubes-relay-"), "qubesd.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)

    def read_all(sock):
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)

    def serve():
        while True:
            client, _ = server.accept()
            request = read_all(client)
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(socket_path)
            upstream.sendall(request)
            upstream.shutdown(socket.SHUT_WR)
            reply = read_all(upstream)
            upstream.close()
            with open(record, "a", encoding="utf-8") as f:
                f.write(json.dumps({"request": request.decode("utf-8"), "reply": reply.decode("utf-8")}) + "\n")
            client.sendall(reply)
            client.close()

    threading.Thread(target=serve, daemon=True).start()
    return path


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
