"""Write the accepted candidates of a review database into training-set folders.

Each accepted candidate is re-rendered from its recipe (bit-identical to what
was reviewed) and written as slice_<case_id>_0000.png in both folders, mask
0/255, atomically; identical files are skipped and different files are never
overwritten (a conflict: exit 2). A manifest CSV records every exported case's
recipe, quality and decision. Re-running is idempotent and completes a run that
was killed. Cases exported earlier whose candidate is no longer accepted are
listed, and deleted only with --prune.

Accepted candidates whose lesion or target comes from one of the database's
held-out cases (set by queue --holdout) are refused (exit 2, nothing written)
unless --allow-holdout-leak; the manifest's holdout_cases column names the split.

The dataset is the one recorded in the database, unless --input-dir and
--mask-dir say where it is now.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


from ..dataset import open_dataset
from ..errors import OutputError, StoreError
from ..export import export, export_zip
from ..io import resolve_path
from ..store import Store
from ._progress import progress_bar


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", required=True, help="review database file (must exist)")
    p.add_argument("--out-input-dir", required=True, help="output folder for blended images")
    p.add_argument("--out-mask-dir", required=True, help="output folder for their masks (0/255)")
    p.add_argument("--prune", action="store_true",
                   help="delete exported cases whose candidate is no longer accepted (listed)")
    p.add_argument("--dry-run", action="store_true", help="report what would be done; change nothing")
    p.add_argument("--manifest",
                   help="manifest CSV path (default OUT_INPUT_DIR/../poissonblend_manifest.csv)")
    p.add_argument("--zip", metavar="PATH", help="also write a zip of both folders and the manifest")
    p.add_argument("--input-dir", help="dataset input folder, if it moved since queueing")
    p.add_argument("--mask-dir", help="dataset mask folder, if it moved since queueing")
    p.add_argument("--allow-other-dataset", action="store_true",
                   help="use DB although it was made for other folders or files")
    p.add_argument("--allow-holdout-leak", action="store_true",
                   help="export accepted candidates that use one of the database's held-out "
                        "cases too (refused otherwise; marked in the manifest)")


def run(args: argparse.Namespace) -> int:
    if (args.input_dir is None) != (args.mask_dir is None):
        raise StoreError("give both --input-dir and --mask-dir, or neither")
    if not Path(args.db).is_file():
        raise StoreError(f"no review database at {resolve_path(args.db, StoreError)} "
                         "(queue candidates first)")
    dataset = open_dataset(args.input_dir, args.mask_dir) if args.input_dir else None
    store = Store.open(args.db, dataset, allow_other_dataset=args.allow_other_dataset)
    with progress_bar("export", "sample") as progress:
        summary = export(store, args.out_input_dir, args.out_mask_dir, manifest=args.manifest,
                         prune=args.prune, dry_run=args.dry_run, progress=progress,
                         allow_holdout_leak=args.allow_holdout_leak)
    for stale in summary.stale:
        print(f"stale: {stale}")
    for path in summary.pruned:
        print(f"{'would prune' if summary.dry_run else 'pruned'}: {path}")
    for path in summary.repaired:
        print(f"{'would remove' if summary.dry_run else 'removed'} leftover: {path}")
    for conflict in summary.conflicts:
        print(f"conflict: {conflict}", file=sys.stderr)
    print(summary)
    if summary.conflicts:
        first = summary.conflicts[0]
        more = f" (and {len(summary.conflicts) - 1} more)" if len(summary.conflicts) > 1 else ""
        raise OutputError(f"{first}{more}")
    if args.zip and not args.dry_run:
        path = export_zip(args.out_input_dir, args.out_mask_dir, summary.manifest, path=args.zip)
        print(f"zip: {path}")
    return 0
