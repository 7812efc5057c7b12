"""Fault injection for the child processes an ingest starts, which a test cannot patch from outside.

With ``tests/faults`` on ``PYTHONPATH``, every Python process of the run loads this file at start-up. When
``FAULT`` is set, ``ROLE:STEP``, the process of that role kills itself with SIGKILL when it reaches that step,
once per run: the first process to get there creates the file ``FAULT_ONCE`` and dies; any later one goes on
(a rerun keeps its data). Without ``FAULT`` it does nothing. Roles and steps:

* ``writer`` (the store's writer process, ``python -m rag_app.storage.writer_process``):
  ``after-marker`` (the pending markers are set, nothing else written), ``mid-add`` (half of the first file's
  chunks written), ``before-commit`` (every chunk written, no name registered), ``after-commit`` (registered,
  the markers not yet cleared);
* ``shard`` (a shard's writer process, ``python -m rag_app.storage.shard_process``): ``add`` (the first
  vectors it is sent, before writing them), ``flush`` (its part written, before it says so).

Steps are patched into the modules as they are imported; the role is checked when a step is reached.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import signal
import sys

FAULT = os.environ.get("FAULT", "")
ROLE, _, STEP = FAULT.partition(":")
ROLES = {"writer": "writer_process.py", "shard": "shard_process.py"}


def _reached(step: str) -> bool:
    """This process is of the role and at the step, and no other process died of this fault yet."""
    if step != STEP or not sys.argv or not sys.argv[0].endswith(ROLES.get(ROLE, "\0")):
        return False
    try:
        os.close(os.open(os.environ["FAULT_ONCE"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _at(step: str, function, before: bool = True):
    """``function``, dying when the step is reached: before it runs, or (``before=False``) after."""

    def patched(*args, **kwargs):
        if before and _reached(step):
            _die()
        result = function(*args, **kwargs)
        if not before and _reached(step):
            _die()
        return result

    return patched


def _patch_chunk_index(module) -> None:
    index = module.ChunkIndex
    index.delete = _at("after-marker", index.delete)
    original_add = index.add

    def add(self, chunks, vectors, metadata, *terms):
        if len(chunks) > 1 and _reached("mid-add"):
            original_add(self, chunks[: len(chunks) // 2], vectors[: len(chunks) // 2], metadata)
            self.flush()
            _die()
        return original_add(self, chunks, vectors, metadata, *terms)

    index.add = add


def _patch_store(module) -> None:
    store = module.DocumentStore
    store._register = _at("before-commit", store._register)
    store._clear_pending = _at("after-commit", store._clear_pending)


def _patch_chroma(module) -> None:
    """A shard's collection dies at its first add (``add``), or at the reply to the first flush after one."""
    opened = module.open_shard_collection
    added = []

    def open_shard_collection(*args, **kwargs):
        collection = opened(*args, **kwargs)
        add = collection.add

        def counted_add(**kwargs):
            if _reached("add"):
                _die()
            added.append(1)
            return add(**kwargs)

        collection.add = counted_add
        return collection

    module.open_shard_collection = open_shard_collection
    from multiprocessing import connection

    send = connection.Connection.send

    def send_unless_dying(self, obj):
        if added and _reached("flush"):
            _die()
        return send(self, obj)

    connection.Connection.send = send_unless_dying


HOOKS = {
    "rag_app.storage.chunk_index": _patch_chunk_index,
    "rag_app.storage.store": _patch_store,
    "rag_app.storage.chroma": _patch_chroma,
}


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in HOOKS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            HOOKS[name](module)

        spec.loader.exec_module = exec_module
        return spec


if ROLE in ROLES:
    sys.meta_path.insert(0, _PatchOnImport())
