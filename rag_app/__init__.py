"""rag_app: private question answering over your own PDFs, with cited sources.

Kept import-light on purpose: parser worker processes import this package and
must not pull in torch or chromadb.
"""

import os

# Threads of torch's CPU math wait for work by sleeping, not spinning: on a machine whose cores are busy
# (parser processes beside the embedder, other programs) spinning threads starve the ones with work. On
# 2 shared cores the bundled embedder took 37 ms a question instead of 94-150 ms (2026-11-30, load 2.4),
# and a batch of 128 chunks no longer. Set before torch is imported; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
