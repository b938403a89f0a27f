"""Classic GANs on PyTorch Lightning + Hydra: conf -> data -> nets -> GAN step -> callbacks -> outputs."""
