"""The price table metering uses: data, one row per region, with where the figures come from.

Azure Container Instances bills Linux container groups per vCPU-second and per GB-second of memory
(learn.microsoft.com/azure/container-instances/container-instances-faq, "How is ACI billed?";
azure.microsoft.com/pricing/details/container-instances/), Azure Files per provisioned or used
GB-month (azure.microsoft.com/pricing/details/storage/files/). The figures are the pay-as-you-go
list prices the hourly estimate has used since the first wave; check them against the pricing
pages and add a row per region you deploy to (a region without a row uses DEFAULT_REGION's)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Prices:
    region: str
    vcpu_second: float  # USD per vCPU-second (ACI, Linux)
    gb_second: float  # USD per GB-second of memory (ACI, Linux)
    storage_gb_month: float  # USD per GB-month (Azure Files, transaction optimized)
    source: str
    as_of: str


SOURCE = "azure.microsoft.com/pricing/details/container-instances and .../storage/files (pay-as-you-go)"
AS_OF = "2026-12-01"
DEFAULT_REGION = "eastus"
HOURS_PER_MONTH = 730  # how Azure turns a monthly price into hours

TABLE: dict[str, Prices] = {
    row.region: row
    for row in (
        Prices("eastus", 0.0000135, 0.0000015, 0.06, SOURCE, AS_OF),
        Prices("westeurope", 0.0000135, 0.0000015, 0.06, SOURCE, AS_OF),
        Prices("local", 0.0000135, 0.0000015, 0.06, SOURCE + "; the local host is priced as eastus", AS_OF),
    )
}


def prices_for(region: str) -> Prices:
    return TABLE.get(region) or TABLE[DEFAULT_REGION]
