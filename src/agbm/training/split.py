"""Which chips validate: the K-fold split by chip, the winner's or a seeded one."""

from __future__ import annotations

import numpy as np


def check_fold(folds: int, fold: int) -> None:
    if folds < 2:
        raise ValueError(f"`folds` must be at least 2, got {folds}")
    if not 0 <= fold < folds:
        raise ValueError(f"`fold` {fold} is out of range for {folds} folds (0..{folds - 1})")


#: `fold_split`'s methods.
SPLIT_METHODS = ("winner", "seeded")

#: The winner's KFold random_state.
WINNER_SPLIT_SEED = 314159


def fold_split(
    chips: list[str], folds: int, fold: int, seed: int = 0, method: str = "seeded"
) -> tuple[list, list]:
    """(train, validation) chip ids: a shuffled K-fold partition by chip.

    "seeded" deals a permutation drawn from `seed` into the folds. "winner" is scikit-learn's
    `KFold(folds, shuffle=True, random_state=314159)` (NumPy's legacy generator shuffles the
    indices, the first `n % folds` folds take one chip more, each fold is a contiguous run of
    the shuffled order), so that fold 0 validates on the winner's chips.
    """
    check_fold(folds, fold)
    if method == "winner":
        order = np.arange(len(chips))
        np.random.RandomState(WINNER_SPLIT_SEED).shuffle(order)
        sizes = np.full(folds, len(chips) // folds)
        sizes[: len(chips) % folds] += 1
        start = int(sizes[:fold].sum())
        held = order[start : start + sizes[fold]]
    elif method == "seeded":
        held = np.random.default_rng(seed).permutation(len(chips))[fold::folds]
    else:
        raise ValueError(f"`split` must be winner or seeded, not {method!r}")
    held_out = {chips[i] for i in held}
    return [c for c in chips if c not in held_out], [c for c in chips if c in held_out]
