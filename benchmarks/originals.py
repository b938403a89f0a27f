"""The hand-written originals that the presets reproduce, as plain PyTorch loops: side B of the benchmark.

Each loop keeps its original's update order, feeding and per-batch bookkeeping (torchvision MNIST through PIL
transforms and a shuffled DataLoader, numpy latents where the original draws them that way, ``.item()`` on the
losses every batch for the progress print) but trains the project's nets built from the same Hydra config, so
that sides A and B differ only in the training path. The project's discriminators return logits, so the
originals' ``Sigmoid`` + ``BCELoss`` becomes ``BCEWithLogitsLoss``: the same values, one fused op.

Every loop takes ``iterations`` and calls ``tick()`` after each iteration (the benchmark's clock).
"""
from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

Tick = Callable[[], None]


def torchvision_mnist_loader(data_dir: str | Path, batch_size: int, num_workers: int = 0,
                             resize: int | None = None) -> DataLoader:
    """MNIST as the originals load it: ``datasets.MNIST`` (PIL per sample), ToTensor + Normalize(0.5, 0.5),
    ``DataLoader(shuffle=True)``. ``data_dir`` must hold ``MNIST/raw`` with the uncompressed IDX files."""
    from torchvision import datasets, transforms

    steps = [transforms.Resize(resize)] if resize else []
    transform = transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])
    dataset = datasets.MNIST(str(data_dir), train=True, download=False, transform=transform)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers)


def _endless(loader: DataLoader):
    while True:
        yield from loader


def pytorch_gan_loop(generator: nn.Module, discriminator: nn.Module, opt_g, opt_d, loader: DataLoader,
                     latent_dim: int, iterations: int, device: torch.device, tick: Tick) -> None:
    """PyTorch-GAN ``implementations/gan/gan.py`` (eriklindernoren): G step first, then D on the real batch and
    on the same generated batch, detached; prints both losses every batch."""
    criterion = nn.BCEWithLogitsLoss()
    log = io.StringIO()
    batches = _endless(loader)
    for i in range(iterations):
        imgs, _ = next(batches)
        valid = torch.ones(imgs.size(0), 1, device=device)
        fake = torch.zeros(imgs.size(0), 1, device=device)
        real_imgs = imgs.to(device)

        opt_g.zero_grad()
        z = torch.tensor(np.random.normal(0, 1, (imgs.shape[0], latent_dim)), dtype=torch.float32, device=device)
        gen_imgs = generator(z)
        g_loss = criterion(discriminator(gen_imgs), valid)
        g_loss.backward()
        opt_g.step()

        opt_d.zero_grad()
        real_loss = criterion(discriminator(real_imgs), valid)
        fake_loss = criterion(discriminator(gen_imgs.detach()), fake)
        d_loss = (real_loss + fake_loss) / 2
        d_loss.backward()
        opt_d.step()

        print(f"[Batch {i}/{iterations}] [D loss: {d_loss.item():f}] [G loss: {g_loss.item():f}]", file=log)
        log.seek(0)
        log.truncate()
        tick()


def dcgan_example_loop(generator: nn.Module, discriminator: nn.Module, opt_g, opt_d, loader: DataLoader,
                       latent_dim: int, iterations: int, device: torch.device, tick: Tick) -> None:
    """pytorch/examples ``dcgan/main.py``: D on the real batch, then on G(noise) detached (two backward calls,
    one step), then G through D on the same fake batch; prints losses and D outputs every batch."""
    criterion = nn.BCEWithLogitsLoss()
    log = io.StringIO()
    batches = _endless(loader)
    for i in range(iterations):
        data, _ = next(batches)
        discriminator.zero_grad()
        real = data.to(device)
        batch_size = real.size(0)
        label = torch.full((batch_size, 1), 1.0, device=device)
        output = discriminator(real)
        err_d_real = criterion(output, label)
        err_d_real.backward()
        d_x = torch.sigmoid(output).mean().item()

        noise = torch.randn(batch_size, latent_dim, device=device)
        fake = generator(noise)
        label.fill_(0.0)
        output = discriminator(fake.detach())
        err_d_fake = criterion(output, label)
        err_d_fake.backward()
        d_g_z1 = torch.sigmoid(output).mean().item()
        err_d = err_d_real + err_d_fake
        opt_d.step()

        generator.zero_grad()
        label.fill_(1.0)
        output = discriminator(fake)
        err_g = criterion(output, label)
        err_g.backward()
        d_g_z2 = torch.sigmoid(output).mean().item()
        opt_g.step()

        print(f"[{i}/{iterations}] Loss_D: {err_d.item():.4f} Loss_G: {err_g.item():.4f} "
              f"D(x): {d_x:.4f} D(G(z)): {d_g_z1:.4f} / {d_g_z2:.4f}", file=log)
        log.seek(0)
        log.truncate()
        tick()


def devnag_loop(generator: nn.Module, discriminator: nn.Module, opt_g, opt_d, mean: float, std: float,
                batch_size: int, latent_dim: int, d_steps: int, g_steps: int, iterations: int,
                device: torch.device, tick: Tick, print_interval: int = 100) -> None:
    """devnag ``gan.py`` ("GANs in 50 lines"): per epoch ``d_steps`` D updates (real and fake errors backpropagated
    separately, numpy real samples, G output computed with autograd then detached) and ``g_steps`` G updates;
    ``extract()`` of each error every step and a statistics print every ``print_interval`` epochs."""
    criterion = nn.BCEWithLogitsLoss()
    ones = torch.ones(1, 1, device=device)
    zeros = torch.zeros(1, 1, device=device)

    def d_sampler(n: int) -> torch.Tensor:
        return torch.tensor(np.random.normal(mean, std, (n, 1)), dtype=torch.float32, device=device)

    def gi_sampler(m: int, n: int) -> torch.Tensor:
        return torch.rand(m, n, device=device)

    def extract(v: torch.Tensor) -> list[float]:
        return v.detach().flatten().tolist()

    log = io.StringIO()
    for epoch in range(iterations):
        for _ in range(d_steps):
            discriminator.zero_grad()
            d_real_error = criterion(discriminator(d_sampler(batch_size)), ones)
            d_real_error.backward()
            d_fake_data = generator(gi_sampler(batch_size, latent_dim)).detach()
            d_fake_error = criterion(discriminator(d_fake_data), zeros)
            d_fake_error.backward()
            opt_d.step()
            dre, dfe = extract(d_real_error)[0], extract(d_fake_error)[0]
        for _ in range(g_steps):
            generator.zero_grad()
            g_fake_data = generator(gi_sampler(batch_size, latent_dim))
            g_error = criterion(discriminator(g_fake_data), ones)
            g_error.backward()
            opt_g.step()
            ge = extract(g_error)[0]
        if epoch % print_interval == 0:
            fake = extract(g_fake_data)
            print(f"Epoch {epoch}: D (real_err: {dre:.4f}, fake_err: {dfe:.4f}) G (err: {ge:.4f}); "
                  f"Fake Dist ({np.mean(fake):.4f}, {np.std(fake):.4f})", file=log)
        tick()
