"""End to end: `easyssl train` -> `embed` -> similar / duplicates / select / label-next / plot / export."""

import os
import shutil

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn

from easyssl import load_embeddings, save_embeddings
from easyssl.cli import main
from easyssl.cli.common import match_filename
from easyssl.tools.visualize import PALETTE

DUP = "circle/circle_dup.png"  # an exact copy of circle/circle_0003.png, planted in the folder


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A demo folder with a planted duplicate, trained and embedded through the CLI."""
    from easyssl import make_demo_dataset

    root = tmp_path_factory.mktemp("cli_tools")
    images = make_demo_dataset(root / "images", images_per_class=6, image_size=32)
    shutil.copy(os.path.join(images, "circle", "circle_0003.png"), os.path.join(images, DUP))
    ckpt_dir = str(root / "run")
    common = ["--num-workers", "0", "--quiet"]
    assert main(["train", images, "--max-steps", "2", "--batch-size", "8", "--input-size", "32",
                 "--checkpoint-dir", ckpt_dir, *common]) == 0
    checkpoint = os.path.join(ckpt_dir, "last.ckpt")
    embeddings = str(root / "embeddings.csv")
    assert main(["embed", images, "--checkpoint", checkpoint, "--output", embeddings, *common]) == 0
    return {"root": root, "images": images, "checkpoint": checkpoint, "embeddings": embeddings}


@pytest.fixture(scope="module")
def wide_checkpoint(run):
    """A full-width ResNet-18 (torchvision's shape) trained for 2 steps on the same folder: what `export` turns into a
    torchvision state dict. (The `run` fixture's model has the small-image default width, 16 times cheaper to embed.)"""
    ckpt_dir = str(run["root"] / "wide")
    assert main(["train", run["images"], "--max-steps", "2", "--width", "1", "--batch-size", "8", "--input-size", "32",
                 "--checkpoint-dir", ckpt_dir, "--num-workers", "0", "--quiet"]) == 0
    return os.path.join(ckpt_dir, "last.ckpt")


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, f"expected one line, got: {err!r}"
    return err


def test_similar_finds_the_planted_copy_first(run, capsys):
    for query in ["circle/circle_0003.png", "circle_0003.png", os.path.join(run["images"], "circle", "circle_0003.png")]:
        assert main(["similar", "--embeddings", run["embeddings"], "--query", query, "-k", "3"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0] == "query: circle/circle_0003.png"
        ranks = [line.split() for line in out[1:]]
        assert len(ranks) == 3 and [r[0] for r in ranks] == ["1", "2", "3"]
        assert ranks[0][2] == DUP and float(ranks[0][1]) > 0.9999
        assert all(r[2] != "circle/circle_0003.png" for r in ranks)  # the query itself is excluded
        sims = [float(r[1]) for r in ranks]
        assert sims == sorted(sims, reverse=True)


def test_similar_plot_has_the_documented_size(run, tmp_path, capsys):
    png = tmp_path / "neighbors.png"
    argv = ["similar", "--embeddings", run["embeddings"], "--query", "circle/circle_0003.png", "--query", "square_0001.png",
            "-k", "4", "--image-dir", run["images"], "--plot", str(png), "--thumb-size", "48"]
    assert main(argv) == 0
    assert f"wrote {png}" in capsys.readouterr().out
    with Image.open(png) as image:
        # width = (1 + k) * (thumb + border) + border; height = Q * (thumb + border + caption) + border
        assert image.size == ((1 + 4) * (48 + 4) + 4, 2 * (48 + 4 + 14) + 4)


def test_similar_embeds_a_new_image_with_the_checkpoint(run, tmp_path, capsys):
    new = tmp_path / "elsewhere" / "new_photo.png"
    new.parent.mkdir()
    shutil.copy(os.path.join(run["images"], "square", "square_0002.png"), new)
    argv = ["similar", "--embeddings", run["embeddings"], "--query", str(new), "-k", "2"]
    assert main(argv) == 2
    assert "matches no filename" in _error(capsys)
    assert main(argv + ["--checkpoint", run["checkpoint"]]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"query: {new}"
    first = out[1].split()
    assert first[2] == "square/square_0002.png" and float(first[1]) >= 0.999  # same image; bf16 batches differ slightly


@pytest.mark.parametrize(
    "argv,code,message",
    [
        (["--query", "circle_0003.png", "-k", "0"], 2, "-k must be at least 1"),
        (["--query", "circle_0003.png", "-k", "500"], 2, "-k 500 is more than the 30 other images"),
        (["--query", "no_such.png"], 2, "matches no filename"),
        (["--query", "circle_0003.png", "--plot", "x.png"], 2, "--plot needs --image-dir"),
    ],
)
def test_similar_errors_are_one_line(run, capsys, argv, code, message):
    assert main(["similar", "--embeddings", run["embeddings"], *argv]) == code
    err = _error(capsys)
    assert err.startswith("easyssl similar: error:") and message in err


def test_similar_ambiguous_query(tmp_path, capsys):
    emb = np.eye(3, dtype=np.float32)
    path = save_embeddings(tmp_path / "e.csv", emb, None, ["cats/a.jpg", "dogs/a.jpg", "dogs/b.jpg"])
    assert main(["similar", "--embeddings", path, "--query", "a.jpg", "-k", "1"]) == 2
    assert "ambiguous: it matches 'cats/a.jpg', 'dogs/a.jpg'" in _error(capsys)
    assert main(["similar", "--embeddings", path, "--query", "dogs/a.jpg", "-k", "2"]) == 0
    assert "query: dogs/a.jpg" in capsys.readouterr().out


def test_missing_embeddings_file(tmp_path, capsys):
    for command in (["similar", "--query", "a.png"], ["duplicates"], ["select", "-n", "2", "--output", "x.txt"], ["plot"]):
        assert main([command[0], "--embeddings", str(tmp_path / "nope.csv"), *command[1:]]) == 2
        assert "does not exist" in _error(capsys)


def test_duplicates_finds_the_planted_pair(run, tmp_path, capsys):
    groups, remove = tmp_path / "groups.txt", tmp_path / "remove.txt"
    argv = ["duplicates", "--embeddings", run["embeddings"], "--threshold", "0.9999", "--output", str(groups),
            "--to-remove", str(remove)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "found 1 group(s) of near-duplicates (2 images)" in out
    assert groups.read_text().splitlines() == [f"circle/circle_0003.png\t{DUP}"]
    assert remove.read_text().splitlines() == [DUP]
    assert main(["duplicates", "--embeddings", run["embeddings"], "--threshold", "1.5"]) == 2
    assert "threshold must be" in _error(capsys)
    assert main(["duplicates", "--embeddings", run["embeddings"], "--ratio", "-1"]) == 2
    assert "--ratio must be >= 0" in _error(capsys)


def test_duplicates_from_the_images_with_crops(run, tmp_path, capsys):
    """--input-dir with --checkpoint embeds the images (and their crops) itself, and warns that a model of
    2 steps is too short for duplicates to mean much."""
    groups = tmp_path / "groups.txt"
    argv = ["duplicates", "--input-dir", run["images"], "--checkpoint", run["checkpoint"], "--threshold", "0.9999",
            "--ratio", "0", "--output", str(groups), "--quiet"]
    with pytest.warns(UserWarning, match="trained for only 2 steps"):
        assert main(argv) == 0
    assert "found 1 group(s) of near-duplicates (2 images)" in capsys.readouterr().out
    assert groups.read_text().splitlines() == [f"circle/circle_0003.png\t{DUP}"]
    with pytest.warns(UserWarning, match="trained for only 2 steps"):  # an embeddings file: the checkpoint is checked
        assert main(["duplicates", "--embeddings", run["embeddings"], "--checkpoint", run["checkpoint"], "--show", "0"]) == 0
    npz = str(tmp_path / "embeddings.npz")  # `easyssl embed` records the model's training length in a .npz
    assert main(["embed", run["images"], "--checkpoint", run["checkpoint"], "--output", npz, "--num-workers", "0", "--quiet"]) == 0
    with pytest.warns(UserWarning, match="embeddings.npz' was trained for only 2 steps"):
        assert main(["duplicates", "--embeddings", npz, "--show", "0"]) == 0
    capsys.readouterr()  # the embed command's warning about the 2-step model, printed or not depending on the tests run before
    assert main(["duplicates", "--input-dir", run["images"]]) == 2
    assert "--input-dir DIR with --checkpoint CKPT" in _error(capsys)
    assert main(["duplicates", "--embeddings", npz, "--no-pixel-check"]) == 2
    assert "--no-pixel-check goes with --input-dir" in _error(capsys)


def test_duplicates_checks_the_pixels(run, tmp_path, capsys):
    """A rule loose enough to link any two images: the pixel check keeps the real copy and drops the look-alikes
    the barely trained model links; --no-pixel-check keeps them."""
    def groups(*extra):
        output = tmp_path / "groups.txt"
        argv = ["duplicates", "--input-dir", run["images"], "--checkpoint", run["checkpoint"], "--threshold", "-1",
                "--ratio", "0", "--quiet", "--show", "0", "--output", str(output), *extra]
        with pytest.warns(UserWarning, match="trained for only 2 steps"):
            assert main(argv) == 0
        capsys.readouterr()
        return [line.split("\t") for line in output.read_text().splitlines()]

    checked, loose = groups(), groups("--no-pixel-check")
    assert ["circle/circle_0003.png", DUP] in checked
    assert sum(map(len, checked)) <= 4 < 10 < sum(map(len, loose))


def test_duplicates_hints_when_the_rule_is_too_loose(tmp_path, capsys):
    rng = np.random.default_rng(0)
    emb = (rng.normal(size=(1, 16)) + rng.normal(size=(60, 16)) * 0.05).astype(np.float32)  # alike, but no copies
    path = save_embeddings(tmp_path / "e.npz", emb, None, [f"img{i}.png" for i in range(60)])
    # Centred (the default), these are distinct points: no duplicates with the ratio test.
    assert main(["duplicates", "--embeddings", path, "--show", "0"]) == 0
    out = capsys.readouterr().out
    assert "found 0 group(s)" in out and "hint" not in out
    # No ratio test and a threshold far too low chain everything together, and the command says so.
    assert main(["duplicates", "--embeddings", path, "--show", "0", "--threshold", "-0.9", "--ratio", "0", "-k", "59"]) == 0
    out = capsys.readouterr().out
    assert "found 1 group(s) of near-duplicates (60 images)" in out
    assert "hint: the largest group holds 60 of 60 images" in out and "raise --ratio" in out


def test_select_covers_planted_clusters(tmp_path, capsys):
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(6, 32)) * 10
    emb = np.concatenate([c + rng.normal(size=(15, 32)) * 0.05 for c in centers]).astype(np.float32)
    names = [f"cluster{c}/img{i:02d}.png" for c in range(6) for i in range(15)]
    path = save_embeddings(tmp_path / "emb.npz", emb, [c for c in range(6) for _ in range(15)], names)
    out = tmp_path / "out" / "chosen.txt"
    assert main(["select", "--embeddings", path, "-n", "6", "--output", str(out)]) == 0
    assert "chose 6 diverse images out of 90" in capsys.readouterr().out
    chosen = out.read_text().splitlines()
    assert len(chosen) == 6 and {name.split("/")[0] for name in chosen} == {f"cluster{c}" for c in range(6)}
    assert main(["select", "--embeddings", path, "-n", "0", "--output", str(out)]) == 2
    assert "n must be between 1 and 90" in _error(capsys)


def test_select_on_trained_embeddings(run, tmp_path):
    out = tmp_path / "chosen.txt"
    assert main(["select", "--embeddings", run["embeddings"], "-n", "5", "--output", str(out)]) == 0
    _, _, filenames = load_embeddings(run["embeddings"])
    chosen = out.read_text().splitlines()
    assert len(set(chosen)) == 5 and set(chosen) <= set(filenames)


def test_label_next_prefers_uncertain_images(run, tmp_path, capsys):
    _, _, filenames = load_embeddings(run["embeddings"])
    n = len(filenames)
    probs = np.tile([0.98, 0.01, 0.01], (n, 1))
    uncertain = [3, 11, 20]
    probs[uncertain] = [0.34, 0.33, 0.33]
    np.save(tmp_path / "probs.npy", probs)
    out = tmp_path / "to_label.txt"
    base = ["label-next", "--embeddings", run["embeddings"], "-n", "3", "--output", str(out), "--diversity", "0"]
    assert main([*base, "--predictions", str(tmp_path / "probs.npy")]) == 0
    assert "chose 3 images to label next" in capsys.readouterr().out
    assert out.read_text().splitlines() == [filenames[i] for i in uncertain]

    # CSV matched by filename (rows shuffled), logits with --softmax, and a labeled list.
    order = np.random.default_rng(1).permutation(n)
    logits = np.log(probs)
    with open(tmp_path / "probs.csv", "w") as handle:
        handle.write("filename,cat,dog,bird\n")
        for i in order:
            handle.write(filenames[i] + "," + ",".join(f"{v:.6f}" for v in logits[i]) + "\n")
    (tmp_path / "labeled.txt").write_text(filenames[11] + "\n")
    argv = [*base, "--predictions", str(tmp_path / "probs.csv"), "--softmax", "--labeled", str(tmp_path / "labeled.txt")]
    assert main(argv) == 0
    chosen = out.read_text().splitlines()
    assert chosen[:2] == [filenames[3], filenames[20]] and filenames[11] not in chosen

    np.save(tmp_path / "bad.npy", probs[:5])
    assert main([*base, "--predictions", str(tmp_path / "bad.npy")]) == 2
    assert "one row per embedding" in _error(capsys)
    assert main([*base, "--predictions", str(tmp_path / "probs.csv")]) == 2  # logits without --softmax
    assert "softmax" in _error(capsys)


def test_plot_writes_a_png_of_the_requested_size(run, tmp_path, capsys):
    png = tmp_path / "plots" / "embeddings.png"
    assert main(["plot", "--embeddings", run["embeddings"], "--output", str(png), "--size", "400", "--title", "demo",
                 "--method", "pca"]) == 0
    assert "PCA map, coloured by label" in capsys.readouterr().out
    with Image.open(png) as image:
        assert image.size == (400, 400)
        colors = {c for _, c in image.convert("RGB").getcolors(400 * 400)}
    assert all(PALETTE[c] in colors for c in range(5))  # the five demo classes
    thumbs = tmp_path / "plots" / "thumbnails.png"
    assert main(["plot", "--embeddings", run["embeddings"], "--output", str(thumbs), "--size", "400", "--method", "pca",
                 "--thumbnails", "--image-dir", run["images"]]) == 0
    with Image.open(thumbs) as image:  # the demo images (shapes on colour) are drawn: many more colours than dots
        assert len(image.convert("RGB").getcolors(400 * 400)) > len(colors) + 20
    assert main(["plot", "--embeddings", run["embeddings"], "--thumbnails"]) == 2
    assert "--thumbnails needs --image-dir" in _error(capsys)


def test_export_torchvision_and_easyssl_formats(wide_checkpoint, tmp_path, capsys):
    from easyssl import load_model

    out = tmp_path / "backbone.pth"
    assert main(["export", "--checkpoint", wide_checkpoint, "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "torchvision.models.resnet18()" in printed and "small-image stem" in printed
    tv = torchvision.models.resnet18()
    tv.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    tv.maxpool = nn.Identity()
    tv.load_state_dict(torch.load(out, weights_only=True))
    tv.fc = nn.Identity()
    model, _ = load_model(wide_checkpoint)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(tv.eval()(x), model.backbone(x), atol=1e-5, rtol=1e-5)

    assert main(["export", "--checkpoint", wide_checkpoint, "--output", str(tmp_path / "b.pt"), "--format", "easyssl"]) == 0
    assert "load_backbone" in capsys.readouterr().out
    assert main(["export", "--checkpoint", str(tmp_path / "none.ckpt"), "--output", str(out)]) == 2
    assert "does not exist" in _error(capsys)
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    assert main(["export", "--checkpoint", str(tmp_path / "junk.ckpt"), "--output", str(out)]) == 2
    assert "not an easyssl checkpoint" in _error(capsys)


@pytest.mark.parametrize("command", ["similar", "duplicates", "select", "label-next", "plot", "export"])
def test_every_tool_has_help_with_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"easyssl {command} --" in capsys.readouterr().out


def test_match_filename():
    names = ["cats/a.jpg", "dogs/a.jpg", "dogs/b.jpg", "b.jpg"]
    assert match_filename("dogs/b.jpg", names) == 2
    assert match_filename("b.jpg", names) == 3  # exact beats ending
    assert match_filename("/data/x/dogs/a.jpg", names) == 1
    assert match_filename(".\\dogs\\a.jpg", names) == 1
    assert match_filename("c.jpg", names) is None
    with pytest.raises(Exception, match="ambiguous"):
        match_filename("a.jpg", names)
