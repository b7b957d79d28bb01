"""DINO loss: self-distillation with no labels (Caron et al., 2021)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from easyssl.runtime import distributed


class DINOLoss(nn.Module):
    """Cross-entropy between the centred, sharpened teacher and the student, over pairs of views.

    With teacher outputs ``t_i`` (the global views) and student outputs ``s_j`` (the same
    global views first, then the local views), all of shape ``(B, output_dim)``::

        P_t(i) = softmax((t_i - center) / teacher_temp)          (no gradient)
        log P_s(j) = log_softmax(s_j / student_temp)
        loss = mean over pairs (i, j), i != j, of mean_b( -sum_d P_t(i)[b, d] * log P_s(j)[b, d] )

    The teacher temperature rises linearly from ``warmup_teacher_temp`` (epoch 0) to
    ``teacher_temp`` (epoch ``warmup_teacher_temp_epochs - 1``), then stays there, as in
    the official code. After every forward the centre is updated with the teacher outputs::

        center = center * center_momentum + mean(teacher outputs) * (1 - center_momentum)

    The centre is a persistent buffer, so it is saved in checkpoints.

    Args:
        output_dim: Dimension of the DINO head's output (number of prototypes).
        warmup_teacher_temp: Teacher temperature at epoch 0; must be > 0.
        teacher_temp: Teacher temperature after the warmup; must be > 0.
        warmup_teacher_temp_epochs: Number of warmup epochs; must be >= 0.
        student_temp: Student temperature; must be > 0.
        center_momentum: EMA momentum of the centre, in ``[0, 1]``.

    Example:
        >>> loss_fn = DINOLoss(output_dim=1024)
        >>> teacher_out = [torch.randn(8, 1024) for _ in range(2)]
        >>> student_out = [torch.randn(8, 1024) for _ in range(6)]
        >>> loss = loss_fn(teacher_out, student_out, epoch=0)
    """

    center: torch.Tensor

    def __init__(
        self,
        output_dim: int = 65536,
        warmup_teacher_temp: float = 0.04,
        teacher_temp: float = 0.04,
        warmup_teacher_temp_epochs: int = 30,
        student_temp: float = 0.1,
        center_momentum: float = 0.9,
    ) -> None:
        super().__init__()
        if output_dim < 1:
            raise ValueError(f"output_dim must be >= 1, got {output_dim}")
        for name, value in (
            ("warmup_teacher_temp", warmup_teacher_temp),
            ("teacher_temp", teacher_temp),
            ("student_temp", student_temp),
        ):
            if value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if warmup_teacher_temp_epochs < 0:
            raise ValueError(f"warmup_teacher_temp_epochs must be >= 0, got {warmup_teacher_temp_epochs}")
        if not 0.0 <= center_momentum <= 1.0:
            raise ValueError(f"center_momentum must be in [0, 1], got {center_momentum}")
        self.output_dim = int(output_dim)
        self.warmup_teacher_temp = float(warmup_teacher_temp)
        self.teacher_temp = float(teacher_temp)
        self.warmup_teacher_temp_epochs = int(warmup_teacher_temp_epochs)
        self.student_temp = float(student_temp)
        self.center_momentum = float(center_momentum)
        self.register_buffer("center", torch.zeros(1, self.output_dim), persistent=True)

    def teacher_temperature(self, epoch: int | None) -> float:
        """Teacher temperature at ``epoch``: ``np.linspace(warmup, final, warmup_epochs)[epoch]``
        during the warmup, ``teacher_temp`` afterwards (and when ``epoch`` is ``None``)."""
        if epoch is None or epoch >= self.warmup_teacher_temp_epochs:
            return self.teacher_temp
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if self.warmup_teacher_temp_epochs == 1:
            return self.warmup_teacher_temp
        step = (self.teacher_temp - self.warmup_teacher_temp) / (self.warmup_teacher_temp_epochs - 1)
        return self.warmup_teacher_temp + step * epoch

    def _check(self, name: str, outputs: list[torch.Tensor], shape: torch.Size | None) -> torch.Size:
        if not isinstance(outputs, (list, tuple)) or len(outputs) == 0:
            raise ValueError(f"{name} must be a non-empty list of (B, output_dim) tensors")
        for out in outputs:
            if out.dim() != 2 or out.shape[1] != self.output_dim:
                raise ValueError(
                    f"{name} tensors must have shape (B, output_dim={self.output_dim}), got {tuple(out.shape)}"
                )
            if shape is not None and out.shape != shape:
                raise ValueError(f"all teacher and student outputs must have the same shape, got {tuple(out.shape)} and {tuple(shape)}")
            shape = out.shape
        return shape

    def forward(
        self, teacher_out: list[torch.Tensor], student_out: list[torch.Tensor], epoch: int | None = None
    ) -> torch.Tensor:
        """Return the DINO loss as a float32 scalar and update the centre.

        Args:
            teacher_out: One ``(B, output_dim)`` tensor per global view (from the teacher).
            student_out: One ``(B, output_dim)`` tensor per view, the global views first.
            epoch: Current epoch (0-based), which sets the teacher temperature.
        """
        shape = self._check("teacher_out", teacher_out, None)
        self._check("student_out", student_out, shape)
        n_t, n_s = len(teacher_out), len(student_out)
        n_pairs = n_t * n_s - min(n_t, n_s)
        if n_pairs == 0:
            raise ValueError("teacher_out and student_out must give at least one pair of different views")
        teacher_temp = self.teacher_temperature(epoch)

        with torch.autocast(device_type=teacher_out[0].device.type, enabled=False):
            teacher = torch.stack([t.detach().float() for t in teacher_out])  # (T, B, D)
            center = self.center.to(device=teacher.device, dtype=torch.float32)
            t_probs = F.softmax((teacher - center) / teacher_temp, dim=-1)
            s_logp = F.log_softmax(torch.stack([s.float() for s in student_out]) / self.student_temp, dim=-1)
            # ce[i, j] = sum_b sum_d -P_t(i)[b, d] * log P_s(j)[b, d]
            ce = -torch.einsum("tbd,sbd->ts", t_probs, s_logp)
            keep = ~torch.eye(n_t, n_s, dtype=torch.bool, device=ce.device)
            loss = ce[keep].sum() / (n_pairs * shape[0])

        self.update_center(teacher_out)
        return loss

    @torch.no_grad()
    def update_center(self, teacher_out: list[torch.Tensor]) -> None:
        """EMA-update the centre with the mean of all teacher outputs (over all processes)."""
        teacher = torch.cat([t.detach().float() for t in teacher_out], dim=0)
        batch_center = teacher.sum(dim=0, keepdim=True)
        count = teacher.shape[0]
        if distributed.is_distributed():
            dist.all_reduce(batch_center)
            count *= distributed.world_size()
        batch_center = batch_center / count
        if self.center.device != batch_center.device:
            self.center = self.center.to(batch_center.device)
        m = self.center_momentum
        self.center.copy_(self.center.float() * m + batch_center * (1 - m))
