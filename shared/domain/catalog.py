"""The template catalog and size presets users choose from."""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import ValidationFailed

# Reserved inside every workspace: the IDE and SSH.
IDE_PORT = 8080
SSH_PORT = 2222
RESERVED_PORTS = frozenset({IDE_PORT, SSH_PORT})

# Approximate ACI pay-as-you-go rates (USD) for estimating a running environment's hourly cost.
CPU_CORE_HOUR_USD = 0.0486
MEMORY_GB_HOUR_USD = 0.0054
STORAGE_GB_HOUR_USD = 0.06 / 730  # Azure Files transaction-optimized, per GB-month


@dataclass(frozen=True, slots=True)
class Size:
    name: str
    cpu_cores: float
    memory_gb: float
    storage_gb: int

    @property
    def estimated_cost_per_hour(self) -> float:
        return estimate_cost_per_hour(self.cpu_cores, self.memory_gb, self.storage_gb)


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    display_name: str
    description: str
    image: str
    default_size: str
    ports: tuple[int, ...]


def estimate_cost_per_hour(cpu_cores: float, memory_gb: float, storage_gb: int) -> float:
    cost = cpu_cores * CPU_CORE_HOUR_USD + memory_gb * MEMORY_GB_HOUR_USD + storage_gb * STORAGE_GB_HOUR_USD
    return round(cost, 4)


SIZES: dict[str, Size] = {
    size.name: size
    for size in (
        Size("small", 1, 2, 20),
        Size("medium", 2, 4, 50),
        Size("large", 4, 8, 100),
        Size("xlarge", 8, 16, 200),
    )
}
DEFAULT_SIZE = "medium"

TEMPLATES: dict[str, Template] = {
    template.name: template
    for template in (
        Template(
            "node",
            "Node.js",
            "Node.js LTS with npm, pnpm, yarn and TypeScript.",
            "dev8-node",
            "medium",
            (3000, 5173),
        ),
        Template(
            "python",
            "Python",
            "Python 3 with pip, uv, poetry, Jupyter and common linters.",
            "dev8-python",
            "medium",
            (8000, 8888),
        ),
        Template(
            "go",
            "Go",
            "Go toolchain with gopls, delve and golangci-lint.",
            "dev8-go",
            "medium",
            (8000,),
        ),
        Template(
            "fullstack",
            "Full stack",
            "Node.js, Python and Go together, for apps that span all three.",
            "dev8-fullstack",
            "large",
            (3000, 5173, 8000),
        ),
    )
}

TEMPLATE_ALIASES = {"nodejs": "node", "golang": "go"}


def resolve_template(name: str) -> Template | None:
    key = name.strip().lower()
    return TEMPLATES.get(TEMPLATE_ALIASES.get(key, key))


def choose_template(name: str | None) -> Template:
    """The template a create request names (aliases allowed), or a 400 naming the choices."""
    choices = [{"field": "template", "message": f"one of {sorted(TEMPLATES)}"}]
    if not name:
        raise ValidationFailed("template is required", choices)
    template = resolve_template(name)
    if template is None:
        raise ValidationFailed(f"unknown template {name!r}", choices)
    return template
