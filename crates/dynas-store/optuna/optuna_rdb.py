"""Optuna's RDB storage doing what `store_throughput` measures: trials per second with 1, 2
and 4 worker processes on a trivial objective (one suggested float, constant value), each
process its own storage connection, RandomSampler (no model fitting in the way).

usage: optuna_rdb.py STORAGE_URL TRIALS
"""

import multiprocessing as mp
import sys
import time

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)


def objective(trial):
    trial.suggest_float("x", 0.0, 1.0)
    return 0.0


def work(url, name, n, barrier):
    study = optuna.load_study(
        study_name=name, storage=url, sampler=optuna.samplers.RandomSampler(seed=0)
    )
    barrier.wait()
    study.optimize(objective, n_trials=n)


def run(url, workers, trials):
    name = f"bench{workers}"
    optuna.create_study(study_name=name, storage=url)
    barrier = mp.Barrier(workers + 1)
    procs = [
        mp.Process(target=work, args=(url, name, trials // workers, barrier))
        for _ in range(workers)
    ]
    for p in procs:
        p.start()
    barrier.wait()
    start = time.perf_counter()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    elapsed = time.perf_counter() - start
    done = trials // workers * workers
    return done / elapsed


def main():
    url, trials = sys.argv[1], int(sys.argv[2])
    kind = url.split(":", 1)[0]
    for workers in (1, 2, 4):
        rate = run(url, workers, trials)
        print(f"optuna {kind}: {workers} worker(s), {trials} trivial trials: {rate:.0f} trials/s", flush=True)


if __name__ == "__main__":
    main()
