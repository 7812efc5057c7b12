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
const pdf = await pdfjsLib.getDocument({ url: file, cMapUrl, cMapPacked: true }).promise;
viewer.setDocument(pdf);
linkService.setDocument(pdf, null);
document.body.dataset.pages = String(pdf.numPages);
