"""Which precision and which figures follow from the CPU flags (VMs here differ: AVX2 only, or AVX-512 with BF16)."""

from classroom_training import hardware

AVX2_ONLY = {"fpu", "sse2", "avx", "avx2", "fma"}
AVX512_BF16 = AVX2_ONLY | {"avx512f", "avx512_bf16"}


def test_cpu_flags_are_read_from_the_first_cpu(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu avx512f\n")
    assert hardware.cpu_flags(cpuinfo) == {"fpu", "avx2", "fma"}
    assert hardware.cpu_flags(tmp_path / "missing") == set()


def test_bfloat16_is_chosen_only_where_the_hardware_does_it():
    assert not hardware.has_fast_bfloat16(AVX2_ONLY)
    assert not hardware.has_fast_bfloat16(AVX2_ONLY | {"avx512f"})
    assert hardware.has_fast_bfloat16(AVX512_BF16)
    assert hardware.has_fast_bfloat16(AVX2_ONLY | {"amx_bf16"})


def test_machine_description_names_the_extensions_that_set_the_speed():
    assert hardware.machine_description(AVX2_ONLY).endswith("cores, avx2")
    assert hardware.machine_description(AVX512_BF16).endswith("cores, avx2 avx512f avx512_bf16")
    assert hardware.machine_description({"sse2"}).endswith("no AVX2")
