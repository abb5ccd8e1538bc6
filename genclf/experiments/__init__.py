"""Experiments: few-shot runs under one protocol, shot strategies, sweeps chosen on validation, and reports.

    from genclf import experiments
    r = experiments.few_shot("fashion-mnist", "ddpm", "logreg", shots=10, seed=0, t=50)
    experiments.sweep_t("fashion-mnist", "ddpm", "logreg", 10, 3, experiments.T_GRID)

Submodules: `fewshot` (shots, features for a run, evaluate, the pixel baseline), `sweeps` (t and block
choices on validation), `rows` (tidy CSV rows and their statistics), `report` (the eval grid and
`results/<dataset>/`), `markdown` (its README.md and leads), `charts` (its PNG charts).
May import data, backbones, cache, features and heads; never explore, app or cli.
"""

from genclf.experiments.fewshot import (
    CNN,
    DEFAULT_T,
    POOL_LIMIT,
    POOL_SEED,
    ROW_FIELDS,
    SHOTS,
    STRATEGIES,
    T_GRID,
    VAL_LIMIT,
    VAL_SEED0,
    baseline_accuracy,
    check_shots,
    check_strategy,
    choose_shots,
    config_hash,
    eval_features,
    eval_indices,
    evaluate,
    few_shot,
    pool_features,
    pool_indices,
    representative_indices,
    resolve_t,
    row_of,
    scoring_seeds,
    train_features,
    unlabeled_features,
    val_seeds,
    validate,
)
from genclf.experiments.sweeps import block_candidates, run_sweep, shots_cv, summarize, sweep_blocks, sweep_t

__all__ = [
    "CNN", "DEFAULT_T", "POOL_LIMIT", "POOL_SEED", "ROW_FIELDS", "SHOTS", "STRATEGIES", "T_GRID", "VAL_LIMIT",
    "VAL_SEED0", "baseline_accuracy", "block_candidates", "check_shots", "check_strategy", "choose_shots", "config_hash",
    "eval_features", "eval_indices", "evaluate", "few_shot", "pool_features", "pool_indices", "representative_indices",
    "resolve_t", "row_of", "run_sweep", "scoring_seeds", "shots_cv", "summarize", "sweep_blocks", "sweep_t",
    "train_features", "unlabeled_features", "val_seeds", "validate",
]  # fmt: skip
