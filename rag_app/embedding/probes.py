"""Texts the ONNX embedder's vectors are checked on at every load: 16 real chunks of the corpus
(financebench, docugami, zh_reports and others; English and Chinese, 25 to 130 tokens), picked at
even steps of length from 8,000 sampled by ``python -m bench.embed_backends``."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

PROBES = Path(__file__).with_name("agreement_probes.json")


@cache
def agreement_probes() -> list[str]:
    return json.loads(PROBES.read_text(encoding="utf-8"))
