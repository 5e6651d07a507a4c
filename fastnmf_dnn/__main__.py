"""``python -m fastnmf_dnn``: the ``fastnmf-dnn`` command line (see :mod:`fastnmf_dnn.cli`)."""
from .cli import main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
