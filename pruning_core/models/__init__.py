"""Networks to prune: torchvision CNNs and a small CNN (:mod:`.cnn`), NEON's MLPs (:mod:`.mlp`)."""
