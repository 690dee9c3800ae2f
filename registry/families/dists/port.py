"""A clean PyTorch port of DISTS (no torchvision), arithmetic identical to DISTS_pytorch.

Built from a torchvision-format VGG-16 state dict and the published alpha/beta.
Takes [0, 1] RGB like the reference; returns the distance ``1 - similarity``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from registry.families.dists.graph import C1, C2, L2POOL_EPS, l2pool_filter
from registry.families.vgg import VGG16_STAGES, stage_widths
from registry.plugin import IMAGENET_MEAN, IMAGENET_STD


class L2Pool(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.filter: torch.Tensor
        self.register_buffer("filter", torch.from_numpy(l2pool_filter(channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x**2, self.filter, stride=2, padding=1, groups=self.channels)
        return (out + L2POOL_EPS).sqrt()


class DISTS(nn.Module):
    def __init__(self, state: Mapping[str, np.ndarray], alpha: np.ndarray, beta: np.ndarray) -> None:
        super().__init__()
        widths = stage_widths(state)
        self.chns = [3, *widths]
        stages: list[nn.Module] = []
        c_in = 3
        for k, convs in enumerate(VGG16_STAGES):
            layers: list[nn.Module] = [] if k == 0 else [L2Pool(c_in)]
            for idx in convs:
                w = torch.from_numpy(np.asarray(state[f"features.{idx}.weight"], np.float32))
                conv = nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1)
                conv.weight.data.copy_(w)
                conv.bias.data.copy_(torch.from_numpy(np.asarray(state[f"features.{idx}.bias"], np.float32)))  # type: ignore[union-attr]
                layers += [conv, nn.ReLU()]
                c_in = w.shape[0]
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.alpha: torch.Tensor
        self.beta: torch.Tensor
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, -1, 1, 1))
        self.register_buffer("alpha", torch.from_numpy(np.asarray(alpha, np.float32).reshape(1, -1, 1, 1)).clone())
        self.register_buffer("beta", torch.from_numpy(np.asarray(beta, np.float32).reshape(1, -1, 1, 1)).clone())

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = (x - self.mean) / self.std
        feats = [x]
        for stage in self.stages:
            h = stage(h)  # type: ignore[operator]
            feats.append(h)
        return feats

    @torch.no_grad()
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        f0, f1 = self.features(x), self.features(y)
        w_sum = self.alpha.sum() + self.beta.sum()
        alpha = torch.split(self.alpha / w_sum, self.chns, dim=1)
        beta = torch.split(self.beta / w_sum, self.chns, dim=1)
        dist1: torch.Tensor | float = 0.0
        dist2: torch.Tensor | float = 0.0
        for k in range(len(self.chns)):
            xm = f0[k].mean([2, 3], keepdim=True)
            ym = f1[k].mean([2, 3], keepdim=True)
            s1 = (2 * xm * ym + C1) / (xm**2 + ym**2 + C1)
            dist1 = dist1 + (alpha[k] * s1).sum(1, keepdim=True)
            xv = ((f0[k] - xm) ** 2).mean([2, 3], keepdim=True)
            yv = ((f1[k] - ym) ** 2).mean([2, 3], keepdim=True)
            cov = (f0[k] * f1[k]).mean([2, 3], keepdim=True) - xm * ym
            s2 = (2 * cov + C2) / (xv + yv + C2)
            dist2 = dist2 + (beta[k] * s2).sum(1, keepdim=True)
        out = 1 - (dist1 + dist2)
        assert isinstance(out, torch.Tensor)
        return out.squeeze()
