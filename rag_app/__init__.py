"""rag_app: private question answering over your own PDFs, with cited sources.

Kept import-light on purpose: parser worker processes import this package and
must not pull in torch or chromadb.
"""

__version__ = "0.1.0"
