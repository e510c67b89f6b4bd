#!/usr/bin/env bash
# Checks the AVX2 / AVX-512 variant objects of the CPU kernels (kernels/cpu/isa_target.h):
#   1. no function a variant object exports (global or weak: one the linker could pick for the
#      whole program) holds a VEX/EVEX instruction unless its name is the variant's own (the
#      isa_avx2 / isa_avx512 inline namespace, which no baseline object defines): such a function
#      could stand in for the baseline's and crash the portable build on a CPU without AVX;
#   2. static initialisers (which run on every CPU) hold none either;
#   3. each variant object does use its instruction set (the pragma took effect), and the AVX-512
#      objects use 512-bit registers somewhere.
# Usage: lint_cpu_isa.sh OBJECT_DIR (the asap_engine target's object folder).
set -euo pipefail
dir=${1:?usage: lint_cpu_isa.sh OBJECT_DIR}
mapfile -t objs < <(find "$dir" -name '*_avx2.cpp.o' -o -name '*_avx512.cpp.o' | sort)
[ "${#objs[@]}" -gt 0 ] || { echo "lint_cpu_isa: no variant objects under $dir" >&2; exit 1; }
python3 - "${objs[@]}" <<'PY'
import re, subprocess, sys

bad, zmm_seen = [], False
for obj in sys.argv[1:]:
    nm = subprocess.run(["nm", "--defined-only", obj], capture_output=True, text=True, check=True).stdout
    exported = {l.split()[2] for l in nm.splitlines() if len(l.split()) == 3 and l.split()[1] in "TWViu"}
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", obj], capture_output=True, text=True, check=True).stdout
    func, vex_total = None, 0
    for line in dis.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            func = m.group(1)
            continue
        parts = line.split("\t")
        if func is None or len(parts) < 2:
            continue
        insn = parts[1].strip()
        if not insn.startswith("v"):
            continue
        vex_total += 1
        zmm_seen |= "%zmm" in insn
        own = "8isa_avx2" in func or "10isa_avx512" in func  # the variant's inline namespace
        if (func in exported and not own) or func.startswith("_GLOBAL__sub_I"):
            bad.append(f"{obj}: {func}: {insn}")
            func = None  # one report per function
    if vex_total == 0:
        bad.append(f"{obj}: no AVX instruction at all (the target pragma did not take effect)")
avx512 = [o for o in sys.argv[1:] if o.endswith("_avx512.cpp.o")]
if avx512 and not zmm_seen:
    bad.append("no AVX-512 object uses a 512-bit register")
if bad:
    print("lint_cpu_isa: variant objects break the portable build's guarantee:")
    print("\n".join(bad[:40]))
    sys.exit(1)
print(f"lint_cpu_isa: {len(sys.argv) - 1} variant objects clean")
PY
