"""pymoo's NSGA-II on the NAS-Bench-201 table, with the budget counted as *distinct*
architectures, as dynas counts it.

For each latency column: minimise latency / max(latency) and error = (100 - acc_cifar100) / 100;
every architecture is looked up through a cache, and the search stops once `--budget` distinct
architectures have been seen (re-visits are free; new ones past the budget are not counted).
The score is the hypervolume (reference point (1, 1)) of the non-dominated set of everything
evaluated, as a percentage of the table's true front, exactly like
`examples/experiments/search_surrogate_nb201.rs`. Run through `benches/pymoo_compare.sh`.
"""

import argparse
import csv
import statistics
import time

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.problem import Problem
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair
from pymoo.operators.sampling.rnd import IntegerRandomSampling

COLUMNS = [
    "raspi4_latency",
    "pixel3_latency",
    "gold_6226_latency",
    "titanx_1_latency",
    "pixel2_latency",
]


def hypervolume_2d(points, reference=(1.0, 1.0)):
    """Exact 2-D hypervolume of minimisation points bounded by `reference`."""
    inside = sorted(p for p in points if p[0] < reference[0] and p[1] < reference[1])
    volume, best_y = 0.0, reference[1]
    for x, y in inside:
        if y < best_y:
            volume += (reference[0] - x) * (best_y - y)
            best_y = y
    return volume


class BudgetReached(Exception):
    """Raised when the distinct-architecture budget is spent."""


class TableProblem(Problem):
    """Six integer genes in 0..4 (op codes of nb201_hw.csv), objectives read from the table."""

    def __init__(self, table, budget):
        super().__init__(n_var=6, n_obj=2, xl=0, xu=4, vtype=int)
        self.table = table
        self.budget = budget
        self.seen = {}

    def _evaluate(self, x, out, *args, **kwargs):
        f = []
        for row in np.asarray(x).round().astype(int):
            key = tuple(int(v) for v in row)
            if key not in self.seen:
                if len(self.seen) >= self.budget:
                    raise BudgetReached()
                self.seen[key] = self.table[key]
            f.append(self.seen[key])
        out["F"] = np.array(f)


def load(path, column):
    rows = {}
    with open(path, newline="") as handle:
        for record in csv.DictReader(handle):
            key = tuple(int(record[f"op{i}"]) for i in range(6))
            rows[key] = (float(record[column]), float(record["acc_cifar100"]))
    max_latency = max(latency for latency, _ in rows.values())
    return {
        key: (latency / max_latency, (100.0 - acc) / 100.0)
        for key, (latency, acc) in rows.items()
    }


def search(table, budget, seed, population):
    problem = TableProblem(table, budget)
    algorithm = NSGA2(
        pop_size=population,
        sampling=IntegerRandomSampling(),
        crossover=SBX(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
        mutation=PM(prob=1.0, eta=3.0, vtype=float, repair=RoundingRepair()),
        eliminate_duplicates=True,
    )
    algorithm.setup(problem, termination=("n_gen", 10**9), seed=seed, verbose=False)
    try:
        while algorithm.has_next():
            algorithm.next()
    except BudgetReached:
        pass
    return hypervolume_2d(list(problem.seen.values()))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--csv", required=True)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--population", type=int, default=24)
    parser.add_argument("--columns", default=",".join(COLUMNS))
    args = parser.parse_args()
    for column in args.columns.split(","):
        table = load(args.csv, column)
        true_hv = hypervolume_2d(list(table.values()))
        shares, times = [], []
        for seed in range(args.seeds):
            start = time.perf_counter()
            hv = search(table, args.budget, seed, args.population)
            times.append((time.perf_counter() - start) * 1e3)
            shares.append(hv / true_hv * 100.0)
        print(
            f"{column:<18} {'pymoo':<9} {statistics.mean(shares):>8.2f} "
            f"{min(shares):>8.2f} {statistics.mean(times):>10.1f}"
        )


if __name__ == "__main__":
    main()
