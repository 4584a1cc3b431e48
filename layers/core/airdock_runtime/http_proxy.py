"""The web front's HTTP side: reading requests and sending answers, and handing everything that is
not one of MWAA's endpoints on to the environment's Airflow web server (streamed; WebSocket
upgrades tunnelled), as the browser and API clients would reach it directly."""
from __future__ import annotations

import http.client
import json
import select
import socket
import ssl
from http.server import BaseHTTPRequestHandler
from typing import Any

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailer", "trailers", "transfer-encoding", "upgrade"}


class ProxyHandler(BaseHTTPRequestHandler):
    # The WebFront serving this handler (web_front.py): its configuration and Airflow connection.
    web: Any
    protocol_version = "HTTP/1.1"

    # ---- helpers ---------------------------------------------------------------------------------

    def _read_body(self, limit: int | None = None) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked(limit)
        if limit is not None and length > limit:
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self, limit: int | None) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024)
            n = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if n == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            size += n
            if limit is not None and size > limit:
                return None
            chunks.append(self.rfile.read(n))
            self.rfile.readline(8)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    # ---- everything else: the Airflow UI and API -------------------------------------------------

    def _scheme(self) -> str:
        """The scheme the browser used. Behind the load balancer, which terminates TLS and says
        so in X-Forwarded-Proto, that is the header's; directly, this connection's own (one port
        may serve both)."""
        return self.headers.get("X-Forwarded-Proto") or ("https" if isinstance(self.connection, ssl.SSLSocket) else "http")

    def _forward_headers(self) -> list[tuple[str, str]]:
        connection_tokens = {t.strip().lower() for t in self.headers.get("Connection", "").split(",")}
        out = [(k, v) for k, v in self.headers.items()
               if k.lower() not in _HOP_BY_HOP and k.lower() not in connection_tokens
               and k.lower() not in ("content-length", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host")]
        client = self.client_address[0]
        prior = self.headers.get("X-Forwarded-For")
        out.append(("X-Forwarded-For", f"{prior}, {client}" if prior else client))
        # Kept when a proxy in front (the ALB) set them: it knows what the browser used. Each is
        # sent once; two values would leave Airflow to pick one.
        out.append(("X-Forwarded-Proto", self._scheme()))
        out.append(("X-Forwarded-Host", self.headers.get("X-Forwarded-Host") or self.headers.get("Host", "")))
        return out

    def _proxy(self) -> None:
        if "websocket" in self.headers.get("Upgrade", "").lower():
            self._tunnel()
            return
        body = self._read_body()
        conn = self.web.upstream(timeout=300)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self._forward_headers():
                conn.putheader(k, v)
            if body or self.command in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body or b"")))
            conn.endheaders(body or None)
            resp = conn.getresponse()
        except OSError as exc:
            conn.close()
            self._send_json(502, {"error": "BadGateway",
                                  "message": f"The Airflow web server is not reachable ({exc.__class__.__name__}); "
                                             "it may still be starting."})
            return
        try:
            self._relay(resp)
        finally:
            conn.close()

    def _relay(self, resp: http.client.HTTPResponse) -> None:
        self.send_response_only(resp.status, resp.reason)
        length = resp.getheader("Content-Length")
        bodyless = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        for k, v in resp.getheaders():
            lower = k.lower()
            if lower in _HOP_BY_HOP or lower == "content-length":
                continue
            if lower == "location" and v.startswith(self.web.config.upstream_origin):
                v = v[len(self.web.config.upstream_origin):] or "/"
            self.send_header(k, v)
        chunked = length is None and not bodyless
        if length is not None:
            self.send_header("Content-Length", length)
        elif chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if bodyless:
            return
        while True:
            # read1: hand on what arrived, so streamed responses (logs, events) flow as they come.
            data = resp.read1(65536)
            if not data:
                break
            if chunked:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            else:
                self.wfile.write(data)
            self.wfile.flush()
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _tunnel(self) -> None:
        """WebSocket: replay the upgrade request upstream, then copy bytes both ways until one side closes."""
        config = self.web.config
        try:
            upstream = socket.create_connection((config.upstream_host, config.upstream_port), timeout=10)
        except OSError:
            self._send_json(502, {"error": "BadGateway", "message": "The Airflow web server is not reachable."})
            return
        head = [f"{self.command} {self.path} HTTP/1.1"]
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        upstream.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        upstream.settimeout(None)
        client = self.connection
        self.close_connection = True
        sockets = [client, upstream]
        try:
            while True:
                # Bytes TLS has already decrypted wait in the client socket's buffer, where select
                # cannot see them.
                pending = [client] if isinstance(client, ssl.SSLSocket) and client.pending() else []
                readable = pending or select.select(sockets, [], [], 300)[0]
                if not readable:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        except OSError:
            return
        finally:
            upstream.close()
