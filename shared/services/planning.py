"""What a create request becomes: a new CREATING record, sized, placed and sealed, not yet stored."""

from __future__ import annotations

from datetime import datetime

from shared import agent_tokens, templates
from shared.domain.environment import Environment, Status, new_id
from shared.domain.operation import Kind, operation_id
from shared.domain.placement import Placement, ResourceBounds, SizeRequest, resolve_size
from shared.domain.requests import CreateEnvironmentRequest
from shared.secrets import PASSWORD_KEY, SNAPSHOT_PASSWORD_KEY, generate_password, seal
from shared.settings import Settings


def planned(
    owner: str,
    request: CreateEnvironmentRequest,
    settings: Settings,
    placement: Placement,
    bounds: ResourceBounds,
    now: datetime,
) -> Environment:
    template = templates.catalog().choose(request.template or request.base_image)
    size = resolve_size(
        SizeRequest(request.size, request.cpu_cores, request.memory_gb, request.storage_gb),
        template,
        placement,
        bounds,
    )
    env_id = new_id()
    agent_token = agent_tokens.mint(owner, env_id)
    sealed = seal(
        settings.secrets_key_bytes,
        env_id,
        {
            **request.secrets,
            PASSWORD_KEY: generate_password(),
            SNAPSHOT_PASSWORD_KEY: generate_password(),
            agent_tokens.AGENT_TOKEN_VARIABLE: agent_token,
        },
    )
    return Environment(
        id=env_id,
        owner=owner,
        name=request.name,
        status=Status.CREATING,
        status_reason="provisioning",
        template=template.name,
        size=size.name,
        cpu_cores=size.cpu_cores,
        memory_gb=size.memory_gb,
        storage_gb=size.storage_gb,
        cloud_provider=placement.provider,
        cloud_region=placement.region,
        ports=list(request.ports if request.ports is not None else template.ports),
        # The template's defaults under the user's own (a secret of the same name wins too).
        environment_variables={
            **{k: v for k, v in template.environment_variables.items() if k not in request.secrets},
            **request.environment_variables,
        },
        repository_url=request.repository_url,
        dotfiles_url=request.dotfiles_url,
        idle_timeout_minutes=request.idle_timeout_minutes or settings.idle_timeout_minutes,
        last_accessed_at=now,
        created_at=now,
        updated_at=now,
        operation=operation_id(Kind.CREATE, env_id, 1),
        agent_token_hash=agent_tokens.digest(agent_token),
        sealed_secrets=sealed,
    )
