"""SEP-Nets: pattern residual blocks, SEP modules, and the small / large / CIFAR networks.

Architecture from ``shared/paper/NOTES.md``: section 2 (PRB: O(x) = C_k×k(x) + C_1×1(x), both
group convs with N = 4 groups, conv → BN → ReLU after the sum; SEP module: 1×1 reduction,
two PRBs, concat, 1×1 recovery, skip from the module input), section 3 (recovered table rows
1-29 and the reconstructed tail: 3×3/2 max-pool after conv1, conv4 512 3×3/2 groups 4, global
average pool, FC 512 → classes). "large" is not documented anywhere: we define it as small plus
three extra SEP modules at 256 channels, which lands on the paper's 1.7M weights.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..quant import PatternConv2d


class ConvBNReLU(nn.Module):
    def __init__(self, cin, cout, k, stride=1, groups=1, role="conv", relu=True):
        super().__init__()
        self.conv = PatternConv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups,
                                  bias=False, role=role if k > 1 else "pointwise")
        self.bn = nn.BatchNorm2d(cout)
        self.relu = relu

    def forward(self, x):
        x = self.bn(self.conv(x))
        return torch.relu(x) if self.relu else x

    def export_graph(self, g, x, name):
        y = g.conv(name, self.conv, x, bn=self.bn)
        return g.relu(f"{name}.relu", y) if self.relu else y


class PatternResidualBlock(nn.Module):
    """PRB: ReLU(BN(C_k×k(x) + C_1×1(x))), both branches grouped (paper: N = 4)."""

    def __init__(self, cin, cout, k=3, groups=4):
        super().__init__()
        self.pattern = PatternConv2d(cin, cout, k, padding=k // 2, groups=groups, bias=False,
                                     role="pattern")
        self.pointwise = PatternConv2d(cin, cout, 1, groups=groups, bias=False, role="pointwise")
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return torch.relu(self.bn(self.pattern(x) + self.pointwise(x)))

    def export_graph(self, g, x, name):
        y = g.conv_sum(name, [("pattern", self.pattern), ("pointwise", self.pointwise)], x,
                       bn=self.bn)
        return g.relu(f"{name}.relu", y)


class SEPModule(nn.Module):
    """1×1 reduce → PRB slice1 ∥ PRB slice2 (half width) → concat → 1×1 recover → + input → ReLU.

    ``sequential=True`` feeds slice2 from slice1's output instead of the reduction output
    (the other reading of the paper); recovery still sees both slices concatenated.
    """

    def __init__(self, channels, reduce, slice1, slice2, groups=4, sequential=False):
        super().__init__()
        self.sequential = sequential
        self.reduce = ConvBNReLU(channels, reduce, 1)
        self.slice1 = PatternResidualBlock(reduce, slice1, groups=groups)
        self.slice2 = PatternResidualBlock(slice1 if sequential else reduce, slice2, groups=groups)
        self.recover = ConvBNReLU(slice1 + slice2, channels, 1, relu=False)

    def forward(self, x):
        r = self.reduce(x)
        s1 = self.slice1(r)
        s2 = self.slice2(s1 if self.sequential else r)
        return torch.relu(self.recover(torch.cat([s1, s2], dim=1)) + x)

    def export_graph(self, g, x, name):
        r = self.reduce.export_graph(g, x, f"{name}.reduce")
        s1 = self.slice1.export_graph(g, r, f"{name}.slice1")
        s2 = self.slice2.export_graph(g, s1 if self.sequential else r, f"{name}.slice2")
        c = g.concat(f"{name}.concat", [s1, s2])
        y = self.recover.export_graph(g, c, f"{name}.recover")
        return g.relu(f"{name}.relu", g.add(f"{name}.add", y, x))


def _module(c, sequential):
    # Widths from the recovered table: reduce c/2, slice1 c/2, slice2 c/4, recover c.
    return SEPModule(c, c // 2, c // 2, c // 4, sequential=sequential)


class SEPNet(nn.Module):
    def __init__(self, num_classes=1000, imagenet_stem=True, extra_modules=0, sequential=False):
        super().__init__()
        self.imagenet_stem = imagenet_stem
        if imagenet_stem:
            self.conv1 = ConvBNReLU(3, 64, 5, stride=2, role="stem")
            self.pool1 = nn.MaxPool2d(3, stride=2, padding=1)
        else:
            self.conv1 = ConvBNReLU(3, 64, 3, stride=1, role="stem")
            self.pool1 = None
        self.module1 = _module(64, sequential)
        self.conv2 = ConvBNReLU(64, 128, 3, stride=2, groups=1)
        self.module2 = _module(128, sequential)
        self.conv3 = ConvBNReLU(128, 256, 3, stride=2, groups=4)
        self.stage3 = nn.Sequential(*[_module(256, sequential) for _ in range(2 + extra_modules)])
        self.conv4 = ConvBNReLU(256, 512, 3, stride=2, groups=4)
        self.fc = nn.Linear(512, num_classes)

    def features(self, x):
        x = self.conv1(x)
        if self.pool1 is not None:
            x = self.pool1(x)
        x = self.module2(self.conv2(self.module1(x)))
        x = self.conv4(self.stage3(self.conv3(x)))
        return x

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))

    def export_graph(self, g):
        x = self.conv1.export_graph(g, g.input, "conv1")
        if self.pool1 is not None:
            x = g.maxpool("pool1", x, 3, 2, 1)
        x = self.module1.export_graph(g, x, "module1")
        x = self.conv2.export_graph(g, x, "conv2")
        x = self.module2.export_graph(g, x, "module2")
        x = self.conv3.export_graph(g, x, "conv3")
        for i, m in enumerate(self.stage3):
            x = m.export_graph(g, x, f"module{3 + i}")
        x = self.conv4.export_graph(g, x, "conv4")
        x = g.gap("pool", x)
        return g.linear("fc", self.fc, x)


def sepnet_small(num_classes=1000, **kw):
    return SEPNet(num_classes, imagenet_stem=True, **kw)


def sepnet_large(num_classes=1000, **kw):
    return SEPNet(num_classes, imagenet_stem=True, extra_modules=3, **kw)


def sepnet_cifar(num_classes=10, **kw):
    return SEPNet(num_classes, imagenet_stem=False, **kw)
