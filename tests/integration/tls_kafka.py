"""A Kafka endpoint that speaks TLS (mutual TLS: client certificates required), for the tests.

The embedded Tansu broker (0.6.0) serves plaintext only: its `--cert` and `--key` options are
declared mutually exclusive, and with either one alone the listener still speaks plaintext (a TLS
ClientHello is read as a Kafka request: "early eof"). So the tests put a TLS terminator in front of
it: Tansu listens on one loopback port and advertises the terminator's port, so every connection a
client makes (bootstrap and the metadata's broker address alike) is a TLS connection that must
present a client certificate signed by the test CA. What this verifies is Encore's side: that every
client (librdkafka and kafka-python) is configured for TLS from ENCORE_KAFKA_CONFIG, checks the
broker's certificate and presents its own. The certificates are made with the `openssl` command.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from encore.local import LOOPBACK, free_port

KEY_PASSWORD = "client-key-pass-0x5eed"
"""The client key's passphrase: a secret that must reach the clients and never the logs."""


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    """Encrypted with KEY_PASSWORD."""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(directory: Path) -> Certificates:
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate, signed by it."""
    if shutil.which("openssl") is None:
        raise RuntimeError("the TLS test needs the openssl command")
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-subj", "/CN=encore-test-ca", cwd=directory)
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    (directory / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.plain.key", "-out",
                 f"{name}.csr", "-subj", f"/CN=encore-test-{name}", cwd=directory)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
                 cwd=directory)
    _openssl("pkcs8", "-topk8", "-in", "client.plain.key", "-out", "client.key", "-v2", "aes-256-cbc",
             "-passout", f"pass:{KEY_PASSWORD}", cwd=directory)
    (directory / "client.plain.key").unlink()
    return Certificates(directory / "ca.pem", directory / "server.pem", directory / "server.plain.key",
                        directory / "client.pem", directory / "client.key")


@dataclass
class TlsTerminator:
    """Accepts TLS on `port` (client certificate required) and forwards the bytes to `target_port`."""

    certificates: Certificates
    target_port: int
    port: int = field(default_factory=free_port)
    handshakes: int = 0
    refused: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    def start(self) -> TlsTerminator:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.certificates.ca))
        context.load_cert_chain(str(self.certificates.server_cert), str(self.certificates.server_key))
        context.verify_mode = ssl.CERT_REQUIRED
        started = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            server = loop.run_until_complete(asyncio.start_server(
                self._serve, LOOPBACK, self.port, ssl=context, ssl_handshake_timeout=5))
            started.set()
            try:
                loop.run_forever()
            finally:
                server.close()
                loop.run_until_complete(server.wait_closed())
                loop.close()

        self._thread = threading.Thread(target=run, name="tls-terminator", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the TLS terminator did not start")
        loop = self._loop
        assert loop is not None
        loop.set_exception_handler(self._on_error)
        return self

    def _on_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        if isinstance(context.get("exception"), ssl.SSLError | ConnectionError | OSError):
            self.refused += 1  # a failed handshake (plaintext client, no client certificate)
            return
        loop.default_exception_handler(context)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(LOOPBACK, self.target_port)
        except OSError:
            writer.close()
            return

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, ssl.SSLError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    async def _shutdown(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        asyncio.get_running_loop().stop()

    def stop(self) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        if self._thread is not None:
            self._thread.join(5)
