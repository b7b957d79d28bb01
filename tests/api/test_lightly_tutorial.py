"""LightlySSL's tutorial ("Lightly at a glance", the component flow) runs as written with easyssl's modules (issue 14 item 3).

The tutorial's code below is LightlySSL's, with only its imports changed to easyssl's, a tiny
folder for './my/cute/cats/dataset/' and 1 epoch for 10, batch 4 for 128.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import easyssl
from easyssl.inference import load_model
from easyssl.runtime.checkpoint import CheckpointError


def run_tutorial(input_dir: str):
    """LightlySSL's tutorial, imports changed to easyssl's."""
    import easyssl.data as data

    # the collate function applies random transforms to the input images
    collate_fn = data.ImageCollateFunction(input_size=32, cj_prob=0.5)

    # create a dataset from your image folder
    dataset = data.LightlyDataset(input_dir=input_dir)

    # build a PyTorch dataloader
    dataloader = torch.utils.data.DataLoader(
        dataset,                # pass the dataset to the dataloader
        batch_size=4,           # a large batch size helps with the learning
        shuffle=True,           # shuffling is important!
        collate_fn=collate_fn)  # apply transformations to the input images

    import easyssl.models as models
    import easyssl.loss as loss

    # use a resnet backbone
    resnet = torchvision.models.resnet18()
    resnet = nn.Sequential(*list(resnet.children())[:-1])

    # build the simclr model
    model = models.SimCLR(resnet, num_ftrs=512)

    # use a criterion for self-supervised learning
    # (normalized temperature-scaled cross entropy loss)
    criterion = loss.NTXentLoss(temperature=0.5)

    # get a PyTorch optimizer
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-0, weight_decay=1e-5)

    import easyssl.embedding as embedding

    # put all the pieces together in a single pytorch_lightning trainable!
    embedding_model = embedding.SelfSupervisedEmbedding(
        model,
        criterion,
        optimizer,
        dataloader)

    # do self-supervised learning for 10 epochs
    embedding_model.train_embedding(gpus=1, max_epochs=1)

    # make a new dataloader without the transformations
    dataloader = torch.utils.data.DataLoader(
        dataset,        # use the same dataset as before
        batch_size=1,   # we can use batch size 1 for inference
        shuffle=False,  # don't shuffle your data during inference
    )

    # embed your image dataset
    embeddings, labels, filenames = embedding_model.embed(dataloader)

    # access the ResNet backbone
    resnet = embedding_model.model.backbone
    return embedding_model, embeddings, labels, filenames, resnet


def test_lightly_tutorial_runs_as_written(class_folder, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)  # the default run folder easyssl_runs/<date_time>/ is made in the working directory
    embedding_model, embeddings, labels, filenames, resnet = run_tutorial(class_folder)
    assert embeddings.shape == (12, 512) and np.isfinite(embeddings).all()
    assert labels == [0] * 6 + [1] * 6 and filenames[0] == os.path.join("cats", "img0.png")
    assert isinstance(resnet, nn.Sequential) and resnet.num_features == 512  # found by a dry forward
    # train_embedding wrote a checkpoint by default, in a run folder it names (LightlySSL's .checkpoint attribute)
    checkpoint = embedding_model.checkpoint
    assert os.path.isfile(checkpoint) and os.path.dirname(os.path.dirname(checkpoint)) == "easyssl_runs"
    if not torch.cuda.is_available():
        assert "gpus=1 but there is no GPU" in caplog.text or embedding_model.device.type == "cpu"
    # that checkpoint embeds with embed_images, given the backbone (the architecture is the user's own)
    again, again_labels, again_names = easyssl.embed_images(class_folder, checkpoint, backbone=nn.Sequential(
        *list(torchvision.models.resnet18().children())[:-1]), device="cpu", precision="32", num_workers=0, progress_bar=False)
    assert again.shape == (12, 512) and again_names == filenames
    # a checkpoint saved by hand embeds the same way, and gives the trainer's own embeddings (same views, same weights)
    saved = embedding_model.save_checkpoint(tmp_path / "mine.ckpt")
    mine, _, _ = easyssl.embed_images(class_folder, saved, backbone=embedding_model.model, device="cpu", precision="32",
                                      num_workers=0, progress_bar=False)
    np.testing.assert_allclose(mine, again, rtol=1e-4, atol=1e-4)
    # ... and alone it says what to pass
    with pytest.raises(CheckpointError, match="backbone="):
        load_model(checkpoint)


def test_a_transform_passed_as_collate_fn_says_what_to_pass(class_folder):
    import easyssl.data as data
    import easyssl.embedding as embedding
    import easyssl.loss as loss
    import easyssl.models as models

    loader = torch.utils.data.DataLoader(data.LightlyDataset(input_dir=class_folder), batch_size=4,
                                         collate_fn=easyssl.SimCLRTransform(input_size=32))
    model = models.SimCLR(easyssl.backbone("resnet-18", width=0.125, input_size=32))
    with pytest.raises(TypeError, match=r"collate_fn=SimCLRTransform\(\.\.\.\) is a transform of one image.*MultiViewCollate"):
        embedding.SelfSupervisedEmbedding(model, loss.NTXentLoss(), torch.optim.SGD(model.parameters(), lr=0.1), loader)


def test_lightly_collate_functions_give_lightly_batches(class_folder):
    import easyssl.data as data

    dataset = data.LightlyDataset(input_dir=class_folder, filenames=["cats/img0.png", "dogs/img1.JPG"])
    assert dataset.get_filenames() == ["cats/img0.png", "dogs/img1.JPG"]
    for collate in (data.ImageCollateFunction(input_size=32, cj_prob=0.5), data.SimCLRCollateFunction(input_size=24),
                    data.MoCoCollateFunction(input_size=16), data.BaseCollateFunction(easyssl.EvalTransform(20))):
        (x0, x1), targets, names = collate([dataset[0], dataset[1]])
        size = collate.input_size
        assert x0.shape == x1.shape == (2, 3, size, size) and targets.tolist() == [0, 1] and names == dataset.get_filenames()
    assert "ImageCollateFunction" in dir(data)


def test_gpus_zero_trains_on_the_cpu_and_checkpoint_dir_none_writes_nothing(class_folder, tmp_path, monkeypatch):
    import easyssl.data as data
    import easyssl.embedding as embedding
    import easyssl.loss as loss
    import easyssl.models as models

    monkeypatch.chdir(tmp_path)
    loader = torch.utils.data.DataLoader(data.LightlyDataset(input_dir=class_folder), batch_size=4, shuffle=True,
                                         collate_fn=data.SimCLRCollateFunction(input_size=32), drop_last=True)
    model = models.SimCLR(easyssl.backbone("resnet-18", width=0.125, input_size=32))
    trainer = embedding.SelfSupervisedEmbedding(model, loss.NTXentLoss(), torch.optim.SGD(model.parameters(), lr=0.1), loader)
    assert trainer.train_embedding(max_epochs=1, gpus=0, checkpoint_dir=None, progress_bar=False) is None
    assert trainer.device.type == "cpu" and not os.path.exists("easyssl_runs")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback of gpus=1")
def test_gpus_without_a_gpu_says_so_once_and_uses_the_cpu(class_folder, tmp_path, monkeypatch, caplog):
    import easyssl.data as data
    import easyssl.embedding as embedding
    import easyssl.loss as loss
    import easyssl.models as models
    import easyssl.train.compat as compat

    monkeypatch.setattr(compat, "_said_no_gpu", [])  # a fresh process's state
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False, raising=False)
    loader = torch.utils.data.DataLoader(data.LightlyDataset(input_dir=class_folder), batch_size=4, drop_last=True,
                                         collate_fn=data.ImageCollateFunction(input_size=32))
    model = models.SimCLR(easyssl.backbone("resnet-18", width=0.125, input_size=32))
    trainer = embedding.SelfSupervisedEmbedding(model, loss.NTXentLoss(), torch.optim.SGD(model.parameters(), lr=0.1), loader)
    for _ in range(2):
        trainer.train_embedding(max_steps=1, gpus=1, checkpoint_dir=tmp_path / "run", progress_bar=False)
    assert caplog.text.count("gpus=1 but there is no GPU: training on the CPU") == 1 and trainer.device.type == "cpu"
    assert trainer.checkpoint == os.path.join(str(tmp_path / "run"), "last.ckpt")


def test_lightly_fifth_argument_is_a_scheduler(class_folder):
    import easyssl.data as data
    import easyssl.embedding as embedding
    import easyssl.loss as loss
    import easyssl.models as models

    loader = torch.utils.data.DataLoader(data.LightlyDataset(input_dir=class_folder), batch_size=4,
                                         collate_fn=data.ImageCollateFunction(input_size=32))
    model = models.SimCLR(easyssl.backbone("resnet-18", width=0.125, input_size=32))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    trainer = embedding.SelfSupervisedEmbedding(model, loss.NTXentLoss(), optimizer, loader, scheduler)  # LightlySSL's order
    assert trainer.scheduler is scheduler and trainer.lr_schedule is None
