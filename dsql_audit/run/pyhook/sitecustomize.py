"""dsql-audit run's hook for Python children.

``dsql-audit run`` prepends this directory to the child's PYTHONPATH. Python's ``site`` module imports the
first ``sitecustomize`` on sys.path at start-up (https://docs.python.org/3/library/site.html), which is
this one. It

1. when the environment has ``DSQL_AUDIT_RUN=1``, installs the call-site tagging of ``_dsql_audit_hook``
   (next to this file): a meta-path finder that patches psycopg 3, psycopg2, asyncpg, Django's migration
   operations and schema editor, and Alembic's migration runner right after each of them is imported, so
   that every statement they send carries ``/*dsql_site='...'*/`` naming the line of the program that sent
   it. Nothing is imported eagerly, and a failure never reaches the program: the hook then does nothing;
2. always runs the user's own ``sitecustomize``: the next one on sys.path after this directory, which Python
   would have imported had this directory not been first. Afterwards ``sys.modules["sitecustomize"]`` is
   the user's module, as it would have been.

Nothing here may raise into the child. The hook needs Python 3.8+; this file stays ASCII and parsable by
any Python so that an older child still gets its own sitecustomize (found with ``imp`` there).
"""
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def _install_hook():
    if os.environ.get("DSQL_AUDIT_RUN") != "1":
        return
    try:
        hook = sys.modules.get("_dsql_audit_hook")
        if hook is None:
            import importlib.util

            spec = importlib.util.spec_from_file_location("_dsql_audit_hook",
                                                          os.path.join(_HERE, "_dsql_audit_hook.py"))
            hook = importlib.util.module_from_spec(spec)
            sys.modules["_dsql_audit_hook"] = hook
            spec.loader.exec_module(hook)
        hook.install()
    except Exception as err:  # noqa: BLE001 - the child runs on, untagged
        sys.modules.pop("_dsql_audit_hook", None)
        if os.environ.get("DSQL_AUDIT_RUN_DEBUG"):
            sys.stderr.write("dsql-audit run: the Python hook is off: %s: %s\n" % (type(err).__name__, err))


def _same_dir(entry):
    try:
        return os.path.normcase(os.path.realpath(entry or os.getcwd())) == os.path.normcase(
            os.path.realpath(_HERE))
    except Exception:  # noqa: BLE001
        return False


def _chain_user_sitecustomize():
    """Find and run the next ``sitecustomize`` on sys.path after this directory, as site.py would have."""
    try:
        entries = list(sys.path)
        mine = [i for i, entry in enumerate(entries) if _same_dir(entry)]
        rest = [entry for entry in entries[mine[0] + 1 if mine else 0:] if not _same_dir(entry)]
        try:
            from importlib.machinery import PathFinder
            import importlib.util
        except ImportError:  # Python 2
            _chain_with_imp(rest)
            return
        spec = PathFinder.find_spec("sitecustomize", rest)
        if spec is None or spec.loader is None:
            return
        if spec.origin and os.path.realpath(spec.origin) == os.path.realpath(os.path.abspath(__file__)):
            return
        module = importlib.util.module_from_spec(spec)
    except Exception:  # noqa: BLE001
        return
    ours = sys.modules.get("sitecustomize")
    sys.modules["_dsql_audit_sitecustomize"] = ours
    sys.modules["sitecustomize"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - what site.py does with a failing sitecustomize
        if ours is not None:
            sys.modules["sitecustomize"] = ours
        else:
            sys.modules.pop("sitecustomize", None)
        if isinstance(err, ImportError) and err.name == "sitecustomize":
            return
        if sys.flags.verbose:
            sys.excepthook(*sys.exc_info())
        else:
            sys.stderr.write("Error in sitecustomize; set PYTHONVERBOSE for traceback:\n"
                             "%s: %s\n" % (err.__class__.__name__, err))


def _chain_with_imp(rest):
    import imp

    try:
        found = imp.find_module("sitecustomize", rest)
    except ImportError:
        return
    ours = sys.modules.pop("sitecustomize", None)
    try:
        imp.load_module("sitecustomize", *found)
    except Exception as err:  # noqa: BLE001
        sys.modules["sitecustomize"] = ours
        sys.stderr.write("Error in sitecustomize; set PYTHONVERBOSE for traceback:\n"
                         "%s: %s\n" % (err.__class__.__name__, err))
    finally:
        if found[0] is not None:
            found[0].close()


_install_hook()
_chain_user_sitecustomize()
