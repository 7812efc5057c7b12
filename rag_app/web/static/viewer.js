// The source viewer: PDF.js shows the cited page of a stored PDF and highlights the cited passage.
// Query: ?doc=<stored document name>&collection=<collection>&page=<1-based page>&label=<printed page label>
//        &q=<passage to highlight>
// It takes a document's name, never a URL: the PDF it loads and the "open the file" link are always this app's
// own /api/documents/<name>/file, so a crafted link can neither run script here nor load a foreign file.
import * as pdfjsLib from "./vendor/pdfjs/build/pdf.min.mjs";

globalThis.pdfjsLib = pdfjsLib; // pdf_viewer.mjs reads the library from here
const viewerLib = await import("./vendor/pdfjs/web/pdf_viewer.mjs");
pdfjsLib.GlobalWorkerOptions.workerSrc = new URL("./vendor/pdfjs/build/pdf.worker.min.mjs", import.meta.url).href;

const params = new URLSearchParams(location.search);
const name = params.get("doc") || "";
const collection = params.get("collection");
const pageNumber = Math.max(1, parseInt(params.get("page") || "1", 10) || 1);
const label = params.get("label");
const passage = (params.get("q") || "").replace(/\s+/g, " ").trim();

// The app's file route for a stored name; null for anything that is not one (no name, dot segments, controls).
function fileRoute(documentName, collectionName) {
  if (!documentName || /[\u0000-\u001f\u007f]/.test(documentName)) return null;
  if (documentName.split("/").some((part) => part === "." || part === "..")) return null;
  const route = new URL(`../api/documents/${encodeURIComponent(documentName)}/file`, location.href);
  if (collectionName) route.searchParams.set("collection", collectionName);
  const root = new URL("../api/documents/", location.href);
  return route.origin === location.origin && route.pathname.startsWith(root.pathname) ? route : null;
}

const file = fileRoute(name, collection);
document.getElementById("title").textContent = name || "no document";
document.getElementById("where").textContent = `p. ${pageNumber}` + (label && label !== String(pageNumber) ? ` (printed ${label})` : "");
if (!file) {
  document.getElementById("where").textContent = "this link names no stored document";
  document.getElementById("download").remove();
  document.body.dataset.error = "no-document";
  throw new Error("the viewer shows stored documents only: ?doc=<name>");
}
document.getElementById("download").href = `${file.href}#page=${pageNumber}`;

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
const pdf = await pdfjsLib.getDocument({ url: file.href, cMapUrl, cMapPacked: true }).promise;
viewer.setDocument(pdf);
linkService.setDocument(pdf, null);
document.body.dataset.pages = String(pdf.numPages);
