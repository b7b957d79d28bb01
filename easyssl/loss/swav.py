"""SwaV loss: swapped prediction of online cluster assignments (Caron et al., 2020)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from easyssl.runtime import distributed


@torch.no_grad()
def sinkhorn(
    out: torch.Tensor, iterations: int = 3, epsilon: float = 0.05, gather_distributed: bool = False
) -> torch.Tensor:
    """Soft, equipartitioned cluster assignments of a batch with the Sinkhorn-Knopp algorithm.

    As in the official SwaV code, with ``out`` the ``(B, K)`` prototype scores::

        Q = exp(out / epsilon).T;  Q /= sum(Q)                     (K x B)
        repeat iterations times:
            Q /= sum of each row;    Q /= K                        (prototypes equally used)
            Q /= sum of each column; Q /= B                        (one unit of mass per sample)
        return (Q * B).T

    Each row of the result (one sample) sums to 1 and, once converged, each column (one
    prototype) sums to ``B / K``. The scores' maximum is subtracted before ``exp`` and the
    iterations run in float64 (float32 on MPS), so large scores give no overflow.

    Args:
        out: Prototype scores of shape ``(B, K)``.
        iterations: Number of Sinkhorn iterations; must be >= 0.
        epsilon: Entropic regularisation; must be > 0. Smaller is sharper.
        gather_distributed: Under ``torch.distributed``, normalise over the batch of all
            processes (``B`` is then the global batch size).

    Returns:
        The assignments, shape ``(B, K)``, in float32 (or float64 if ``out`` is float64).

    Example:
        >>> q = sinkhorn(torch.randn(16, 32))
    """
    if out.dim() != 2:
        raise ValueError(f"out must be a (B, K) tensor, got shape {tuple(out.shape)}")
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    if epsilon <= 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    result_dtype = torch.promote_types(out.dtype, torch.float32)
    work_dtype = torch.float32 if out.device.type == "mps" else torch.float64
    gathered = gather_distributed and distributed.is_distributed()

    with torch.autocast(device_type=out.device.type, enabled=False):
        scores = out.detach().to(work_dtype)
        top = scores.max()
        if gathered:
            dist.all_reduce(top, op=dist.ReduceOp.MAX)  # the same shift on every rank
        q = torch.exp((scores - top) / epsilon).T  # (K, B)
        n_clusters, batch = q.shape[0], q.shape[1] * (distributed.world_size() if gathered else 1)
        tiny = torch.finfo(work_dtype).tiny

        total = q.sum()
        if gathered:
            dist.all_reduce(total)
        q = q / total.clamp_min(tiny)
        for _ in range(iterations):
            rows = q.sum(dim=1, keepdim=True)
            if gathered:
                dist.all_reduce(rows)
            q = q / rows.clamp_min(tiny) / n_clusters
            q = q / q.sum(dim=0, keepdim=True).clamp_min(tiny) / batch
        return (q * batch).T.to(result_dtype)


class SwaVLoss(nn.Module):
    """Swapped-prediction loss of SwaV over multi-crop views.

    Every output is a ``(N, K)`` tensor of prototype scores of one view. For each
    high-resolution view ``i`` the codes ``q_i = sinkhorn(scores_i)`` (no gradient) are
    predicted from every other view ``v``::

        l(i, v) = -mean_n sum_k q_i[n, k] * log_softmax(scores_v / temperature)[n, k]
        loss    = mean_i mean_{v != i} l(i, v)

    With a queue, ``q_i`` is computed on ``scores_i`` concatenated with
    ``queue_outputs[i]`` (scores of earlier batches), keeping only the first ``N`` rows.

    Args:
        temperature: Softmax temperature of the predictions; must be > 0.
        sinkhorn_iterations: Iterations of :func:`sinkhorn`; must be >= 0.
        sinkhorn_epsilon: Entropic regularisation of :func:`sinkhorn`; must be > 0.
        sinkhorn_gather_distributed: Run Sinkhorn over the global batch under
            ``torch.distributed``.

    Example:
        >>> loss_fn = SwaVLoss()
        >>> high = [torch.randn(8, 32) for _ in range(2)]
        >>> low = [torch.randn(8, 32) for _ in range(4)]
        >>> loss = loss_fn(high, low)
    """

    def __init__(
        self,
        temperature: float = 0.1,
        sinkhorn_iterations: int = 3,
        sinkhorn_epsilon: float = 0.05,
        sinkhorn_gather_distributed: bool = False,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if sinkhorn_iterations < 0:
            raise ValueError(f"sinkhorn_iterations must be >= 0, got {sinkhorn_iterations}")
        if sinkhorn_epsilon <= 0:
            raise ValueError(f"sinkhorn_epsilon must be > 0, got {sinkhorn_epsilon}")
        self.temperature = float(temperature)
        self.sinkhorn_iterations = int(sinkhorn_iterations)
        self.sinkhorn_epsilon = float(sinkhorn_epsilon)
        self.sinkhorn_gather_distributed = sinkhorn_gather_distributed

    def subloss(self, z: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Cross-entropy between the codes ``q`` and the predictions from scores ``z``."""
        return -torch.mean(torch.sum(q * F.log_softmax(z / self.temperature, dim=1), dim=1))

    def forward(
        self,
        high_resolution_outputs: list[torch.Tensor],
        low_resolution_outputs: list[torch.Tensor] | None = None,
        queue_outputs: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Return the SwaV loss as a float32 scalar.

        Args:
            high_resolution_outputs: Prototype scores ``(N, K)`` of the high-resolution views.
            low_resolution_outputs: Prototype scores ``(N, K)`` of the low-resolution views.
            queue_outputs: Optional, one ``(M, K)`` tensor of queued scores per
                high-resolution view.
        """
        high = list(high_resolution_outputs) if high_resolution_outputs is not None else []
        low = list(low_resolution_outputs) if low_resolution_outputs is not None else []
        if len(high) == 0:
            raise ValueError("high_resolution_outputs must contain at least one (N, K) tensor")
        if len(high) + len(low) < 2:
            raise ValueError("SwaV needs at least two views in high_resolution_outputs and low_resolution_outputs")
        shape = high[0].shape
        if len(shape) != 2:
            raise ValueError(f"high_resolution_outputs must be (N, K) tensors, got shape {tuple(shape)}")
        for name, outputs in (("high_resolution_outputs", high), ("low_resolution_outputs", low)):
            for out in outputs:
                if out.shape != shape:
                    raise ValueError(f"all {name} must have shape {tuple(shape)}, got {tuple(out.shape)}")
        if queue_outputs is not None:
            if len(queue_outputs) != len(high):
                raise ValueError(
                    f"queue_outputs must have one tensor per high-resolution view ({len(high)}), got {len(queue_outputs)}"
                )
            for queue in queue_outputs:
                if queue.dim() != 2 or queue.shape[1] != shape[1]:
                    raise ValueError(f"queue_outputs must be (M, K={shape[1]}) tensors, got shape {tuple(queue.shape)}")

        with torch.autocast(device_type=high[0].device.type, enabled=False):
            views = [v.float() for v in high + low]
            total = views[0].new_zeros(())
            for i in range(len(high)):
                with torch.no_grad():
                    scores = views[i].detach()
                    if queue_outputs is not None:
                        scores = torch.cat([scores, queue_outputs[i].detach().to(scores)], dim=0)
                    q = sinkhorn(
                        scores,
                        iterations=self.sinkhorn_iterations,
                        epsilon=self.sinkhorn_epsilon,
                        gather_distributed=self.sinkhorn_gather_distributed,
                    )[: shape[0]]
                sublosses = [self.subloss(views[v], q) for v in range(len(views)) if v != i]
                total = total + torch.stack(sublosses).mean()
            return total / len(high)
