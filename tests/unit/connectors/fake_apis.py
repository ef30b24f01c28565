"""Fake Google BigQuery, GA4 Data API and HubSpot CRM v3 servers, answering with the documented shapes.

Each is a handler for :class:`fake_servers.LocalServer`; it checks the bearer token issued by a
:class:`fake_servers.TokenEndpoint` (or HubSpot's private-app ``TOKEN``) and can answer chosen calls with 429/5xx.
"""

from __future__ import annotations

from typing import Any

from tests.unit.connectors.fake_servers import Reply, Request, TokenEndpoint

TOKEN = "pat-na1-secret"
"""The HubSpot private-app token the fake accepts when it has no token endpoint."""

SCHEMA = {
    "fields": [
        {"name": "id", "type": "INTEGER", "mode": "NULLABLE"},
        {"name": "name", "type": "STRING", "mode": "NULLABLE"},
        {"name": "score", "type": "FLOAT", "mode": "NULLABLE"},
        {"name": "ok", "type": "BOOLEAN", "mode": "NULLABLE"},
        {"name": "at", "type": "TIMESTAMP", "mode": "NULLABLE"},
        {"name": "tags", "type": "STRING", "mode": "REPEATED"},
        {
            "name": "geo",
            "type": "RECORD",
            "mode": "NULLABLE",
            "fields": [{"name": "country", "type": "STRING"}, {"name": "pop", "type": "INT64"}],
        },
    ]
}


def bq_row(i: int) -> dict[str, Any]:
    return {
        "f": [
            {"v": str(i)},
            {"v": f"n{i}"},
            {"v": str(i / 2)},
            {"v": "true" if i % 2 else "false"},
            {"v": "1.7645E9"},
            {"v": [{"v": "a"}, {"v": "b"}]},
            {"v": {"f": [{"v": "US"}, {"v": str(i * 10)}]}},
        ]
    }


class FakeBigQuery:
    """jobs.query answers 'not complete' first; getQueryResults serves ``total`` rows in pages of maxResults."""

    def __init__(self, tokens: TokenEndpoint, total: int = 25, fail: dict[int, Reply] | None = None) -> None:
        self.tokens = tokens
        self.total = total
        self.fail = fail or {}
        self.calls = 0
        self.bodies: list[Any] = []

    def __call__(self, request: Request) -> Reply:
        if request.path == "/token":
            return self.tokens(request)
        self.calls += 1
        if self.calls in self.fail:
            return self.fail[self.calls]
        if not self.tokens.bearer_ok(request):
            return Reply(
                401, {"error": {"code": 401, "message": "Request had invalid authentication credentials."}}
            )
        job = {"projectId": "proj", "jobId": "job_1", "location": "EU"}
        if request.method == "POST" and request.path == "/bigquery/v2/projects/proj/queries":
            self.bodies.append(request.json())
            if "FROM nowhere" in request.json()["query"]:
                return Reply(
                    400,
                    {
                        "error": {
                            "code": 400,
                            "message": "Not found: Table proj:nowhere",
                            "status": "INVALID_ARGUMENT",
                        }
                    },
                )
            return Reply(body={"kind": "bigquery#queryResponse", "jobReference": job, "jobComplete": False})
        if request.method == "GET" and request.path == "/bigquery/v2/projects/proj/queries/job_1":
            assert request.query["location"] == "EU"
            size = int(request.query["maxResults"])
            start = int(request.query.get("pageToken") or 0)
            end = min(start + size, self.total)
            page = {
                "kind": "bigquery#getQueryResultsResponse",
                "jobReference": job,
                "jobComplete": True,
                "schema": SCHEMA,
                "totalRows": str(self.total),
                "rows": [bq_row(i) for i in range(start, end)],
            }
            if end < self.total:
                page["pageToken"] = str(end)
            return Reply(body=page)
        return Reply(404, {"error": {"code": 404, "message": "no such path"}})


class FakeGa4:
    def __init__(self, tokens: TokenEndpoint, total: int = 23) -> None:
        self.tokens = tokens
        self.total = total
        self.bodies: list[Any] = []

    def __call__(self, request: Request) -> Reply:
        if request.path == "/token":
            return self.tokens(request)
        if not self.tokens.bearer_ok(request):
            return Reply(
                401, {"error": {"code": 401, "message": "invalid credentials", "status": "UNAUTHENTICATED"}}
            )
        if request.path == "/v1beta/properties/123/metadata":
            return Reply(body={"name": "properties/123/metadata", "dimensions": [], "metrics": []})
        if request.path != "/v1beta/properties/123:runReport":
            return Reply(404, {"error": {"code": 404, "message": "not found"}})
        body = request.json()
        self.bodies.append(body)
        start, limit = int(body.get("offset", 0)), int(body["limit"])
        rows = [
            {
                "dimensionValues": [{"value": f"2026-11-{1 + i % 28:02d}"}, {"value": "US"}],
                "metricValues": [{"value": str(i)}, {"value": f"{i * 1.25}"}],
            }
            for i in range(start, min(start + limit, self.total))
        ]
        return Reply(
            body={
                "dimensionHeaders": [{"name": "date"}, {"name": "country"}],
                "metricHeaders": [
                    {"name": "activeUsers", "type": "TYPE_INTEGER"},
                    {"name": "purchaseRevenue", "type": "TYPE_CURRENCY"},
                ],
                "rows": rows,
                "rowCount": self.total,
                "metadata": {"currencyCode": "USD"},
                "kind": "analyticsData#runReport",
            }
        )


class FakeHubSpot:
    """``/crm/v3/objects/{type}`` (GET) and ``/search`` (POST) over ``total`` objects; 429 on chosen calls."""

    def __init__(
        self, total: int = 230, throttle: frozenset[int] = frozenset(), tokens: TokenEndpoint | None = None
    ):
        self.total = total
        self.throttle = throttle
        self.tokens = tokens
        self.calls = 0
        self.seen: list[Request] = []

    def _object(self, i: int) -> dict[str, Any]:
        return {
            "id": str(i),
            "properties": {"email": f"c{i}@example.com", "lifecyclestage": "lead", "hs_object_id": str(i)},
            "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-02-01T00:00:00Z",
            "archived": False,
        }

    def __call__(self, request: Request) -> Reply:
        if request.path == "/oauth/v1/token" and self.tokens:
            return self.tokens(request)
        self.calls += 1
        self.seen.append(request)
        ok = (
            self.tokens.bearer_ok(request)
            if self.tokens
            else request.headers.get("Authorization") == f"Bearer {TOKEN}"
        )
        if not ok:
            return Reply(
                401,
                {
                    "status": "error",
                    "message": "Authentication credentials not found.",
                    "category": "INVALID_AUTHENTICATION",
                },
            )
        if self.calls in self.throttle:
            return Reply(
                429,
                {
                    "status": "error",
                    "message": "You have reached your secondly limit.",
                    "errorType": "RATE_LIMIT",
                    "policyName": "SECONDLY",
                },
            )
        if request.method == "GET" and request.path == "/crm/v3/objects/contacts":
            limit, after = int(request.query["limit"]), int(request.query.get("after", 0))
        elif request.method == "POST" and request.path == "/crm/v3/objects/contacts/search":
            body = request.json()
            assert body["filterGroups"][0]["filters"][0]["operator"] == "GTE"
            limit, after = int(body["limit"]), int(body.get("after", 0))
        else:
            return Reply(404, {"status": "error", "message": "Not found"})
        assert limit <= 100
        end = min(after + limit, self.total)
        page: dict[str, Any] = {"results": [self._object(i) for i in range(after, end)]}
        if end < self.total:
            page["paging"] = {"next": {"after": str(end), "link": f"?after={end}"}}
        return Reply(body=page)
