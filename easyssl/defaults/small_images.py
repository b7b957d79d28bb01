"""The small-image recipe: how easyssl trains images of 64 px or less (Fashion-MNIST, CIFAR-sized pictures).

Each rule applies to inputs up to :data:`~easyssl.nn.backbones.SMALL_INPUT_MAX_SIZE` (64 px) and leaves photos with
their method's published settings; each function says what it picks and the measurement that chose it. They were
tuned together on splits cut from Fashion-MNIST's official training set (docs/tuning_notes.md), on 2 CPU cores
unless a docstring says otherwise. :mod:`easyssl.defaults` re-exports every name.
"""

from __future__ import annotations

import torch

from easyssl.nn.backbones import SMALL_INPUT_MAX_SIZE
from easyssl.runtime.device import BF16_PRECISIONS


def default_train_crop_size(input_size: int, device: torch.device, backbone: object = "resnet-18") -> int:
    """Side of the training views: for small images (up to 64 px) with one of easyssl's ResNets, 5/7 of the
    input size (rounded to a multiple of 4 px, at least 16 px); else the input size (ViTs are built for one
    input size, and other modules are not known to pool globally). On every device since 2026-11-27 (see
    :func:`default_backbone` for the GPU's measurement); before, on a CPU only.

    The model is fully convolutional with global pooling, so it embeds at ``input_size`` what it
    learned from smaller views (a random-resized crop shows objects larger than the whole image
    does, so a test size above the training size suits it: Touvron et al. 2019, "FixRes"). On a
    CPU the cost of a step grows with the pixels: Fashion-MNIST's 28 px images trained as 20 px
    views run at 882 images/s against 468 at 28 px (2 cores), so twice the epochs fit a budget.
    Measured on the tuning split (SimCLR, 2-minute budget, embedded at 28 px;
    docs/tuning_notes.md): kNN top-1 k=200 0.763 before whitening, 0.841 whitened, against 0.742 / 0.826 with
    28 px views; 16 px views (for 28 px images) gave 0.748 / 0.848 with crops from 25%, against
    0.755 / 0.842 at 20 px, so 5/7 stays. With :func:`default_min_scale`, a 10-minute budget gives
    52 epochs and 0.825 / 0.872 (k=200), 0.850 / 0.881 (k=20).
    """
    if input_size <= SMALL_INPUT_MAX_SIZE and str(backbone).startswith("resnet"):
        return min(input_size, max(16, int(round(input_size * 5 / 7 / 4)) * 4))
    return input_size


#: Share of training, at its end, whose views of small images are made at the input size; see :func:`default_final_size_fraction`.
SMALL_IMAGE_FINAL_SIZE_FRACTION = 0.2


def default_final_size_fraction(input_size: int, train_crop_size: int, batch_augment: bool) -> float:
    """Share of training, at its end, whose views are made at ``input_size`` instead of ``train_crop_size``
    (:class:`~easyssl.transforms.FinalSizeViews`): :data:`SMALL_IMAGE_FINAL_SIZE_FRACTION` (the last fifth) when the
    views are smaller than the images (small images on easyssl's ResNets, :func:`default_train_crop_size`) and made
    in batches (``loader.batch_augment``; views made in loader workers keep one size); else 0.

    The model is embedded at the images' own size, but learned from 20 px views of 28 px images: the features before
    the fitted whitening then carry less than they could (FixRes's train/test discrepancy, which the BatchNorm refit of
    :func:`default_feature_norm` only partly closes). Ending training at the embedding size, as progressive resizing
    does, lets the last steps fit the features to full-size images, while the cheap views still do most of the learning.
    Measured on the Fashion-MNIST tuning split (2 CPU cores, AMD EPYC, float32, SimCLR and the other small-image rules;
    kNN top-1 k=200 / k=20 on 10,000 other training-set images, before whitening, then as returned): the last fifth at
    28 px within the wall time of the defaults' 20 epochs (555 s; 20.6 epochs) 0.861 / 0.884 and 0.897 / 0.902; with
    16 px views before it (26.9 epochs) 0.860 / 0.885 and 0.899 / 0.905; 16, 16, 20, 20 then 28 px over 20 epochs
    0.865 / 0.884 and 0.8965 / 0.898; against 0.8525-0.857 / 0.876-0.880 and 0.892-0.898 / 0.896-0.903 for the
    defaults without it (three runs, 10 and 20 epochs). On a CPU a 28 px step costs about twice a 20 px one, so a
    time budget trains about a tenth fewer epochs; the features gain at no cost to the whitened embeddings. Ten
    minutes with the rule (``max_time``, same machine): benchmark split 0.863 / 0.8855 and 0.9005 / 0.903 against
    0.8555 / 0.875 and 0.8975 / 0.898 for the defaults before it (whitened raw pixels 0.8515 / 0.857); fresh split
    0.8565 / 0.879 and 0.897 / 0.902 against 0.859 / 0.883 and 0.897 / 0.899 (a tie). Measured on CPUs only (the rule
    applies on GPUs too, where a step is bound by the host and 28 px views should cost no time); not on photos.
    """
    if input_size <= SMALL_INPUT_MAX_SIZE and train_crop_size < input_size and batch_augment:
        return SMALL_IMAGE_FINAL_SIZE_FRACTION
    return 0.0


#: Smallest crop area (a fraction of the image) of the training views of small images; see :func:`default_min_scale`.
SMALL_IMAGE_MIN_SCALE = 0.25


def default_min_scale(input_size: int, preset: float) -> float:
    """Smallest crop area of the training views: the method's preset (SimCLR's and BYOL's 8% of the
    image, from ImageNet photos) for larger images; at least :data:`SMALL_IMAGE_MIN_SCALE` (25%) for
    small ones (up to 64 px), where an 8% crop of a 28 px image is a 8 px patch, upscaled, that no
    longer shows the object. Measured on the Fashion-MNIST tuning split (2 CPU cores, 2-minute budget):
    SimCLR kNN top-1 k=200 before whitening 0.756 at 25% against 0.742 at 8% (whitened 0.837 / 0.826);
    NNCLR 0.775 against 0.759 (whitened 0.839 / 0.848); 40% gave SimCLR 0.761 / 0.845 (with 20 px views).
    Long training did not turn it around: at 100 epochs (tuning split, 10,000 test images, twenty-sixth session), where
    the recipe has long saturated, 8% returned 0.898 / 0.900 (k=200 / k=20) against 0.903 / 0.904 at 25%.
    """
    return max(preset, SMALL_IMAGE_MIN_SCALE) if input_size <= SMALL_INPUT_MAX_SIZE else preset


#: Smallest warm-up (a fraction of training) for small images; see :func:`default_warmup`.
SMALL_IMAGE_WARMUP = 0.1


def default_warmup(input_size: int, preset: float) -> float:
    """Fraction of training over which the learning rate warms up: the method's preset (SimCLR's 2%)
    for larger images; at least :data:`SMALL_IMAGE_WARMUP` (10%, as the SimCLR paper's 10 epochs of
    100) for small ones (up to 64 px).

    Measured on the Fashion-MNIST tuning split (2 CPU cores, SimCLR, the other small-image rules):
    2-minute budget, kNN top-1 k=200 / k=20 before whitening 0.781 / 0.817 and 0.780 / 0.820 (two
    runs) against 0.752 / 0.793 and 0.766 / 0.804 with 2% (whitened 0.860-0.861 / 0.868 against
    0.840-0.843 / 0.851-0.852); 20% gave 0.778 / 0.815 (0.866 / 0.872). With a 10-minute budget the
    gain is gone: two runs gave 0.821 / 0.845 and 0.815 / 0.836 (whitened 0.874 / 0.874 and 0.874 / 0.878),
    against 0.825 / 0.850 (0.872 / 0.881) for a run with 2% another day: the rule helps short budgets and
    costs nothing at longer ones.
    """
    return max(preset, SMALL_IMAGE_WARMUP) if input_size <= SMALL_INPUT_MAX_SIZE else preset


#: Stages pooled into the features of small images; see :func:`default_pooled_stages`.
SMALL_IMAGE_POOLED_STAGES = 2


def default_pooled_stages(input_size: int, device: torch.device, backbone: object = "resnet-18", width: float = 0.25,
                          width_from_rule: bool = False) -> int:
    """How many last stages of one of easyssl's ResNets pool into its features (see :class:`~easyssl.nn.backbones.ResNet`):
    :data:`SMALL_IMAGE_POOLED_STAGES` (the last two, concatenated) for small images (up to 64 px) with a ResNet
    narrower than torchvision's or at the width :func:`default_backbone` chose (``width_from_rule``: full width on a
    large CUDA GPU); else 1, the last stage alone (torchvision's features: a width-1 model the caller asked for, the one
    to export, embeds as the torchvision model it exports to). Other backbones: 1.

    On a small image the last stage of the small-image ResNet sees 3 x 3 pixels (28 px images,
    20 px views), and the stage before it 5 x 5: pooling both keeps finer detail in the features,
    and training the projection head on both (the head sees the embedding) costs nothing
    measurable. The quarter-width ResNet-18 then has 192 features instead of 128. Measured on the
    Fashion-MNIST tuning split (2 CPU cores, SimCLR, the other small-image rules, 10-minute
    budget): kNN top-1 k=200 / k=20 whitened 0.892 / 0.897, before whitening 0.822 / 0.854, against
    0.872-0.879 / 0.874-0.878 and 0.815-0.821 / 0.836-0.846 for the last stage alone (four runs
    the same day). On 20,000 / 4,000 other training-set images: 0.898 / 0.908 whitened, 0.841 /
    0.873 before, against 0.886 / 0.893 and 0.826 / 0.859. Reading out the last two stages of a
    model trained on the last one alone gave about +1 point whitened (0.883-0.885). Since 2026-11-27 on GPUs
    too, with the rest of the small-image recipe (see :func:`default_backbone`); not measured on photos: they
    keep torchvision's features.
    """
    if input_size <= SMALL_INPUT_MAX_SIZE and str(backbone).startswith("resnet") and (float(width) < 1 or width_from_rule):
        return SMALL_IMAGE_POOLED_STAGES
    return 1


#: Weight of SimCLR's rotation prediction for small images; see :func:`default_rotation_weight`.
SMALL_IMAGE_ROTATION_WEIGHT = 0.4


def default_rotation_weight(input_size: int) -> float:
    """Weight of the rotation prediction added to SimCLR's loss (E-SimCLR, see :class:`~easyssl.methods.simclr.SimCLR`):
    :data:`SMALL_IMAGE_ROTATION_WEIGHT` (0.4, E-SSL's value for SimCLR) for small images (up to 64 px); 0 (the
    paper's SimCLR) for photos.

    Dangovski et al. (2022) found that contrastive features learn more when they must also tell how an image
    was rotated (sensitive to quarter turns, where they are invariant to crops and colours): a higher linear
    accuracy for SimCLR on CIFAR-10 and ImageNet, with this weight on both. Measured here on the Fashion-MNIST tuning split
    (2 CPU cores, SimCLR and the other small-image rules, 2-minute budget; kNN top-1 k=200 / k=20 of the
    embedding before whitening, then whitened): 0.806 / 0.837 and 0.894 / 0.897, and in a second run
    0.791 / 0.834 and 0.884 / 0.890, against 0.777 / 0.819 and 0.867 / 0.867 without it. Weight 1.0 gave
    0.792 / 0.840 (0.887 / 0.892). The turns alone, with no prediction, gave 0.775 / 0.816 (0.869 / 0.878):
    the gain is the prediction's. A form closer to the paper's (a third batch of turned images for the prediction
    alone, the views not turned; the paper's code turns a third, 16 px crop all four ways) trains 10% slower and gave 0.790 / 0.828 (0.873 / 0.870). Measured on CPUs (the
    paper's figures are from GPUs); not measured on photos, where objects at any orientation are common: they
    keep SimCLR as published. With a 10-minute budget the gain shrinks: 0.901 / 0.904 whitened on the tuning split
    (0.892 / 0.897 without it, another day), 0.898 / 0.902 on another split against 0.891 / 0.896 the same night;
    before whitening within noise (0.814 / 0.857 and 0.823 / 0.860 against 0.822 / 0.854 and 0.828 / 0.857). On
    the benchmark split's curve, whitened k=200 at 1 and 2 minutes: 0.860 and 0.863, against 0.827 and 0.835
    before this rule and the pooled stages.
    """
    return SMALL_IMAGE_ROTATION_WEIGHT if input_size <= SMALL_INPUT_MAX_SIZE else 0.0


#: Time budgets (seconds, ``max_time``) up to which small images train a ResNet-10 on a CPU; see :func:`default_backbone`.
SMALL_IMAGE_SHORT_BUDGET = 300.0

#: CUDA GPUs with at least this many streaming multiprocessors (an A100 has 108, an H100 or H200 132, an RTX 4090
#: 128; an L4 58, a T4 40) train small images at full width; see :func:`default_backbone`.
LARGE_GPU_MULTIPROCESSORS = 100


def is_large_gpu(device: torch.device) -> bool:
    """Whether ``device`` is a CUDA GPU with at least :data:`LARGE_GPU_MULTIPROCESSORS` multiprocessors."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    return torch.cuda.get_device_properties(device).multi_processor_count >= LARGE_GPU_MULTIPROCESSORS


#: Width of the ResNet-18 for small images on a CPU that trains in bf16 with a time budget over
#: :data:`SMALL_IMAGE_SHORT_BUDGET`; see :func:`default_backbone`.
BF16_CPU_SMALL_IMAGE_WIDTH = 0.375


def default_backbone(input_size: int, device: torch.device, max_time: float | None = None,
                     precision: str = "32") -> tuple[str, float]:
    """``(name, width)``: ResNet-18, at quarter width for inputs of 64 px or less, else full width; for small images on
    a CPU with a time budget (``max_time``) of at most :data:`SMALL_IMAGE_SHORT_BUDGET`, ResNet-10 at quarter width; on
    a CPU that trains in bf16 (``precision``, resolved: ``"bf16"`` is the default on CPUs with bf16 matrix
    instructions) with a longer budget, width :data:`BF16_CPU_SMALL_IMAGE_WIDTH` (0.375); for small images on a large
    CUDA GPU (:func:`is_large_gpu`), full width (with two pooled stages, see :func:`default_pooled_stages`).

    On a CPU, compute is the bottleneck and the quality of the embeddings grows with the
    number of epochs that fit the time available. A quarter-width ResNet-18 costs 1/16 of
    the multiply-adds; measured on 2 cores with bf16 it trains at 2.4x the images/s of the
    half-width one (383 vs 158 img/s per thread), so it sees more than twice the epochs in
    the same time. Pass ``model={"width": 1.0}`` for a model to export to torchvision.

    Since 2026-11-27 small images take this whole recipe (with 5/7 views and two pooled stages) on GPUs too. On
    CUDA a step is bound by the host (see :func:`default_batch_size`), so the narrower model should cost no speed;
    at an H200 run's batch (1024) and epochs, on the Fashion-MNIST tuning split (measured on the CPU machine), it
    gave kNN top-1 0.901 / 0.905 (k=200 / k=20) as returned, against 0.8745 / 0.8825 for the former GPU recipe
    (28 px views, one pooled stage) at the same width, which on the H200 at full width gave 0.8715 / 0.8815.
    Measured on an H200 in the fourteenth session (benchmark split, ``max_time`` 60 s): 0.8855 / 0.884 at batch 1024
    (255 epochs, 54,312 steady images/s against 26,236-26,949 for the former recipe: the narrow model does make the
    step cheaper) and 0.893-0.894 at batch 256, now the default there (:func:`easyssl.defaults.default_batch_size`).
    Apple GPUs follow (their compute, like a CPU's, favours the narrower model).

    Depth: ResNet-10 (``"resnet-10"``, one block per stage) at the same width costs two thirds to three quarters of a step on 2 CPU
    cores and fits 1.8 times the epochs in the same time, but tied with ResNet-18 on the tuning split (fifteenth
    session, 555 s: kNN top-1 0.900 / 0.9045 as returned against 0.9005 / 0.904; at width 0.375, 0.9035 / 0.906), so
    the depth stays. At width 0.375 it led by 0.15 to 0.3 points on three splits and tied on the benchmark split (sixteenth
    session, 10 minutes: 0.8985 against the defaults' 0.898 and 0.9005 in two earlier runs): within one run's noise, not a
    default. On a host-bound GPU its backbone launches about half the operations (the step's others are unchanged; not measured).

    Short budgets are where the epochs are few and each one counts (nineteenth session, Fashion-MNIST tuning split, 2
    CPU cores, AMD EPYC, float32; kNN top-1 k=200 / k=20 on 10,000 other training-set images, as returned, then before
    whitening): 60 s, ResNet-10 3.2 epochs 0.873 / 0.877 and 0.822 / 0.852 against ResNet-18's 1.6 epochs 0.848 /
    0.856 and 0.768 / 0.806; 120 s, 7.9 epochs 0.892 / 0.900 and 0.851 / 0.874 against 4.3 epochs 0.881 / 0.882 and
    0.823 / 0.851; 300 s, 22.8 epochs 0.899 / 0.9005 and 0.858 / 0.882 against 14.0 epochs 0.895 / 0.897 and
    0.852 / 0.878 (within one run's noise, the same side). On the fresh split, which tuned nothing, 120 s: 10.1 epochs 0.8885 /
    0.8954 and 0.8505 / 0.8702 against 5.0 epochs 0.873 / 0.880 and 0.8255 / 0.8535; 60 s: 3.6 epochs 0.872 / 0.879 and
    0.824 / 0.8545 against 1.7 epochs 0.833 / 0.8365 and 0.749 / 0.795. So a CPU budget of up to five minutes takes
    ResNet-10; longer ones and runs without a budget keep ResNet-18, which ties with it at 555 s (above) and is the model
    every 10-minute figure was measured with (between 300 and 555 s: unmeasured). A faster CPU fits more epochs into the
    same seconds, where the two tie. GPUs keep ResNet-18 (not measured there).

    Full width on a large GPU: once the step is replayed as a CUDA graph (eighteenth session), the H200's step is no
    longer all launches, and the full-width model costs only a fifth more time a step at batch 256 (23,900-26,400
    against 29,900-32,700 steady images/s, 107-120 against 141-151 epochs in 60 s) for a better model. Twenty-second session, H200,
    Fashion-MNIST benchmark split, ``max_time`` 60, seeds 1 and 2 in two calls (kNN top-1 k=200 / k=20 as returned, then
    before whitening):

    ========================================  ==================================  ==================================
    call                                      width 1, two pooled stages          quarter width
    ========================================  ==================================  ==================================
    first (3 of 4 whitening passes cut)       0.902 / 0.903, 0.8975 / 0.8985      0.8845 / 0.8855, 0.893 / 0.8895
    second (every pass whole)                 0.895 / 0.902, 0.8985 / 0.8975      0.8865 / 0.8885, 0.887 / 0.886
    before whitening, second call             0.8675 / 0.8815, 0.865 / 0.8825    0.857 / 0.874, 0.852 / 0.879
    ========================================  ==================================  ==================================

    Width 1 led in all four pairs, by 1.0 point at k=200 on average (0.898 against 0.888). On smaller GPUs the
    full-width model's arithmetic (16 times the quarter width's) may bind before the launches do: they keep the
    quarter width (not measured there), and so does a width-1 model asked for by name (see :func:`default_pooled_stages`).
    Twenty-third session, same card and split: batch 128 (0.896, 0.8985) and 28 px views throughout (0.8975, 0.897) lost
    epochs for nothing; width 1.5 (0.905, 0.9035, 0.8955) and width 2 (0.906, one run) led the default's five runs
    (0.895-0.9035, mean 0.8993) by less than one run's noise: not a default.

    A bf16 CPU with a budget over five minutes: a CPU with bf16 matrix instructions (AVX512-BF16, AMX) trains in bf16
    (:func:`easyssl.runtime.device.resolve_precision`; 1.2-1.3 times float32's speed on that CPU, 2.2-2.6 times the
    float32 machine of the twentieth session's budget curve), and fits 49-58 quarter-width
    epochs into 10 minutes on 2 cores, where the quarter-width recipe has saturated (batch 256, 140 epochs: no better
    than 54). Width 0.375 (288 features) halves the epochs for more capacity, as full width does on a GPU. Twenty-second
    and twenty-third sessions, 2-core AMD EPYC with AVX512-BF16, 10 minutes (``tuning_screen.py --budget 600 --set
    model.width=0.375``), kNN top-1 k=200 / k=20 as returned on 10,000 other training-set images (benchmark split: 2,000
    test images), then k=200 before whitening; the defaults' runs of the same seeds beside them:

    ===============  ======  =========================================  =========================================
    split            seed    width 0.375 (24.6-28.1 epochs)             quarter width (48.9-58.1 epochs)
    ===============  ======  =========================================  =========================================
    tuning           1, 2    0.9051 / 0.9067, 0.9052 / 0.909            0.9009 / 0.9034, 0.9022 / 0.9043
                             (0.8705, 0.8708)                           (0.862, 0.8686)
    fresh            1, 2    0.9022 / 0.9086, 0.9018 / 0.9072           0.8987 / 0.9043, 0.8999 / 0.9027
                     3       0.9025 / 0.9073 (0.8627; this rule, nothing set)
    holdout          1       0.9028 / 0.9047 (0.870)                    0.9023 / 0.9039 (0.8679)
                     2       0.9022 / 0.9046 (0.8687; this rule)
    benchmark        1       0.9035 / 0.9045 (0.8755)                   0.906 / 0.904 (0.871)
                     2       0.8985 / 0.9045 (0.867; this rule)         0.904 / 0.9045 (0.8725)
                     3, 4    0.903 / 0.903, 0.901 / 0.902 (0.8695, 0.8675; this rule)
                     1       0.904 / 0.9065 (0.8715; this rule, the budget curve's 10-minute point, 2026-11-29)
    ===============  ======  =========================================  =========================================

    It led on the tuning split (+0.36 at k=200, two seeds) and on the fresh one (+0.27), tied on the holdout split and
    trailed on the benchmark split (-0.25, -0.55: its 2,000 test images move a run by about 0.7 points); over the five
    pairs on 10,000 test images, +0.26. It passed 0.90 in eleven runs of twelve (0.8985 in the other), where the quarter
    width missed it on the fresh split twice. Float32 CPUs fit half the epochs (20-23 in 10 minutes) and keep the
    quarter width: there width 0.375 tied or lost (eleventh to sixteenth sessions). Runs without a budget keep it too
    (their epochs are the user's). Between five and ten minutes: at 450 s (tuning split, seed 1) width 0.375 gave
    0.9028 / 0.9068 as returned (18.6 epochs) against 0.8999 / 0.9043 (37.1 epochs), 0.8634 against 0.868 before
    whitening: a tie, so the rule starts where ResNet-10's ends. The rule reads no image count: on twice the images
    (20,000 of the tuning split, ``tuning_screen.py --train-images 20000``; twenty-fourth session) 10 minutes hold
    12.6 and 11.9 epochs of width 0.375, and it still led the quarter width's 22.1 and 21.5 (0.909 / 0.9146 and 0.9122 /
    0.916 against 0.9041 / 0.9092 and 0.9051 / 0.913; before whitening +0.05 and +0.53): half the passes over the
    folder did not cost it its lead. Width 0.5 lost (tuning split, seed 1: 17.1 epochs, 0.9001 /
    0.9055, 0.8633 before whitening, against width 0.375's 0.9051 / 0.9067 and 0.8705).
    """
    if input_size <= SMALL_INPUT_MAX_SIZE:
        if device.type == "cpu" and max_time is not None and max_time <= SMALL_IMAGE_SHORT_BUDGET:
            return "resnet-10", 0.25
        if device.type == "cpu" and max_time is not None and str(precision) in BF16_PRECISIONS:
            return "resnet-18", BF16_CPU_SMALL_IMAGE_WIDTH
        if is_large_gpu(device):
            return "resnet-18", 1.0
        return "resnet-18", 0.25
    return "resnet-18", 1.0


#: Weight of the penalty on the correlations of SimCLR's features for small images; see :func:`default_decorrelation_weight`.
SMALL_IMAGE_DECORRELATION_WEIGHT = 0.1


#: Smallest batch (images per process and step) that the penalty is on for; see :func:`default_decorrelation_weight`.
DECORRELATION_MIN_BATCH = 128


def default_decorrelation_weight(input_size: int, batch_size: int = 128) -> float:
    """Weight of :class:`~easyssl.loss.CorrelationPenalty` of the backbone's features, added to SimCLR's loss (see
    :class:`~easyssl.methods.simclr.SimCLR`): :data:`SMALL_IMAGE_DECORRELATION_WEIGHT` for small images (up to
    64 px) trained in batches of at least :data:`DECORRELATION_MIN_BATCH` images per process; 0 (the paper's
    SimCLR) for photos and for smaller batches. A correlation matrix of 192 features estimated from the two views
    of a few images is mostly sampling noise (the penalty's floor is about ``(D - 1) / (2 x batch - 1)``), and only
    batches of 128 (256 feature rows) were measured; a small folder, whose batch is at most half its images, trains
    without it.

    Contrastive features trained through a projection head collapse onto a few directions (Jing et al., 2022): the
    sixth session's 10-minute model held 38% of its features' variance in one direction, an effective dimension of
    5 of 192, and its embeddings needed the fitted whitening to score (0.814 before it, 0.901 after, kNN k=200 on
    the Fashion-MNIST tuning split). The penalty keeps more directions alive in the features themselves.
    Measured on the tuning split (2 CPU cores, SimCLR and the other small-image rules, same seed; kNN top-1
    k=200 / k=20 of the model's features, then whitened): 9 epochs, 0.808 / 0.859 and 0.897 / 0.898 with 0.1,
    0.811 / 0.862 and 0.894 / 0.890 with 0.05, against 0.792 / 0.837 and 0.891 / 0.898 without; 2-minute runs:
    0.815 / 0.861 with 0.05 against 0.803 / 0.840 without, while 0.2 (0.788 / 0.827, 0.865 / 0.869) and 0.5
    (0.767 / 0.817, 0.834 / 0.841) disturbed the learning, as the earlier penalty on the uncentred second moment
    did. 40 epochs: 0.835 / 0.870 (0.8735 / 0.8885 with each feature standardised afterwards, effective
    dimension 8.7), 0.897 / 0.892 whitened, against 0.814 / 0.857 and 0.901 / 0.904 without it. Used with
    :func:`default_feature_norm`, which standardises the features inside the model. Measured on CPUs only (the rule
    applies on GPUs too, like the rotation prediction's); not measured on photos.
    """
    if input_size <= SMALL_INPUT_MAX_SIZE and batch_size >= DECORRELATION_MIN_BATCH:
        return SMALL_IMAGE_DECORRELATION_WEIGHT
    return 0.0


def default_feature_norm(input_size: int) -> bool:
    """Whether SimCLR's features pass through a BatchNorm without affine parameters (``feature_norm``, see
    :class:`~easyssl.methods.simclr.SimCLR`): for small images (up to 64 px), where the features are also
    decorrelated (:func:`default_decorrelation_weight`); not for photos (the paper's SimCLR).

    Decorrelated features still differ in mean and scale (a ReLU network's pooled features are all positive, and
    the last two stages' scales differ), which cosine similarity weighs. A BatchNorm's running statistics centre
    and scale each feature inside the model, so the embeddings before the fitted whitening (``embed_images(...,
    whiten=False)``) are the well-conditioned ones. It is the same layer for training and embedding: the heads
    train on its output. Measured on the Fashion-MNIST tuning split (2 CPU cores, SimCLR, the other small-image
    rules, 40 epochs, same seed; kNN top-1 k=200 / k=20 of the model's features, then whitened): 0.850 / 0.882
    and 0.902 / 0.908 with it and the decorrelation, 0.835 / 0.870 and 0.897 / 0.892 with the decorrelation
    alone, 0.814 / 0.857 and 0.901 / 0.904 with neither (the sixth session's 10-minute run, 40.4 epochs). Without
    the decorrelation it gave nothing (2 minutes: 0.800 / 0.845, 0.889 / 0.893 against 0.803 / 0.840, 0.890 /
    0.896). Ten minutes with both (a faster night: 51-62 epochs), before whitening and whitened: fresh split 0.854 /
    0.886 and 0.901 / 0.897, holdout 0.832 / 0.873 and 0.891 / 0.901, benchmark 0.853 / 0.884 and 0.892 / 0.898,
    against 0.823 / 0.860 and 0.898 / 0.902, 0.802 / 0.851 and 0.894 / 0.896, 0.819 / 0.867 and 0.887 / 0.898 for the
    sixth session's defaults (raw pixels whitened: 0.849 / 0.861, 0.836 / 0.839, 0.852 / 0.857). Since the eighth
    session the pass that fits the whitening also refits the BatchNorm's statistics (gathered on the 20 px training
    views) to the training images as they are embedded (``easyssl.train.whitening.refit_feature_norm``): before
    whitening, 10 minutes, that morning's runs: tuning 0.864 / 0.883, fresh 0.856 / 0.878 and 0.860 / 0.887 (two
    runs), holdout 0.848 / 0.880, benchmark 0.869 / 0.887 (41.8-50.5 epochs). Measured on CPUs only (the rule
    applies on GPUs too); not measured on photos.
    """
    return input_size <= SMALL_INPUT_MAX_SIZE


#: Test-time views of small images' embeddings (``(scale, mirrored)``, see :mod:`easyssl.nn.embedding_views`): the
#: image and its mirror image, each at its size and 8/7 larger (28 px images also at 32 px); see
#: :func:`default_embedding_views`.
SMALL_IMAGE_EMBEDDING_VIEWS = ((1.0, False), (1.0, True), (8 / 7, False), (8 / 7, True))


def default_embedding_views(input_size: int, backbone: object = "resnet-18") -> list[list[float | bool]]:
    """The views a model's embeddings average (``model.embedding_views``, :mod:`easyssl.nn.embedding_views`):
    :data:`SMALL_IMAGE_EMBEDDING_VIEWS` for small images (up to 64 px) on easyssl's ResNets, the image alone for
    photos and other backbones (a ViT's position embeddings are made for one input size).

    Small images' views were trained at 20 px crops of the 28 px images (:func:`default_train_crop_size`) and
    mirrored at random, so what one 28 px view's features still say of its exact scale and side is noise to a
    nearest-neighbour search. Averaged over four views it cancels in part; the embedding costs 4.6 times the forward
    passes (about 12 s more for the whitening pass over 10,000 images in a 10-minute CPU run; small images embed
    fast). Measured as a readout of the eighth session's 10-minute models (Fashion-MNIST, SimCLR and the other
    small-image rules; kNN top-1 k=200 / k=20 after a whitening fitted to the averaged features of the model's
    10,000 training images), on 10,000 other images of the official training set per model (chosen on the tuning
    model and the fresh split's two, then checked on the holdout model): tuning 0.900 / 0.906 with the four views
    against 0.895 / 0.899 for the image alone, fresh 0.896 / 0.899 and 0.895 / 0.900 against 0.892 / 0.898 and 0.890
    / 0.894, holdout 0.900 / 0.9015 against 0.897 / 0.899. Lost or tied (same models, k=200): the mirror alone
    (0.898, 0.894, 0.895), the 32 px view alone with its mirror (0.897, 0.894, 0.895), the image and the 32 px view
    (0.897, 0.894, 0.892), three views without the enlarged mirror (0.900, 0.8965, 0.894: as four at k=200, up to
    0.1 lower at k=20). The 2,000-image test sets of the same splits gave the same order, or ties, with more noise
    (0.9055 / 0.910 / 0.906 / 0.8975 against 0.9055 / 0.893 / 0.894 / 0.8975; the mirror alone, or four one-pixel
    shifts, no better). The features before whitening gained nothing at k=200 (-0.3 to 0.0, with the BatchNorm
    refitted to one view). Photos keep one view (not measured; their embedding costs more).
    """
    small = input_size <= SMALL_INPUT_MAX_SIZE and isinstance(backbone, str) and backbone.startswith("resnet")
    views = SMALL_IMAGE_EMBEDDING_VIEWS if small else ((1.0, False),)
    return [[scale, mirrored] for scale, mirrored in views]
