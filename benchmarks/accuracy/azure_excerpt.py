"""Write the small Azure excerpt shipped in tests/data/traces/azure-v1-cpu/ from the R data
file that holds it (see that folder's SOURCE.txt).

    .venv/bin/pip install rdata          # only this script needs it (reads R .rda files)
    git -C <DataCenterSim mirror> show fa2cc25:data/microsoft_avg_100.rda > avg.rda
    .venv/bin/python benchmarks/accuracy/azure_excerpt.py avg.rda --vms 16

The first ``--vms`` VMs in the file's column order are kept (no selection by value), every
5-minute point (8,004 per VM, 27.8 days), CPU % rounded to 0.1, one column per VM.
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent.parent / "tests" / "data" / "traces" / "azure-v1-cpu" / "cpu_avg.csv.gz"


def main() -> int:
    import rdata  # optional: only this conversion needs it

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rda", type=Path)
    ap.add_argument("--vms", type=int, default=16)
    ap.add_argument("--out", type=Path, default=OUT,
                    help="where to write (default the shipped excerpt; --vms 100 --out "
                         "azure100.csv.gz writes the held-out source traces.py --azure-source "
                         "reads: not to be shipped)")
    args = ap.parse_args()
    arr = rdata.read_rda(str(args.rda))["microsoft_avg_100"]
    values = arr.values
    vms = [str(v) for v in arr.coords[arr.dims[1]].values][: args.vms]
    with gzip.open(args.out, "wt", compresslevel=9) as f:
        # wide: one row per 5-minute point (time_s = (row + 1) x 300), one column per VM
        f.write("time_s," + ",".join(vms) + "\n")
        for i in range(values.shape[0]):
            f.write(f"{(i + 1) * 300}," + ",".join(f"{values[i, j]:.1f}"
                                                   for j in range(len(vms))) + "\n")
    print(f"{args.out}: {len(vms)} VMs x {values.shape[0]} points")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
