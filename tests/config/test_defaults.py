import io

import pytest
import torch

from easyssl import defaults
from easyssl.runtime import device as runtime_device


def _fake_cpuinfo(flags: str):
    def fake_open(path, *args, **kwargs):
        assert path == "/proc/cpuinfo"
        return io.StringIO(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {flags}\n")

    return fake_open


@pytest.mark.parametrize("flags, expected", [("amx_bf16 amx_tile", "bf16"), ("avx512f avx512_bf16", "bf16"), ("avx512f", "32"), ("", "32")])
def test_auto_precision_on_cpu_follows_the_bf16_instructions(monkeypatch, flags, expected):
    monkeypatch.setattr(runtime_device, "open", _fake_cpuinfo(flags), raising=False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert runtime_device.resolve_precision("auto", torch.device("cpu")) == expected
    assert runtime_device.resolve_precision("32", torch.device("cpu")) == "32"  # an explicit choice is kept


def test_unknown_precision_is_an_error():
    with pytest.raises(ValueError, match="precision must be 'auto' or one of"):
        runtime_device.resolve_precision("half", torch.device("cpu"))


@pytest.mark.parametrize("cores, expected", [(1, 0), (2, 0), (3, 0), (4, 1), (16, 4)])
def test_embedding_workers_leave_small_cpus_to_the_model(monkeypatch, cores, expected):
    monkeypatch.setattr(defaults, "cpu_count", lambda: cores)
    assert defaults.default_embed_workers(torch.device("cpu")) == expected


def _gpu_of(monkeypatch, multiprocessors: int) -> torch.device:
    """A CUDA device with ``multiprocessors`` streaming multiprocessors, as far as the rules can tell."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: type("Props", (), {"multi_processor_count": multiprocessors})())
    return torch.device("cuda")


def test_backbone_and_batch_size_rules(monkeypatch):
    cpu, gpu = torch.device("cpu"), _gpu_of(monkeypatch, 58)  # an L4's size: below the large-GPU rule
    assert defaults.default_backbone(32, cpu) == ("resnet-18", 0.25)
    assert defaults.default_backbone(224, cpu) == ("resnet-18", 1.0)
    assert defaults.default_backbone(32, gpu) == ("resnet-18", 0.25)  # the small-image recipe on CPUs and smaller GPUs
    assert defaults.default_batch_size(cpu, 32, 10_000) == 128
    assert defaults.default_batch_size(gpu, 224, 10_000) == 128 and defaults.default_batch_size(gpu, 96, 10_000) == 256
    assert defaults.default_batch_size(cpu, 32, 40) == 20  # at most half the images
    # small images on CUDA: 256 (the fourteenth session's H200 runs: 0.893-0.894 kNN within 60 s, 0.8855 at 1024)
    assert defaults.default_batch_size(gpu, 28, 10_000) == 256 and defaults.default_batch_size(gpu, 64, 10_000) == 256
    assert defaults.default_batch_size(gpu, 28, 400) == 200 and defaults.default_batch_size(torch.device("mps"), 28, 10_000) == 256
    assert defaults.default_learning_rate(0.5, defaults.default_batch_size(gpu, 28, 10_000)) == 0.5  # the linear rule


def test_small_images_on_a_large_gpu_train_the_full_width_model_with_two_pooled_stages(monkeypatch):
    """Twenty-second session, H200, Fashion-MNIST within 60 s: width 1 (two pooled stages) 0.902 and 0.8975 at k=200
    as returned, against 0.8845 and 0.893 at quarter width; an explicit width 1 still keeps torchvision's features."""
    from easyssl.config import merge_config, resolve_auto
    from easyssl.methods import get_method

    h200 = _gpu_of(monkeypatch, 132)
    assert defaults.is_large_gpu(h200) and not defaults.is_large_gpu(torch.device("cpu"))
    assert defaults.default_backbone(28, h200, 60.0) == ("resnet-18", 1.0)
    assert defaults.default_backbone(224, h200) == ("resnet-18", 1.0)  # photos: as before
    ruled = resolve_auto(merge_config("simclr", {"collate": {"input_size": 28}}), get_method("simclr"), list(range(1000)), h200)
    assert ruled["model"]["width"] == 1.0 and ruled["model"]["pooled_stages"] == 2
    given = resolve_auto(merge_config("simclr", {"collate": {"input_size": 28}, "model": {"width": 1.0}}), get_method("simclr"),
                         list(range(1000)), h200)
    assert given["model"]["width"] == 1.0 and given["model"]["pooled_stages"] == 1  # the model to export
    small = resolve_auto(merge_config("simclr", {"collate": {"input_size": 28}}), get_method("simclr"), list(range(1000)), _gpu_of(monkeypatch, 40))
    assert small["model"]["width"] == 0.25 and small["model"]["pooled_stages"] == 2  # a T4's size keeps the quarter width


def test_training_on_cuda_decodes_with_every_spare_core_up_to_16(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(defaults, "cpu_count", lambda: 16)
    assert defaults.default_num_workers(cuda, 4096, 224, cached=True) == 15  # the H200's first epoch was decode-bound at 8
    monkeypatch.setattr(defaults, "cpu_count", lambda: 64)
    assert defaults.default_num_workers(cuda, 4096, 224) == 16
    monkeypatch.setattr(defaults, "cpu_count", lambda: 4)
    assert defaults.default_num_workers(cuda, 4096, 224) == 3


def test_short_cpu_budgets_of_small_images_take_resnet_10(monkeypatch):
    cpu, gpu = torch.device("cpu"), _gpu_of(monkeypatch, 58)
    # up to five minutes on a CPU (nineteenth session: +2.5 / +1.1 points as returned at 60 / 120 s, quarter width)
    assert defaults.default_backbone(28, cpu, 60.0) == ("resnet-10", 0.25)
    assert defaults.default_backbone(28, cpu, defaults.SMALL_IMAGE_SHORT_BUDGET) == ("resnet-10", 0.25)
    assert defaults.default_backbone(28, cpu, defaults.SMALL_IMAGE_SHORT_BUDGET + 1) == ("resnet-18", 0.25)  # 10 minutes: a tie
    assert defaults.default_backbone(28, cpu, None) == ("resnet-18", 0.25)  # no budget: epochs, not seconds
    assert defaults.default_backbone(28, gpu, 60.0) == ("resnet-18", 0.25)  # ResNet-10 not measured on GPUs
    assert defaults.default_backbone(96, cpu, 60.0) == ("resnet-18", 1.0)  # photos keep theirs
    import numpy as np

    from easyssl import build_training
    from easyssl.data import SSLDataset

    images = SSLDataset.from_torch_dataset([(np.full((28, 28, 3), i * 20, np.uint8), 0) for i in range(8)])
    model = build_training(dataset=images, trainer={"device": "cpu", "max_time": "00:00:02:00"}, checkpoint_dir=None).config["model"]
    assert (model["backbone"], model["width"], model["pooled_stages"]) == ("resnet-10", 0.25, 2)
    run = build_training(dataset=images, trainer={"device": "cpu", "max_time": 120}, checkpoint_dir=None)
    assert run.trainer.model.backbone.num_features == 192 and len(run.trainer.model.backbone.layer1) == 1  # one block a stage
    model = build_training(dataset=images, trainer={"device": "cpu", "max_time": 600, "precision": "32"}, checkpoint_dir=None).config["model"]
    assert (model["backbone"], model["width"]) == ("resnet-18", 0.25)
    model = build_training(dataset=images, model={"backbone": "resnet-18"}, trainer={"device": "cpu", "max_time": 60},
                           checkpoint_dir=None).config["model"]
    assert (model["backbone"], model["width"]) == ("resnet-18", 1.0)  # a named backbone is built as named


def test_longer_cpu_budgets_in_bf16_widen_the_small_image_resnet(monkeypatch):
    cpu, gpu = torch.device("cpu"), _gpu_of(monkeypatch, 58)
    # past five minutes a bf16 CPU fits about 50 quarter-width epochs, where the recipe saturates (twenty-third session)
    assert defaults.default_backbone(28, cpu, 600.0, "bf16") == ("resnet-18", defaults.BF16_CPU_SMALL_IMAGE_WIDTH) == ("resnet-18", 0.375)
    assert defaults.default_backbone(28, cpu, 600.0, "bf16-mixed")[1] == 0.375
    assert defaults.default_backbone(28, cpu, 600.0, "32") == ("resnet-18", 0.25)  # float32 CPUs fit half the epochs: a tie there
    assert defaults.default_backbone(28, cpu, 600.0) == ("resnet-18", 0.25)
    assert defaults.default_backbone(28, cpu, defaults.SMALL_IMAGE_SHORT_BUDGET, "bf16") == ("resnet-10", 0.25)  # short: ResNet-10
    assert defaults.default_backbone(28, cpu, None, "bf16") == ("resnet-18", 0.25)  # no budget: measured on budgets only
    assert defaults.default_backbone(28, gpu, 600.0, "bf16") == ("resnet-18", 0.25)  # GPUs: their own rules
    assert defaults.default_backbone(96, cpu, 600.0, "bf16") == ("resnet-18", 1.0)  # photos keep theirs
    import numpy as np

    from easyssl import build_training
    from easyssl.data import SSLDataset

    images = SSLDataset.from_torch_dataset([(np.full((28, 28, 3), i * 20, np.uint8), 0) for i in range(8)])
    run = build_training(dataset=images, trainer={"device": "cpu", "max_time": "00:00:10:00", "precision": "bf16"}, checkpoint_dir=None)
    model = run.config["model"]
    assert (model["backbone"], model["width"], model["pooled_stages"]) == ("resnet-18", 0.375, 2)
    assert run.trainer.model.backbone.num_features == 288 and run.trainer.precision == "bf16"
    # "auto" reads the CPU: bf16 where it has bf16 matrix instructions, so the width follows the same flags
    monkeypatch.setattr(runtime_device, "open", _fake_cpuinfo("avx512f avx512_bf16"), raising=False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert build_training(dataset=images, trainer={"device": "cpu", "max_time": 600}, checkpoint_dir=None).config["model"]["width"] == 0.375
    monkeypatch.setattr(runtime_device, "open", _fake_cpuinfo("avx512f"), raising=False)
    assert build_training(dataset=images, trainer={"device": "cpu", "max_time": 600}, checkpoint_dir=None).config["model"]["width"] == 0.25


def test_learning_rate_scales_linearly_up_to_256_then_with_the_square_root():
    assert defaults.default_learning_rate(0.5, 128) == 0.25 and defaults.default_learning_rate(0.5, 256) == 0.5
    assert defaults.default_learning_rate(0.5, 1024) == 1.0 and defaults.default_learning_rate(0.5, 4096) == 2.0
    import numpy as np

    from easyssl import build_training
    from easyssl.data import SSLDataset

    images = SSLDataset.from_torch_dataset([(np.full((28, 28, 3), i * 20, np.uint8), 0) for i in range(8)])
    run = build_training(dataset=images, loader={"batch_size": 1024}, trainer={"device": "cpu"}, checkpoint_dir=None)
    assert run.config["optimizer"]["lr"] == 1.0  # SimCLR's base 0.5 at 1024 images
    assert defaults.default_input_size([500, 375]) == 224 and defaults.default_input_size([]) == 224


def test_input_size_rule():
    # small images train at their own size, rounded up to a multiple of 4 px
    assert defaults.default_input_size([28, 28, 30]) == 28
    assert defaults.default_input_size([32] * 5) == 32
    assert defaults.default_input_size([41, 41, 43]) == 44
    assert defaults.default_input_size([8, 9]) == 16  # at least 16
    assert defaults.default_input_size([64, 64]) == 64
    # larger ones round up to one of INPUT_SIZES, at most 224
    assert defaults.default_input_size([65, 70, 70]) == 96
    assert defaults.default_input_size([100, 120]) == 128
    assert defaults.default_input_size([3000, 4000]) == 224
