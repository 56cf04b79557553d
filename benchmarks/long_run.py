"""Long-run stability: memory of the driver and of every actor, and the object store, over many batches.

Runs SeqGAN as ``seqgan-rl train`` does (``seqgan_rl.experiment.run.run_training``,
the ``smoke`` preset unless told otherwise, on a local Ray it starts) for
``--iterations`` adversarial batches, evaluated and checkpointed as in a
real run (every ``--eval-every`` and ``checkpoint_every`` batches). Between batches
(``on_record``) it measures:

* the resident memory (RSS) of the driver, which also hosts the EnvRunner and
  the Learner (``num_env_runners=0``, ``num_learners=0``), and of every alive
  actor: the discriminator actor and the Monte Carlo rollout workers (PIDs and
  states from the GCS actor table), plus Ray's own raylet and GCS server
  (reported, not bounded: the GCS keeps a bounded history of task events);
* the object store: bytes and objects in plasma, and the object references
  the driver holds (small objects live there, not in plasma).

The figures after ``--warmup`` batches (allocators, caches and Ray's worker
pool have settled by then) are compared with those after the last batch
against stated bounds (``BOUNDS``); the JSON on the last line has both, a
series every ``--sample-every`` batches, and pass/fail per bound.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import psutil  # noqa: E402  (after ray: Ray ships psutil in ray/thirdparty_files and puts it on sys.path)
import ray  # noqa: E402
from _common import machine  # noqa: E402

from seqgan_rl.config import TRAIN_PRESETS, get_train_preset  # noqa: E402
from seqgan_rl.experiment.run import run_training  # noqa: E402

MIB = 1 << 20
BOUNDS = {
    "rss_growth": "every bounded process (driver, each actor): RSS after the last batch exceeds its RSS after the "
                  "warm-up by < 50 MiB or by < 10 %",
    "actors": "the same alive actors (class and PID) after the last batch as after the warm-up: none added, none "
              "lost, none replaced",
    "object_store": "no growth: the largest plasma object count, plasma bytes and count of object references "
                    "held by the driver over the second half of the measurements (warm-up on) ≤ the largest over "
                    "the first half + 2 objects / + 1 MiB / + 10 references (the counts between two batches "
                    "differ with the batch's place in the checkpoint cycle, so peaks are compared)",
}
RSS_GROWTH_MIB, RSS_GROWTH_FRACTION = 50.0, 0.10
PLASMA_SLACK_OBJECTS, PLASMA_SLACK_BYTES, DRIVER_REFS_SLACK = 2, MIB, 10


def rss_mib(pid: int) -> float | None:
    try:
        return psutil.Process(pid).memory_info().rss / MIB
    except psutil.Error:  # exited between the actor table and now
        return None


class Probe:
    """Measures this Ray's processes and object store (the GCS of the Ray the driver is connected to)."""

    def __init__(self) -> None:
        from ray._private.internal_api import get_state_from_address

        self.state = get_state_from_address(ray.get_runtime_context().gcs_address)
        self.system = {process.name(): process.pid for process in psutil.Process().children(recursive=True)
                       if process.name() in ("raylet", "gcs_server")}

    def measure(self, iteration: int) -> dict[str, Any]:
        from ray._private.internal_api import get_memory_info_reply

        actors = {f"{info['ActorClassName']}:{info['Pid']}": rss_mib(info["Pid"])
                  for info in self.state.actor_table(None).values() if info["State"] == "ALIVE"}
        store = get_memory_info_reply(self.state).store_stats
        references = ray._private.worker.global_worker.core_worker.get_all_reference_counts()
        return {
            "iteration": iteration, "time_s": time.perf_counter(), "driver_rss_mib": rss_mib(psutil.Process().pid),
            "actor_rss_mib": actors, "system_rss_mib": {name: rss_mib(pid) for name, pid in self.system.items()},
            "plasma_bytes": int(store.object_store_bytes_used), "plasma_objects": int(store.num_local_objects),
            "driver_object_refs": len(references),
        }


def growth_ok(start: float, end: float) -> bool:
    return end - start < RSS_GROWTH_MIB or end - start < RSS_GROWTH_FRACTION * start


def judge(series: list[dict[str, Any]]) -> dict[str, Any]:
    """Each bound of ``BOUNDS``: the figures it compares and whether it holds (``series`` from the warm-up on)."""
    start, end = series[0], series[-1]
    processes = {"driver": (start["driver_rss_mib"], end["driver_rss_mib"])}
    processes.update({name: (rss, end["actor_rss_mib"].get(name)) for name, rss in start["actor_rss_mib"].items()})
    rss = {name: {"start_mib": round(a, 1), "end_mib": None if b is None else round(b, 1),
                  "growth_mib": None if b is None else round(b - a, 1), "pass": b is not None and growth_ok(a, b)}
           for name, (a, b) in processes.items()}
    same_actors = sorted(start["actor_rss_mib"]) == sorted(end["actor_rss_mib"])
    half = (len(series) + 1) // 2
    store = {key: {"start": start[key], "end": end[key], "peak_first_half": max(s[key] for s in series[:half]),
                   "peak_second_half": max(s[key] for s in series[half:])}
             for key in ("plasma_objects", "plasma_bytes", "driver_object_refs")}
    slack = {"plasma_objects": PLASMA_SLACK_OBJECTS, "plasma_bytes": PLASMA_SLACK_BYTES,
             "driver_object_refs": DRIVER_REFS_SLACK}
    store_ok = all(v["peak_second_half"] <= v["peak_first_half"] + slack[k] for k, v in store.items())
    return {
        "rss_growth": {"processes": rss, "pass": all(p["pass"] for p in rss.values())},
        "actors": {"start": sorted(start["actor_rss_mib"]), "end": sorted(end["actor_rss_mib"]),
                   "alive_start": len(start["actor_rss_mib"]), "alive_end": len(end["actor_rss_mib"]),
                   "pass": same_actors},
        "object_store": {**store, "pass": store_ok},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=200, help="adversarial batches")
    parser.add_argument("--warmup", type=int, default=10, help="batches before the first measurement")
    parser.add_argument("--sample-every", type=int, help="batches between measurements (default: iterations / 20)")
    parser.add_argument("--preset", choices=sorted(TRAIN_PRESETS), default="smoke")
    parser.add_argument("--num-mc-workers", type=int, default=1, help="K rollout actors (measured like the rest)")
    parser.add_argument("--checkpoint-every", type=int, help="default: the preset's")
    parser.add_argument("--eval-every", type=int, default=10,
                        help="evaluate every this many batches (the smoke preset's 1 would make evaluation, "
                             "1,000 samples of the V = 5,000 oracle, most of the time)")
    parser.add_argument("--generator-checkpoint", type=Path, help="MLE checkpoint to start from (default: the "
                        "preset's MLE phase)")
    parser.add_argument("--oracle-params", type=Path, help="default: ../shared/data/oracle_lstm_params.npz")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray")
    parser.add_argument("--run-dir", type=Path, help="default: a temporary directory")
    args = parser.parse_args()
    if not 0 < args.warmup < args.iterations:
        parser.error(f"--warmup must be in [1, --iterations), got {args.warmup}")
    sample_every = args.sample_every or max(1, args.iterations // 20)
    config = get_train_preset(args.preset).with_overrides(
        adversarial_batches=args.iterations, num_mc_workers=args.num_mc_workers,
        checkpoint_every=args.checkpoint_every, eval_every=args.eval_every)
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="seqgan-long-run-")) / "run"
    series: list[dict[str, Any]] = []
    probe: list[Probe] = []

    def on_record(record: dict[str, Any]) -> None:
        iteration = record["iteration"]
        if not probe:
            probe.append(Probe())
        if iteration == args.warmup or iteration == args.iterations or iteration % sample_every == 0:
            series.append(probe[0].measure(iteration))
            print(json.dumps({k: series[-1][k] for k in ("iteration", "driver_rss_mib", "plasma_objects",
                                                          "driver_object_refs")}), flush=True)

    summary = run_training(config, run_dir, generator_checkpoint=args.generator_checkpoint,
                           oracle_params=args.oracle_params, num_cpus=args.num_cpus, device="cpu", progress=False,
                           on_record=on_record)
    measured = [s for s in series if s["iteration"] >= args.warmup]
    start, end = measured[0], measured[-1]
    verdict = judge(measured)
    print(json.dumps({
        "benchmark": "long_run",
        "setting": {"preset": args.preset, "iterations": args.iterations, "warmup": args.warmup,
                    "num_mc_workers": args.num_mc_workers, "checkpoint_every": config.schedule.checkpoint_every,
                    "eval_every": config.schedule.eval_every, "num_cpus": args.num_cpus},
        "bounds": BOUNDS,
        "results": verdict,
        "pass": all(v["pass"] for v in verdict.values()),
        "system_rss_mib": {"start": start["system_rss_mib"], "end": end["system_rss_mib"]},
        "seconds_per_batch_after_warmup": round((end["time_s"] - start["time_s"]) / (args.iterations - args.warmup),
                                                3),
        "series": [{**s, "time_s": round(s["time_s"] - series[0]["time_s"], 1),
                    "actor_rss_mib": {k: round(v, 1) for k, v in s["actor_rss_mib"].items() if v is not None},
                    "driver_rss_mib": round(s["driver_rss_mib"], 1)} for s in series],
        "nll_oracle": {"mle": summary["nll_oracle_mle"], "final": summary["nll_oracle_final"]},
        "run_dir": str(run_dir),
        "machine": machine("cpu"),
    }))


if __name__ == "__main__":
    main()
