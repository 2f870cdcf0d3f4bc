"""Data: image datasets (digits offline; CIFAR-10 and ImageNet from local paths) and the tabular suite."""
