"""`python -m ingest`: the ingestion command line, a thin layer over rag_app.RagService."""
