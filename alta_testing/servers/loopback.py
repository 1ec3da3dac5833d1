"""Loopback TCP servers for failure modes an HTTP framework cannot produce."""

from __future__ import annotations

import datetime
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable

Behaviour = Callable[[socket.socket], None]


def read_request(conn: socket.socket) -> bytes:
    """Read one HTTP request (headers and the Content-Length body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def reset(conn: socket.socket) -> None:
    """Abort the connection with a TCP RST."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def answer(status_line: bytes, body: bytes, *, length: int | None = None) -> bytes:
    """An HTTP/1.1 answer with a JSON ``body`` (``length`` overrides its Content-Length)."""
    size = len(body) if length is None else length
    head = b"%s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (status_line, size)
    return head + body


def send_slowly(conn: socket.socket, data: bytes, interval: float) -> int:
    """Send ``data`` one byte every ``interval`` seconds; return how many went out before the peer left."""
    for index in range(len(data)):
        try:
            conn.sendall(data[index : index + 1])
        except OSError:
            return index
        time.sleep(interval)
    return len(data)


def send_padded_json(conn: socket.socket, status_line: bytes, size: int) -> int:
    """Send a ``size``-byte JSON object (``{"id": .., "padding": "xxx.."}``) as fast as the peer reads.

    Returns how many body bytes went out before the peer stopped reading and left.
    """
    prefix, suffix = b'{"id":"call_huge","padding":"', b'"}'
    chunk = b"x" * 65536
    sent = 0
    try:
        conn.sendall(answer(status_line, b"", length=size) + prefix)
        sent = len(prefix)
        while sent < size - len(suffix):
            piece = chunk[: size - len(suffix) - sent]
            conn.sendall(piece)
            sent += len(piece)
        conn.sendall(suffix)
        sent += len(suffix)
    except OSError:
        pass
    return sent


def self_signed_tls(directory: str) -> tuple[ssl.SSLContext, str]:
    """A server TLS context for ``localhost`` and the path of its certificate (for the client to trust)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = f"{directory}/cert.pem", f"{directory}/key.pem"
    with open(cert_path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path


class RawServer:
    """A one-thread TCP server on loopback that applies a behaviour to each connection."""

    def __init__(self, behaviour: Behaviour, port: int = 0) -> None:
        self.behaviour = behaviour
        self.requests: list[bytes] = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                self.behaviour(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
