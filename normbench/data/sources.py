"""The datasets ``normbench data`` fetches: their files, published hashes, download URLs and layout.

Every hash is one that the dataset's maintainers publish, or that torchvision or Keras ship for the
files they download; the comment next to each names where it comes from (``docs/data.md`` lists
them too). Files are stored in the layouts torchvision and Keras use, so a directory those tools
already filled is read in place and nothing is downloaded twice:

* ``mnist``, ``fashion_mnist``: the four gzipped IDX files in ``MNIST/raw`` / ``FashionMNIST/raw``;
* ``cifar10``: ``cifar-10-python.tar.gz`` in the data directory, unpacked to ``cifar-10-batches-py``;
* ``imdb``: Keras' ``imdb.npz`` in the data directory (Keras keeps it in ``~/.keras/datasets``).

The reader of each dataset decides where it looks (``search_dirs``) and which spellings it accepts
(``suffixes``: MNIST's files may be gzipped or not); those come from the reader modules, so the
fetcher, ``data verify`` and the loaders agree on what "present" means.

``--mirror URL`` (or ``$NORMBENCH_DATA_MIRROR``) replaces every base URL by ``URL/<dataset>/``,
for air-gapped sites that copy the files to a server of their own (one folder per dataset, since
MNIST and Fashion-MNIST use the same file names).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from normbench.data import cifar, idx, imdb

MIRROR_ENV = "NORMBENCH_DATA_MIRROR"


@dataclass(frozen=True)
class RemoteFile:
    """One file to download: its name (on the server and on disk), hash ``alg:hex`` and size in bytes."""

    name: str
    hash: str
    size: int


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset's files come from, where they are stored, and how to check them."""

    name: str
    title: str  # one line: what the dataset is
    homepage: str  # where a person downloads it by hand
    base_urls: tuple[str, ...]  # tried in order; each file's URL is base + file name
    files: tuple[RemoteFile, ...]  # what is downloaded, into download_dir
    download_dir: str  # relative to the data directory; "" is the directory itself
    search_dirs: tuple[str, ...]  # where the reader looks for the payload, in its order
    payload: tuple[str, ...]  # the files the reader needs (names without an optional suffix)
    payload_hashes: dict[str, str] = field(compare=False)  # known hash per file name as spelled on disk
    suffixes: tuple[str, ...] = ("",)  # spellings the reader accepts: name + suffix
    unpacks_to: str | None = None  # for a tar.gz download: the directory it creates in download_dir

    @property
    def download_size(self) -> int:
        """Bytes downloaded by a fetch of every file."""
        return sum(f.size for f in self.files)

    @property
    def payload_dir(self) -> str:
        """Where a fetch leaves the payload, relative to the data directory."""
        if self.unpacks_to is None:
            return self.download_dir
        return os.path.join(self.download_dir, self.unpacks_to) if self.download_dir else self.unpacks_to


class UnknownDatasetError(ValueError):
    """A dataset name that ``normbench data`` does not know (the message lists the known ones)."""


def _idx_source(name: str, title: str, homepage: str, base_urls: tuple[str, ...], search_dirs: tuple[str, ...],
                md5: tuple[str, ...], sizes: tuple[int, ...]) -> DatasetSource:
    """A dataset of the four gzipped MNIST-format files, stored in torchvision's layout
    (``idx.TORCHVISION_DIRS``); ``md5`` and ``sizes`` follow the reader's order of the files
    (``idx.FILES``: train images and labels, then test images and labels)."""
    stems = idx.FILES["train"] + idx.FILES["test"]
    files = tuple(RemoteFile(f"{stem}.gz", f"md5:{digest}", size) for stem, digest, size in zip(stems, md5, sizes))
    return DatasetSource(
        name=name, title=title, homepage=homepage, base_urls=base_urls, files=files,
        download_dir=idx.TORCHVISION_DIRS[name], search_dirs=search_dirs, payload=stems,
        payload_hashes={f.name: f.hash for f in files}, suffixes=idx.SUFFIXES,
    )


MNIST = _idx_source(
    "mnist",
    "MNIST handwritten digits (LeCun et al. 1998): 60,000 train / 10,000 test, 28x28 grayscale",
    "http://yann.lecun.com/exdb/mnist/",
    # yann.lecun.com is often unreachable; torchvision lists the S3 mirror next to it.
    ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    idx.SUBDIRS,
    # md5 of the .gz files: torchvision's MNIST.resources (pytorch/vision, torchvision/datasets/mnist.py);
    # LeCun's page publishes none. Sizes: the byte counts on LeCun's page.
    md5=("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
         "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"),
    sizes=(9912422, 28881, 1648877, 4542),
)

FASHION_MNIST = _idx_source(
    "fashion_mnist",
    "Fashion-MNIST clothing images (Xiao et al. 2017): 60,000 train / 10,000 test, 28x28 grayscale",
    "https://github.com/zalandoresearch/fashion-mnist",
    ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
     "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
    idx.FASHION_SUBDIRS,
    # md5: the "Get the Data" table of the Fashion-MNIST README (zalandoresearch/fashion-mnist, README.md);
    # torchvision's FashionMNIST.resources lists the same values. Sizes: the byte counts torchvision and
    # Keras report when downloading these files (the README rounds them).
    md5=("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
         "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
    sizes=(26421880, 29515, 4422102, 5148),
)

CIFAR10 = DatasetSource(
    name="cifar10",
    title="CIFAR-10 tiny images (Krizhevsky 2009): 50,000 train / 10,000 test, 32x32 colour, python batches",
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    base_urls=("https://www.cs.toronto.edu/~kriz/",),
    # md5 of the archive: the "Version / Size / md5sum" table on https://www.cs.toronto.edu/~kriz/cifar.html;
    # size: the Content-Length that server sends (the page rounds it to 163 MB).
    files=(RemoteFile(cifar.ARCHIVE, "md5:c58f30108f718f92721af3b95e74349a", 170498071),),
    download_dir="",
    search_dirs=cifar.SUBDIRS,
    payload=cifar.TRAIN_BATCHES + cifar.TEST_BATCHES,
    # md5 of the unpacked batches: torchvision's CIFAR10.train_list / test_list
    # (pytorch/vision, torchvision/datasets/cifar.py), so an unpacked copy is verified without the archive.
    payload_hashes={
        "data_batch_1": "md5:c99cafc152244af753f735de768cd75f",
        "data_batch_2": "md5:d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "md5:54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "md5:634d18415352ddfa80567beed471001a",
        "data_batch_5": "md5:482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "md5:40351d587109b95175f43aff81a1287e",
    },
    unpacks_to="cifar-10-batches-py",
)

IMDB_FILE = RemoteFile(
    imdb.FILE,
    # sha256: the file_hash that keras.datasets.imdb.load_data passes to get_file (keras-team/keras,
    # keras/src/datasets/imdb.py). Size: the byte count Keras reports when downloading it.
    "sha256:69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f",
    17464789,
)

IMDB = DatasetSource(
    name="imdb",
    title="IMDB movie reviews (Maas et al. 2011), Keras' imdb.npz: 25,000 train / 25,000 test word-index "
          "sequences, binary sentiment",
    homepage="https://ai.stanford.edu/~amaas/data/sentiment/ (Keras' preprocessed copy: keras.datasets.imdb)",
    base_urls=("https://storage.googleapis.com/tensorflow/tf-keras-datasets/",),
    files=(IMDB_FILE,),
    download_dir="",
    search_dirs=imdb.SUBDIRS,
    payload=(IMDB_FILE.name,),
    payload_hashes={IMDB_FILE.name: IMDB_FILE.hash},
)

SOURCES: dict[str, DatasetSource] = {s.name: s for s in (MNIST, FASHION_MNIST, CIFAR10, IMDB)}


def known_datasets() -> list[str]:
    """Names of the datasets ``normbench data`` can fetch, sorted."""
    return sorted(SOURCES)


def get_source(name: str) -> DatasetSource:
    """The source of dataset ``name``; :class:`UnknownDatasetError` listing the known names otherwise."""
    try:
        return SOURCES[name]
    except KeyError:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; normbench data knows: {', '.join(known_datasets())}"
        ) from None


def mirror_url() -> str | None:
    """The mirror from ``$NORMBENCH_DATA_MIRROR``, or None."""
    return os.environ.get(MIRROR_ENV) or None


def file_urls(source: DatasetSource, file: RemoteFile, mirror: str | None = None) -> list[str]:
    """URLs to try for ``file``, in order: ``mirror/<dataset>/<file>`` alone when a mirror is given."""
    mirror = mirror or mirror_url()
    bases = (f"{mirror.rstrip('/')}/{source.name}/",) if mirror else source.base_urls
    return [base + file.name for base in bases]
