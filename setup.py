"""recbole-bt: non-contrastive self-supervised learning for sequential recommendation, as a RecBole plugin.

Install torch first, then this package (a bare `torch` requirement resolved by pip before torch is present
pulls a multi-GB CUDA build):

    pip install torch==2.13.0      # the CPU wheel; any torch in the range below works
    pip install .                  # or: pip install .[test]
"""
import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_version():
    with open(os.path.join(HERE, "recbole_bt", "__init__.py"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("__version__"):
                return line.split("=")[1].strip().strip("\"'")
    raise RuntimeError("no __version__ in recbole_bt/__init__.py")


# The pins RecBole 1.2.1 needs today, in one place (measured on Python 3.11, torch 2.13 CPU; see README):
# - torch: a range, never a pin, so that the torch installed first (2.13.0 here) satisfies it and pip
#   downloads nothing; RecBole 1.2.1 works from 1.10 on, and we use torch.load(weights_only=...) (>= 1.13).
# - numpy<2: numpy 2 removed np.float_/np.bool8/..., which RecBole's Config and ray 2.6 use at import time.
# - pandas<3: pandas 3 makes RecBole's Dataset._fill_nan (a chained fillna(inplace=True)) a silent no-op,
#   so missing values would stay NaN; pinning numpy alone still lets pip pick pandas 3.
# - setuptools<81: recbole 1.2.1 pulls ray 2.6.3, which imports pkg_resources (removed in setuptools 81);
#   torch 2.13 otherwise drags in a newer setuptools.
INSTALL_REQUIRES = [
    "recbole==1.2.1",
    "torch>=1.13,<3",
    "numpy>=1.21,<2",
    "pandas>=1.3,<3",
    "scipy>=1.7",
    "pyyaml>=5.4",
    "setuptools>=77.0.3,<81",
]

# HyperTuning (recbole_bt.tuning, run_hyper_bt.py) needs hyperopt, which RecBole imports lazily:
# - hyperopt==0.2.5: RecBole 1.2.1's own pin (its `hyperopt` extra). Its exhaustive search (the default algo)
#   hands hyperopt a numpy RandomState, but hyperopt 0.2.7 (and 0.3) samples with Generator.integers, so
#   every exhaustive trial fails there; 0.2.5 installs and works with Python 3.11 and numpy<2.
TUNE_REQUIRES = ["hyperopt==0.2.5"]

# tests/test_hostile_configs.py draws config values with hypothesis (tested with 6.170.15).
# import-linter checks the package's floors (.importlinter; tested with 2.17); pytest-xdist runs the suite on
# both cores (tested with 3.8.0).
TEST_REQUIRES = ["pytest>=7", "pytest-xdist>=3", "matplotlib", "hypothesis>=6.70,<7", "import-linter>=2.1,<3"] + TUNE_REQUIRES

setup(
    name="recbole-bt",
    version=read_version(),
    description="Barlow Twins and other non-contrastive self-supervised methods for sequential "
    "recommendation, as a RecBole plugin",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    # The top-level properties/ folder is installed inside the package as recbole_bt/properties, so that
    # an installed recbole_bt finds its YAML defaults the way a source checkout does.
    packages=find_packages(include=["recbole_bt", "recbole_bt.*"])
    + ["recbole_bt.properties"]
    + [f"recbole_bt.properties.{d}" for d in ("model", "dataset", "protocol") if os.path.isdir(os.path.join(HERE, "properties", d))],
    package_dir={"recbole_bt.properties": "properties"},
    package_data={"recbole_bt.properties": ["*.yaml", "model/*.yaml", "dataset/*.yaml", "protocol/*.yaml"]},
    py_modules=[],
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": TEST_REQUIRES, "plot": ["matplotlib"], "tune": TUNE_REQUIRES},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
