// The source viewer: PDF.js shows the cited page of a stored PDF and highlights the cited passage.
// Query: ?file=<URL of the PDF>&page=<1-based page>&label=<printed page label>&q=<passage to highlight>
import * as pdfjsLib from "./vendor/pdfjs/build/pdf.min.mjs";

globalThis.pdfjsLib = pdfjsLib; // pdf_viewer.mjs reads the library from here
const viewerLib = await import("./vendor/pdfjs/web/pdf_viewer.mjs");
pdfjsLib.GlobalWorkerOptions.workerSrc = new URL("./vendor/pdfjs/build/pdf.worker.min.mjs", import.meta.url).href;

const params = new URLSearchParams(location.search);
const file = params.get("file");
const pageNumber = Math.max(1, parseInt(params.get("page") || "1", 10));
const label = params.get("label");
const passage = (params.get("q") || "").replace(/\s+/g, " ").trim();

const name = decodeURIComponent(file.split("?")[0].split("/").slice(-2, -1)[0] || file);
document.getElementById("title").textContent = name;
document.getElementById("where").textContent = `p. ${pageNumber}` + (label && label !== String(pageNumber) ? ` (printed ${label})` : "");
document.getElementById("download").href = `${file}#page=${pageNumber}`;

const eventBus = new viewerLib.EventBus();
const linkService = new viewerLib.PDFLinkService({ eventBus });
const viewer = new viewerLib.PDFViewer({
  container: document.getElementById("container"),
  viewer: document.getElementById("viewer"),
  eventBus, linkService,
});
linkService.setViewer(viewer);

// Zoom: out, in, actual size (100%: a 10-K table at the size it was printed) and fit to the width (the start).
document.getElementById("zoom-out").onclick = () => viewer.decreaseScale();
document.getElementById("zoom-in").onclick = () => viewer.increaseScale();
document.getElementById("actual-size").onclick = () => { viewer.currentScaleValue = "1"; };
document.getElementById("fit-width").onclick = () => { viewer.currentScaleValue = "page-width"; };
eventBus.on("scalechanging", ({ scale }) => {
  document.getElementById("zoom").textContent = `${Math.round(scale * 100)}%`;
  document.body.dataset.scale = scale.toFixed(3);
});

// The whole quoted passage is highlighted: found in the page's text layer with spaces, line breaks, case and
// typographic variants ignored (so Chinese, whose text layer breaks lines mid-sentence, matches too), and, where
// the PDF's text differs from the stored text in places, by the stretch most of the passage's pieces agree on.
const FOLD = { "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-", "\u2010": "-",
               "\u00ad": "", "\u200b": "", "\ufeff": "" };
function folded(text) {  // [characters kept, index in text of each]
  const chars = [], where = [];
  for (let i = 0; i < text.length; i++) {
    for (const c of text[i].normalize("NFKC").toLowerCase()) {
      const f = c in FOLD ? FOLD[c] : c;
      if (!f || /\s/.test(f)) continue;
      chars.push(f);
      where.push(i);
    }
  }
  return [chars.join(""), where];
}

function passageRange(pageText, wanted) {  // [start, end) in pageText, or null
  const exact = pageText.indexOf(wanted);
  if (exact >= 0) return [exact, exact + wanted.length];
  const piece = /[\u3400-\u9fff]/.test(wanted) ? 6 : 12;
  const votes = new Map(), hits = [];
  for (let at = 0; at + piece <= wanted.length; at += piece) {
    const probe = wanted.slice(at, at + piece);
    for (let found = pageText.indexOf(probe); found >= 0; found = pageText.indexOf(probe, found + 1)) {
      const shift = found - at;
      hits.push([shift, found, found + piece]);
      const bucket = Math.round(shift / 8);
      votes.set(bucket, (votes.get(bucket) || 0) + 1);
    }
  }
  if (!hits.length) return null;
  const [best, count] = [...votes.entries()].sort((a, b) => b[1] - a[1])[0];
  if (count < 2 && wanted.length > 2 * piece) return null;  // one stray piece is not the passage
  const agreeing = hits.filter(([shift]) => Math.abs(shift / 8 - best) <= 2 + wanted.length / 80);
  return [Math.min(...agreeing.map((h) => h[1])), Math.max(...agreeing.map((h) => h[2]))];
}

function markRange(div, text, from, to) {  // the span of a text-layer div's text from..to, marked
  div.textContent = "";
  if (from > 0) div.append(document.createTextNode(text.slice(0, from)));
  const mark = document.createElement("span");
  mark.className = "highlight rag-passage";
  mark.textContent = text.slice(from, to);
  div.append(mark);
  if (to < text.length) div.append(document.createTextNode(text.slice(to)));
}

function highlightPassage() {
  const mapping = viewer.getPageView(pageNumber - 1)?._textHighlighter;
  if (!passage || !mapping?.textDivs || document.querySelector(".rag-passage")) return;
  const items = mapping.textContentItemsStr;
  const [pageText, where] = folded(items.join("\n"));
  const [wanted] = folded(passage);
  const range = passageRange(pageText, wanted);
  if (!range) { document.body.dataset.highlight = "none"; return; }
  const starts = [];  // index in the joined items where each item starts
  items.reduce((at, item) => { starts.push(at); return at + item.length + 1; }, 0);
  const first = where[range[0]], last = where[range[1] - 1];
  const marked = [];
  items.forEach((item, i) => {
    const from = Math.max(first - starts[i], 0), to = Math.min(last - starts[i] + 1, item.length);
    if (from < to) { markRange(mapping.textDivs[i], item, from, to); marked.push(item.slice(from, to)); }
  });
  window.ragHighlighted = marked.join(" ");
  document.body.dataset.highlight = "found";
  document.querySelector(".rag-passage")?.scrollIntoView({ block: "center" });
}

eventBus.on("pagesinit", () => {
  viewer.currentScaleValue = "page-width";
  viewer.currentPageNumber = Math.min(pageNumber, viewer.pagesCount);
  document.body.dataset.page = String(viewer.currentPageNumber);
});
eventBus.on("textlayerrendered", ({ pageNumber: rendered }) => {
  if (rendered !== pageNumber) return;
  highlightPassage();  // again whenever the page's text layer is drawn anew
  document.body.dataset.textLayer = "ready";
});

const cMapUrl = new URL("./vendor/pdfjs/cmaps/", import.meta.url).href;
const pdf = await pdfjsLib.getDocument({ url: file, cMapUrl, cMapPacked: true }).promise;
viewer.setDocument(pdf);
linkService.setDocument(pdf, null);
document.body.dataset.pages = String(pdf.numPages);
