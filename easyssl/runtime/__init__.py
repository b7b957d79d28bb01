"""The bottom layer: device and precision, torch.distributed helpers, checkpoint files, time budgets.

Nothing here imports from any other easyssl package (see docs/ARCHITECTURE.md).
"""
