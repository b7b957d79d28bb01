"""torch.distributed: 2 processes with the gloo backend on CPU, launched by torchrun.

One torchrun launch (module-scoped fixture) trains, checks the gathered losses and their
gradients against a single process, embeds and streams embeddings; each rank saves what
it saw and the tests compare it with a single process.
"""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from easyssl import distributed, load_checkpoint, load_embeddings
from easyssl.api import build_training, default_config, embed_images
from tests.conftest import fast_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WORKER = r'''
import os, sys, warnings
import torch
torch.set_num_threads(1)
from torch import nn
from easyssl import distributed, train_embedding_model, embed_images, build_training
from easyssl.api import stream_embeddings
from easyssl.loss import NTXentLoss, VICRegLoss, BarlowTwinsLoss, DCLLoss

out, folder, run_dir = sys.argv[1:4]
FAST = dict(model={"backbone": "resnet-18", "width": 0.125}, collate={"input_size": 32},
            loader={"batch_size": 4, "num_workers": 0})
result = {}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    checkpoint = train_embedding_model(folder, checkpoint_dir=run_dir, seed=5,
                                       trainer={"max_epochs": 2, "progress_bar": False, "device": "cpu", "sync_batchnorm": True}, **FAST)
result["warnings"] = [str(w.message) for w in caught]
rank, world = distributed.rank(), distributed.world_size()
result.update(rank=rank, world=world, checkpoint=checkpoint, backend=torch.distributed.get_backend())
run = build_training(folder, checkpoint_dir=run_dir + "-built", trainer={"device": "cpu"}, **FAST)
result["sampler"] = type(run.trainer.dataloader.sampler).__name__
result["ddp"] = type(run.trainer.step_module).__name__
result["criterion_gathers"] = run.trainer.criterion.gather_distributed

# Gathered losses: the mean of the per-process losses is the loss of one process on the global batch,
# and after DDP's gradient averaging the weights get the gradient of that single-process loss.
losses = {}
for name, make in [("ntxent", lambda g: NTXentLoss(temperature=0.3, gather_distributed=g)),
                   ("vicreg", lambda g: VICRegLoss(gather_distributed=g)),
                   ("barlow", lambda g: BarlowTwinsLoss(gather_distributed=g)),
                   ("dcl", lambda g: DCLLoss(temperature=0.2, gather_distributed=g))]:
    torch.manual_seed(0)
    x0, x1 = torch.randn(12, 8), torch.randn(12, 8)
    head = nn.Linear(8, 6)
    single = nn.Linear(8, 6)
    single.load_state_dict(head.state_dict())
    ddp = nn.parallel.DistributedDataParallel(head)
    part = slice(rank * 6, (rank + 1) * 6)
    z0, z1 = ddp(torch.cat([x0[part], x1[part]])).chunk(2)  # one forward per step, as the trainer does
    local = make(True)(z0, z1)
    local.backward()
    mean = local.detach().clone()
    torch.distributed.all_reduce(mean)
    reference = make(False)(single(x0), single(x1))
    reference.backward()
    losses[name] = dict(mean=float(mean) / world, single=float(reference),
                        grad=[p.grad.clone() for p in head.parameters()], single_grad=[p.grad.clone() for p in single.parameters()])
result["losses"] = losses

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    embeddings, labels, filenames, skipped = embed_images(folder, checkpoint, progress_bar=False, num_workers=0, batch_size=5,
                                                          return_skipped=True)
result["embed"] = (embeddings, labels, filenames, skipped)
result["embed_warnings"] = [str(w.message) for w in caught]
streamed = stream_embeddings(folder, checkpoint, os.path.join(out, "streamed.npz"), progress_bar=False, num_workers=0, batch_size=5)
result["streamed"] = tuple(streamed)
from easyssl import find_duplicate_images
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the 10-step model: warned about in the test's own call
    result["duplicates"] = find_duplicate_images(folder, checkpoint, threshold=0.1, ratio=None, mutual=True, pixel_check=False, progress_bar=False,
                                                 num_workers=0, batch_size=5)
torch.save(result, os.path.join(out, f"rank{rank}.pt"))
'''


def _corrupt(folder):
    with open(os.path.join(folder, "circle", "broken.png"), "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)


@pytest.fixture(scope="module")
def torchrun(tmp_path_factory):
    """Run the worker under ``torchrun --nproc_per_node=2`` on the demo set (plus one broken file)."""
    from easyssl import make_demo_dataset

    folder = make_demo_dataset(tmp_path_factory.mktemp("demo"), images_per_class=8, image_size=32)
    _corrupt(folder)
    out = tmp_path_factory.mktemp("out")
    run_dir = str(out / "run")
    script = out / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), str(out), folder, run_dir]
    process = subprocess.Popen(command, cwd=str(out), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        log, _ = process.communicate(timeout=400)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        log, _ = process.communicate()
        raise AssertionError(f"torchrun timed out (a hang between processes?):\n{log[-4000:]}")
    assert process.returncode == 0, log[-6000:]
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]
    return {"folder": folder, "out": out, "run_dir": run_dir, "ranks": ranks, "log": log}


def test_training_under_torchrun_writes_one_usable_checkpoint(torchrun):
    ranks = torchrun["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1] and {r["world"] for r in ranks} == {2} and ranks[0]["backend"] == "gloo"
    assert ranks[0]["checkpoint"] == ranks[1]["checkpoint"] == os.path.join(torchrun["run_dir"], "last.ckpt")
    # the same layout as a single process, written by rank 0 (the checkpoint, metrics.csv and the loss curve)
    assert sorted(os.listdir(torchrun["run_dir"])) == ["last.ckpt", "metrics.csv", "training_curve.png"]
    state = load_checkpoint(ranks[0]["checkpoint"])
    # 41 files (one unreadable) split over 2 processes: 20 each, 5 batches of 4 per epoch, 2 epochs.
    assert state["epoch"] == 2 and state["step"] == 10
    assert state["config"]["criterion"]["gather_distributed"] is True
    assert ranks[0]["sampler"] == "DistributedSampler" and ranks[0]["ddp"] == "DistributedDataParallel"
    assert ranks[0]["criterion_gathers"] is True
    assert any("SyncBatchNorm needs GPUs" in w for w in ranks[0]["warnings"])
    # The unreadable file is summarised once, by rank 0.
    assert torchrun["log"].count("skipped 1 unreadable file(s) during training: circle/broken.png") == 1
    # The checkpoint loads in a single process.
    from easyssl import load_model

    model, config = load_model(ranks[0]["checkpoint"])
    assert config["trainer"]["sync_batchnorm"] is True


@pytest.mark.parametrize("loss", ["ntxent", "vicreg", "barlow", "dcl"])
def test_gathered_losses_equal_the_single_process_loss(torchrun, loss):
    for rank in torchrun["ranks"]:
        values = rank["losses"][loss]
        assert values["mean"] == pytest.approx(values["single"], rel=1e-5, abs=1e-6)
        for grad, single in zip(values["grad"], values["single_grad"]):
            assert torch.allclose(grad, single, rtol=1e-4, atol=1e-6), (loss, grad, single)


def test_embed_images_under_torchrun_matches_one_process(torchrun):
    folder, ranks = torchrun["folder"], torchrun["ranks"]
    checkpoint = ranks[0]["checkpoint"]
    with pytest.warns(UserWarning, match="broken.png"):
        embeddings, labels, filenames = embed_images(folder, checkpoint, progress_bar=False, num_workers=0, batch_size=5)
    assert len(filenames) == 40
    for rank in ranks:  # every rank gets everything, in the single-process order
        emb, lab, names, skipped = rank["embed"]
        assert names == filenames and lab == labels and skipped == ["circle/broken.png"]
        assert np.allclose(emb, embeddings, atol=1e-5)
    assert any("broken.png" in w for w in ranks[0]["embed_warnings"])
    assert not any("broken.png" in w for w in ranks[1]["embed_warnings"])  # rank 1 did not read it, and rank 0 reports
    path, count, dim, skipped = ranks[0]["streamed"]
    assert count == 40 and dim == embeddings.shape[1] and skipped == ["circle/broken.png"]
    streamed, streamed_labels, streamed_names = load_embeddings(path)
    assert streamed_names == filenames and streamed_labels == labels and np.allclose(streamed, embeddings, atol=1e-5)
    assert not [name for name in os.listdir(os.path.dirname(path)) if name.startswith(".tmp-")]  # the parts were removed



def test_find_duplicate_images_under_torchrun_matches_one_process(torchrun):
    from easyssl import find_duplicate_images

    checkpoint = torchrun["ranks"][0]["checkpoint"]
    with pytest.warns(UserWarning, match="left out of the search for duplicates: circle/broken.png"):
        single = find_duplicate_images(torchrun["folder"], checkpoint, threshold=0.1, ratio=None, mutual=True, pixel_check=False,
                                       progress_bar=False, num_workers=0, batch_size=5)
    # Mutual nearest neighbours above 0.1: some pairs, from both processes' shards (the embeddings alone decide: the
    # pixel check, run the same on every process after the gather, would keep none of these look-alikes). The model
    # trained a few steps in batches of 4, and its whitening is fitted on 40 images, fewer than its 96 features (so
    # shrunk hard): its nearest neighbours are at cosine 0.13-0.17.
    assert single
    assert torchrun["ranks"][0]["duplicates"] == torchrun["ranks"][1]["duplicates"] == single

# ---------------------------------------------------------------------------------- single process
def test_init_from_env_is_a_no_op_outside_torchrun(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "MASTER_ADDR"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.init_from_env() is False and not distributed.is_distributed()
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "localhost")
    assert distributed.launched_by_torchrun() is False and distributed.init_from_env() is False
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert distributed.launched_by_torchrun() is True


def test_shards_cover_everything_once_in_order():
    for n in (0, 1, 5, 41, 1000):
        for world in (1, 2, 3, 8):
            shards = [distributed.shard_range(n, r, world) for r in range(world)]
            assert [i for shard in shards for i in shard] == list(range(n))
            assert max(len(s) for s in shards) - min(len(s) for s in shards) <= 1


def test_sync_batchnorm_option(monkeypatch, demo_folder, tmp_path):
    assert default_config()["trainer"]["sync_batchnorm"] is False
    from easyssl import backbone

    net = backbone("resnet-18", width=0.125, input_size=32)
    assert distributed.convert_sync_batchnorm(net, torch.device("cpu")) is net  # not distributed: unchanged
    monkeypatch.setattr(distributed, "is_distributed", lambda: True)
    with pytest.warns(UserWarning, match="GPUs"):
        assert distributed.convert_sync_batchnorm(net, torch.device("cpu")) is net
    converted = distributed.convert_sync_batchnorm(net, torch.device("cuda"))
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in converted.modules())
    assert not any(type(m) is torch.nn.BatchNorm2d for m in converted.modules())


def test_losses_gather_only_when_distributed(demo_folder, tmp_path):
    config = default_config()
    assert config["criterion"]["gather_distributed"] == "auto"
    run = build_training(demo_folder, checkpoint_dir=tmp_path, **fast_config())
    assert run.config["criterion"]["gather_distributed"] is False and run.trainer.criterion.gather_distributed is False
    run = build_training(demo_folder, checkpoint_dir=tmp_path, **fast_config(criterion={"gather_distributed": True}))
    assert run.trainer.criterion.gather_distributed is True
