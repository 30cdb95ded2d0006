"""An error the routes did not expect is a JSON 500 that names no store, and the client's
keep-alive connection survives it (a real uvicorn server on loopback)."""

from __future__ import annotations

import http.client
import json
import socket
import threading

import uvicorn

from tuner.api import create_app
from tuner.settings import Settings


class BrokenService:
    """A service whose listing fails the way a broken store would."""

    settings = Settings(home="/nonexistent")

    def statuses(self, state=None):
        raise RuntimeError("sqlite:////srv/secret/tuner.db: disk I/O error")


def test_a_500_keeps_the_connection_and_hides_the_store() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # connections wait in the backlog until the server accepts them
    server = uvicorn.Server(uvicorn.Config(create_app(BrokenService()), log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection(*listener.getsockname(), timeout=30)
        connection.request("GET", "/sweeps")
        failed = connection.getresponse()
        body = json.loads(failed.read())
        assert failed.status == 500 and "sqlite" not in body["detail"] and "secret" not in body["detail"]
        first_socket = connection.sock
        connection.request("GET", "/healthz")
        healthy = connection.getresponse()
        assert healthy.status == 200 and json.loads(healthy.read()) == {"status": "ok"}
        assert connection.sock is first_socket  # the same connection served both
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()
