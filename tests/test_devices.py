"""Device and precision choice: `auto` reads the CPU's flags instead of guessing."""

import pytest
import torch

from deblurkit import Deblurrer
from deblurkit.devices import cpu_has_native_bf16, resolve_precision
from deblurkit.errors import UsageError

EPYC_GENOA = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512vl\n"
SAPPHIRE_RAPIDS = "vendor_id\t: GenuineIntel\nflags\t\t: avx512f amx_tile amx_bf16 amx_int8\n"
OLD_XEON = "vendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n"


@pytest.mark.parametrize("cpuinfo, native", [(EPYC_GENOA, True), (SAPPHIRE_RAPIDS, True), (OLD_XEON, False), ("", False)])
def test_native_bf16_is_read_from_the_cpu_flags(cpuinfo, native):
    assert cpu_has_native_bf16(cpuinfo) is native


def test_auto_resolves_to_bf16_only_where_native(monkeypatch):
    import deblurkit.devices as devices

    cpu = torch.device("cpu")
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"


def test_deblurrer_reports_the_resolved_precision(tiny_weights, monkeypatch):
    import deblurkit.devices as devices

    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)
    assert Deblurrer(weights=tiny_weights, device="cpu", precision="auto").precision == "fp32"
    with pytest.raises(UsageError, match="fp16 is not supported on the CPU"):
        Deblurrer(weights=tiny_weights, device="cpu", precision="fp16")
