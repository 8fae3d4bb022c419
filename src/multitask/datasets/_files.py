"""Registry of the data files: cache path, SHA-256, size and original public source.

Pure Python (no numpy / pandas), so the command line can import it cheaply.
The paths mirror the layout of the shared datasets folder, so that
``MULTITASK_DATA`` can point at a copy of it. Every URL is the upstream file at
a fixed commit, as recorded in that folder's README.
"""

from __future__ import annotations

from dataclasses import dataclass

_GH = "https://raw.githubusercontent.com"
_MALSAR = f"{_GH}/jiayuzhou/MALSAR/fb9751594983df020ddc4f7e4a40520ee7c37989"
_LANDMINE = (
    f"{_GH}/daizhongxiang/Federated_Bayesian_Optimization/30a4548606f2ae9bc62c6bf0eb4110177aa3876a"
)
_PMTK = f"{_GH}/probml/pmtkdata/42bc2738a294382f9d6ffb1b0203404ffb10295a"
_PARK = f"{_GH}/behnazrzf/Parkinson-s_Telemonitoring/f603774b38bfc967f20b4752bec4b6f872917d98"
_SARCOS = f"{_GH}/math4mad/GP-Project/934cd959e4c1b6527d3725455aeda4296ab00ffc"
_KDD = f"{_GH}/drawbridge/keras-mmoe/2718f56e4313716fd3a86e9510bc2df0cc366238"
_MNIST = f"{_GH}/potterhsu/MnistTensorFlowVsPyTorch/2d3961f7fb76f41afd0b8101dab03ba80f73fc9f"

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


@dataclass(frozen=True)
class FileEntry:
    """One data file.

    Attributes
    ----------
    path : str
        Path relative to the cache directory, e.g. ``"school/school.mat"``.
    sha256 : str
        SHA-256 of the file as stored in the cache.
    size : int
        Size in bytes of the stored file.
    url : str
        Original public source.
    gzip_source : bool
        True when ``url`` serves the *uncompressed* file and the cache stores
        it gzip-compressed. The download is then checked against
        ``content_sha256`` and compressed locally.
    content_sha256 : str or None
        SHA-256 of the uncompressed content of a ``.gz`` file. A cached file
        whose bytes differ (re-compressed elsewhere) but whose content matches
        is accepted.
    """

    path: str
    sha256: str
    size: int
    url: str
    gzip_source: bool = False
    content_sha256: str | None = None


def _e(path: str, sha256: str, size: int, url: str, **kw) -> FileEntry:
    return FileEntry(path, sha256, size, url, **kw)


FILES: dict[str, FileEntry] = {
    e.path: e
    for e in [
        _e(
            "school/school.mat",
            "57fb3238fdd03a9aa17276e2ce18d9bbb5d128c3261e794fe6233b58b6909068",
            44_759,
            f"{_MALSAR}/data/school.mat",
        ),
        _e(
            "landmine/LandmineData.mat",
            "2163ab20a80e33a8b65593c48cf283c540599dcb291105e63fa4af2ce24c2bea",
            1_085_456,
            f"{_LANDMINE}/LandmineData.mat",
        ),
        _e(
            "computer_survey/conjointAnalysisComputerBuyers.mat",
            "6e6b5f98f438c7d15ed6c7adab44322c9345f52263a4f3026322019f184679b5",
            2_682,
            f"{_PMTK}/conjointAnalysisComputerBuyers/conjointAnalysisComputerBuyers.mat",
        ),
        _e(
            "parkinsons_telemonitoring/parkinsons_updrs.data",
            "f2c7d5025dec4e92e7feae367a5f7ccf58789a10ac6b54bdf15976c599f9dd39",
            911_261,
            f"{_PARK}/data/parkinsons_updrs.data",
        ),
        _e(
            "adult/adult.data.gz",
            "c7a2b4716a97f930123e0baf879188d701e798172631a654fc703d4b082907f3",
            408_969,
            f"{_PMTK}/adultCensus/adult.data",
            gzip_source=True,
            content_sha256="5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
        ),
        _e(
            "adult/adult.test.gz",
            "8a2c1bffa6e7ce5abfa43881ae5e87c4311ebc2b3cd526c9c40a43f19f06f799",
            205_254,
            f"{_PMTK}/adultCensus/adult.test",
            gzip_source=True,
            content_sha256="a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
        ),
        _e(
            "sarcos/sarcos_inv_test.mat",
            "161a59b5c3b4f4b404584323f181607b2acbe620eb134dc720760dc3f38f5cec",
            996_776,
            f"{_SARCOS}/data/sarcos_inv_test.mat",
        ),
        _e(
            "census_income_kdd/census-income.test.gz",
            "5ac4cacd3ca9f1ecb10de1a0a41e4ac68fdc419e3fec190f5c0c6cc03b2ea659",
            3_261_416,
            f"{_KDD}/data/census-income.test.gz",
        ),
        _e(
            "mnist/t10k-images-idx3-ubyte.gz",
            "a099c5cbed9005941904202c3dc1fea19ea68d1bbbdfb713a7a390d877d62432",
            1_634_335,
            f"{_MNIST}/data/t10k-images-idx3-ubyte.gz",
            content_sha256="0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        _e(
            "mnist/t10k-labels-idx1-ubyte.gz",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            4_542,
            f"{_MNIST}/data/t10k-labels-idx1-ubyte.gz",
        ),
    ]
}

#: Fashion-MNIST files installed by the Debian package ``dataset-fashion-mnist``.
FASHION_MNIST_FILES: dict[str, FileEntry] = {
    e.path: e
    for e in [
        _e(
            "train-images-idx3-ubyte.gz",
            "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            26_421_856,
            "",
        ),
        _e(
            "train-labels-idx1-ubyte.gz",
            "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
            29_491,
            "",
        ),
        _e(
            "t10k-images-idx3-ubyte.gz",
            "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
            4_422_079,
            "",
        ),
        _e(
            "t10k-labels-idx1-ubyte.gz",
            "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
            5_125,
            "",
        ),
    ]
}
