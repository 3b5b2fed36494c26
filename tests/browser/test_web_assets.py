"""How voxgate serves the playground files (no browser needed)."""

from __future__ import annotations

import httpx
import pytest

from tests.live_server import LiveServer
from voxgate.protocol.voices import VOICE_IDS


@pytest.fixture
def http(browser_server: LiveServer):  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=browser_server.base_url, timeout=10) as client:
        yield client


def test_page_and_modules_are_served_with_types_and_policy(http: httpx.Client) -> None:
    page = http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self' blob:" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/web/app.js">' in page.text
    for module in ("app.js", "call.js", "capture-worklet.js", "playback.js"):
        response = http.get(f"/web/{module}")
        assert response.status_code == 200, module
        assert response.headers["content-type"].startswith("text/javascript")
    revalidated = http.get("/web/app.js", headers={"If-None-Match": http.get("/web/app.js").headers["etag"]})
    assert revalidated.status_code == 304


def test_voice_catalogue_matches_the_server(http: httpx.Client) -> None:
    catalogue = http.get("/web/voices.json").json()
    assert [voice["voice_id"] for voice in catalogue["voices"]] == list(VOICE_IDS)
    assert catalogue["default"] == "ivy"


@pytest.mark.parametrize(
    "path", ["/web/../api/web.py", "/web/%2e%2e/config.py", "/web/..%2fconfig.py", "/web/missing.js", "/web/"]
)
def test_nothing_outside_the_web_folder_is_served(http: httpx.Client, path: str) -> None:
    response = http.get(path)
    assert response.status_code == 404
    assert "import" not in response.text
