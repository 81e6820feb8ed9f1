"""``python -m dlib.studies list|run NAME|status NAME|export NAME`` (see :mod:`dlib.studies`)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from dlib.scales import SCALES


def main(argv: list[str] | None = None) -> int:
    """The command line."""
    from dlib import studies

    args_list = list(sys.argv[1:] if argv is None else argv)
    line = shlex.join(["python", "-m", "dlib.studies", *args_list])
    parser = argparse.ArgumentParser(prog="python -m dlib.studies",
                                     description="Run the book's studies on Ray Tune.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the studies")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("name", choices=sorted(studies.STUDIES))
    common.add_argument("--scale", choices=sorted(SCALES),
                        help="training and metric sizes (default: full with CUDA, else quick)")
    common.add_argument("--seeds", type=int, nargs="+", help="instead of the study's seeds")
    common.add_argument("--steps", type=int, help="instead of the scale's steps")
    common.add_argument("--methods", nargs="+", help="only these methods of the study "
                        "(an experiment of its own; the export keeps the others' models)")
    common.add_argument("--datasets", nargs="+", help="only these datasets of the study "
                        "(an experiment of its own; the export keeps the others' models)")
    common.add_argument("--out", help="results folder (default: book/results)")
    common.add_argument("--storage", help="Ray's storage path (default: the dlib cache; a "
                        "shared folder or bucket on a multi-node cluster)")
    p = sub.add_parser("run", parents=[common], help="train and evaluate (resumes)")
    p.add_argument("--address", help="attach to a running Ray cluster (e.g. 'auto')")
    p.add_argument("--checkpoint-every", type=int, help="steps between trial checkpoints")
    p.add_argument("--max-failures", type=int, default=2, help="retries of a failing trial")
    p.add_argument("--max-trials", type=int,
                   help="stop after this many trials finished (run again to continue)")
    p.add_argument("--gpus-per-trial", type=float, help="GPU share of a trial (default 0.25 "
                   "where the cluster has GPUs)")
    p.add_argument("--seeds-per-trial", type=int, default=1,
                   help="seeds of one setting trained together by the batched engine")
    p.add_argument("--cpus-per-trial", type=int, default=1,
                   help="CPUs and torch threads of a trial (default 1)")
    p.add_argument("--first", nargs="+", metavar="METHOD:KEY=VALUE",
                   help="settings to train before the rest, seed by seed (e.g. "
                   "factor_vae:gamma=40 beta_tc_vae:beta=6)")
    p.add_argument("--cpus", type=int, help="CPUs of the local Ray instance this run starts "
                   "(default: all); two runs side by side share a machine")
    p.add_argument("--retrain", action="store_true",
                   help="train the models already exported at this scale again (an "
                   "experiment whose trials have all ended is set aside for a new one)")
    sub.add_parser("status", parents=[common], help="trials finished / unfinished / errored")
    sub.add_parser("export", parents=[common], help="write finished models to book/results")
    args = parser.parse_args(args_list)
    if args.cmd == "list":
        for name, study in studies.STUDIES.items():
            print(f"{name:18s} {study.planned():4d} models  {study.description}")
        return 0
    where = {"scale": args.scale, "seeds": args.seeds, "steps": args.steps,
             "storage": args.storage, "methods": args.methods,
             "datasets": args.datasets}
    if args.cmd == "run":
        info = studies.run(args.name, address=args.address,
                           checkpoint_every=args.checkpoint_every,
                           max_failures=args.max_failures, max_trials=args.max_trials,
                           gpus_per_trial=args.gpus_per_trial,
                           seeds_per_trial=args.seeds_per_trial,
                           cpus_per_trial=args.cpus_per_trial, command_line=line,
                           skip_exported=not args.retrain, out=args.out, first=args.first,
                           cpus=args.cpus,
                           **where)
        print(json.dumps(info, indent=1))
        return 0
    if args.cmd == "status":
        print(json.dumps(studies.status(args.name, out=args.out, **where), indent=1))
        return 0
    path = studies.export(args.name, out=args.out, command_line=line, **where)
    result = studies.load(args.name, root=path.parents[1], quiet=True)
    print(f"wrote {path.parent}")
    if result is not None:
        print(result.note())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
