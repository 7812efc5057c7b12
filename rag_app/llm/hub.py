"""Is the model hub reachable? Asked once per process, answered in about a second.

Without a network, every ``from_pretrained`` of a hub id waits on huggingface_hub's retries
(1+2+4+8+8 s) before failing. One short probe decides instead; when the hub is unreachable (or
HF_HUB_OFFLINE is set) models load from the local cache only, and the log says once how to point
rag_app at a local model.
"""

from __future__ import annotations

import functools
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 1.5
OFFLINE_HOWTO = (
    "set RAG_LLM_MODEL to a local model directory or GGUF file, or RAG_LLM_ENDPOINT to an OpenAI-compatible server, "
    "to get written answers without the hub"
)


def hub_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def offline_by_environment() -> bool:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, as the Hugging Face libraries read them."""
    from huggingface_hub import constants

    flags = (os.environ.get(n, "").strip().lower() for n in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return bool(constants.HF_HUB_OFFLINE) or any(f in ("1", "true", "yes", "on") for f in flags)


def probe(endpoint: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether ``endpoint`` answers HTTP at all within ``timeout`` (any status counts as reachable)."""
    request = urllib.request.Request(endpoint, method="HEAD")
    try:
        urllib.request.urlopen(request, timeout=timeout).close()  # noqa: S310 - the hub's own URL
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):  # DNS, refused, timeout, TLS
        return False
    return True


@functools.cache
def hub_reachable() -> bool:
    """The hub's reachability, probed once for the process; says once how to use a local model."""
    if offline_by_environment():
        reachable, why = False, "HF_HUB_OFFLINE is set"
    else:
        reachable, why = probe(hub_endpoint()), f"{hub_endpoint()} is unreachable"
    if not reachable:
        log.warning("model hub offline (%s): models load from the local cache only; %s", why, OFFLINE_HOWTO)
    return reachable


def local_only(name: str) -> bool:
    """Load ``name`` without asking the hub: it is a directory, or the hub cannot be reached."""
    return Path(name).expanduser().is_dir() or not hub_reachable()
