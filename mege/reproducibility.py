"""What mege promises bit for bit, and where.

A CPU run is bit-identical to a stored reference only on the same **platform**: the same torch
version, the same CPU kernel capability that ATen dispatches to (``DEFAULT``, ``AVX2``,
``AVX512``) and the same CPU vendor — oneDNN and MKL choose their own code paths by vendor and ISA,
and ``ATEN_CPU_CAPABILITY`` does not pin those (an AVX-512 machine forced to ``avx2`` still trains
other weights than an AVX2 machine). References therefore record the platform they were made on
(:func:`platform`), and a check asserts bit-identity only where :func:`promised` says so; elsewhere
the tests compare short-horizon trajectories with a tolerance calibrated on kernel differences.
"""

from __future__ import annotations

import platform as _platform
from pathlib import Path

import torch


def cpu_vendor() -> str | None:
    """``GenuineIntel``, ``AuthenticAMD``, ... from ``/proc/cpuinfo`` (None where it cannot be read)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return _platform.processor() or None


def platform() -> dict[str, str | None]:
    """This machine's platform as references record it: torch version, ATen CPU capability, CPU vendor."""
    return {"torch": str(torch.__version__), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_vendor": cpu_vendor()}


def describe(p: dict) -> str:
    vendor = p.get("cpu_vendor") or "vendor not recorded"
    return f"torch {p.get('torch')}, {p.get('cpu_capability')}, {vendor}"


def promised(recorded: list[dict], here: dict | None = None) -> bool:
    """True when ``here`` (default: this machine) matches one of the ``recorded`` platforms on which a
    reference was made or reproduced bit for bit. A record without a vendor (made before vendors were
    recorded) matches any vendor of its torch version and capability."""
    here = platform() if here is None else here
    return any(r["torch"] == here["torch"] and r["cpu_capability"] == here["cpu_capability"]
               and (r.get("cpu_vendor") is None or r["cpu_vendor"] == here["cpu_vendor"]) for r in recorded)
