"""--tensorboard (tensorboard_log.py): the events a run writes; the message without tensorboardX."""
import csv
import glob
import os
import struct
import sys
from types import SimpleNamespace

import pytest

import sngan_gluon  # noqa: F401
from tensorboardX.proto import event_pb2

from sngan_gluon.cli import EXIT_USER_ERROR
from sngan_gluon.cli import train as cli
from sngan_gluon.config import ConfigError, TrainConfig
from sngan_gluon.data import get_dataset
from sngan_gluon.sigma_log import read_sigmas
from sngan_gluon.tensorboard_log import TensorBoard
from sngan_gluon.trainer import GANTrainer
from tiny_runs import WIDTHS


def read_events(folder):
    """Every Event of the event files under ``folder``, in file order.

    An event file is TFRecord framed: uint64 length, uint32 CRC of the length,
    the serialized Event, uint32 CRC of the data (CRCs not checked here).
    """
    events = []
    for path in sorted(glob.glob(os.path.join(folder, "events.out.tfevents.*"))):
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event()
            event.ParseFromString(data[pos + 12:pos + 12 + length])
            events.append(event)
            pos += 12 + length + 4
    return events


def scalars(events):
    """tag -> [(step, value)] of the scalar summaries."""
    out = {}
    for event in events:
        for value in event.summary.value:
            if value.HasField("simple_value"):
                out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out


def test_run_writes_losses_lr_d_outputs_sigmas_evaluation_and_samples(tmp_path):
    out = str(tmp_path / "run")
    config = TrainConfig(dataset="synthetic", batch_size=8, iterations=2, log_every=1,
                         sample_every=2, checkpoint_every=100, eval_every=2, quiet=True,
                         tensorboard=True, **WIDTHS)
    trainer = GANTrainer(config, dataset=get_dataset("synthetic", image_size=32))
    trainer.train(out, evaluator=lambda t: dict(is_mean=2.5, is_std=0.25, fid=40.0))
    events = read_events(os.path.join(out, "tensorboard"))
    found = scalars(events)
    with open(os.path.join(out, "log.csv")) as f:
        log = list(csv.DictReader(f))
    for key, tag in (("d_loss", "loss/d_loss"), ("g_loss", "loss/g_loss"), ("lr", "train/lr"),
                     ("d_real", "d_output/d_real"), ("d_fake", "d_output/d_fake")):
        assert [s for s, _ in found[tag]] == [1, 2], tag
        assert [v for _, v in found[tag]] == pytest.approx([float(r[key]) for r in log],
                                                           rel=1e-6), tag
    layers, rows = read_sigmas(os.path.join(out, "sigmas.csv"))
    # the standard CNN's D (table 3): seven convolutions and the dense head
    assert layers == ["features.%d" % i for i in range(0, 14, 2)] + ["head.linear"]
    for layer in layers:
        steps, values = zip(*found["sigma/" + layer])
        assert steps == (1, 2), layer
        assert values == pytest.approx([r[layer] for r in rows], rel=1e-6), layer
    assert found["eval/is_mean"] == [(2, 2.5)] and found["eval/fid"] == [(2, 40.0)]
    images = [(e.step, v.image) for e in events for v in e.summary.value if v.tag == "samples"]
    assert [step for step, _ in images] == [2]
    grid = images[0][1]
    assert (grid.height, grid.width) == (8 * 34 + 2, 8 * 34 + 2)  # 8 x 8 32-pixel images
    assert grid.encoded_image_string.startswith(b"\x89PNG")


def test_without_tensorboardx_the_flag_says_what_to_install_and_exits_2(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import raises ImportError
    out = str(tmp_path / "run")
    code = cli.main(["--dataset", "synthetic", "--iterations", "1", "--quiet", "--tensorboard",
                     "--out-dir", out])
    assert code == EXIT_USER_ERROR
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and 'pip install ".[tensorboard]"' in err, err
    assert "tensorboardX" in err
    assert not os.path.exists(out)  # refused before any work
    config = TrainConfig(dataset="synthetic", tensorboard=True)
    assert config.validate() is config  # a checkpoint of a --tensorboard run stays readable
    with pytest.raises(ConfigError, match="tensorboardX"):
        GANTrainer(config, dataset=get_dataset("synthetic", image_size=32))


@pytest.mark.parametrize("iteration,purged_from", [(0, []), (3, [4])])
def test_a_resumed_run_hides_the_events_after_its_checkpoint(tmp_path, iteration, purged_from):
    trainer = SimpleNamespace(iteration=iteration, run=SimpleNamespace(path=str(tmp_path)))
    extension = TensorBoard()
    extension.initialize(trainer)
    extension.writer.add_scalar("loss/d_loss", 1.0, iteration + 1)
    extension.finalize(trainer)
    events = read_events(os.path.join(str(tmp_path), "tensorboard"))
    starts = [e.step for e in events
              if e.HasField("session_log") and e.session_log.status == event_pb2.SessionLog.START]
    assert starts == purged_from  # TensorBoard purges the events from that step on
