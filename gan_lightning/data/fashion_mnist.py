"""Fashion-MNIST (Xiao et al. 2017): 28x28 grey images of ten kinds of clothing, a drop-in for MNIST with the same
IDX files, file names, sizes and ten labels, read and checked by data=mnist's code."""
from __future__ import annotations

from gan_lightning.data.mnist import MNISTDataModule


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST as (uint8 image batch, labels), exactly as ``MNISTDataModule`` serves MNIST. The labels 0-9 are
    T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot.

    Files are looked up in torchvision's ``<data_dir>/FashionMNIST/raw``, or in ``data_dir`` itself when it holds
    them (Debian's ``dataset-fashion-mnist`` package puts them in ``/usr/share/datasets/fashion-mnist``);
    ``download`` uses torchvision's ``FashionMNIST``. Messages name Fashion-MNIST and its folder.
    """

    data_name = "Fashion-MNIST"
    torchvision_dataset = "FashionMNIST"
