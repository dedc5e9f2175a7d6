"""Architecture of the bundled example model: a small 2D U-Net (two resolution levels).

Input: (batch, 1, y, x) with y and x multiples of 4; output: logits of the same shape.
"""

from __future__ import annotations

import torch
from torch import nn


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
    )


class TinyUNet(nn.Module):
    """U-Net with ``features``, 2x``features`` and 4x``features`` channels per level."""

    def __init__(self, in_channels: int = 1, out_channels: int = 1, features: int = 8) -> None:
        super().__init__()
        self.enc1 = _double_conv(in_channels, features)
        self.enc2 = _double_conv(features, 2 * features)
        self.bottleneck = _double_conv(2 * features, 4 * features)
        self.up2 = nn.ConvTranspose2d(4 * features, 2 * features, kernel_size=2, stride=2)
        self.dec2 = _double_conv(4 * features, 2 * features)
        self.up1 = nn.ConvTranspose2d(2 * features, features, kernel_size=2, stride=2)
        self.dec1 = _double_conv(2 * features, features)
        self.head = nn.Conv2d(features, out_channels, kernel_size=1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        b = self.bottleneck(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.head(d1)
