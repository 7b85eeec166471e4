"""The BioMassters winner's published checkpoints as agbm checkpoints.

The winner published two kinds of file, both plain `torch.save` pickles:

* `model_best.pth` / `model_last.pth` (its training checkpoints): a dict with `state_dict`,
  `args` (an `argparse.Namespace`: `backbone`, `in_channels`, `dec_channels`, ...), `epoch`,
  `best_score` and the optimiser's state;
* `modelo_best.pth` (what its submission loads): the whole model object, whose unpickling
  names the winner's own classes (`models.UnetVFLOW`, ...) and timm 0.6 / smp 0.3 classes.

Neither loads with `weights_only=True`, and the second needs the winner's code and old
libraries. Both are read by `agbm.safe_pickle.safe_load`, which runs no code from the file
and keeps model objects as inert `Opaque` data. The model's tensors are then taken from that
data, renamed to `TemporalUNet`'s keys and checked one by one.

One job a module: `read` reads either file into a `WinnerCheckpoint` (tensors and the
architecture facts it names), `translate` turns those into `TemporalUNet`'s config and
keys and loads the weights, each checked, and `convert` is what `agbm import-winner` runs:
the whole import, and its report for people. Nothing is imported here.

The winner's model is `TemporalUNet(temporal="pool", output_scale=1.0)` with the winner's
input conventions (`agbm.data.WINNER_CONVENTIONS`); the imported checkpoint records them, so
`agbm predict`, `predict-scene` and `train --init` apply them with no flag to remember.
"""
