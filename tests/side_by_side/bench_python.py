"""Auth0's Python server SDK (auth0-server-python) on the side-by-side workload.

Serves the access token of the default audience from the session in tests/data/session.json,
sent back by the browser as an encrypted cookie: each call parses the Cookie header and awaits
ServerClient.get_access_token (a cache hit, no network).

auth0-server-python ships no cookie store (its framework packages do); SessionCookies below is
the smallest StateStore that keeps the session in chunked cookies the way auth0-fastapi's
StatelessStateStore does (`_a0_session_<i>` chunks of 4096 - len(name) - 10 characters,
joined in index order and decrypted with the SDK's own StateStore.decrypt).

Usage: python bench_python.py SESSION_JSON ITERATIONS WARMUP SAMPLE_SIZE
Times ITERATIONS calls in samples of SAMPLE_SIZE calls and prints
`RESULT python <median µs per call over samples> <mean µs per call> <calls>`.
"""

import asyncio
import contextlib
import io
import json
import sys
import time

# authlib (under the SDK) prints a deprecation warning on import, past any warning filter.
with contextlib.redirect_stderr(io.StringIO()):
    from auth0_server_python.auth_server.server_client import ServerClient
    from auth0_server_python.store.abstract import StateStore, TransactionStore

SECRET = "benchmark-secret-benchmark-secret-0123456789"
COOKIE = "_a0_session"


class SessionCookies(StateStore):
    """The session in chunked encrypted cookies (store_options: {"cookies": {...}})."""

    def __init__(self, secret):
        super().__init__({"secret": secret})
        self.chunk = 4096 - len(COOKIE) - 10

    async def set(self, identifier, state, remove_if_expires=False, options=None):
        value = self.encrypt(identifier, state)
        jar = options["set_cookies"]
        for i in range(0, len(value), self.chunk):
            jar[f"{COOKIE}_{i // self.chunk}"] = value[i:i + self.chunk]

    async def get(self, identifier, options=None):
        parts = sorted(
            (int(name.rsplit("_", 1)[-1]), value)
            for name, value in options["cookies"].items()
            if name.startswith(COOKIE)
        )
        if not parts:
            return None
        try:
            return self.decrypt(identifier, "".join(v for _, v in parts))
        except Exception:
            return None

    async def delete(self, identifier, options=None):
        pass


class NoTransactions(TransactionStore):
    """Login transactions are not used by this workload."""

    async def set(self, identifier, state, remove_if_expires=False, options=None):
        pass

    async def get(self, identifier, options=None):
        return None

    async def delete(self, identifier, options=None):
        pass


def parse_cookie_header(header):
    """name=value pairs of a Cookie header (what a web framework hands the store)."""
    cookies = {}
    for pair in header.split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep:
            cookies[name] = value
    return cookies


async def main():
    path, iterations, warmup, sample_size = sys.argv[1], *map(int, sys.argv[2:5])
    with open(path) as f:
        fixture = json.load(f)
    store = SessionCookies(SECRET)
    client = ServerClient(
        domain="bench.local",
        client_id="bench-client",
        client_secret="bench-client-secret",
        secret=SECRET,
        transaction_store=NoTransactions({"secret": SECRET}),
        state_store=store,
        authorization_params=fixture["authorization_params"],
    )
    jar = {}
    await store.set(COOKIE, fixture["session"], options={"set_cookies": jar})
    header = "; ".join(f"{k}={v}" for k, v in jar.items())
    print(f"INFO python session_json_bytes={len(json.dumps(fixture['session']))} "
          f"cookie_header_bytes={len(header)} chunks={len(jar)}")

    expected = fixture["session"]["token_sets"][0]["access_token"]

    async def call():
        token = await client.get_access_token(
            store_options={"cookies": parse_cookie_header(header)})
        assert token == expected, "not the cached access token"

    for _ in range(warmup):
        await call()
    samples = max(iterations // sample_size, 1)
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        for _ in range(sample_size):
            await call()
        times.append((time.perf_counter() - started) * 1e6 / sample_size)
    mean = sum(times) / len(times)
    times.sort()
    print(f"RESULT python {times[len(times) // 2]:.2f} {mean:.2f} {samples * sample_size}")


asyncio.run(main())
