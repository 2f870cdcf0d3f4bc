"""Masks -> trained model: the training loop (:mod:`.loop`), batch-norm handling
(:mod:`.batchnorm`) and multi-GPU fine-tuning through torchrun (:mod:`.ddp`).
"""
