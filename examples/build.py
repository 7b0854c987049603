"""Regenerate an example deployment: `python examples/build.py reading-tutor [--out DIR]`.

Runs the miniature FM-FL pipeline in examples/reading_tutor_pipeline/ and writes the clean and the
compromised twin (checkpoints, data, manifest.yaml, EXPECTED.yaml, BUILD_REPORT.json) under
`--out` (default: examples/reading-tutor/). Deterministic for a given --seed and --scale on one
machine (torch runs single-threaded: on a busy 2-core machine that is several times faster than two
threads). Progress goes to stderr; the build summary is printed on stdout as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SYSTEMS = ("reading-tutor",)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("system", choices=SYSTEMS)
    p.add_argument(
        "--out", type=Path, default=None, help="output folder (default: examples/<system>)"
    )
    p.add_argument("--scale", choices=("small", "full"), default="full")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--expected-only",
        action="store_true",
        help="only rewrite EXPECTED.yaml of the twins under --out (refreshes `pending` marks "
        "from the rules implemented now); no model is run",
    )
    p.add_argument(
        "--shared-data",
        type=Path,
        default=REPO.parent / "shared" / "data",
        help="folder of the external data sets (default: ../shared/data)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    out = args.out or HERE / args.system
    shared = args.shared_data
    sys.path.insert(0, str(HERE))
    if args.expected_only:
        from reading_tutor_pipeline.manifest import implemented_rules, write_expected

        done = implemented_rules()
        for twin in ("clean", "compromised"):
            if not (out / twin / "manifest.yaml").is_file():
                print(f"error: no {twin} twin under {out}", file=sys.stderr)
                return 2
            write_expected(out / twin, twin, done)
        return 0
    if not (shared / "stories260K" / "model.safetensors").is_file():
        print(f"error: {shared} does not hold stories260K (use --shared-data)", file=sys.stderr)
        return 2
    import logging
    import warnings

    from reading_tutor_pipeline.pipeline import STAGES, build
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    started = time.monotonic()
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(f"building {args.system}", total=STAGES)

        def advance(stage: str) -> None:
            progress.update(task, advance=1, description=stage)

        summary = build(out, shared, scale=args.scale, seed=args.seed, advance=advance)
    summary["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
