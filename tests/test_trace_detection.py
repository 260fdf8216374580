"""Detection: data-dependent sizes (proposals ``R`` after a threshold, detections ``D``) as
symbols of their own, with the rest of the model symbolic in B, H, W.

The miniature two-stage detector below uses plain torch ops only (CI has no torchvision):
a conv backbone, an RPN-like head (objectness and box deltas per cell), a data-dependent
selection of proposals (``nonzero`` of a threshold), a per-proposal MLP head, and a second
selection (detections). Its symbolic trace is checked against FlopCounterMode on real CPU
tensors at two sizes, with ``R`` and ``D`` read from that run."""

from __future__ import annotations

import pytest
import sympy as sp

torch = pytest.importorskip("torch")

import symflops as sf  # noqa: E402
from symflops.errors import OutsideDomain, SymflopsError  # noqa: E402
from symflops.symbols import B, H, W, count, symbol  # noqa: E402

flop_counter = pytest.importorskip("torch.utils.flop_counter")

R, D = count("R"), count("D")  # counts read from the data: non-negative
CLASSES = 5


class Backbone(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class RPN(torch.nn.Module):
    """Objectness and 4 box deltas per feature cell; the cells scoring above the mean are the
    proposals: their features and deltas, one row each (R rows)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(16, 16, 3, padding=1)
        self.objectness = torch.nn.Conv2d(16, 1, 1)
        self.deltas = torch.nn.Conv2d(16, 4, 1)

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.relu(self.conv(f))
        score = self.objectness(t).flatten()                    # B*h*w
        rows = f.permute(0, 2, 3, 1).reshape(-1, f.shape[1])     # B*h*w x 16
        deltas = self.deltas(t).permute(0, 2, 3, 1).reshape(-1, 4)
        keep = torch.nonzero(score > score.mean()).squeeze(1)    # R: data-dependent
        return rows[keep], deltas[keep]


class BoxHead(torch.nn.Module):
    """Per proposal: a two-layer MLP, class scores and per-class boxes."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.ReLU())
        self.cls = torch.nn.Linear(32, CLASSES)
        self.box = torch.nn.Linear(32, 4 * CLASSES)

    def forward(self, feats: torch.Tensor, deltas: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(torch.cat([feats, deltas], dim=1))
        return self.cls(h), self.box(h)


class Select(torch.nn.Module):
    """Detections: the proposals whose best class score is above the mean (D rows)."""

    def forward(self, scores: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        p = scores.softmax(dim=1)
        best = p.amax(dim=1)
        keep = torch.nonzero(best > best.mean()).squeeze(1)      # D: data-dependent
        return boxes[keep] * 0.5


class TinyDetector(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = Backbone()
        self.rpn = RPN()
        self.head = BoxHead()
        self.select = Select()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats, deltas = self.rpn(self.backbone(x))
        scores, boxes = self.head(feats, deltas)
        return self.select(scores, boxes)


NAMES = {"R": "rpn", "D": "select"}


@pytest.fixture(scope="module")
def traced() -> dict[str, sf.Cost]:
    torch.manual_seed(0)
    model = TinyDetector().eval()
    return {"model": model, **{conv: sf.trace(model, "B 3 H W", convention=conv,
                                              data_dependent=NAMES, warn=False)
                               for conv in ("torch", "exact")}}


def _counted(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, int, int]:
    """FlopCounterMode's total on a real CPU forward, and R, D read from that run."""
    seen: dict[str, int] = {}
    h1 = model.rpn.register_forward_hook(lambda m, i, o: seen.__setitem__("R", o[0].shape[0]))
    h2 = model.select.register_forward_hook(lambda m, i, o: seen.__setitem__("D", o.shape[0]))
    try:
        with torch.no_grad(), flop_counter.FlopCounterMode(display=False) as fc:
            model(x)
    finally:
        h1.remove()
        h2.remove()
    return fc.get_total_flops(), seen["R"], seen["D"]


def test_counts_are_symbols_of_their_own(traced):
    c = traced["torch"]
    assert R in c.flops.free_symbols and c.output_shape == (D, 4 * CLASSES)
    assert D in traced["exact"].flops.free_symbols   # the scaling of the kept boxes
    assert c.report.data_dependent["R"]["op"] == "aten.nonzero"
    assert c.report.data_dependent["R"]["at"] == "rpn"
    assert c.report.data_dependent["D"]["at"] == "select"
    # per proposal (torch: 2 per MAC): fc 20x32, cls 32x5, box 32x20 -> 2*(640+160+640)
    assert sp.expand(c.flops).coeff(R) == 2 * (20 * 32 + 32 * CLASSES + 32 * 4 * CLASSES)
    assert sp.expand(c.flops).coeff(D) == 0          # the selection does no matmul


def test_exact_cost_per_proposal_and_detection(traced):
    c = sp.expand(traced["exact"].flops)
    # per proposal: fc 32 dot products of 20 (20 mul + 19 add) + bias = 32*40; relu 32;
    # cls 5*64; box 20*64; softmax over the 5 classes: 4 compares for the max, 5
    # subtracts, 5 exp, 4 adds, 5 divides (23); the row max 4 compares; their mean 1 add
    # per row (R - 1 adds and 1 divide in all); the threshold 1 compare
    per_roi = 32 * 40 + 32 + CLASSES * 64 + 4 * CLASSES * 64
    assert c.coeff(R) == per_roi + 23 + 4 + 1 + 1
    # per detection: its 20 box values times 0.5
    assert c.coeff(D) == 4 * CLASSES


def test_domain_bounds_the_counts(traced):
    c = traced["torch"]
    quarter = sp.Rational(1, 4)
    cells = B * (sp.floor(H / 4 - quarter) + 1) * (sp.floor(W / 4 - quarter) + 1)
    assert sp.Le(R, cells) in c.validity
    assert c.domain.contains(B=2, H=32, W=32, R=128, D=3)
    assert not c.domain.contains(B=2, H=32, W=32, R=129, D=3)   # past every cell
    with pytest.raises(OutsideDomain):
        c.subs(B=1, H=16, W=16, R=17, D=1)


@pytest.mark.parametrize("b, h, w", [(2, 32, 32), (1, 48, 40)])
def test_equals_flop_counter_at_concrete_sizes(traced, b, h, w):
    model = traced["model"]
    torch.manual_seed(b * h + w)
    x = torch.randn(b, 3, h, w)
    flops, r, d = _counted(model, x)
    assert r > 0 and d > 0
    assert traced["torch"].subs(B=b, H=h, W=w, R=r, D=d).flops == flops


def test_default_names_and_bad_names(traced):
    model = traced["model"]
    c = sf.trace(model, "B 3 H W", convention="torch", warn=False)
    assert [n for n in c.report.data_dependent] == ["n1", "n2"]
    assert c.flops.subs(count("n1"), R) == traced["torch"].flops.subs(D, count("n2"))
    with pytest.raises(SymflopsError, match="backbone"):   # its output is not a count
        sf.trace(model, "B 3 H W", data_dependent={"R": "backbone"}, warn=False)
    with pytest.raises(SymflopsError, match="neither a module"):
        sf.trace(model, "B 3 H W", data_dependent={"R": "nowhere"}, warn=False)
    with pytest.raises(SymflopsError, match="name of an input dim"):
        sf.trace(model, "B 3 H W", data_dependent={"H": "rpn"}, warn=False)
    with pytest.raises(SymflopsError, match="must map"):
        sf.trace(model, "B 3 H W", data_dependent=["R"], warn=False)


# --- sized_detector on a stand-in for a torchvision detector (no torchvision here) ---------

from symflops.tracing.detection import sized_detector  # noqa: E402


class StandInTransform(torch.nn.Module):
    """What sized_detector reads of torchvision's GeneralizedRCNNTransform, and the real
    transform's normalize and pad-to-32 (``batch_images``) for the reference forward (no
    resize: the network runs at the image's size)."""

    image_mean = [0.485, 0.456, 0.406]
    image_std = [0.229, 0.224, 0.225]
    size_divisible = 32

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        mean = torch.as_tensor(self.image_mean, dtype=image.dtype, device=image.device)
        std = torch.as_tensor(self.image_std, dtype=image.dtype, device=image.device)
        return (image - mean[:, None, None]) / std[:, None, None]

    def forward(self, images: list[torch.Tensor], targets=None):
        images = [self.normalize(i) for i in images]
        sizes = [tuple(i.shape[-2:]) for i in images]
        d = self.size_divisible
        h = -(-max(s[0] for s in sizes) // d) * d
        w = -(-max(s[1] for s in sizes) // d) * d
        batch = images[0].new_zeros((len(images), 3, h, w))
        for b, img in enumerate(images):
            batch[b, :, :img.shape[1], :img.shape[2]].copy_(img)
        return type("Batch", (), {"tensors": batch, "image_sizes": sizes})(), targets

    def postprocess(self, result, image_shapes, original_image_sizes):
        return result


class StandInDetector(torch.nn.Module):
    """A list of images in, per image the rows of the feature cells scoring above their
    mean through a linear head out (torchvision's detectors' calling convention)."""

    def __init__(self) -> None:
        super().__init__()
        self.transform = StandInTransform()
        self.backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=4, padding=1),
                                            torch.nn.ReLU())
        self.head = torch.nn.Linear(8, 6)

    def forward(self, images: list[torch.Tensor]) -> list[torch.Tensor]:
        batch, _ = self.transform(images)
        f = self.backbone(batch.tensors)
        scores = f.mean(1).flatten(1)
        out = []
        for i in range(len(images)):
            keep = torch.nonzero(scores[i] > scores[i].mean()).squeeze(1)
            out.append(self.head(f[i].flatten(1).t()[keep]))
        return self.transform.postprocess(out, batch.image_sizes, batch.image_sizes)


@pytest.fixture(scope="module")
def stand_in() -> dict:
    torch.manual_seed(1)
    model = StandInDetector().eval()
    return {"model": model,
            "cost": sf.trace(sized_detector(model), "1 3 H W", convention="torch",
                             data_dependent={"R": "head"}, warn=False)}


@pytest.mark.parametrize("h, w", [(50, 70), (96, 64), (257, 33)])
def test_sized_detector_pads_symbolically_and_equals_flop_counter(stand_in, h, w):
    model, cost = stand_in["model"], stand_in["cost"]
    assert not cost.report.fixed and R in cost.flops.free_symbols
    seen: list[int] = []
    hook = model.head.register_forward_hook(lambda m, i, o: seen.append(o.shape[0]))
    try:
        with torch.no_grad(), flop_counter.FlopCounterMode(display=False) as fc:
            model([torch.rand(3, h, w)])      # the model's own transform pads to 32
    finally:
        hook.remove()
    # the conv runs on the padded image: ceil(H / 32) * 32 rows, stride 4
    padded = (-(-h // 32) * 32, -(-w // 32) * 32)
    cells = ((padded[0] - 1) // 4 + 1) * ((padded[1] - 1) // 4 + 1)
    assert cost.subs(H=h, W=w, R=seen[0]).flops == fc.get_total_flops() \
        == 2 * cells * 8 * 27 + 2 * seen[0] * 8 * 6


def test_sized_detector_batch_and_refusals(stand_in):
    model = stand_in["model"]
    two = sf.trace(sized_detector(model), "2 3 H W", convention="torch", warn=False)
    assert len(two.report.data_dependent) == 2        # one count per image
    with pytest.raises(SymflopsError, match="GeneralizedRCNNTransform"):
        sized_detector(torch.nn.Linear(2, 2))
    with pytest.raises(SymflopsError, match="one \\(B, 3, H, W\\) batch"):
        sized_detector(model)([torch.rand(3, 8, 8)])


class TopK(torch.nn.Module):
    """The rows above their mean, by a boolean mask, cut to the first 6 (an RPN's
    ``keep[:post_nms_top_n]``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.sum(1)
        return x[s > s.mean()][:6]


class CutThenHead(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cut = TopK()
        self.head = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cut(x))


def test_a_count_under_a_top_k_cut_is_named():
    torch.manual_seed(3)
    model = CutThenHead().eval()
    c = sf.trace(model, "N 4", convention="torch", data_dependent={"R": "cut"}, warn=False)
    assert c.flops == 2 * 4 * 3 * sp.Min(6, R)
    assert c.report.data_dependent["R"]["op"] == "aten.index"     # x[mask]
    assert sp.Le(R, symbol("N")) in c.validity                   # at most the mask's size
    for n in (3, 40):   # below and above the cut
        x = torch.randn(n, 4)
        kept = int((x.sum(1) > x.sum(1).mean()).sum())
        with torch.no_grad(), flop_counter.FlopCounterMode(display=False) as fc:
            model(x)
        assert c.subs(N=n, R=kept).flops == fc.get_total_flops() == 24 * min(6, kept)


# --- a head per detection (Mask R-CNN's shape) on a stand-in, no torchvision ---------------

from symflops.tracing.handlers.detection import NOT_RUN  # noqa: E402

MASK = 7        # the RoI features' side (Mask R-CNN: 14), the masks' side is twice it


class PastingTransform(StandInTransform):
    """The stand-in transform, its postprocess pasting each detection's mask into the image
    as torchvision's ``paste_masks_in_image`` does: one Python iteration per detection, the
    mask resized (bilinear) to its box's size in pixels, a value read from the data."""

    def postprocess(self, result, image_shapes, original_image_sizes):
        for r, (h, w) in zip(result, original_image_sizes, strict=True):
            if "masks" not in r:      # torchvision's test too
                continue
            pasted = []
            for mask, box in zip(r["masks"], r["boxes"], strict=True):
                bw, bh = (int(v) for v in box[2:].abs().clamp(1, 8).ceil())
                m = torch.nn.functional.interpolate(mask[None], size=(bh, bw),
                                                    mode="bilinear")[0, 0]
                canvas = mask.new_zeros((h, w))
                canvas[:bh, :bw] = m > 0.5
                pasted.append(canvas)
            r["masks"] = torch.stack(pasted)[:, None] if pasted else \
                r["masks"].new_zeros((0, 1, h, w))
        return result


class Detections(torch.nn.Module):
    """The feature cells scoring above their mean: one row each (D rows, data-dependent)."""

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        scores = f.mean(0).flatten()
        keep = torch.nonzero(scores > scores.mean()).squeeze(1)
        return f.flatten(1).t()[keep]


class MaskHead(torch.nn.Module):
    """Per detection: a linear map to a 8 x 7 x 7 RoI feature, a 3x3 conv, a 2x2 stride-2
    transposed conv to 14 x 14, a 1x1 conv to one mask logit per pixel (Mask R-CNN's head,
    small)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(8, 8 * MASK * MASK)
        self.conv = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.up = torch.nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.logits = torch.nn.Conv2d(4, 1, 1)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        x = self.fc(rows).view(-1, 8, MASK, MASK)
        x = torch.relu(self.up(torch.relu(self.conv(x))))
        return self.logits(x).sigmoid()


class StandInMaskDetector(torch.nn.Module):
    """Boxes and a mask per detection, the masks pasted by the transform's postprocess."""

    def __init__(self) -> None:
        super().__init__()
        self.transform = PastingTransform()
        self.backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=4, padding=1),
                                            torch.nn.ReLU())
        self.detections = Detections()
        self.boxes = torch.nn.Linear(8, 4)
        self.mask_head = MaskHead()

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        batch, _ = self.transform(images)
        f = self.backbone(batch.tensors)
        out = []
        for i in range(len(images)):
            rows = self.detections(f[i])
            out.append({"boxes": self.boxes(rows), "masks": self.mask_head(rows)})
        return self.transform.postprocess(out, batch.image_sizes, batch.image_sizes)


#: the mask head's MACs per detection: fc 8 -> 392, the 3x3 conv 8 -> 8 at 7x7, the
#: transposed conv (each input pixel times each output channel's 2x2 kernel, 8 inputs) at
#: 7x7 inputs, the 1x1 conv 4 -> 1 at 14x14; and the box layer 8 -> 4
MASK_MACS = 8 * 392 + 8 * 8 * 9 * 49 + 8 * 4 * 4 * 49 + 4 * 1 * 196
BOX_MACS = 8 * 4


@pytest.fixture(scope="module")
def masks() -> dict:
    torch.manual_seed(5)
    model = StandInMaskDetector().eval()
    return {"model": model, **{conv: sf.trace(sized_detector(model), "1 3 H W",
                                              convention=conv, warn=False,
                                              data_dependent={"D": "detections"})
                               for conv in ("torch", "exact")}}


def test_a_head_per_detection_is_symbolic_in_d(masks):
    c = masks["torch"]
    assert not c.report.fixed and c.flops.free_symbols == {H, W, D}
    assert c.report.data_dependent["D"]["at"] == "detections"
    # 2 FLOPs per MAC (torch) for each detection's box and mask; the backbone in H, W
    assert sp.expand(c.flops).coeff(D) == 2 * (MASK_MACS + BOX_MACS)
    assert c.output_shape is not None


def test_the_paste_is_not_run_and_says_so(masks):
    """The paste's work follows each box's size (a value): no leaf counts it, one leaf of
    cost 0 per image carries the note, under every convention; the masks are the head's."""
    for conv in ("torch", "exact"):
        marks = [leaf for _, leaf in masks[conv].leaves()
                 if NOT_RUN["paste_masks_in_image"] in leaf.notes]
        assert len(marks) == 1 and marks[0].flops == 0
        assert not any("upsample" in (leaf.op or "") for _, leaf in masks[conv].leaves())
    out = sized_detector(masks["model"])(torch.rand(1, 3, 40, 40))
    assert out[0]["masks"].shape[1:] == (1, 2 * MASK, 2 * MASK)      # not pasted
    with pytest.raises(SymflopsError, match="unknown step"):
        torch.ops.symflops.not_run(torch.zeros(1), "nothing")


@pytest.mark.parametrize("h, w", [(24, 40), (128, 250)])
def test_a_head_per_detection_equals_flop_counter_far_apart(masks, h, w):
    """D about 50 and about 1,000 (half the cells): the real forward pastes the masks
    (FlopCounterMode counts no op of the paste), the trace does not run it."""
    model = masks["model"]
    seen: list[int] = []
    hook = model.detections.register_forward_hook(lambda m, i, o: seen.append(o.shape[0]))
    torch.manual_seed(h + w)
    try:
        with torch.no_grad(), flop_counter.FlopCounterMode(display=False) as fc:
            out = model([torch.rand(3, h, w)])
    finally:
        hook.remove()
    d = seen[0]
    assert out[0]["masks"].shape == (d, 1, h, w)                    # the real one pasted
    assert (d < 100) if h < 100 else (d > 600)
    padded = (-(-h // 32) * 32, -(-w // 32) * 32)
    cells = ((padded[0] - 1) // 4 + 1) * ((padded[1] - 1) // 4 + 1)
    assert masks["torch"].subs(H=h, W=w, D=d).flops == fc.get_total_flops() \
        == 2 * (cells * 8 * 27 + d * (MASK_MACS + BOX_MACS))


def _check_detection() -> object:
    """benchmarks/check_detection.py as a module (its per-op counter of a real forward)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "check_detection.py"
    spec = importlib.util.spec_from_file_location("check_detection", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("h, w", [(24, 40), (128, 250)])
def test_exact_convention_equals_a_per_op_count_of_the_forward(masks, h, w):
    """Under exact, the symbolic formula at the forward's D against an independent count: a
    dispatch mode adding up each op's count at the forward's concrete shapes (no symbols,
    names, guards or domain); its torch total is FlopCounterMode's on the same forward."""
    model = sized_detector(masks["model"])
    torch.manual_seed(h * w)
    x = torch.rand(1, 3, h, w)
    with flop_counter.FlopCounterMode(display=False) as fc:
        seen = _check_detection().exact_by_ops(model, x)
    (op, d), = seen["counts"]
    assert op == "aten.nonzero" and not seen["unknown"]
    assert seen["torch"] == fc.get_total_flops() == masks["torch"].subs(H=h, W=w, D=d).flops
    assert masks["exact"].subs(H=h, W=w, D=d).flops == seen["exact"] > seen["torch"]


class TwoLevels(torch.nn.Module):
    """Rows split between two heads by their first value (an FPN's levels in small): ``n1``
    rows above 0 go through ``up``, the ``n2`` others through ``down``. A level may get no
    row; nothing reduces over the rows, so each count may be 0."""

    def __init__(self) -> None:
        super().__init__()
        self.up, self.down = torch.nn.Linear(8, 16), torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = x[:, 0]
        return self.up(x[s > 0]), self.down(x[s <= 0])


@pytest.mark.parametrize("rows", [(10, 0), (0, 7), (3, 4)], ids=["n2=0", "n1=0", "both"])
def test_a_count_of_zero_is_answered_where_no_op_reduces_over_it(rows):
    torch.manual_seed(0)
    model = TwoLevels().eval()
    up, down = rows
    x = torch.cat([torch.rand(up, 8) + 0.5, -torch.rand(down, 8) - 0.5])
    with torch.no_grad(), flop_counter.FlopCounterMode(display=False) as fc:
        model(x)
    values = {"N": up + down, "n1": up, "n2": down}
    traced = {conv: sf.trace(model, "N 8", convention=conv, warn=False)
              for conv in ("torch", "exact")}
    assert str(traced["torch"].domain) == "n1 <= N; n2 <= N"   # no n >= 1
    assert traced["torch"].subs(**values).flops == fc.get_total_flops()
    # by hand, exact: per row of up 16 outputs of 8 multiplies, 7 adds and the bias (16*16),
    # of down 4*16; the split's compares, one per row of the first column, twice
    assert traced["exact"].subs(**values).flops == 256 * up + 64 * down + 2 * (up + down)


def test_a_count_reduced_over_stays_at_least_one(traced):
    # the mean over the R proposals' best scores: at R = 0 a mean of nothing (torch's nan
    # with a divide the formula R does not count), so R = 0 is refused, with the reason
    for conv in ("torch", "exact"):
        c = traced[conv]
        assert sp.Ge(R, 1) in c.validity
        (note,) = [n for n in c.notes if n.startswith("R >= 1")]
        assert "select.mean" in note
        with pytest.raises(OutsideDomain, match="R >= 1"):
            c.subs(B=1, H=32, W=32, R=0, D=0)
        assert sp.Ge(D, 1) not in c.validity          # D rows times 0.5: 0 at D = 0
        assert c.subs(B=1, H=32, W=32, R=5, D=0).flops == \
            c.subs(B=1, H=32, W=32, R=5, D=1).flops - (20 if conv == "exact" else 0)


class EmptyShortcut(torch.nn.Module):
    """A branch on a count: no row kept -> a sum of the input (another path at 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x[x[:, 0] > 0]
        if y.shape[0] == 0:
            return torch.zeros(1, 4) + x.sum()
        return self.fc(y)


def test_a_branch_on_a_count_at_zero_is_refused_then_traced_with_that_example():
    c = sf.trace(EmptyShortcut(), "N 8", convention="exact", warn=False)
    n1 = count("n1")
    assert sp.Ne(n1, 0) in c.validity               # decided at the example: rows kept
    with pytest.raises(OutsideDomain, match=r"data_dependent=\{'n1': \(its source, 0\)\}"):
        c.subs(N=5, n1=0)
    zero = sf.trace(EmptyShortcut(), "N 8", convention="exact",
                    data_dependent={"n1": ("n1", 0)}, warn=False)
    # by hand at n1 = 0: N compares, a sum of 8N values (8N - 1 adds), 4 adds of it
    assert zero.subs(N=5, n1=0).flops == 5 + 39 + 4
    with pytest.raises(OutsideDomain):                # that path holds at 0 only
        zero.subs(N=5, n1=2)
    # the torch convention of that path, against FlopCounterMode on a forward that keeps 0
    with flop_counter.FlopCounterMode(display=False) as fc:
        EmptyShortcut()(-torch.rand(5, 8))
    assert zero.with_convention("torch").subs(N=5, n1=0).flops == fc.get_total_flops() == 0
