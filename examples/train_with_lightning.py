"""Training with PyTorch Lightning, for those who use it (optional: pip install lightning).

    python examples/train_with_lightning.py
    python examples/train_with_lightning.py --input-dir my/images/ --epochs 20

easyssl's pieces are plain PyTorch, so they drop into a LightningModule: the model and
loss go in __init__, one loss per batch in training_step. Lightning then handles devices,
mixed precision, multi-GPU and logging. (This file is not named pytorch_lightning.py, which
would shadow the package when run as a script.)
"""

import argparse
import os
import tempfile

import torch
from torch.utils.data import DataLoader

from easyssl import EvalTransform, MultiViewCollate, SimCLRTransform, SSLDataset, backbone, make_demo_dataset
from easyssl.loss import NTXentLoss
from easyssl.models import SimCLR

try:
    import lightning as L  # Lightning 2.x
except ImportError:
    try:
        import pytorch_lightning as L  # the older package name
    except ImportError:
        L = None


def make_module(input_size, width, lr):
    class SimCLRModule(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = SimCLR(backbone("resnet-18", width=width, input_size=input_size))
            self.criterion = NTXentLoss(temperature=0.2)

        def training_step(self, batch, batch_idx):
            (view0, view1), _targets, _filenames = batch  # labels are never used
            loss = self.criterion(self.model(view0), self.model(view1))
            self.log("loss", loss, prog_bar=True)
            return loss

        def configure_optimizers(self):
            optimizer = torch.optim.SGD(self.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.trainer.estimated_stepping_batches)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    return SimCLRModule()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-dir", help="folder of images (default: the built-in demo set of shapes)")
    parser.add_argument("--output-dir", default="easyssl_examples/lightning")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--fast", action="store_true", help="a tiny model and two training steps (for tests)")
    args = parser.parse_args(argv)
    if L is None:
        print("PyTorch Lightning is not installed (pip install lightning): skipping this example")
        return
    input_dir = args.input_dir or make_demo_dataset(os.path.join(tempfile.gettempdir(), "easyssl_demo"), images_per_class=40, image_size=32)

    dataset = SSLDataset(input_dir, transform=SimCLRTransform(input_size=args.input_size))
    batch_size = min(16 if args.fast else 128, len(dataset))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, collate_fn=MultiViewCollate())
    module = make_module(args.input_size, width=0.25 if args.fast else 0.5, lr=0.06 * batch_size / 256)

    trainer = L.Trainer(
        max_epochs=args.epochs,
        max_steps=2 if args.fast else -1,
        accelerator="auto",  # a GPU when there is one
        precision="bf16-mixed" if torch.cuda.is_available() else "32-true",
        default_root_dir=args.output_dir,
        enable_progress_bar=not args.fast,
        enable_model_summary=False,
        logger=False,
    )
    trainer.fit(module, loader)

    # Embeddings: the trained backbone, plain PyTorch again.
    net = module.model.backbone.eval()
    eval_loader = DataLoader(SSLDataset(input_dir, transform=EvalTransform(args.input_size)), batch_size=256,
                             collate_fn=MultiViewCollate())
    with torch.no_grad():
        embeddings = torch.cat([net(images) for images, _, _ in eval_loader])
    print(f"trained with Lightning for {trainer.global_step} steps; embeddings: {tuple(embeddings.shape)}")
    torch.save(net.state_dict(), os.path.join(args.output_dir, "backbone.pth"))


if __name__ == "__main__":
    main()
