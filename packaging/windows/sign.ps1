<#
.SYNOPSIS
    Authenticode-sign Windows executables with signtool, from the release workflow's secrets.

.DESCRIPTION
    Reads the code-signing certificate from the environment:
      WINDOWS_CERT_PFX_BASE64  the .pfx (PKCS#12) file, base64-encoded
      WINDOWS_CERT_PASSWORD    its password
      WINDOWS_TIMESTAMP_URL    optional RFC 3161 timestamp server (default DigiCert's)
    and signs every file given (SHA-256 file digest, RFC 3161 SHA-256 timestamp, so the signature
    outlives the certificate), then verifies each signature.

    Without a certificate (WINDOWS_CERT_PFX_BASE64 empty: a fork, or no certificate bought yet) it
    says the build is unsigned and exits 0: Windows then shows SmartScreen's "unknown publisher".

    Used twice by the release workflow: on dist\concord\concord.exe and concord-server.exe before
    they are smoke-tested and packaged, and by ISCC as the sign tool "concord" for Setup and its
    uninstaller:  ISCC /DSign "/Sconcord=pwsh -NoProfile -File $qC:\...\sign.ps1$q $f" ...

.PARAMETER Path
    The files to sign.

.EXAMPLE
    pwsh -NoProfile -File packaging\windows\sign.ps1 dist\concord\concord.exe dist\concord\concord-server.exe
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true, ValueFromRemainingArguments = $true)][string[]] $Path
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'

function Fail([string] $Message) {
    if ($env:GITHUB_ACTIONS -eq 'true') { Write-Host "::error title=Windows signing::$Message" }
    Write-Host "error: $Message" -ForegroundColor Red
    exit 1
}

foreach ($file in $Path) {
    if (-not (Test-Path -LiteralPath $file -PathType Leaf)) { Fail "no such file: $file" }
}

if ([string]::IsNullOrWhiteSpace($env:WINDOWS_CERT_PFX_BASE64)) {
    $message = 'WINDOWS_CERT_PFX_BASE64 is not set: the build is UNSIGNED (' + ($Path -join ', ') + ')'
    if ($env:GITHUB_ACTIONS -eq 'true') { Write-Host "::warning title=Windows signing::$message" }
    Write-Host $message -ForegroundColor Yellow
    exit 0
}

# signtool.exe from the newest Windows 10/11 SDK (preinstalled on GitHub's windows images).
$kits = Join-Path ${env:ProgramFiles(x86)} 'Windows Kits\10\bin'
$signtool = Get-ChildItem -Path $kits -Filter signtool.exe -Recurse -ErrorAction SilentlyContinue |
    Where-Object { $_.Directory.Name -eq 'x64' } |
    ForEach-Object {
        $version = [version] '0.0'
        [void] [version]::TryParse($_.Directory.Parent.Name, [ref] $version)  # bin\<version>\x64
        [pscustomobject]@{ Path = $_.FullName; Version = $version }
    } |
    Sort-Object Version |
    Select-Object -Last 1
if ($null -ne $signtool) {
    $signtoolPath = $signtool.Path
} else {
    $onPath = Get-Command signtool.exe -ErrorAction SilentlyContinue
    if ($null -eq $onPath) { Fail "signtool.exe not found under $kits or on PATH (install the Windows SDK)" }
    $signtoolPath = $onPath.Source
}

$timestamp = $env:WINDOWS_TIMESTAMP_URL
if ([string]::IsNullOrWhiteSpace($timestamp)) { $timestamp = 'http://timestamp.digicert.com' }

$tempRoot = $env:RUNNER_TEMP
if ([string]::IsNullOrWhiteSpace($tempRoot)) { $tempRoot = [IO.Path]::GetTempPath() }
$pfx = Join-Path $tempRoot ('concord-sign-' + [guid]::NewGuid().ToString('N') + '.pfx')
try {
    try {
        [IO.File]::WriteAllBytes($pfx, [Convert]::FromBase64String($env:WINDOWS_CERT_PFX_BASE64.Trim()))
    } catch {
        Fail 'WINDOWS_CERT_PFX_BASE64 is not valid base64'
    }
    foreach ($file in $Path) {
        # A timestamp server is sometimes briefly unavailable: try three times.
        $signed = $false
        for ($attempt = 1; $attempt -le 3 -and -not $signed; $attempt++) {
            & $signtoolPath sign /fd SHA256 /td SHA256 /tr $timestamp /f $pfx /p $env:WINDOWS_CERT_PASSWORD `
                /d 'Concord' /du 'https://github.com/concordchat/concord' $file
            $signed = ($LASTEXITCODE -eq 0)
            if (-not $signed -and $attempt -lt 3) { Start-Sleep -Seconds (5 * $attempt) }
        }
        if (-not $signed) { Fail "signtool could not sign $file" }
        & $signtoolPath verify /pa /all $file
        if ($LASTEXITCODE -ne 0) { Fail "the signature of $file does not verify" }
        Write-Host "signed: $file"
    }
} finally {
    Remove-Item -LiteralPath $pfx -Force -ErrorAction SilentlyContinue
}
exit 0
