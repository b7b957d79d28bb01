"""Apple GPUs (issue 16, item 4): the choice of device, the CPU fallback and the precision rules, with the backends mocked."""

import warnings

import pytest
import torch

import easyssl.defaults as defaults
from easyssl.config import merge_config, resolve_auto
from easyssl.methods import get_method
from easyssl.runtime import device as device_module
from easyssl.runtime import mps_env
from easyssl.runtime.device import autocast, resolve_device, resolve_precision

MPS = torch.device("mps")


@pytest.fixture()
def backends(monkeypatch):
    """Set which GPUs the process sees: ``backends(cuda=False, mps=True)``."""

    def set_backends(cuda: bool, mps: bool | Exception) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)

        def mps_available():
            if isinstance(mps, Exception):
                raise mps
            return mps

        monkeypatch.setattr(torch.backends.mps, "is_available", mps_available)

    monkeypatch.setattr(device_module, "_FALLBACK_WARNED", [])
    monkeypatch.setenv(mps_env.FALLBACK_VARIABLE, "1")
    monkeypatch.setattr(mps_env, "TORCH_LOADED_FIRST", False)
    return set_backends


def test_auto_prefers_cuda_then_an_apple_gpu_then_the_cpu(backends):
    backends(cuda=True, mps=True)
    assert resolve_device("auto") == torch.device("cuda", 0)
    backends(cuda=False, mps=True)
    assert resolve_device("auto") == MPS and resolve_device(None) == MPS
    backends(cuda=False, mps=False)
    assert resolve_device("auto") == torch.device("cpu")
    backends(cuda=False, mps=RuntimeError("Metal is broken"))
    assert resolve_device("auto") == torch.device("cpu")


def test_the_fallback_variable_is_set_on_macos_unless_the_user_set_it():
    env: dict[str, str] = {}
    assert mps_env.enable_mps_fallback(env, platform="darwin") and env == {mps_env.FALLBACK_VARIABLE: "1"}
    env = {mps_env.FALLBACK_VARIABLE: "0"}
    assert not mps_env.enable_mps_fallback(env, platform="darwin") and env[mps_env.FALLBACK_VARIABLE] == "0"
    env = {}
    assert not mps_env.enable_mps_fallback(env, platform="linux") and env == {}
    assert mps_env.fallback_requested({mps_env.FALLBACK_VARIABLE: "1"}) and not mps_env.fallback_requested({mps_env.FALLBACK_VARIABLE: "0"})


def test_a_fallback_set_after_torch_loaded_is_reported_once(backends, monkeypatch):
    backends(cuda=False, mps=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_device("auto") == MPS  # in effect (set before torch loaded): no warning
    monkeypatch.setattr(mps_env, "TORCH_LOADED_FIRST", True)
    monkeypatch.setattr(mps_env, "SET_BY_EASYSSL", True)  # easyssl set it, but torch had loaded already
    with pytest.warns(RuntimeWarning, match="export PYTORCH_ENABLE_MPS_FALLBACK=1"):
        resolve_device("mps")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_device("mps")  # once per process
    monkeypatch.setattr(device_module, "_FALLBACK_WARNED", [])
    monkeypatch.setenv(mps_env.FALLBACK_VARIABLE, "0")  # the user's explicit choice: respected, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_device("mps")


def test_precision_on_an_apple_gpu(monkeypatch):
    assert resolve_precision("auto", MPS) == "32"
    monkeypatch.setattr(device_module, "mps_autocast_dtypes", lambda: (torch.float16,))  # macOS 13: no bf16 autocast
    assert resolve_precision("16", MPS) == "16"
    with pytest.raises(ValueError, match="not available on this Apple GPU.*macOS 14"):
        resolve_precision("bf16", MPS)
    monkeypatch.setattr(device_module, "mps_autocast_dtypes", lambda: (torch.float16, torch.bfloat16))
    assert resolve_precision("bf16-mixed", MPS) == "bf16-mixed"
    monkeypatch.setattr(device_module, "mps_autocast_dtypes", lambda: ())  # a torch without MPS autocast
    with pytest.raises(ValueError, match="precision='32'"):
        resolve_precision("16", MPS)
    assert isinstance(autocast(MPS, "32"), type(autocast(torch.device("cpu"), "32")))  # float32: no autocast at all


def test_an_apple_gpu_gets_the_gpu_defaults_without_pinned_memory(monkeypatch):
    monkeypatch.setattr(defaults, "cpu_count", lambda: 10)
    assert defaults.default_num_workers(MPS, 1000, 32, cached=True) == 8  # at most 8: workers start by spawn on macOS
    assert defaults.default_num_workers(torch.device("cuda"), 1000, 32, cached=True) == 9  # CUDA: every spare core, up to 16
    assert defaults.default_batch_size(MPS, 32, 10_000) == 256
    assert defaults.default_backbone(32, MPS) == ("resnet-18", 0.25) and defaults.default_backbone(96, MPS) == ("resnet-18", 1.0)
    assert defaults.default_embed_batch_size(MPS) == 256
    config = merge_config("simclr", {"collate": {"input_size": 32}})
    resolve_auto(config, get_method("simclr"), list(range(1000)), MPS)
    assert config["loader"]["pin_memory"] is False  # pinned host memory is a CUDA feature
    assert config["loader"]["num_workers"] == 8 and config["loader"]["batch_size"] == 256


def test_a_torch_too_old_for_apple_gpus_keeps_the_cpu_and_says_why(backends, monkeypatch):
    backends(cuda=False, mps=True)
    monkeypatch.setattr(torch.amp, "is_autocast_available", lambda device_type: device_type != "mps")  # torch < 2.5
    with pytest.warns(RuntimeWarning, match="too old to train on it.*pip install -U torch"):
        assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="device='mps' needs torch 2.5"):
        resolve_device("mps")
    with pytest.raises(ValueError, match="not available on this Apple GPU"):
        resolve_precision("16", MPS)
