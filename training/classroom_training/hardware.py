"""What this CPU can do fast: the vector extensions that decide training precision and inference speed.

The same graph ran 310 crops/s on an AVX2-only VM and 1,178 on an AVX-512 one, and mixed bfloat16
training, twice as fast as float32 where the CPU has AVX512-BF16 or AMX, is many times slower
where it must be emulated.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

REPORTED = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The `flags` of the first CPU in /proc/cpuinfo (empty where there is no such file)."""
    if not cpuinfo.exists():
        return set()
    line = next((x for x in cpuinfo.read_text().splitlines() if x.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def has_fast_bfloat16(flags: set[str] | None = None) -> bool:
    """True where bfloat16 matrix work runs in hardware (AVX512-BF16 or AMX)."""
    flags = cpu_flags() if flags is None else flags
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def machine_description(flags: set[str] | None = None) -> str:
    """`x86_64, 2 cores, avx2`: printed beside every throughput figure."""
    flags = cpu_flags() if flags is None else flags
    found = [flag for flag in REPORTED if flag in flags] or ["no AVX2"]
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {' '.join(found)}"
