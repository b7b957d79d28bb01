"""The AugSelf screen hook (``examples/benchmarks/augself_hook.py``) makes the views easyssl makes, records the
parameters it claims, turns its target with the views, and trains its head."""

from __future__ import annotations

import pytest
import torch

from screen_hook_fixtures import images, simclrs_loss, small_simclr  # noqa: F401 (pytest fixtures; first: it puts the hooks on the path)

import augself_hook

from easyssl.transforms import quarter_turn
from easyssl.transforms.batched import BatchViewAugment, batch_two_view_augment


def test_recording_views_are_easyssls_views(images):
    augment = BatchViewAugment(input_size=20, min_scale=0.25, cj_strength=0.5)
    torch.manual_seed(3)
    expected = augment(images)
    torch.manual_seed(3)
    augself_hook.RECORDED.clear()
    made = augself_hook.recording_forward(augment, images)
    assert torch.equal(made, expected)
    (parameters,) = augself_hook.RECORDED
    assert parameters.shape == (16, len(augself_hook.PARAMETERS))
    size = parameters[:, 2] * parameters[:, 3]
    assert (size >= 0.25 - 1e-5).all() and (size <= 1 + 1e-5).all()  # crops from 25% of the area
    jittered = (parameters[:, 4:7] != 1).any(1)
    assert 0 < jittered.sum() < 16  # colour jitter on 80% of the views, recorded where drawn


def test_centre_is_where_a_mark_lands_in_the_view():
    # one bright pixel; a crop of a third of the area around it: the mark's place in the view follows the recorded centre
    image = torch.zeros(1, 3, 28, 28, dtype=torch.uint8)
    image[0, :, 7, 20] = 255
    augment = BatchViewAugment(input_size=28, min_scale=0.3, max_scale=0.3, cj_prob=0, random_gray_scale=0, gaussian_blur=0,
                               hf_prob=1.0, normalize=None)
    checked = 0
    for seed in range(30):
        torch.manual_seed(seed)
        augself_hook.RECORDED.clear()
        view = augself_hook.recording_forward(augment, image)
        cx, cy, w, h = augself_hook.RECORDED[0][0, :4].tolist()
        if view.max() < 0.5:
            continue  # the mark fell outside this crop
        row, col = divmod(int(view[0, 0].argmax()), 28)
        # the image's mark at (20.5, 7.5) px, in the flipped view: x mirrored about the crop's centre
        expected_col = ((1 - 20.5 / 28) - (cx - w / 2)) / w * 28
        expected_row = (7.5 / 28 - (cy - h / 2)) / h * 28
        assert abs(col + 0.5 - expected_col) <= 1.5 and abs(row + 0.5 - expected_row) <= 1.5
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_target_turns_with_the_views(k):
    image = torch.zeros(1, 1, 28, 28)
    a, b = (3, 5), (20, 9)  # (x, y) pixels
    image[0, 0, a[1], a[0]] = 1.0
    image[0, 0, b[1], b[0]] = 2.0
    turned = quarter_turn(image, torch.tensor([k]))[0, 0]
    (ay, ax), (by, bx) = [(turned == value).nonzero()[0].tolist() for value in (1.0, 2.0)]  # (row, column) after the turn
    first = torch.tensor([[b[0] / 28, b[1] / 28, 0.5, 0.3, 1, 1, 1, 0]])
    second = torch.tensor([[a[0] / 28, a[1] / 28, 0.2, 0.4, 1, 1, 1, 0]])
    target = augself_hook.difference_target(first, second, torch.tensor([k]))
    assert torch.allclose(target[0, :2], torch.tensor([(bx - ax) / 28, (by - ay) / 28]), atol=1e-6)
    dw, dh = 0.5 - 0.2, 0.3 - 0.4
    assert torch.allclose(target[0, 2:4], torch.tensor([dh, dw] if k % 2 else [dw, dh]), atol=1e-6)  # a quarter turn swaps them


def test_simclr_learns_the_augmentation_difference(monkeypatch, simclrs_loss, small_simclr, images):
    from easyssl.methods import simclr

    # the hook replaces methods of easyssl's classes for the process; the fixtures and monkeypatch put them back
    monkeypatch.setattr(BatchViewAugment, "forward", BatchViewAugment.forward)
    augself_hook.use_augself(1.0, hidden=32)
    model = small_simclr()
    augment = batch_two_view_augment(input_size=20, min_scale=0.25)
    views = augment(images)
    criterion = simclr.NTXentLoss(0.2)
    loss = model.training_loss(views, criterion, None)
    assert augself_hook.RECORDED == []  # the step took its two views' parameters
    loss.backward()
    assert model.augself_head[0].weight.grad.abs().sum() > 0
    with pytest.raises(RuntimeError, match="no recorded view parameters"):
        model.training_loss(views, criterion, None)


def test_without_its_term_the_loss_is_simclrs(monkeypatch, simclrs_loss, small_simclr, images):
    # the hook writes SimCLR's training loss out again to reach its features: weight 0 must give SimCLR's loss exactly
    from easyssl.methods import simclr

    monkeypatch.setattr(BatchViewAugment, "forward", BatchViewAugment.forward)
    augself_hook.use_augself(0.0, hidden=32)
    model = small_simclr()
    augself_hook.RECORDED.clear()
    views = batch_two_view_augment(input_size=20, min_scale=0.25)(images)
    criterion = simclr.NTXentLoss(0.2)
    torch.manual_seed(1)  # the same quarter turns in both
    expected = simclrs_loss(model, views, criterion, None)
    torch.manual_seed(1)
    assert torch.allclose(model.training_loss(views, criterion, None), expected, rtol=1e-6, atol=1e-6)
