"""Source of the small networks the tests export; written to a file so it can serve as an
architecture file of ``pytorch_state_dict`` weights."""

NETS_SOURCE = '''
"""Small networks for the bioimageio-run-torch tests."""

from typing import Dict, Optional

import torch
from torch import nn


class TinyConv(nn.Module):
    """(b, c, y, x) -> (b, out_channels, y, x)."""

    def __init__(self, in_channels: int = 1, out_channels: int = 2, hidden: int = 4):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.relu(self.conv1(x)))


def make_tiny_conv(in_channels: int, out_channels: int) -> nn.Module:
    return TinyConv(in_channels=in_channels, out_channels=out_channels)


class MultiInOut(nn.Module):
    """(raw (b, 2, y, x), mask (b, 1, y, x)) -> (features (b, 3, y, x), score (b, 3))."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_raw = nn.Conv2d(2, 3, 3, padding=1)
        self.conv_mask = nn.Conv2d(1, 3, 1)

    def forward(self, raw: torch.Tensor, mask: torch.Tensor):
        features = self.conv_raw(raw) * torch.sigmoid(self.conv_mask(mask))
        return features, features.mean(dim=(2, 3))


class DictOutput(nn.Module):
    """x (b, 1, y, x) -> {"score": (b, 2), "features": (b, 2, y, x)} (keys in that order)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        features = self.conv(x)
        return {"score": features.amax(dim=(2, 3)), "features": features}


class Downsample2(nn.Module):
    """(b, 1, 2y, 2x) -> (b, 2, y, x)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(self.conv(x), 2)


class Uint8Input(nn.Module):
    """uint8 (b, 1, y, x) -> float32 (b, 2, y, x); the cast happens inside the model."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.uint8:
            raise ValueError("Uint8Input takes uint8 images")
        return self.conv(x.to(torch.float32) / 255.0)


class OptionalMask(nn.Module):
    """(x (b, 1, y, x), optional mask (b, 1, y, x)) -> (b, 1, y, x); no mask: all ones."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if mask is None:
            return self.conv(x)
        return self.conv(x) * mask


def not_a_module(**kwargs):
    return 42
'''
