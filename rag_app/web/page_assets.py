"""The page's own CSS and the script in its head: links from [n] to the sources, the viewer beside the answer,
labels that break between their languages and never inside a word, an upload's progress kept in view, and a
warning when this browser would draw Chinese as boxes."""

from __future__ import annotations

CSS = """
/* Gradio's container hides its overflow, which makes it a scroll container and stops the viewer and an upload's
   progress from sticking in view; clip hides the same overflow without that. */
.gradio-container {overflow: clip !important;}
.rag-source {border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px; margin-bottom: 8px;}
.rag-source.cited {border-left: 4px solid #2f7d32;}
.rag-source.retrieved {border-left: 4px solid #9e9e9e; opacity: 0.85;}
.rag-source-head {font-weight: 600; margin-bottom: 4px;}
.rag-source-text {white-space: pre-wrap; font-size: 0.9em; max-height: 14em; overflow-y: auto;}
.rag-tag {font-size: 0.75em; padding: 1px 6px; border-radius: 8px; margin-left: 6px;}
.rag-tag.cited {background: #e3f2e4; color: #1b5e20;}
.rag-tag.retrieved {background: #eeeeee; color: #555;}
.rag-banner {background: #fff4e5; border: 1px solid #f0b46b; border-radius: 8px; padding: 8px 12px;}
mark.rag-hit {background: #fff59d; padding: 0 1px;}
.rag-file {text-decoration: none; font-size: 0.85em; margin-left: 4px;}
.rag-source.flash {outline: 3px solid #f0b46b;}
/* The viewer: beside the answer on a wide screen, kept in view while the answer scrolls; full width below it
   on a narrow one (the row wraps its columns). Tall enough for a page at reading size. */
#rag-viewer-column {position: sticky; top: 8px; align-self: flex-start;}
iframe.rag-viewer {width: 100%; height: calc(100vh - 90px); min-height: 560px; border: 1px solid
    var(--border-color-primary); border-radius: 8px; background: #f3f3f3;}
.rag-viewer-hint {font-size: 0.85em; color: #666; margin: 4px 0;}
/* Bilingual labels ("New chat / 新对话") break between their halves, never inside a word or a Chinese word. */
button, [role="tab"], label span {word-break: keep-all; overflow-wrap: normal; hyphens: none;}
button {min-width: min-content;}
/* An upload's progress, above the file list and kept in view however long the list grows. */
#rag-progress {position: sticky; top: 0; z-index: 20;}
.rag-progress {background: #fff; border: 1px solid #90caf9; border-radius: 8px;
    padding: 8px 12px; box-shadow: 0 2px 6px rgba(0, 0, 0, 0.08);}
.rag-progress-bar {height: 8px; background: #e3f2fd; border-radius: 4px; overflow: hidden; margin-bottom: 6px;}
.rag-progress-bar > div {height: 100%; background: #1e88e5; transition: width 0.4s;}
.rag-progress-line {font-size: 0.9em;}
.rag-progress-line.zh {color: #555;}
#rag-empty {border: 2px dashed #90caf9; border-radius: 10px; padding: 12px 16px; background: #f5faff;}
#rag-font-warning {margin: 8px; z-index: 50; font-family: system-ui, sans-serif; font-size: 14px;}
#rag-report td, #rag-report th {white-space: normal !important; overflow-wrap: anywhere;}
"""

# [n] links in the answer: bring the source card into view and open it in the viewer (same page, no new tab).
# The font check: a browser without a font for Chinese draws every Chinese character as the same box, so two
# different characters give the same pixels.
PAGE_JS = """
<script>
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest('a[href^="#rag-source-"]');
  if (!link) return;
  const card = document.getElementById(link.getAttribute("href").slice(1));
  if (!card) return;
  event.preventDefault();
  event.stopPropagation();
  card.scrollIntoView({behavior: "smooth", block: "center"});
  card.classList.add("flash");
  setTimeout(() => card.classList.remove("flash"), 1500);
  const open = card.querySelector("a.rag-open");
  if (open) open.click();
}, true);

// On a narrow screen the viewer sits below the sources: opening one brings it into view.
document.addEventListener("click", (event) => {
  if (!(event.target.closest && event.target.closest("a.rag-open"))) return;
  const frame = document.getElementById("rag-pdf");
  if (frame && frame.getBoundingClientRect().top > window.innerHeight * 0.5) {
    setTimeout(() => frame.scrollIntoView({behavior: "smooth", block: "start"}), 50);
  }
});

function ragChineseDrawsAsBoxes() {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 48;
  const context = canvas.getContext("2d", {willReadFrequently: true});
  const pixels = (text) => {
    context.clearRect(0, 0, 48, 48);
    context.font = "40px sans-serif";
    context.textBaseline = "top";
    context.fillText(text, 2, 2);
    return context.getImageData(0, 0, 48, 48).data.join(",");
  };
  return pixels("\\u6587") === pixels("\\u5b57");  // 文, 字
}

function ragWarnOfBoxes() {
  if (document.getElementById("rag-font-warning") || !ragChineseDrawsAsBoxes()) return;
  const warning = document.createElement("div");
  warning.id = "rag-font-warning";
  warning.className = "rag-banner";
  warning.setAttribute("role", "alert");
  warning.textContent = "This browser has no font for Chinese, so Chinese text on this page shows as boxes. "
    + "On Linux install one (apt-get install fonts-noto-cjk) and restart the browser. / "
    + "本机缺少中文字体，中文会显示为方框：Linux 上请安装 fonts-noto-cjk 后重启浏览器。";
  document.body.prepend(warning);
}
// Gradio may add this script after the page has loaded
if (document.readyState === "complete") ragWarnOfBoxes(); else window.addEventListener("load", ragWarnOfBoxes);
</script>
"""
