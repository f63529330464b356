"""The local host: serves a FunctionApp's HTTP triggers and the Durable HTTP API on one port, with
orchestrations run by the DurableEngine (the same engine the replay tests use)."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import azure.functions as func
from aiohttp import web

from devhost.host import durable_api, transport
from devhost.host.cors import Cors
from devhost.host.durable.engine import DurableEngine
from devhost.host.http import HttpDispatcher, http_functions, route_prefix
from devhost.host.timers import SettingDefault, TimerRunner, timer_functions

log = logging.getLogger("devhost")


SYSTEM_KEY_FILE = "durabletask-system.key"
# The largest request body the host takes, as infra sets FUNCTIONS_REQUEST_BODY_SIZE_LIMIT in Azure.
BODY_LIMIT = 1024 * 1024


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.chmod(path, 0o600)  # an older file of wider mode keeps its mode through O_CREAT


async def _no_sniffing(request: web.Request, response: web.StreamResponse) -> None:
    """The host's own answers (unknown route, a function that raised, the Durable API) are not
    sniffed into another type either; the app's functions set their own headers."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


class LocalHost:
    """One FunctionApp served over HTTP; `engine` runs its orchestrations and activities."""

    def __init__(
        self,
        app: func.FunctionApp,
        *,
        host_json: Path,
        task_hub: str,
        host: str = "127.0.0.1",
        port: int = 7071,
        state_dir: Path | None = None,
        max_workers: int = 8,
        run_timers: bool = False,
        setting_default: SettingDefault | None = None,
        cors: Cors | None = None,
        on_stop: Sequence[Callable[[], Awaitable[None]]] = (),
        **engine_options: Any,
    ):
        functions = app.get_functions()  # the SDK builds them once per app
        self.host, self.port = host, port
        self.task_hub = task_hub
        self.engine = DurableEngine(functions, store_dir=state_dir, max_workers=max_workers, **engine_options)
        self._http = http_functions(functions, route_prefix(host_json))
        self.timers = TimerRunner(timer_functions(functions, setting_default), self.client_binding)
        self._run_timers = run_timers
        self._on_stop = tuple(on_stop)  # the app's own clients bound to this loop, closed with it
        self.cors = cors or Cors(())
        self._runner: web.AppRunner | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop serving, once started
        # The Durable webhooks answer only with this key (`?code=`), made anew at each start-up
        # as the real host's system key guards them; it is written to the state directory for an
        # operator. The app's own client goes through a path that holds a second secret: the
        # SDK's rpcBaseUrl takes no query (the real host serves it on a loopback-only port).
        self.system_key = secrets.token_urlsafe(32)
        self._rpc_prefix = f"{durable_api.DEFAULT_PREFIX}/rpc-{secrets.token_urlsafe(32)}"
        if state_dir is not None:
            _write_private(Path(state_dir) / SYSTEM_KEY_FILE, self.system_key)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def durable_base_url(self) -> str:
        """Where the app's own Durable client calls (not the keyed public webhooks)."""
        return f"{self.url}{self._rpc_prefix}"

    def client_binding(self) -> str:
        """What the Functions host hands a `durable_client_input`: this host's Durable API."""
        return durable_api.client_binding_json(self.durable_base_url, self.task_hub)

    def web_app(self) -> web.Application:
        app = web.Application(
            client_max_size=BODY_LIMIT, middlewares=[self.cors.middleware, transport.json_errors]
        )
        durable_api.add_routes(
            app,
            self.engine,
            task_hub=self.task_hub,
            required_query=f"code={self.system_key}",
            system_key=self.system_key,
        )
        durable_api.add_routes(app, self.engine, prefix=self._rpc_prefix, task_hub=self.task_hub)
        dispatcher = HttpDispatcher(self._http, self.client_binding)

        async def functions(request: web.Request) -> web.StreamResponse:
            return await dispatcher(request)

        app.router.add_route("*", "/{tail:.*}", functions)
        app.on_response_prepare.append(_no_sniffing)
        return app

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        resumed = self.engine.resume_all()
        if resumed:
            log.info("resumed %d orchestration(s) left in flight", len(resumed))
        self.engine.start_driver()
        # The body as it came, as the Functions host passes it on: not decompressed per its
        # Content-Encoding (azure-functions-host#3722), so the app sees and refuses what Azure sends it.
        self._runner = transport.AppRunner(self.web_app(), access_log=None, auto_decompress=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:  # an ephemeral port: read back the one the OS chose
            server = site._server
            assert server is not None and isinstance(server, asyncio.base_events.Server)
            self.port = server.sockets[0].getsockname()[1]
        if self._run_timers:
            self.timers.start()

    async def stop(self) -> None:
        await self.timers.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        # The Durable client keeps one process-wide aiohttp session bound to this event loop;
        # close it with the loop (the SDK has no public shutdown hook).
        from azure.durable_functions.models.utils import http_utils

        await http_utils._close_session()
        for close in self._on_stop:
            await close()
        await asyncio.to_thread(self.engine.stop_driver)


@contextmanager
def serve_in_thread(host: LocalHost) -> Iterator[LocalHost]:
    """Run the host on an event loop of its own thread (tests, benchmarks); stops on exit."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(host.start())
        except BaseException as exc:
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="devhost", daemon=True)
    thread.start()
    started.wait(60)
    if failure:
        raise failure[0]
    try:
        yield host
    finally:
        asyncio.run_coroutine_threadsafe(host.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
