"""The device-wide parts of one app process, wired together: what its windows tell the other
processes (:class:`~desktop.presence.Presence`), the tray icon that one process of the device
owns (:class:`~desktop.tray.Tray`), the notices of changes made elsewhere
(:class:`~desktop.notices.ChangeNotices`) and which layout file the process keeps
(:mod:`desktop.layout`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from . import layout
from .layout import LayoutStore
from .notices import ChangeNotices
from .presence import Presence
from .tray import Tray

if TYPE_CHECKING:
    from .instance import AppInstance
    from .manager import WindowManager

log = logging.getLogger(__name__)


class Shell:
    """The first process of a profile restores the saved layout; a ``--separate-process``
    (started while another process leads the app bus) opens one main window cascaded from the
    device's last active one and keeps a layout file of its own. The tray icon belongs to the
    app bus leader and moves with leadership."""

    def __init__(self, manager: WindowManager, instance: AppInstance, prefs: Any) -> None:
        self.manager, self.instance = manager, instance
        self.separate = not instance.primary
        if self.separate:
            manager.layout = LayoutStore(manager.profile.config_dir, primary=False)
        instance.on_open_window = manager.open_from_request
        self.presence = Presence(manager, instance)
        self.tray = Tray(manager, prefs, self.presence, owner=instance.primary)
        self.notices = ChangeNotices(manager, self.presence, self.tray, prefs)
        self._off = instance.bus.leader_changed.connect(self._leader_changed)

    def _leader_changed(self, _epoch: int, _leader: str) -> None:
        self.tray.set_owner(self.instance.primary)

    async def open_windows(self) -> None:
        """The first windows of this process."""
        if not self.separate:
            self.manager.restore_layout()
            return
        await self.presence.refresh()
        source = self.presence.last_geometry()  # cascaded from it, not the saved layout
        cascade = layout.cascaded(source) if source is not None else None
        g = self.manager.open_main_window(geometry=cascade).geometry()
        log.info(
            "separate process: one new window at %d,%d %dx%d, cascaded from %s (layout file %s)",
            *(g.x(), g.y(), g.width(), g.height()),
            "{},{} {}x{}".format(*source) if source else "nothing",
            self.manager.layout.path.name,
        )

    def close(self) -> None:
        self._off()
        self.notices.close()
        self.tray.close()
        self.presence.close()
