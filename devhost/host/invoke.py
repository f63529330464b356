"""Calling a registered function the way the Python worker does: async ones on the event loop,
sync ones on a worker thread, with the Durable client binding when the function declares one."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from azure.functions.decorators.function_app import Function


def durable_client_parameter(function: Function) -> str | None:
    return next((b.name for b in function.get_bindings() if b.type == "durableClient"), None)


async def invoke(
    call: Callable[..., Any],
    arguments: dict[str, Any],
    client_parameter: str | None,
    client_binding: Callable[[], str],
) -> Any:
    if client_parameter:
        arguments = {**arguments, client_parameter: client_binding()}
    if inspect.iscoroutinefunction(call):
        return await call(**arguments)
    return await asyncio.to_thread(call, **arguments)
