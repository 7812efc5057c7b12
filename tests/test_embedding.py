"""The chat inside other pages and tools, for real: a page on a second origin embeds the app as a web
component and in an iframe; a reverse proxy serves it under a sub-path; an MCP client calls its tools."""

import asyncio
import concurrent.futures
import json

import httpx
import pytest
from conftest import ARTIFACTS, ROOT
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from proxy import ReverseProxy
from webapp import free_port, running_app, serve_in_thread

from rag_app.web.embed import demo_page

SAMPLE = ROOT / "samples" / "acme-q3-2023.pdf"
QUESTION = "What was the gross margin in the third quarter?"
pytestmark = [pytest.mark.browser, pytest.mark.slow]


class OtherSite:
    """A page on another origin (another port of 127.0.0.1) that embeds the app both ways."""

    def __init__(self) -> None:
        self.port = free_port()
        self.app_url = ""
        site = FastAPI()

        @site.get("/", response_class=HTMLResponse)
        def page() -> str:
            return demo_page(self.app_url)

        self.server = serve_in_thread(site, self.port)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def site():
    site = OtherSite()
    yield site
    site.server.should_exit = True


def upload_sample(url: str, auth=None) -> None:
    files = [("files", (SAMPLE.name, SAMPLE.read_bytes()))]
    assert httpx.post(url + "api/documents", files=files, auth=auth, timeout=120).status_code == 200


def ask_and_wait(root, page) -> str:
    """Type the question in an embedded app (``root`` locates inside it) and wait for a cited answer."""
    root.locator("#rag-question textarea").fill(QUESTION)
    root.locator("#rag-ask").click(timeout=60_000)
    root.locator("#rag-sources .rag-source.cited").first.wait_for(timeout=60_000)
    return root.locator("#rag-chat").inner_text()


@pytest.fixture(scope="module")
def allowed_app(tmp_path_factory, site):
    data = tmp_path_factory.mktemp("embed-allowed") / "data"
    args = ("--llm-backend", "extractive", "--embed-origins", site.origin)
    with running_app(data, *args) as (url, _, _):
        upload_sample(url)
        yield url


def test_web_component_on_another_site_answers_with_citations(browser, site, allowed_app):
    site.app_url = allowed_app
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.goto(site.origin)
    component = page.locator("gradio-app")
    chat = ask_and_wait(component, page)
    assert "41.5 percent" in chat and "[1]" in chat
    assert "acme-q3-2023.pdf, p. 1" in component.locator("#rag-sources").inner_text()
    viewer = component.locator("#rag-sources a.rag-open").first.get_attribute("href")
    assert viewer.startswith(allowed_app + "viewer/?"), "the source viewer must be the app's"
    link = component.locator("#rag-sources a.rag-file").first.get_attribute("href")
    assert link.startswith(allowed_app + "api/documents/acme-q3-2023.pdf/file#page="), "links must reach the app"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator("#web-component").screenshot(path=str(ARTIFACTS / "embed-web-component.png"))


def test_iframe_on_another_site_answers_with_citations(browser, site, allowed_app):
    site.app_url = allowed_app
    response = httpx.get(allowed_app)
    assert response.headers["content-security-policy"] == f"frame-ancestors 'self' {site.origin}"
    page = browser.new_page(viewport={"width": 1400, "height": 2200})
    page.goto(site.origin)
    # The web component above the iframe renders too; until it has, it grows and moves the iframe, and a click
    # waits for a button that stays still (CI failed once: the iframe's button was never "stable" within 30 s).
    page.locator("gradio-app #rag-ask").wait_for(timeout=90_000)
    frame = page.frame_locator("#iframe iframe")
    chat = ask_and_wait(frame, page)
    assert "41.5 percent" in chat
    page.locator("#iframe").screenshot(path=str(ARTIFACTS / "embed-iframe.png"))


def test_allowed_origin_may_call_the_api_from_its_page(browser, site, allowed_app):
    site.app_url = allowed_app
    page = browser.new_page()
    page.goto(site.origin)
    status = page.evaluate(f"fetch('{allowed_app}api/health').then(r => r.status, e => 'refused: ' + e)")
    assert status == 200


def test_without_embed_origins_other_sites_can_neither_frame_nor_call_it(browser, site, extractive_app):
    url, _, _ = extractive_app
    site.app_url = url
    assert httpx.get(url).headers["content-security-policy"] == "frame-ancestors 'self'"
    page = browser.new_page(viewport={"width": 1400, "height": 2200})
    page.goto(site.origin)
    page.wait_for_timeout(6000)
    frames = [f for f in page.frames if f != page.main_frame]
    assert frames and frames[0].locator("#rag-question").count() == 0, "the iframe rendered the app"
    assert page.locator("gradio-app #rag-question").count() == 0, "the web component rendered the app"
    status = page.evaluate(f"fetch('{url}api/health').then(r => r.status, e => 'refused')")
    assert status == "refused"
    page.screenshot(path=str(ARTIFACTS / "embed-refused.png"), full_page=True)


def test_behind_a_reverse_proxy_under_a_sub_path(browser, tmp_path):
    args = ("--llm-backend", "extractive", "--root-path", "/docs-qa", "--forwarded-allow-ips", "127.0.0.1")
    with running_app(tmp_path / "data", *args) as (url, _, _):
        with ReverseProxy(url, "/docs-qa") as proxy:
            assert httpx.get(proxy.url + "api/health").json()["status"] == "ok"
            upload_sample(proxy.url)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(proxy.url)
            chat = ask_and_wait(page, page)
            assert "41.5 percent" in chat
            viewer = page.locator("#rag-sources a.rag-open").first
            assert viewer.get_attribute("href").startswith(proxy.url + "viewer/?")
            viewer.click()  # PDF.js, under the sub-path, fetches the PDF through the proxy
            page.frame_locator("#rag-pdf").locator("body[data-text-layer='ready']").wait_for(timeout=120_000)
            link = page.locator("#rag-sources a.rag-file").first.get_attribute("href")
            assert link.startswith(proxy.url + "api/documents/")
            served = page.request.get(link.split("#")[0])
            assert served.status == 200 and served.headers["content-type"] == "application/pdf"
            page.screenshot(path=str(ARTIFACTS / "root-path.png"), full_page=True)


def test_mcp_client_lists_tools_and_gets_a_cited_answer(tmp_path):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    auth = ("agent", "s3cret")
    args = ("--llm-backend", "extractive", "--mcp", "--auth", "agent:s3cret")
    with running_app(tmp_path / "data", *args, auth=auth) as (url, _, log):
        upload_sample(url, auth)
        assert f"MCP server (streamable HTTP): {url}gradio_api/mcp/" in log.read_text()
        assert httpx.post(url + "gradio_api/mcp/", json={}).status_code == 401
        token = httpx.BasicAuth(*auth)._auth_header

        async def session():
            async with streamablehttp_client(url + "gradio_api/mcp/", headers={"Authorization": token}) as (
                read,
                write,
                _,
            ):
                async with ClientSession(read, write) as client:
                    await client.initialize()
                    tools = {t.name for t in (await client.list_tools()).tools}
                    answer = await client.call_tool("answer_question", {"question": QUESTION, "k": 3})
                    documents = await client.call_tool("list_documents", {})
                    deleting = await client.call_tool("delete", {"name": "acme-q3-2023.pdf"})
                    return tools, answer, documents, deleting

        # in a thread of its own: Playwright's sync API keeps an event loop running in this one
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            tools, answer, documents, deleting = pool.submit(asyncio.run, session()).result(timeout=120)
        # an agent answers questions and lists documents; the page's upload and delete events are not tools
        assert tools == {"answer_question", "list_documents"}
        assert deleting.isError and "Unknown tool" in deleting.content[0].text
        payload = json.loads(answer.content[0].text)
        assert "41.5 percent" in payload["answer"] and payload["sources"][0]["file"] == "acme-q3-2023.pdf"
        assert payload["sources"][0]["page"] == 1 and payload["cited"]
        assert "acme-q3-2023.pdf" in documents.content[0].text
        assert str(tmp_path) not in documents.content[0].text and '"path"' not in documents.content[0].text
        assert "acme-q3-2023.pdf" in httpx.get(url + "api/documents", auth=auth).text, "the refused delete deleted"


def test_embed_demo_page_printed_snippets_and_share_tab(browser, tmp_path):
    from rag_app.web.embed import snippet_text, snippets

    with running_app(tmp_path / "data", "--llm-backend", "extractive", "--embed-demo") as (url, _, log):
        demo = f"http://127.0.0.1:{int(url.rstrip('/').rsplit(':', 1)[1]) + 1}/"
        # the snippet is printed at start, filled in with the app's real URL
        assert snippet_text(url) in log.read_text()
        assert f"Embedding demo page: {demo}" in log.read_text()
        # the demo page is another origin, allowed to frame the app
        assert httpx.get(url).headers["content-security-policy"] == f"frame-ancestors 'self' {demo.rstrip('/')}"
        served = httpx.get(demo).text
        assert snippets(url)["web_component"] in served and snippets(url)["iframe"] in served
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        page.goto(demo)
        page.frame_locator("#iframe iframe").locator("#rag-question").wait_for(timeout=60_000)
        page.locator("gradio-app #rag-question").wait_for(timeout=60_000)
        # the page's "Share / embed" tab shows the same snippets
        app_page = browser.new_page(viewport={"width": 1400, "height": 1000})
        app_page.goto(url)
        app_page.get_by_role("tab", name="Share / embed / 分享").click()
        shown = app_page.locator("#rag-embed").inner_text()
        assert f'<gradio-app src="{url}"></gradio-app>' in shown and f'<iframe src="{url}"' in shown
