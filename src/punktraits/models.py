"""The networks: the seed paper's 92 binary CNNs (run side by side), and our one colour CNN.

Imports only torch. Shapes: B images, K nets, T = 92 traits.

PaperNets follows "CryptoPunks: A CNN Application" (HEC Lausanne), section V ("Model"), and the
authors' `main.py`, which produced the published numbers. Where the two disagree we follow the code
(variant "code", the default); variant "text" is the paper's prose:

    what                     main.py (variant "code")             paper text (variant "text")
    after conv1              MaxPool 2                            no pooling
    dropout                  none                                 20% after each pooling and FC
    first dense layer        Linear(128*2*2 = 512, 512)           "FC 128 to 512": we read it as the
                                                                  flattened conv output (128*5*5) -> 512
    "has the trait" output   index 1 of the softmax               index 0 ([1, 0] one-hot)

Everything else is shared: 2x2 convolutions with 32/64/128 kernels and no padding, ReLU, 2x2 max
pooling, Linear(512, 2), softmax, trained with MSE against the one-hot label.

The K nets are independent: they share no weight and see different images. Grouped convolutions
(groups=K) and batched matrix products run them as one module, which is what makes the 92-net
protocol fast; `PaperNets.stack`/`unstack` move weights between K single nets and one group.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

N_TYPES = 5


class GroupedLinear(nn.Module):
    """K independent Linear(d_in, d_out) layers applied to (B, K, d_in)."""

    def __init__(self, k: int, d_in: int, d_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(k, d_out, d_in))
        self.bias = nn.Parameter(torch.empty(k, d_out))
        bound = 1 / d_in**0.5  # nn.Linear's default init, per net
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bki,koi->bko", x, self.weight) + self.bias  # (B, K, d_out)


class PaperNets(nn.Module):
    """K copies of the paper's binary CNN. Input (B, K, 24, 24): one grey image per net.

    Output (B, K, 2): per net, the softmax over ("no", "has") for variant "code".
    """

    def __init__(self, k: int = 1, variant: str = "code"):
        super().__init__()
        if variant not in ("code", "text"):
            raise ValueError(f"variant must be 'code' or 'text', got {variant!r}")
        self.k, self.variant = k, variant
        self.positive_index = 1 if variant == "code" else 0
        self.conv1 = nn.Conv2d(k, 32 * k, 2, groups=k)
        self.conv2 = nn.Conv2d(32 * k, 64 * k, 2, groups=k)
        self.conv3 = nn.Conv2d(64 * k, 128 * k, 2, groups=k)
        side = (
            2 if variant == "code" else 5
        )  # 24 -> 23 -> 11 -> 10 -> 5 -> 4 -> 2  |  24 -> 23 -> 22 -> 11 -> 10 -> 5
        self.fc1 = GroupedLinear(k, 128 * side * side, 512)
        self.fc2 = GroupedLinear(k, 512, 2)
        self.dropout = nn.Dropout(0.2 if variant == "text" else 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, k = x.shape[:2]
        x = F.relu(self.conv1(x))  # (B, 32K, 23, 23)
        if self.variant == "code":
            x = F.max_pool2d(x, 2)  # (B, 32K, 11, 11)
        x = self.dropout(x)
        x = self.dropout(
            F.max_pool2d(F.relu(self.conv2(x)), 2)
        )  # (B, 64K, 5, 5) | (B, 64K, 11, 11)
        x = self.dropout(
            F.max_pool2d(F.relu(self.conv3(x)), 2)
        )  # (B, 128K, 2, 2) | (B, 128K, 5, 5)
        x = x.reshape(b, k, -1)  # (B, K, 128*side*side): net k owns channels [128k, 128k+128)
        x = self.dropout(F.relu(self.fc1(x)))  # (B, K, 512)
        return F.softmax(self.fc2(x), dim=-1)  # (B, K, 2)

    def prob_has(self, x: torch.Tensor) -> torch.Tensor:
        """P(has the trait), (B, K)."""
        return self(x)[..., self.positive_index]

    @staticmethod
    def stack(nets: list[PaperNets]) -> PaperNets:
        """One module running the given single nets (each k=1) side by side."""
        out = PaperNets(len(nets), nets[0].variant)
        with torch.no_grad():
            for name, p in out.named_parameters():
                p.copy_(torch.cat([dict(n.named_parameters())[name] for n in nets], 0))
        return out

    def unstack(self) -> list[PaperNets]:
        """The K single nets, with copies of their weights."""
        nets = [PaperNets(1, self.variant) for _ in range(self.k)]
        with torch.no_grad():
            for name, p in self.named_parameters():
                for i, part in enumerate(p.chunk(self.k, 0)):
                    dict(nets[i].named_parameters())[name].copy_(part)
        return nets


class PunkNet(nn.Module):
    """Our model: one CNN for all 92 traits, on RGBA input (B, 4, 24, 24) scaled to [0, 1].

    The collection is drawn from a small palette (222 RGBA colours), and its hardest traits are
    colours: Rosy Cheeks and the eye shadows are half-transparent tints of the skin, a Mole is one
    pixel of one colour. So each pixel is first snapped to the nearest colour of the palette seen
    in training (a buffer saved with the weights) and given a learned embedding, concatenated with
    its RGBA values; colours one RGB step apart are as far apart as any. A 2x2 convolution with
    stride 2 then reads every pixel exactly once (no pooling throws a one-pixel trait away) and a
    position-aware dense head combines them. Outputs T logits: the first 5 are the types (a
    softmax: exactly one), the rest accessories (independent sigmoids); then, when `n_heads` > 0,
    one logit per head (the type with its skin tone, a softmax).
    """

    def __init__(self, n_colours: int, n_traits: int = 92, embed: int = 16, width: int = 32,
                 hidden: int = 256, n_heads: int = 0):  # fmt: skip
        super().__init__()
        self.n_colours, self.n_traits, self.n_heads = n_colours, n_traits, n_heads
        self.embed, self.width, self.hidden = embed, width, hidden
        self.register_buffer("palette", torch.zeros(n_colours, 4))  # (P, 4) RGBA in [0, 1]
        self.colour = nn.Embedding(n_colours, embed)
        self.conv = nn.Conv2d(embed + 4, width, 2, stride=2)  # 24x24 -> 12x12
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(width * 12 * 12, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_traits + n_heads),
        )

    @torch.no_grad()
    def colour_index(self, x: torch.Tensor, chunk: int = 8) -> torch.Tensor:
        """Nearest palette colour of every pixel: (B, 4, 24, 24) -> (B, 24, 24) long.

        The distances of a chunk are a (chunk * 576, P) matrix: 4 MB for 8 punks and 222
        colours, computed in place (chunks of 256 with temporaries peaked at ~0.5 GB)."""
        p = self.palette  # (P, 4)
        out = []
        onnx = torch.onnx.is_in_onnx_export()
        for xb in [x] if onnx else x.split(chunk):  # ONNX: the batch stays dynamic
            px = xb.permute(0, 2, 3, 1).reshape(-1, 4)  # (b*576, 4)
            if onnx:
                d = (px * px).sum(1, keepdim=True) - 2 * px @ p.T + (p * p).sum(1)  # (b*576, P)
            else:  # the same sums in the same order, without temporaries
                d = (px @ p.T).mul_(-2).add_((px * px).sum(1, keepdim=True)).add_((p * p).sum(1))
            out.append(d.argmin(1).reshape(-1, xb.shape[2], xb.shape[3]))
        return torch.cat(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, T) from RGBA (B, 4, 24, 24) floats, or from palette indices (B, 24, 24)
        long, which training computes once for the whole collection."""
        idx = x if x.dtype == torch.long else self.colour_index(x)
        e = torch.cat([self.colour(idx), self.palette[idx]], -1)  # (B, 24, 24, embed+4)
        x = F.relu(self.conv(e.permute(0, 3, 1, 2)))  # (B, width, 12, 12)
        return self.head(x)  # (B, T)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Type probabilities sum to 1, accessory probabilities are independent, head
        probabilities sum to 1. (B, T + H)."""
        t = self.n_traits
        types = F.softmax(logits[:, :N_TYPES], dim=1)
        out = [types, torch.sigmoid(logits[:, N_TYPES:t])]
        if self.n_heads:
            out.append(F.softmax(logits[:, t:], dim=1))
        return torch.cat(out, dim=1)

    def config(self) -> dict:
        cfg = {"n_colours": self.n_colours, "n_traits": self.n_traits, "embed": self.embed,
               "width": self.width, "hidden": self.hidden}  # fmt: skip
        return {**cfg, "n_heads": self.n_heads} if self.n_heads else cfg


def palette_of(images: torch.Tensor) -> torch.Tensor:
    """The distinct RGBA colours of uint8 images (N, 24, 24, 4), sorted: (P, 4) float in [0, 1]."""
    return torch.unique(images.reshape(-1, 4), dim=0).float() / 255.0
