"""The web app: a Gradio page and an HTTP API, both thin layers over RagService."""
