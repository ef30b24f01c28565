"""A small local HTTP API serving sample sales records (used by the demo and the end-to-end tests).

``GET /api/v1/sales`` answers ``{"data": {"records": [...]}, "meta": {...}}``; with ``--token`` the request must
carry ``Authorization: Bearer <token>``; ``?delay=N`` answers after N seconds. Run: ``python examples/sample_api.py --port 18765 --token demo-token``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

COUNTRIES = ("US", "DE", "FR", "US", "GB", "US", "JP")
STATUSES = ("completed", "completed", "cancelled", "pending")


def sample_sales(count: int = 20) -> list[dict[str, Any]]:
    """Deterministic sample sales records."""
    return [
        {
            "order_id": f"ORD-{i:04d}",
            "customer_name": f"Customer {i}",
            "email": f"customer{i}@example.com",
            "country": COUNTRIES[i % len(COUNTRIES)],
            "product_id": ("XYZ-" if i % 3 == 0 else "ABC-") + str(100 + i),
            "purchase_amount": round(150.0 * ((i * 7) % 13) + 99.5, 2),
            "status": STATUSES[i % len(STATUSES)],
            "internal_notes": "do not export",
        }
        for i in range(1, count + 1)
    ]


def make_server(
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    records: list[dict[str, Any]] | None = None,
) -> ThreadingHTTPServer:
    """A server (not started) answering the sales endpoint; ``port=0`` picks a free port."""
    data = records if records is not None else sample_sales()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr log
            return

        def _send(self, status: int, body: Any) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path != "/api/v1/sales":
                self._send(404, {"error": "not found"})
                return
            if token and self.headers.get("Authorization") != f"Bearer {token}":
                self._send(401, {"error": "unauthorized"})
                return
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if query.get("delay", "").isdigit():  # lets tests hold a request open (a hanging API)
                time.sleep(int(query["delay"]))
            self._send(200, {"data": {"records": data}, "meta": {"count": len(data), "query": query}})

    return ThreadingHTTPServer((host, port), Handler)


def start_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    """Serve in a daemon thread (tests)."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18765)
    parser.add_argument("--token", default=None)
    args = parser.parse_args()
    server = make_server(args.host, args.port, args.token)
    print(f"sample API on http://{args.host}:{server.server_address[1]}/api/v1/sales", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
