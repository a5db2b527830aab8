"""Started by Python at interpreter start-up when ``rasp run`` put this folder first on
``PYTHONPATH``: protect the process, then hand over to the ``sitecustomize`` this one hides
(a virtualenv's or the distribution's), if there is one.

Never crashes the program: if the agent fails to start, the error is logged and the program
runs unprotected, unless ``RASP_FAIL_CLOSED`` is set, in which case it stops with exit
status 3 and the reason.
"""

import os
import sys


def _start() -> None:
    try:
        from rasp._auto import start

        start()
    except BaseException as error:
        fail_closed = os.environ.get("RASP_FAIL_CLOSED", "").strip().lower()
        message = f"rasp: the agent did not start ({type(error).__name__}: {error})"
        if fail_closed in ("1", "true", "yes", "on"):
            sys.stderr.write(message + "; RASP_FAIL_CLOSED is set: stopping\n")
            sys.stderr.flush()
            os._exit(3)
        sys.stderr.write(message + "; the program runs unprotected\n")


def _chain() -> None:
    """Import the next ``sitecustomize`` on the path, as if this one were not there."""
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    own = sys.modules.get("sitecustomize")
    saved = list(sys.path)
    try:
        sys.path[:] = [entry for entry in saved if os.path.abspath(entry or ".") != here]
        del sys.modules["sitecustomize"]
        spec = importlib.util.find_spec("sitecustomize")
        if spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            sys.modules["sitecustomize"] = module
            spec.loader.exec_module(module)
    except Exception as error:  # the other sitecustomize's error is reported as Python would
        sys.stderr.write(f"Error in sitecustomize; set PYTHONVERBOSE for traceback:\n{error}\n")
    finally:
        sys.path[:] = saved
        if own is not None and "sitecustomize" not in sys.modules:
            sys.modules["sitecustomize"] = own


if os.environ.get("RASP_RUN"):
    _start()
_chain()
