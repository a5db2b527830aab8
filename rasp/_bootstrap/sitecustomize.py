"""Started by Python at interpreter start-up when ``rasp run`` put this folder first on
``PYTHONPATH``: protect the process, then hand over to the ``sitecustomize`` this one hides
(a virtualenv's or the distribution's), if there is one.

Never crashes the program: if the agent fails to start, the error is logged and the program
runs unprotected, unless fail-closed is set (``RASP_FAIL_CLOSED`` or ``[tool.rasp]``), in
which case it stops with exit status 3 and the reason. A Python without the agent installed
(another interpreter the program starts, which inherits ``PYTHONPATH``) is left alone.
"""

import os
import sys


def _start() -> None:
    try:
        import rasp  # noqa: F401 - is the agent installed in this interpreter at all?
    except ImportError:
        return  # another Python, started by the program: not ours to protect
    try:
        from rasp._auto import start

        start()
    except BaseException as error:
        message = f"rasp: the agent did not start ({type(error).__name__}: {error})"
        if _fail_closed():
            sys.stderr.write(message + "; fail-closed is set: stopping\n")
            sys.stderr.flush()
            os._exit(3)
        sys.stderr.write(message + "; the program runs unprotected\n")


def _fail_closed() -> bool:
    if os.environ.get("RASP_FAIL_CLOSED", "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    try:  # [tool.rasp] fail_closed, if the configuration itself can still be read
        from rasp.config import Config

        return bool(Config.load().fail_closed)
    except BaseException:
        return False


def _chain() -> None:
    """Run the next ``sitecustomize`` on the path, as if this one were not there; what it
    does to ``sys.path`` (``site.addsitedir``...) stays done."""
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    own = sys.modules.get("sitecustomize")
    others = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", others)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # reported as Python reports a failing sitecustomize
        sys.stderr.write(
            "Error in sitecustomize; set PYTHONVERBOSE for traceback:\n"
            f"{type(error).__name__}: {error}\n"
        )
        if own is not None:
            sys.modules["sitecustomize"] = own


if os.environ.get("RASP_RUN"):
    _start()
_chain()
