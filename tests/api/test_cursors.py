"""Every list answers a forged or malformed cursor with 422 naming `cursor`, never a 500."""

from __future__ import annotations

import pytest

from leadflow.kit.pagination import encode_cursor
from tests.support.api import auth

LISTS = [
    "/v1/leads",
    "/v1/iln/deliveries",
    "/v1/campaigns",
    "/v1/iln/endpoints",
    "/v1/suppressions",
]
BAD = [
    "!!!",
    encode_cursor(["2026-01-15T12:00:00", "x"]),  # naive timestamp
    encode_cursor(["0001-01-01T00:00:00+01:00", "x"]),  # out of range in UTC
    encode_cursor([1, 2, 3]),
    encode_cursor([5]),
    encode_cursor(["a\x00b"]),
]


@pytest.mark.parametrize("path", LISTS)
async def test_malformed_cursors_are_422(client, account, path):
    for cursor in BAD:
        response = await client.get(path, params={"cursor": cursor}, headers=auth(account))
        assert response.status_code == 422, (path, cursor, response.text)
        assert response.json()["errors"][0]["field"] == "cursor"
