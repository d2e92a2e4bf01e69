; Inno Setup 6 script: the Windows installer of the PyInstaller bundle (dist\concord\, built from
; packaging\concord.spec). Compile from anywhere (paths are relative to this file):
;
;   ISCC /DAppVersion=0.1.0 packaging\windows\concord.iss
;       -> dist\concord-0.1.0-windows-x64-setup.exe
;
; Defines (ISCC /Dname=value):
;   AppVersion  required: server/__init__.py's __version__ (the release workflow passes it)
;   BundleDir   the onedir bundle to package (default: dist\concord beside the repository root)
;   SetupIcon   optional .ico for Setup itself (the workflow makes one from the app's PNG)
;   Sign        optional: sign Setup and the uninstaller with the sign tool named "concord",
;               defined on ISCC's command line: /S"concord=pwsh ... sign.ps1 $f"
;
; Install mode: all users (Program Files, UAC prompt) by default; the first page lets the user pick
; "only for me" instead ({autopf} is then %LOCALAPPDATA%\Programs), and /ALLUSERS or /CURRENTUSER
; choose on the command line (a silent CI install uses /CURRENTUSER: no UAC).
;
; User data is never in the install directory: the app and its embedded server keep profiles,
; caches and databases in %LOCALAPPDATA%\concord and %LOCALAPPDATA%\concord-server (platformdirs),
; and the sign-in in Windows' Credential Manager. The uninstaller removes only what Setup installed,
; so uninstalling (or upgrading) keeps the user's data.

#ifndef AppVersion
  #error AppVersion is not defined: compile with ISCC /DAppVersion=<server.__version__>
#endif
#ifndef BundleDir
  #define BundleDir SourcePath + "..\..\dist\concord"
#endif
#if !FileExists(AddBackslash(BundleDir) + "concord.exe") || !FileExists(AddBackslash(BundleDir) + "concord-server.exe")
  #error The bundle is missing: build it first (pyinstaller packaging\concord.spec), or pass /DBundleDir=
#endif

[Setup]
; The GUID identifies the installed product to Windows (its Uninstall registry key is
; {04D373D3-...}_is1): it must never change, or upgrades install a second copy.
AppId={{04D373D3-3EA0-40A6-A813-66A5B1EAB5E7}
AppName=Concord
AppVersion={#AppVersion}
AppVerName=Concord {#AppVersion}
AppPublisher=The Concord authors
AppPublisherURL=https://github.com/concordchat/concord
AppSupportURL=https://github.com/concordchat/concord/issues
AppCopyright=Copyright (c) the Concord authors (MIT)
VersionInfoProductName=Concord
VersionInfoDescription=Concord Setup
VersionInfoTextVersion={#AppVersion}
VersionInfoProductTextVersion={#AppVersion}
DefaultDirName={autopf}\Concord
DisableProgramGroupPage=yes
PrivilegesRequired=admin
; "dialog" also allows /ALLUSERS and /CURRENTUSER on the command line.
PrivilegesRequiredOverridesAllowed=dialog
; The bundle is 64-bit only (x64 Python and Qt); x64compatible also admits Windows 11 on Arm,
; which runs x64 programs under emulation.
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
; Qt 6.8+ needs Windows 10 1809 or later.
MinVersion=10.0.17763
OutputDir={#SourcePath}..\..\dist
OutputBaseFilename=concord-{#AppVersion}-windows-x64-setup
#ifdef SetupIcon
  #if !FileExists(SetupIcon)
    #error SetupIcon: no such file
  #endif
SetupIconFile={#SetupIcon}
#endif
UninstallDisplayName=Concord
UninstallDisplayIcon={app}\concord.exe
WizardStyle=modern
Compression=lzma2/max
SolidCompression=yes
; An upgrade (or a reinstall) while Concord runs: the Restart Manager asks the running
; concord.exe / concord-server.exe to close (a silent install closes them without asking), so no
; file in use is left half-replaced. The app is not restarted: [Run] starts it after an
; interactive install.
CloseApplications=yes
CloseApplicationsFilter=*.exe,*.dll,*.pyd
RestartApplications=no
SetupMutex=ConcordSetupMutex,Global\ConcordSetupMutex
#ifdef Sign
SignTool=concord
SignedUninstaller=yes
#endif

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[InstallDelete]
; An upgrade replaces the whole bundle: nothing from an older version's _internal\ (a module or
; DLL the new version no longer ships) may linger and be loaded.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
; The AppUserModelID ties the shortcut to the running app's taskbar button, jump list and
; notifications: it must equal desktop.identity.APP_ID, which the app sets on its process
; (tests/packaging/test_release_workflow.py checks the string).
Name: "{autoprograms}\Concord"; Filename: "{app}\concord.exe"; WorkingDir: "{app}"; Comment: "Concord messenger"; AppUserModelID: "io.github.concordchat.Concord"
Name: "{autodesktop}\Concord"; Filename: "{app}\concord.exe"; WorkingDir: "{app}"; Comment: "Concord messenger"; AppUserModelID: "io.github.concordchat.Concord"; Tasks: desktopicon

[Run]
Filename: "{app}\concord.exe"; Description: "{cm:LaunchProgram,Concord}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Only the install directory itself, once empty: user data lives in %LOCALAPPDATA% and is kept.
Type: dirifempty; Name: "{app}"
