"""Desktop tests share the UI tests' qasync loop, GC discipline and real server/clients."""

from tests.ui.conftest import (  # noqa: F401 (fixtures and the loop-factory hook)
    _gc_on_the_gui_thread,
    clients,
    live_server,
    pytest_asyncio_loop_factories,
    qapp_cls,
)
