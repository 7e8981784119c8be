"""Where bit-identity is promised: same torch, same ATen CPU capability, same CPU vendor (a record
made before vendors were recorded matches any vendor of its torch and capability)."""

from __future__ import annotations

from mege.reproducibility import describe, platform, promised

INTEL_AVX2 = {"torch": "2.5.1+cpu", "cpu_capability": "AVX2", "cpu_vendor": "GenuineIntel"}


def test_promised_only_on_a_recorded_platform():
    assert promised([INTEL_AVX2], dict(INTEL_AVX2))
    assert not promised([INTEL_AVX2], {**INTEL_AVX2, "torch": "2.6.0+cpu"})  # another torch
    assert not promised([INTEL_AVX2], {**INTEL_AVX2, "cpu_capability": "AVX512"})  # another kernel set
    assert not promised([INTEL_AVX2], {**INTEL_AVX2, "cpu_capability": "DEFAULT"})  # ATEN_CPU_CAPABILITY=default
    assert not promised([INTEL_AVX2], {**INTEL_AVX2, "cpu_vendor": "AuthenticAMD"})  # oneDNN/MKL choose by vendor
    assert not promised([], dict(INTEL_AVX2))
    # any one of several records suffices
    amd512 = {"torch": "2.5.1+cpu", "cpu_capability": "AVX512", "cpu_vendor": "AuthenticAMD"}
    assert promised([INTEL_AVX2, amd512], dict(amd512)) and promised([amd512, INTEL_AVX2], dict(INTEL_AVX2))


def test_a_record_without_a_vendor_matches_any_vendor_of_its_torch_and_capability():
    old = {"torch": "2.5.1+cpu", "cpu_capability": "AVX2"}
    assert promised([old], dict(INTEL_AVX2)) and promised([old], {**INTEL_AVX2, "cpu_vendor": "AuthenticAMD"})
    assert promised([{**old, "cpu_vendor": None}], dict(INTEL_AVX2))
    assert not promised([old], {**INTEL_AVX2, "cpu_capability": "AVX512"})


def test_this_machine_is_promised_its_own_platform():
    here = platform()
    assert promised([here]) and promised([dict(here)], here)
    assert describe(INTEL_AVX2) == "torch 2.5.1+cpu, AVX2, GenuineIntel"
