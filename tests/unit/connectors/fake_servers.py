"""Loopback HTTP servers speaking the protocols the connectors use (shared by unit and integration tests).

``LocalServer(handler)`` serves ``handler(request) -> Reply`` on a free port. The fakes below answer like the
real services document: an OAuth token endpoint (refresh-token, authorization-code, client-credentials and
JWT-bearer grants, the JWT checked with the service account's public key), BigQuery ``jobs.query``/``getQueryResults``, GA4 ``runReport`` and HubSpot CRM
v3 objects, each able to answer 429 with ``Retry-After`` or 5xx on chosen calls.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from requests.structures import CaseInsensitiveDict


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: CaseInsensitiveDict[str]  # header names are case-insensitive (google-auth sends "authorization")
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    drop: bool = False  # close the connection without an answer


Handler = Callable[[Request], Reply]
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 calling ``handler`` for every request; ``requests`` records them."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        outer = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                request = Request(
                    self.command,
                    parts.path,
                    {k: v[-1] for k, v in parse_qs(parts.query).items()},
                    CaseInsensitiveDict(self.headers.items()),
                    self.rfile.read(length) if length else b"",
                )
                outer.requests.append(request)
                reply = outer.handler(request)
                if reply.drop:
                    self.close_connection = True
                    self.wfile.write(b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{"partial')
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> LocalServer:
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def rsa_service_account(token_uri: str) -> tuple[dict[str, Any], Any]:
    """A service-account key file (JSON) with a fresh RSA key, and that key's public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "proj",
        "private_key_id": "kid1",
        "private_key": pem,
        "client_email": "muxly@proj.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
    return info, key.public_key()


class TokenEndpoint:
    """An OAuth 2 token endpoint: refresh-token, authorization-code, client-credentials and JWT-bearer grants;
    counts the tokens it issued and records the grants asked for."""

    def __init__(
        self,
        refresh_token: str = "rt-1",
        public_key: Any = None,
        expires_in: int = 3600,
        client_secret: str | None = None,
        auth_code: str | None = None,
        rotate: bool = False,
    ) -> None:
        self.refresh_token = refresh_token
        self.public_key = public_key
        self.expires_in = expires_in
        self.client_secret = client_secret  # when set, the only secret accepted (client credentials grant)
        self.auth_code = auth_code  # when set, exchanged once for a refresh token
        self.rotate = rotate  # issue a new refresh token with every access token
        self.issued: list[str] = []
        self.grants: list[str] = []

    def valid(self, token: str | None) -> bool:
        return token is not None and token in self.issued[-1:]

    def bearer_ok(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        return header.startswith("Bearer ") and self.valid(header[7:])

    def __call__(self, request: Request) -> Reply:
        form = request.form()
        grant = form.get("grant_type")
        self.grants.append(str(grant))
        extra: dict[str, Any] = {}
        if grant == "client_credentials":
            if self.client_secret is None or form.get("client_secret") != self.client_secret:
                return Reply(401, {"error": "invalid_client", "error_description": "who are you"})
        elif grant == "authorization_code":
            if self.auth_code is None or form.get("code") != self.auth_code:
                return Reply(400, {"error": "invalid_grant", "error_description": "bad code"})
            self.auth_code = None  # a code is good for one exchange
            extra["refresh_token"] = self.refresh_token
        elif grant == "refresh_token":
            if form.get("refresh_token") != self.refresh_token or not form.get("client_secret"):
                return Reply(400, {"error": "invalid_grant", "error_description": "bad refresh token"})
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            import jwt

            try:
                # google-auth signs for Google's documented audience whatever token_uri it posts to.
                claims = jwt.decode(
                    form["assertion"], self.public_key, algorithms=["RS256"], audience=GOOGLE_TOKEN_AUDIENCE
                )
            except jwt.PyJWTError as exc:
                return Reply(400, {"error": "invalid_grant", "error_description": str(exc)})
            assert claims["iss"].endswith("gserviceaccount.com")
        else:
            return Reply(400, {"error": "unsupported_grant_type"})
        token = f"at-{len(self.issued) + 1}"
        self.issued.append(token)
        if self.rotate and grant == "refresh_token":
            self.refresh_token = f"rt-{len(self.issued) + 1}"
            extra["refresh_token"] = self.refresh_token
        return Reply(
            200, {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer", **extra}
        )


def paged_rows(total: int) -> Iterator[dict[str, Any]]:
    for i in range(total):
        yield {"id": i, "name": f"row-{i}", "amount": i * 1.5}
