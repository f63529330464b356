"""Where an environment runs and how big it may be: the compute backend's limits, the sizes it
offers, and the resolution of a request's size into exact resources. Pure; refusals are
ValidationFailed with one detail per field."""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.catalog import DEFAULT_SIZE, SIZES, Size, Template
from shared.domain.environment import CloudProvider
from shared.errors import ValidationFailed


@dataclass(frozen=True, slots=True)
class Placement:
    """Where new environments run: the compute backend's provider, region and what one environment
    may ask of it (an ACI container group: 1 to 4 CPU, 1 to 16 GB, in steps of 0.1)."""

    provider: CloudProvider
    region: str
    max_cpu_cores: float | None = None
    max_memory_gb: float | None = None
    min_cpu_cores: float | None = None
    min_memory_gb: float | None = None
    step: float | None = None  # CPU and memory are multiples of it
    label: str = "this backend"

    def runs(self, cpu: float, memory: float) -> bool:
        return not self.problems(cpu, memory)

    def problems(self, cpu: float, memory: float) -> list[dict[str, str]]:
        """What keeps an environment of this size off this backend, per field (empty: it runs)."""
        found = []
        for field, value, low, high, unit in (
            ("cpu_cores", cpu, self.min_cpu_cores, self.max_cpu_cores, ""),
            ("memory_gb", memory, self.min_memory_gb, self.max_memory_gb, " GB"),
        ):
            if high is not None and value > high:
                found.append({"field": field, "message": f"{self.label} runs at most {high:g}{unit}"})
            elif low is not None and value < low:
                found.append({"field": field, "message": f"{self.label} needs at least {low:g}{unit}"})
            elif self.step is not None and abs(value / self.step - round(value / self.step)) > 1e-9:
                found.append({"field": field, "message": f"{self.label} takes multiples of {self.step:g}"})
        return found


def offered_sizes(placement: Placement) -> list[Size]:
    """The size presets this backend can run, in catalog order (no xlarge on ACI)."""
    return [size for size in SIZES.values() if placement.runs(size.cpu_cores, size.memory_gb)]


@dataclass(frozen=True, slots=True)
class ResourceBounds:
    """The operator's ceilings on one environment (settings), whatever the backend could run."""

    max_cpu_cores: float
    max_memory_gb: float
    max_storage_gb: int


@dataclass(frozen=True, slots=True)
class ResolvedSize:
    """The exact resources of a new environment: a preset's, or "custom" when any was given."""

    name: str
    cpu_cores: float
    memory_gb: float
    storage_gb: int


@dataclass(frozen=True, slots=True)
class SizeRequest:
    """What a create request says about size: a preset name and/or explicit resources."""

    size: str | None = None
    cpu_cores: float | None = None
    memory_gb: float | None = None
    storage_gb: int | None = None

    @property
    def explicit(self) -> bool:
        return any(value is not None for value in (self.cpu_cores, self.memory_gb, self.storage_gb))


def resolve_size(
    wanted: SizeRequest, template: Template, placement: Placement, bounds: ResourceBounds
) -> ResolvedSize:
    """The preset named (else the default, or the template's when only resources are given),
    with any explicit resources over it; refused when out of bounds or not runnable here."""
    # A falsy explicit value (0) is refused by the request model; here "given" means not None.
    given = any((wanted.cpu_cores, wanted.memory_gb, wanted.storage_gb))
    size_name = (wanted.size or "").lower() or (DEFAULT_SIZE if not given else "")
    offered = [size.name for size in offered_sizes(placement)]
    if size_name and size_name not in SIZES:
        raise ValidationFailed(
            f"unknown size {wanted.size!r}", [{"field": "size", "message": f"one of {offered}"}]
        )
    if size_name and size_name not in offered and not given:
        raise ValidationFailed(
            f"size {size_name!r} is not offered on {placement.label}",
            [{"field": "size", "message": f"one of {offered}"}],
        )
    base = SIZES[size_name or template.default_size]
    cpu = wanted.cpu_cores if wanted.cpu_cores is not None else base.cpu_cores
    memory = wanted.memory_gb if wanted.memory_gb is not None else base.memory_gb
    storage = wanted.storage_gb if wanted.storage_gb is not None else base.storage_gb
    limits = {
        "cpu_cores": (cpu, 0.5, bounds.max_cpu_cores),
        "memory_gb": (memory, 1.0, bounds.max_memory_gb),
        "storage_gb": (storage, 1, bounds.max_storage_gb),
    }
    problems = [
        {"field": field, "message": f"must be between {low} and {high}"}
        for field, (value, low, high) in limits.items()
        if not low <= value <= high
    ]
    if problems:
        raise ValidationFailed("requested resources are out of bounds", problems)
    problems = placement.problems(cpu, memory)
    if problems:
        raise ValidationFailed(
            f"this size cannot run on {placement.label} ({cpu:g} CPU, {memory:g} GB); choose another size",
            problems,
        )
    return ResolvedSize("custom" if wanted.explicit else base.name, cpu, memory, int(storage))


def resize(
    current: ResolvedSize,
    wanted: SizeRequest,
    template: Template,
    placement: Placement,
    bounds: ResourceBounds,
) -> ResolvedSize:
    """An existing environment's new resources: a preset, or explicit values over what it has
    (what is not asked for stays). Storage only grows: a smaller preset keeps today's storage, a
    smaller explicit value is refused. Named after the preset it equals, else "custom"."""
    if wanted.storage_gb is not None and wanted.storage_gb < current.storage_gb:
        raise ValidationFailed(
            "storage can only grow",
            [{"field": "storage_gb", "message": f"at least {current.storage_gb} (today's)"}],
        )
    if wanted.size is None:
        wanted = SizeRequest(
            None,
            wanted.cpu_cores if wanted.cpu_cores is not None else current.cpu_cores,
            wanted.memory_gb if wanted.memory_gb is not None else current.memory_gb,
            wanted.storage_gb if wanted.storage_gb is not None else current.storage_gb,
        )
    resolved = resolve_size(wanted, template, placement, bounds)
    storage = max(resolved.storage_gb, current.storage_gb)
    resources = (resolved.cpu_cores, resolved.memory_gb, storage)
    name = next(
        (
            size.name
            for size in SIZES.values()
            if (size.cpu_cores, size.memory_gb, size.storage_gb) == resources
        ),
        "custom",
    )
    return ResolvedSize(name, *resources)
