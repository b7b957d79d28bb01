"""DINOLoss checked against the paper's formula, by hand and with a naive loop reference."""

import math

import pytest
import torch

from easyssl.loss import DINOLoss


def naive_dino(teacher, student, center, teacher_temp, student_temp):
    """Loop-based reference: average over pairs (i, j), i != j, of the per-sample cross-entropy."""
    total, pairs = 0.0, 0
    for i, t in enumerate(teacher):
        for j, s in enumerate(student):
            if i == j:
                continue
            pairs += 1
            pair = 0.0
            for b in range(len(t)):
                tl = [(t[b][d] - center[d]) / teacher_temp for d in range(len(center))]
                sl = [s[b][d] / student_temp for d in range(len(center))]
                t_norm = sum(math.exp(v) for v in tl)
                s_lse = math.log(sum(math.exp(v) for v in sl))
                pair += -sum(math.exp(tl[d]) / t_norm * (sl[d] - s_lse) for d in range(len(center)))
            total += pair / len(t)
    return total / pairs


def test_hand_computed_single_pair():
    # One teacher view, two student views: only the pair (teacher 0, student 1) counts.
    # teacher / 0.04 = [ln 3, 0] -> P_t = [3/4, 1/4]; student 1 / 0.1 = [ln 3, 0] -> P_s = [3/4, 1/4]
    # loss = -(3/4 ln 3/4 + 1/4 ln 1/4) = 0.5623351446 (the entropy of [3/4, 1/4])
    loss_fn = DINOLoss(output_dim=2, warmup_teacher_temp=0.04, teacher_temp=0.04, student_temp=0.1)
    teacher = [torch.tensor([[0.04 * math.log(3), 0.0]])]
    student = [torch.tensor([[5.0, -5.0]]), torch.tensor([[0.1 * math.log(3), 0.0]])]
    loss = loss_fn(teacher, student, epoch=0)
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(0.5623351446, abs=1e-6)


def test_matches_naive_reference_with_center():
    torch.manual_seed(0)
    loss_fn = DINOLoss(output_dim=5, warmup_teacher_temp=0.04, teacher_temp=0.07, warmup_teacher_temp_epochs=10)
    with torch.no_grad():
        loss_fn.center.copy_(torch.randn(1, 5) * 0.1)
    teacher = [torch.randn(3, 5) * 0.1 for _ in range(2)]
    student = [torch.randn(3, 5) for _ in range(4)]
    center = loss_fn.center[0].tolist()
    loss = loss_fn(teacher, student, epoch=4)
    temp = 0.04 + (0.07 - 0.04) * 4 / 9  # linspace(0.04, 0.07, 10)[4]
    expected = naive_dino([t.tolist() for t in teacher], [s.tolist() for s in student], center, temp, 0.1)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_teacher_temperature_schedule():
    loss_fn = DINOLoss(output_dim=4, warmup_teacher_temp=0.04, teacher_temp=0.07, warmup_teacher_temp_epochs=30)
    # np.linspace(0.04, 0.07, 30)[e] during warmup, 0.07 afterwards
    assert loss_fn.teacher_temperature(0) == pytest.approx(0.04)
    assert loss_fn.teacher_temperature(15) == pytest.approx(0.04 + 0.03 * 15 / 29)  # 0.0555172
    assert loss_fn.teacher_temperature(29) == pytest.approx(0.07)
    assert loss_fn.teacher_temperature(30) == pytest.approx(0.07)
    assert loss_fn.teacher_temperature(100) == pytest.approx(0.07)
    assert DINOLoss(output_dim=4, warmup_teacher_temp_epochs=0, teacher_temp=0.05).teacher_temperature(0) == 0.05


def test_forward_uses_the_scheduled_temperature():
    loss_fn = DINOLoss(output_dim=2, warmup_teacher_temp=0.02, teacher_temp=0.04, warmup_teacher_temp_epochs=3,
                       center_momentum=1.0)  # momentum 1: the centre stays 0
    # teacher = [0.04 ln 3, 0]; student 1 = [0.1 ln 3, 0] -> P_s = [3/4, 1/4]
    teacher = [torch.tensor([[0.04 * math.log(3), 0.0]])]
    student = [torch.zeros(1, 2), torch.tensor([[0.1 * math.log(3), 0.0]])]
    # Epoch 0 (temp 0.02): teacher / 0.02 = [2 ln 3, 0] -> P_t = [9/10, 1/10]
    expected_0 = -(0.9 * math.log(0.75) + 0.1 * math.log(0.25))
    # Epoch >= 2 (temp 0.04): P_t = [3/4, 1/4]
    expected_end = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert loss_fn(teacher, student, epoch=0).item() == pytest.approx(expected_0, abs=1e-6)
    assert loss_fn(teacher, student, epoch=2).item() == pytest.approx(expected_end, abs=1e-6)
    assert loss_fn(teacher, student, epoch=50).item() == pytest.approx(expected_end, abs=1e-6)


def test_center_ema_update_and_state_dict():
    loss_fn = DINOLoss(output_dim=3, center_momentum=0.9)
    assert "center" in loss_fn.state_dict()
    assert torch.equal(loss_fn.center, torch.zeros(1, 3))
    t0 = torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    t1 = torch.tensor([[0.0, 0.0, 0.0], [4.0, 4.0, 4.0]])
    student = [torch.randn(2, 3) for _ in range(3)]
    loss_fn([t0, t1], student, epoch=0)
    # batch centre = mean of the 4 teacher rows = [2, 2, 2]; center = 0 * 0.9 + [2, 2, 2] * 0.1
    assert torch.allclose(loss_fn.center, torch.tensor([[0.2, 0.2, 0.2]]))
    loss_fn.update_center([torch.tensor([[1.0, 0.0, -1.0]])])
    # center = [0.2, 0.2, 0.2] * 0.9 + [1, 0, -1] * 0.1 = [0.28, 0.18, 0.08]
    assert torch.allclose(loss_fn.center, torch.tensor([[0.28, 0.18, 0.08]]))

    restored = DINOLoss(output_dim=3)
    restored.load_state_dict(loss_fn.state_dict())
    assert torch.allclose(restored.center, torch.tensor([[0.28, 0.18, 0.08]]))


def test_loss_uses_center_before_update():
    loss_fn = DINOLoss(output_dim=2, teacher_temp=0.04, warmup_teacher_temp=0.04, center_momentum=0.5)
    with torch.no_grad():
        loss_fn.center.copy_(torch.tensor([[0.0, -0.04 * math.log(3)]]))
    # (teacher - center) / 0.04 = [0, ln 3] -> P_t = [1/4, 3/4]; P_s = [3/4, 1/4]
    teacher = [torch.zeros(1, 2)]
    student = [torch.zeros(1, 2), torch.tensor([[0.1 * math.log(3), 0.0]])]
    expected = -(0.25 * math.log(0.75) + 0.75 * math.log(0.25))
    assert loss_fn(teacher, student, epoch=0).item() == pytest.approx(expected, abs=1e-6)


def test_gradients_flow_to_student_only():
    teacher = [torch.randn(4, 8, requires_grad=True) for _ in range(2)]
    student = [torch.randn(4, 8, requires_grad=True) for _ in range(4)]
    DINOLoss(output_dim=8)(teacher, student, epoch=3).backward()
    for s in student:
        assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
    for t in teacher:
        assert t.grad is None


def test_collapsed_and_identical_outputs_are_finite():
    loss_fn = DINOLoss(output_dim=4)
    const = torch.full((2, 4), 3.0)
    # Uniform teacher and student distributions over 4 dims: cross-entropy = ln 4
    assert loss_fn([const, const], [const, const, const], epoch=0).item() == pytest.approx(math.log(4), abs=1e-6)
    x = torch.randn(2, 4) * 50
    assert torch.isfinite(loss_fn([x, x], [x, x], epoch=0))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(dtype):
    torch.manual_seed(1)
    teacher = [torch.randn(2, 6).to(dtype) for _ in range(2)]
    student = [torch.randn(2, 6).to(dtype) for _ in range(3)]
    loss = DINOLoss(output_dim=6)(teacher, student, epoch=100)
    assert loss.dtype == torch.float32
    expected = naive_dino([t.float().tolist() for t in teacher], [s.float().tolist() for s in student],
                          [0.0] * 6, 0.04, 0.1)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_errors():
    loss_fn = DINOLoss(output_dim=4)
    x = torch.randn(2, 4)
    with pytest.raises(ValueError, match="output_dim=4"):
        loss_fn([torch.randn(2, 5)], [x, x], epoch=0)
    with pytest.raises(ValueError, match="same shape"):
        loss_fn([x], [x, torch.randn(3, 4)], epoch=0)
    with pytest.raises(ValueError, match="teacher_out must be a non-empty list"):
        loss_fn([], [x, x], epoch=0)
    with pytest.raises(ValueError, match="at least one pair"):
        loss_fn([x], [x], epoch=0)
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        loss_fn([x], [x, x], epoch=-1)
    with pytest.raises(ValueError, match="output_dim must be >= 1"):
        DINOLoss(output_dim=0)
    for name in ("warmup_teacher_temp", "teacher_temp", "student_temp"):
        with pytest.raises(ValueError, match=f"{name} must be > 0"):
            DINOLoss(output_dim=4, **{name: 0.0})
    with pytest.raises(ValueError, match="warmup_teacher_temp_epochs must be >= 0"):
        DINOLoss(output_dim=4, warmup_teacher_temp_epochs=-1)
    with pytest.raises(ValueError, match="center_momentum must be in"):
        DINOLoss(output_dim=4, center_momentum=1.5)
