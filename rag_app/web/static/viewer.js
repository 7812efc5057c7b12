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
const findController = new viewerLib.PDFFindController({ eventBus, linkService });
const viewer = new viewerLib.PDFViewer({
  container: document.getElementById("container"),
  viewer: document.getElementById("viewer"),
  eventBus, linkService, findController,
});
linkService.setViewer(viewer);

// Try the passage, then shorter openings of it: PDF text and extracted text differ in places.
const attempts = [];
if (passage) {
  const words = passage.split(" ");
  for (const n of [words.length, 16, 10, 6]) if (n <= words.length && !attempts.includes(words.slice(0, n).join(" "))) attempts.push(words.slice(0, n).join(" "));
}
let attempt = -1;
function findNext() {
  attempt += 1;
  if (attempt >= attempts.length) { document.body.dataset.highlight = "none"; return; }
  eventBus.dispatch("find", { source: null, type: "", query: attempts[attempt], caseSensitive: false,
                              entireWord: false, highlightAll: true, findPrevious: false, matchDiacritics: false });
}
eventBus.on("updatefindmatchescount", ({ matchesCount }) => {
  if (matchesCount.total > 0) document.body.dataset.highlight = "found";
});
eventBus.on("updatefindcontrolstate", ({ state, matchesCount }) => {
  if (state === 1 /* NOT_FOUND */ || (matchesCount && matchesCount.total === 0 && state !== 3)) findNext();
  else if (state === 0 /* FOUND */) document.body.dataset.highlight = "found";
});

eventBus.on("pagesinit", () => {
  viewer.currentScaleValue = "page-width";
  viewer.currentPageNumber = Math.min(pageNumber, viewer.pagesCount);
  document.body.dataset.page = String(viewer.currentPageNumber);
  findNext();
});
eventBus.on("textlayerrendered", ({ pageNumber: rendered }) => {
  if (rendered === pageNumber) document.body.dataset.textLayer = "ready";
});

const cMapUrl = new URL("./vendor/pdfjs/cmaps/", import.meta.url).href;
const pdf = await pdfjsLib.getDocument({ url: file.href, cMapUrl, cMapPacked: true }).promise;
viewer.setDocument(pdf);
linkService.setDocument(pdf, null);
document.body.dataset.pages = String(pdf.numPages);
