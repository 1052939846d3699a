"""Config dataclasses check their fields at construction; the CLI's flags come from the fields' metadata."""

import dataclasses
import re

import pytest
import torch

from lthkit.cli import build_parser, main
from lthkit.cli.common import config_from_args
from lthkit.core.data import DataConfig
from lthkit.core.masks import density, layer_densities, magnitude_masks, random_masks_like
from lthkit.core.train import TrainConfig
from lthkit.errors import LthkitError
from lthkit.imp.config import LotteryConfig
from lthkit.runs.cache import cache_key
from lthkit.runs.presets import preset


def snapshot(folder):
    """Every path under ``folder`` (to show that nothing was created)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def raises_one_line(message):
    """``pytest.raises`` for an LthkitError whose whole text is exactly ``message``."""
    return pytest.raises(LthkitError, match=f"^{re.escape(message)}$")


@pytest.mark.parametrize("make,message", [
    (lambda: LotteryConfig(layer_rates="fc1"),
     "layer_rates must be a dict of layer name to rate or (name, rate) pairs, got 'fc1'"),
    (lambda: LotteryConfig(layer_rates={"fc1": "x"}), "layer rate of fc1 must be a number in [0, 1), got 'x'"),
    (lambda: LotteryConfig(layer_rates={"nosuch": 0.1}),
     "layer rate given for unknown layer 'nosuch'; prunable weights are fc1.weight, fc2.weight, fc3.weight "
     "(or 'output')"),
    (lambda: LotteryConfig(train={"lr": "fast"}), "lr must be a positive number, got 'fast'"),
    (lambda: LotteryConfig(train={"colour": 1}),
     "train has no field 'colour'; its fields are optimizer, lr, momentum, weight_decay, batch_size, iterations, "
     "epochs, eval_every, patience, test_every_eval, lr_milestones, lr_gamma, warmup_iterations"),
    (lambda: LotteryConfig(train="adam"), "train must be a TrainConfig or a dict of its fields, got str"),
    (lambda: LotteryConfig(data=[1000]), "data must be a DataConfig or a dict of its fields, got list"),
    (lambda: TrainConfig(momentum="x"), "momentum must be a non-negative number, got 'x'"),
    (lambda: TrainConfig(batch_size=True), "batch_size must be a positive integer, got True"),
    (lambda: TrainConfig(eval_every=2.5), "eval_every must be a positive integer, got 2.5"),
    (lambda: TrainConfig(test_every_eval="yes"), "test_every_eval must be True or False, got 'yes'"),
    (lambda: TrainConfig(iterations=None, epochs="2"), "epochs must be a positive number or None, got '2'"),
    (lambda: LotteryConfig(seed="a"), "seed must be an integer in [0, 2**64), got 'a'"),
    (lambda: LotteryConfig(seed=1.5), "seed must be an integer in [0, 2**64), got 1.5"),
    (lambda: LotteryConfig(seed=2 ** 70), f"seed must be an integer in [0, 2**64), got {2 ** 70}"),
    (lambda: LotteryConfig(rounds=True), "rounds must be a positive integer, got True"),
    (lambda: LotteryConfig(model=["lenet"]), "unknown model ['lenet']; choose one of conv2, conv2_small, lenet300_100"),
    (lambda: LotteryConfig(rewind_iteration="3"), "rewind_iteration must be a non-negative integer, got '3'"),
    (lambda: LotteryConfig(prune_rate="0.2"), "prune_rate must be a number in [0, 1), got '0.2'"),
    (lambda: DataConfig(split_seed="x"), "split_seed must be an integer in [0, 2**64), got 'x'"),
    (lambda: DataConfig(train_size=59_000), "train_size 59000 is larger than the 55000 training images left after "
                                            "the validation hold-out"),
    (lambda: LotteryConfig(rewind="iteration", rewind_iteration=100,
                           train=TrainConfig(iterations=None, epochs=1, batch_size=60), data=DataConfig(train_size=600)),
     "rewind iteration 100 is past the training budget of 10 iterations"),
])
def test_bad_fields_are_one_line_errors_naming_the_field(make, message):
    with raises_one_line(message):
        make()


def test_dicts_are_accepted_for_train_and_data_everywhere():
    built = LotteryConfig(train={"lr": 1, "iterations": 300}, data={"train_size": 5000})
    assert built.train == TrainConfig(lr=1.0, iterations=300) and built.data == DataConfig(train_size=5000)
    assert isinstance(built.train.lr, float)  # 1 and 1.0 give one config, hence one cache key
    assert built == LotteryConfig(train=TrainConfig(lr=1.0, iterations=300), data=DataConfig(train_size=5000))
    assert LotteryConfig.from_dict(built.to_dict()) == built
    assert built.replace(train={"lr": 2}).train.lr == 2.0  # replace: changes to the current train config


@pytest.mark.parametrize("call,message", [
    (lambda: density({}), "masks is empty: no prunable weight is named"),
    (lambda: density([torch.ones(3, dtype=torch.bool)]), "masks must be a dict from weight name to tensor, got a list"),
    (lambda: density({"fc1.weight": [True, False]}), "masks['fc1.weight'] must be a tensor, got a list"),
    (lambda: density({"fc1.weight": torch.ones(0, dtype=torch.bool)}),
     "masks hold no weights (every tensor is empty), so they have no density"),
    (lambda: layer_densities({}), "masks is empty: no prunable weight is named"),
    (lambda: random_masks_like({}, torch.Generator()), "masks is empty: no prunable weight is named"),
    (lambda: magnitude_masks([torch.randn(4, 4)], {"a": torch.ones(4, 4, dtype=torch.bool)}, 0.2),
     "weights must be a dict from weight name to tensor, got a list"),
    (lambda: magnitude_masks({"a": torch.randn(4, 4)}, {}, 0.2), "masks is empty: no prunable weight is named"),
])
def test_bad_mask_sets_are_one_line_errors(call, message):
    with raises_one_line(message):
        call()


def test_preset_config_keys_are_unchanged():
    # Computed on the code before the configs' fields moved to metadata, when inputs defaulted to
    # "standardized": the same config still has the same key...
    fast, paper = (preset(name).replace(data={"inputs": "standardized"}) for name in ("fast", "paper"))
    assert fast.key() == "8c599780f58a0f770ea0af90eee8383cc86095dd1eaac246f172d595bc07e48e"
    assert paper.key() == "88deaea73af5428d5970f69cbc9708d1696cbcb55bcb1837a7ad72537f2d2294"
    assert cache_key(fast, code="0.1.0+d1d491984521") == "7e9f4fa85d9f56da41489a9a"
    assert cache_key(paper, code="0.1.0+d1d491984521") == "b5fd16a2fdaa49ef60ba9d06"
    # ...and the new default (the paper's [0, 1] pixels) is another config, so another key.
    assert preset("fast").key() != fast.key()


@pytest.mark.parametrize("cls", [LotteryConfig, TrainConfig, DataConfig])
def test_every_field_is_documented_once_in_its_metadata(cls):
    for field in dataclasses.fields(cls):
        assert field.metadata.get("help"), f"{cls.__name__}.{field.name} has no help"
        assert f"        {field.name}: {field.metadata['help']}" in cls.__doc__


def test_every_config_field_with_a_flag_reaches_the_config():
    """The generic path: flags (named by metadata) → namespace → the configs, with no hand list."""
    argv = ["--rounds", "3", "--sparsity", "0.5", "--scope", "global", "--layer-rate", "fc1=0.3",
            "--layer-rate", "output=0.05", "--rewind", "iteration", "--rewind-iteration", "7",
            "--rewind-fraction", "0.25", "--model", "conv2_small", "--lr", "0.01", "--momentum", "0.5",
            "--optimizer", "sgd", "--weight-decay", "0.001", "--batch-size", "30", "--epochs", "2",
            "--eval-every", "10", "--patience", "none", "--test-every-eval", "--validation-size", "500",
            "--train-size", "none", "--test-size", "100", "--split-seed", "4", "--inputs", "unit"]
    args = build_parser().parse_args(["run", "--out", "x", *argv])
    config = config_from_args(args)
    assert config == preset("fast").replace(
        rounds=3, prune_rate=None, target_sparsity=0.5, scope="global", layer_rates=(("fc1", 0.3), ("output", 0.05)),
        rewind="iteration", rewind_iteration=7, rewind_fraction=0.25, model="conv2_small",
        train=dict(lr=0.01, momentum=0.5, optimizer="sgd", weight_decay=0.001, batch_size=30, iterations=None,
                   epochs=2.0, eval_every=10, patience=None, test_every_eval=True),
        data=dict(validation_size=500, train_size=None, test_size=100, split_seed=4, inputs="unit"))
    assert config_from_args(build_parser().parse_args(["run", "--out", "x"])) == preset("fast")


@pytest.mark.parametrize("argv,message", [
    (["--rate", "x"], "argument --rate: expected a number in [0, 1), got 'x'"),
    (["--layer-rate", "fc1=x"], "argument --layer-rate: expected a number in [0, 1), got 'x'"),
    (["--rounds", "many"], "argument --rounds: expected an integer, got 'many'"),
    (["--trials", "0"], "argument --trials: must be from 1 to 1000 (each trial is a full IMP run), got 0"),
    (["--lr", "big"], "argument --lr: expected a number, got 'big'"),
    (["--patience", "soon"], "argument --patience: expected an integer or none, got 'soon'"),
    (["--seed", "1.5"], "argument --seed: expected an integer, got '1.5'"),
])
def test_flag_errors_name_the_flag_never_a_function(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--out", "x", *argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err == f"lthkit run: error: {message} (see --help)\n"
    assert "_fraction" not in err and "_layer_rate" not in err and "_positive" not in err


@pytest.mark.parametrize("argv,message", [
    (["--seed", str(2 ** 70)], f"seed must be an integer in [0, 2**64), got {2 ** 70}"),
    (["--seed", str(2 ** 64 - 1), "--trials", "2"], f"seed must be an integer in [0, 2**64), got {2 ** 64}"),
    (["--layer-rate", "nosuch=0.1"],
     "layer rate given for unknown layer 'nosuch'; prunable weights are fc1.weight, fc2.weight, fc3.weight "
     "(or 'output')"),
    (["--rewind", "iteration", "--rewind-iteration", "20", "--epochs", "1", "--train-size", "600"],
     "rewind iteration 20 is past the training budget of 10 iterations"),
])
def test_config_errors_stop_before_data_and_cache(argv, message, tmp_path, capsys):
    """Checked while the flags become a config: no MNIST is read, no cache folder is made."""
    before = snapshot(tmp_path)
    status = main(["run", "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache"),
                   "--data", str(tmp_path / "no-mnist"), *argv])
    assert status == 2 and capsys.readouterr().err == f"lthkit run: error: {message}\n"
    assert snapshot(tmp_path) == before
