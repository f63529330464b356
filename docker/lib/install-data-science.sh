#!/usr/bin/env bash
# Installs the data-science libraries every user gets into one virtual environment on PATH
# (/opt/datasci), from PyPI at pinned versions, with an IPython kernel Jupyter lists first. Runs
# as root during an image build, after install-python.sh; versions come from the Dockerfile's
# build arguments.
set -euo pipefail

: "${NUMPY_VERSION:?NUMPY_VERSION is required}"
: "${PANDAS_VERSION:?PANDAS_VERSION is required}"
: "${SCIPY_VERSION:?SCIPY_VERSION is required}"
: "${SCIKIT_LEARN_VERSION:?SCIKIT_LEARN_VERSION is required}"
: "${MATPLOTLIB_VERSION:?MATPLOTLIB_VERSION is required}"
: "${SEABORN_VERSION:?SEABORN_VERSION is required}"
: "${IPYKERNEL_VERSION:?IPYKERNEL_VERSION is required}"

export PIP_NO_CACHE_DIR=1
python3 -m venv /opt/datasci
/opt/datasci/bin/pip install \
  "numpy==${NUMPY_VERSION}" "pandas==${PANDAS_VERSION}" "scipy==${SCIPY_VERSION}" \
  "scikit-learn==${SCIKIT_LEARN_VERSION}" "matplotlib==${MATPLOTLIB_VERSION}" \
  "seaborn==${SEABORN_VERSION}" "ipykernel==${IPYKERNEL_VERSION}"
/opt/datasci/bin/python -m ipykernel install --prefix /usr/local --name datasci \
  --display-name "Python (data science)"
chmod -R a+rX /opt/datasci

/opt/datasci/bin/python -c 'import numpy, pandas, sklearn, matplotlib; print("numpy", numpy.__version__, "pandas", pandas.__version__)'
