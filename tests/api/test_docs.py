"""``/docs`` and ``/redoc`` work offline: their pages load scripts and styles from leadflow
itself (the ``fastapi-offline`` package's copies), never from a CDN."""

from __future__ import annotations

import re

import httpx
import pytest

# Every URL in an attribute or a string of the page: src="…", href="…", url: '…', etc.
URL = re.compile(r"""(?:src|href|url)\s*[=:]\s*["']([^"']+)["']""", re.IGNORECASE)


def assets(html: str) -> list[str]:
    return URL.findall(html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_pages_load_nothing_from_another_host(
    client: httpx.AsyncClient, page: str
) -> None:
    response = await client.get(page)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    found = assets(html)
    assert "/openapi.json" in found
    assert any(u.startswith("/docs-static/") and u.endswith(".js") for u in found), found
    for url in found:
        assert url.startswith("/"), f"{page} loads {url}"
    # Not even in a script: no CDN, no web fonts.
    for host in ("cdn.jsdelivr.net", "unpkg.com", "fonts.googleapis.com", "fastapi.tiangolo.com"):
        assert host not in html, f"{page} refers to {host}"
    assert "http://" not in html and "https://" not in html, html


@pytest.mark.parametrize(
    ("asset", "content_type", "marker"),
    [
        ("swagger-ui-bundle.js", ("text/javascript", "application/javascript"), b"SwaggerUI"),
        ("swagger-ui.css", ("text/css",), b".swagger-ui"),
        ("redoc.standalone.js", ("text/javascript", "application/javascript"), b"Redoc"),
        ("favicon.png", ("image/png",), b"\x89PNG"),
    ],
)
async def test_the_assets_are_served_by_leadflow(
    client: httpx.AsyncClient, asset: str, content_type: tuple[str, ...], marker: bytes
) -> None:
    response = await client.get(f"/docs-static/{asset}")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] in content_type
    assert marker in response.content
    assert len(response.content) > 1000


async def test_every_asset_a_page_names_is_served(client: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        for url in assets((await client.get(page)).text):
            response = await client.get(url)
            assert response.status_code == 200, f"{page} names {url}: {response.status_code}"
    assert (await client.get("/docs/oauth2-redirect")).status_code == 200
