"""CIFAR ResNets (He et al. 2016, depth 6n+2) as in the authors' pattern-binarization experiments.

Where the shape changes, a projection shortcut (conv + BN, stride 2) is used; the stem conv and
the projections stay real-valued and every 3×3 conv inside the residual blocks is binarized.

Two shortcut widths: ``resnetN`` projects with a 1×1 conv (the common "option B"), and
``resnetN_proj3`` with a 3×3 conv, which is what the authors' Caffe ResNet-20 actually has
(``map32_1_conv_proj``: kernel 3, stride 2, trained during their fine-tuning; see
``shared/paper/NOTES.md`` section 1). The 3×3 projections are the only real-valued 3×3 convs
after the stem, so they carry much of what the refined binary network can still learn.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..quant import PatternConv2d


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, proj_kernel=1):
        super().__init__()
        self.conv1 = PatternConv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = PatternConv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = PatternConv2d(cin, cout, proj_kernel, stride=stride,
                                          padding=proj_kernel // 2, bias=False, role="projection")
            self.shortcut_bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.shortcut is None else self.shortcut_bn(self.shortcut(x))
        return torch.relu(y + s)

    def export_graph(self, g, x, name):
        y = g.relu(f"{name}.relu1", g.conv(f"{name}.conv1", self.conv1, x, bn=self.bn1))
        y = g.conv(f"{name}.conv2", self.conv2, y, bn=self.bn2)
        s = x if self.shortcut is None else g.conv(f"{name}.shortcut", self.shortcut, x,
                                                   bn=self.shortcut_bn)
        return g.relu(f"{name}.relu", g.add(f"{name}.add", y, s))


class CifarResNet(nn.Module):
    def __init__(self, depth=20, num_classes=10, proj_kernel=1):
        super().__init__()
        assert (depth - 2) % 6 == 0, "depth must be 6n+2"
        n = (depth - 2) // 6
        self.conv1 = PatternConv2d(3, 16, 3, padding=1, bias=False, role="stem")
        self.bn1 = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for stage, cout in enumerate((16, 32, 64)):
            for i in range(n):
                blocks.append(BasicBlock(cin, cout, 2 if (stage > 0 and i == 0) else 1,
                                         proj_kernel))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.blocks(torch.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    def export_graph(self, g):
        x = g.relu("conv1.relu", g.conv("conv1", self.conv1, g.input, bn=self.bn1))
        for i, b in enumerate(self.blocks):
            x = b.export_graph(g, x, f"block{i + 1}")
        return g.linear("fc", self.fc, g.gap("pool", x))


def _family(depth, proj_kernel):
    def build(num_classes=10, **kw):
        return CifarResNet(depth, num_classes, proj_kernel)
    build.__name__ = f"resnet{depth}" + ("_proj3" if proj_kernel == 3 else "")
    return build


resnet20, resnet32, resnet44, resnet56 = (_family(d, 1) for d in (20, 32, 44, 56))
resnet20_proj3, resnet32_proj3, resnet44_proj3, resnet56_proj3 = (
    _family(d, 3) for d in (20, 32, 44, 56))
