"""Tasks of the client data store tests (an importable module, as runners need)."""

from __future__ import annotations

from pynenc import PynencBuilder

app = PynencBuilder().app_id("cds-tests").memory().thread_runner(max_threads=2).build()


@app.task
def size(data: bytes) -> int:
    return len(data)


@app.task(disable_cache_args=("inline",))
def both(stored: bytes, inline: bytes) -> int:
    return len(stored) + len(inline)


@app.task
def make(n: int) -> bytes:
    return b"x" * n


@app.task
def fail(n: int) -> None:
    raise ValueError("y" * n)
