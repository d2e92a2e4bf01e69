"""Windows only: does the process at the other end of a named pipe run as our user?

The hub asks it of every member that connects, and a member asks it of the hub (another user
could have created the pipe name first). ctypes and the Win32 API, no pywin32. Written to the
documented API but NOT run here: CI has no Windows runner.
"""

from __future__ import annotations

import ctypes
import os
from ctypes import wintypes

PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
TOKEN_QUERY = 0x0008
TOKEN_USER = 1  # TOKEN_INFORMATION_CLASS.TokenUser

# The type: ignores below: ctypes.WinDLL and ctypes.WinError exist only on Windows (typeshed
# declares them under sys.platform == "win32"), and mypy checks this module on Linux.


def _api() -> tuple[ctypes.WinDLL, ctypes.WinDLL]:  # type: ignore[name-defined]
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)  # type: ignore[attr-defined]
    handle, dword, pdword = wintypes.HANDLE, wintypes.DWORD, ctypes.POINTER(wintypes.DWORD)
    pulong = ctypes.POINTER(wintypes.ULONG)
    for name in ("GetNamedPipeClientProcessId", "GetNamedPipeServerProcessId"):
        fn = getattr(kernel32, name)
        fn.argtypes, fn.restype = [handle, pulong], wintypes.BOOL
    kernel32.OpenProcess.argtypes = [dword, wintypes.BOOL, dword]
    kernel32.OpenProcess.restype = handle
    kernel32.CloseHandle.argtypes, kernel32.CloseHandle.restype = [handle], wintypes.BOOL
    advapi32.OpenProcessToken.argtypes = [handle, dword, ctypes.POINTER(handle)]
    advapi32.OpenProcessToken.restype = wintypes.BOOL
    advapi32.GetTokenInformation.argtypes = [handle, ctypes.c_int, ctypes.c_void_p, dword, pdword]
    advapi32.GetTokenInformation.restype = wintypes.BOOL
    advapi32.GetLengthSid.argtypes, advapi32.GetLengthSid.restype = [ctypes.c_void_p], dword
    return kernel32, advapi32


def _check(ok: int) -> None:
    if not ok:
        raise ctypes.WinError(ctypes.get_last_error())  # type: ignore[attr-defined]  # Windows only


def _user_sid(pid: int) -> bytes:
    """The binary SID of the user a process runs as (binary SIDs compare byte for byte)."""
    kernel32, advapi32 = _api()
    process = kernel32.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    _check(process)
    token = wintypes.HANDLE()
    try:
        _check(advapi32.OpenProcessToken(process, TOKEN_QUERY, ctypes.byref(token)))
        try:
            size = wintypes.DWORD()
            advapi32.GetTokenInformation(token, TOKEN_USER, None, 0, ctypes.byref(size))
            buf = ctypes.create_string_buffer(size.value)
            _check(advapi32.GetTokenInformation(token, TOKEN_USER, buf, size, ctypes.byref(size)))
            sid = ctypes.cast(buf, ctypes.POINTER(ctypes.c_void_p))[0]  # TOKEN_USER.User.Sid
            return ctypes.string_at(sid, advapi32.GetLengthSid(sid))
        finally:
            kernel32.CloseHandle(token)
    finally:
        kernel32.CloseHandle(process)


def same_user(pipe_handle: int) -> bool:
    """True if the pipe's other end runs as our user; False if not or if that cannot be told."""
    try:
        kernel32, _ = _api()
        client, server = wintypes.ULONG(), wintypes.ULONG()
        _check(kernel32.GetNamedPipeClientProcessId(pipe_handle, ctypes.byref(client)))
        _check(kernel32.GetNamedPipeServerProcessId(pipe_handle, ctypes.byref(server)))
        me = os.getpid()
        other = server.value if client.value == me else client.value
        return other == me or _user_sid(other) == _user_sid(me)
    except (OSError, AttributeError):  # refused, gone, or no Win32 API here: not ours
        return False
