"""Chat messages as safe HTML: document text stays text, model markdown loads nothing and hides no link."""

from rag_app.web.markup import model_html, text_html

BEACON = "http://127.0.0.1:9/b.png"


def test_document_text_is_shown_as_text():
    html = text_html(f"“<img src={BEACON}> ![b]({BEACON}) <b>bold</b>” [1]\nnext")
    assert "<img" not in html and "<b>" not in html and "<a" not in html
    assert "&lt;img src=" in html and f"![b]({BEACON})" in html and "<br>" in html


def test_model_markdown_keeps_formatting_but_loads_no_image_and_runs_no_html():
    html = model_html(
        f"**Revenue** rose [1].\n\n- one\n- two\n\n![chart]({BEACON}) <img src={BEACON}> <script>x</script>"
    )
    assert "<strong>Revenue</strong>" in html and "<li>one</li>" in html
    assert "<img" not in html and "<script" not in html and "&lt;img src=" in html
    assert f"[image: chart] {BEACON}</a>" in html


def test_links_show_their_real_target_and_unsafe_schemes_stay_text():
    html = model_html(
        "[the audit report](http://evil.example/?q=secret) <https://example.com> [x](javascript:alert(1))"
    )
    assert '>the audit report</a> <span class="rag-link-target">(http://evil.example/?q=secret)</span>' in html
    assert '<a href="https://example.com"' in html and "(https://example.com)" not in html
    assert 'href="javascript' not in html and "[x](javascript:alert(1))" in html
