"""The notebook's SqueezeNet in PyTorch: the benchmark's optional third contender."""

import torch
from torch import nn


def _conv(in_channels, filters, kernel_size):
    conv = nn.Conv2d(in_channels, filters, kernel_size, padding=kernel_size // 2)
    nn.init.xavier_uniform_(conv.weight)  # Glorot-uniform and zero bias, as tf.layers
    nn.init.zeros_(conv.bias)
    return conv


class _Fire(nn.Module):
    def __init__(self, in_channels, squeeze_depth, expand_depth):
        super().__init__()
        self.squeeze = _conv(in_channels, squeeze_depth, 1)
        self.expand1x1 = _conv(squeeze_depth, expand_depth, 1)
        self.expand3x3 = _conv(squeeze_depth, expand_depth, 3)

    def forward(self, x):
        x = torch.relu(self.squeeze(x))
        return torch.cat([torch.relu(self.expand1x1(x)), torch.relu(self.expand3x3(x))], dim=1)


class TorchSqueezeNet(nn.Module):
    """conv1 -> pool -> fire1, fire2 -> pool -> fire3, fire4 -> dropout -> final_conv -> GAP."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = _conv(3, 64, 3)
        self.fires1 = nn.Sequential(_Fire(64, 32, 64), _Fire(128, 32, 64))
        self.fires2 = nn.Sequential(_Fire(128, 32, 128), _Fire(256, 32, 128))
        self.dropout = nn.Dropout(0.5)
        self.final_conv = _conv(256, num_classes, 1)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(self.fires1(x), 2)
        x = self.dropout(self.fires2(x))
        return torch.relu(self.final_conv(x)).mean(dim=(2, 3))
