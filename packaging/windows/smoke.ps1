<#
.SYNOPSIS
    Smoke test of a Windows build of Concord (dist\concord) or of an installed copy.

.DESCRIPTION
    The Windows counterpart of packaging/smoke.sh (Linux) and packaging/macos/smoke.sh. Steps, each
    timed; all run, and any failure is reported (a GitHub error annotation on Actions) and makes
    the script exit 1:
      1. the bundle's layout (concord.exe, concord-server.exe, _internal\);
      2. concord-server.exe --version prints "concord-server <version>";
      3. concord.exe --version exits 0. The app is a windowed (GUI subsystem) executable with no
         console: its version is read from step 4's report instead;
      4. concord.exe --self-test --report <file> with QT_QPA_PLATFORM=offscreen exits 0, the report
         says "all checks passed" and its identity line names the app id and a version;
      5. both versions agree (and equal -ExpectVersion / $env:CONCORD_EXPECT_VERSION when given);
      6. concord-server.exe serve on a free loopback port answers GET /api/v1/health with 200 and
         its version, writes its database into --data-dir, and is stopped (the port then closes);
      7. budgets, as on Linux: the median of 5 warm runs (after one warm-up run) of
         concord-server --version and concord --version     <= $env:CONCORD_BUDGET_VERSION_S  (default 1 s)
         concord --self-test                                 <= $env:CONCORD_BUDGET_SELFTEST_S (default 3 s)
    Every child runs with private APPDATA, LOCALAPPDATA, TEMP and TMP directories, removed at the
    end. $env:CONCORD_SMOKE_SERVER_TIMEOUT_S (default 30) bounds the server's start.

    Why the budgets are larger than Linux's (0.3 s and 1.5 s): starting a process costs far more on
    Windows. A PyInstaller onedir start maps python3xx.dll, the Qt DLLs and dozens of .pyd files
    through the Windows loader, Defender scans each on load, and GitHub's Windows runners are
    small VMs with slow disks. The budgets still catch what they are for: an import or a check
    that makes start-up seconds slower.

.PARAMETER Prefix
    The directory holding concord.exe and concord-server.exe (dist\concord, or the install dir).

.PARAMETER ExpectVersion
    If given, both executables must report exactly this version (the workflow passes
    server/__init__.py's __version__). Default: $env:CONCORD_EXPECT_VERSION, if set.

.EXAMPLE
    pwsh -NoProfile -File packaging\windows\smoke.ps1 -Prefix dist\concord -ExpectVersion 0.1.0
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)][string] $Prefix,
    [string] $ExpectVersion = $env:CONCORD_EXPECT_VERSION
)

Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'  # Invoke-WebRequest's progress bar costs seconds

# desktop.identity.APP_ID (tests/packaging/test_release_workflow.py checks that they agree).
$AppId = 'io.github.concordchat.Concord'

function Get-Seconds([string] $Name, [double] $Default) {
    $value = [Environment]::GetEnvironmentVariable($Name)
    if ([string]::IsNullOrWhiteSpace($value)) { return $Default }
    $parsed = 0.0
    $ok = [double]::TryParse($value, [Globalization.NumberStyles]::Float,
        [Globalization.CultureInfo]::InvariantCulture, [ref] $parsed)
    if (-not $ok -or $parsed -le 0) { throw "$Name=$value is not a positive number of seconds" }
    return $parsed
}

$SelfTestBudget = Get-Seconds 'CONCORD_BUDGET_SELFTEST_S' 3.0
$VersionBudget = Get-Seconds 'CONCORD_BUDGET_VERSION_S' 1.0
$BudgetRuns = 5
$ServerTimeout = Get-Seconds 'CONCORD_SMOKE_SERVER_TIMEOUT_S' 30.0

$script:Results = New-Object System.Collections.Generic.List[object]
$script:Failures = 0

function Write-Failure([string] $Message) {
    $script:Failures++
    if ($env:GITHUB_ACTIONS -eq 'true') {
        # One annotation line: newlines would end it.
        Write-Host ("::error title=Windows smoke::" + ($Message -replace "`r?`n", ' | '))
    }
    Write-Host "FAIL: $Message" -ForegroundColor Red
}

# Runs one named step, timing it; a step fails by throwing. Later steps still run.
function Invoke-Step([string] $Name, [scriptblock] $Body) {
    Write-Host "--- $Name" -ForegroundColor Cyan
    $watch = [Diagnostics.Stopwatch]::StartNew()
    $status = 'PASS'
    $detail = ''
    try {
        $detail = [string] (& $Body)
    } catch {
        $status = 'FAIL'
        $detail = $_.Exception.Message
        Write-Failure "${Name}: $detail"
    }
    $watch.Stop()
    $script:Results.Add([pscustomobject]@{
        Step    = $Name
        Result  = $status
        Seconds = [math]::Round($watch.Elapsed.TotalSeconds, 3)
        Detail  = $detail
    })
}

# Windows command-line quoting of one argument (CommandLineToArgvW rules).
function ConvertTo-Argument([string] $Value) {
    if ($Value -ne '' -and $Value -notmatch '[\s"]') { return $Value }
    $escaped = [regex]::Replace($Value, '(\\*)"', '$1$1\"')
    $escaped = [regex]::Replace($escaped, '(\\+)$', '$1$1')
    return '"' + $escaped + '"'
}

# Runs an executable to completion (a console or a windowed one alike: Process.WaitForExit gives a
# GUI executable's exit code, as Start-Process -Wait -PassThru does) and returns its exit code,
# output and wall time in seconds. The child inherits this process's environment.
function Invoke-Executable([string] $Path, [string[]] $Arguments, [double] $TimeoutSeconds = 120) {
    $info = New-Object System.Diagnostics.ProcessStartInfo
    $info.FileName = $Path
    $info.Arguments = (($Arguments | ForEach-Object { ConvertTo-Argument $_ }) -join ' ')
    $info.UseShellExecute = $false
    $info.CreateNoWindow = $true
    $info.RedirectStandardOutput = $true
    $info.RedirectStandardError = $true
    $info.WorkingDirectory = $script:Work
    $watch = [Diagnostics.Stopwatch]::StartNew()
    $process = [Diagnostics.Process]::Start($info)
    $stdout = $process.StandardOutput.ReadToEndAsync()
    $stderr = $process.StandardError.ReadToEndAsync()
    if (-not $process.WaitForExit([int] ($TimeoutSeconds * 1000))) {
        try { $process.Kill() } catch { }
        throw "$Path $($info.Arguments) did not exit within $TimeoutSeconds s"
    }
    $process.WaitForExit()  # lets the output readers finish
    $watch.Stop()
    return [pscustomobject]@{
        ExitCode = $process.ExitCode
        StdOut   = $stdout.Result
        StdErr   = $stderr.Result
        Seconds  = $watch.Elapsed.TotalSeconds
    }
}

# One warm-up run, then $BudgetRuns timed runs (each must exit 0); the median must be within the
# budget. Returns the step's detail.
function Assert-MedianWithin([double] $Budget, [string] $Path, [string[]] $Arguments) {
    $null = Invoke-Executable $Path $Arguments 180
    $times = New-Object System.Collections.Generic.List[double]
    for ($i = 1; $i -le $BudgetRuns; $i++) {
        $run = Invoke-Executable $Path $Arguments 180
        if ($run.ExitCode -ne 0) { throw "run $i exited with code $($run.ExitCode): $($run.StdErr)" }
        $times.Add($run.Seconds)
    }
    $sorted = @($times | Sort-Object)
    $median = $sorted[[int] [math]::Floor($sorted.Count / 2)]
    $all = ($sorted | ForEach-Object { '{0:N3}' -f $_ }) -join ' '
    if ($median -gt $Budget) {
        throw ("median {0:N3} s is over the budget of {1} s (runs: {2} s)" -f $median, $Budget, $all)
    }
    return ("median {0:N3} s of {1} warm runs, budget {2} s (runs: {3} s)" -f $median, $BudgetRuns, $Budget, $all)
}

function Get-FreePort {
    $listener = New-Object System.Net.Sockets.TcpListener ([Net.IPAddress]::Loopback, 0)
    $listener.Start()
    try { return ([Net.IPEndPoint] $listener.LocalEndpoint).Port } finally { $listener.Stop() }
}

function Test-PortOpen([int] $Port) {
    $client = New-Object System.Net.Sockets.TcpClient
    try {
        $connect = $client.ConnectAsync('127.0.0.1', $Port)
        return ($connect.Wait(1000) -and $client.Connected)
    } catch {
        return $false
    } finally {
        $client.Dispose()
    }
}

# ---------------------------------------------------------------------------------------------

if (-not (Test-Path -LiteralPath $Prefix -PathType Container)) {
    Write-Failure "no such directory: $Prefix"
    exit 1
}
$Prefix = (Resolve-Path -LiteralPath $Prefix).Path
$App = Join-Path $Prefix 'concord.exe'
$Server = Join-Path $Prefix 'concord-server.exe'

# Private profile directories for every child. Note: platformdirs and Qt find %LOCALAPPDATA%
# through the shell's known-folder API, not the environment; nothing here writes there anyway (the
# self-test works in a temporary directory, the server in --data-dir). The real folders are
# watched below, and a write to them is reported as a warning.
$script:Work = Join-Path ([IO.Path]::GetTempPath()) ('concord-smoke-' + [guid]::NewGuid().ToString('N').Substring(0, 12))
$Dirs = @{}
foreach ($name in 'appdata', 'localappdata', 'temp', 'server-data') {
    $Dirs[$name] = Join-Path $script:Work $name
    New-Item -ItemType Directory -Force -Path $Dirs[$name] | Out-Null
}
$Report = Join-Path $script:Work 'self-test-report.txt'
$RealLocal = [Environment]::GetFolderPath('LocalApplicationData')
$Watched = @('concord', 'concord-server', 'Concord') | ForEach-Object { Join-Path $RealLocal $_ } |
    Where-Object { -not (Test-Path -LiteralPath $_) }

$SavedEnv = @{}
$ChildEnv = @{
    APPDATA             = $Dirs['appdata']
    LOCALAPPDATA        = $Dirs['localappdata']
    TEMP                = $Dirs['temp']
    TMP                 = $Dirs['temp']
    QT_QPA_PLATFORM     = 'offscreen'
    CONCORD_DATA_DIR    = $null  # unset: the app's and the server's overrides
    CONCORD_CONFIG_DIR  = $null
    CONCORD_RUNTIME_DIR = $null
    CONCORD_HOST        = $null
    CONCORD_PORT        = $null
}
foreach ($key in $ChildEnv.Keys) {
    $SavedEnv[$key] = [Environment]::GetEnvironmentVariable($key)
    [Environment]::SetEnvironmentVariable($key, $ChildEnv[$key])
}

$script:ServerVersion = $null
$script:AppVersion = $null
$script:ServerProcess = $null
Write-Host "Concord smoke of $Prefix (budgets: self-test $SelfTestBudget s, version $VersionBudget s)"

try {
    Invoke-Step 'bundle layout' {
        foreach ($path in $App, $Server, (Join-Path $Prefix '_internal')) {
            if (-not (Test-Path -LiteralPath $path)) { throw "missing: $path" }
        }
        'concord.exe, concord-server.exe, _internal\'
    }

    Invoke-Step 'concord-server --version' {
        $run = Invoke-Executable $Server @('--version') 30
        if ($run.ExitCode -ne 0) { throw "exit code $($run.ExitCode): $($run.StdOut)$($run.StdErr)" }
        $line = $run.StdOut.Trim()
        if ($line -match '^concord-server (\S+)$') {
            $script:ServerVersion = $Matches[1]
        } else {
            throw "unexpected output: '$line'"
        }
        "{0} ({1:N2} s)" -f $line, $run.Seconds
    }

    Invoke-Step 'concord --version' {
        $run = Invoke-Executable $App @('--version') 30
        if ($run.ExitCode -ne 0) { throw "exit code $($run.ExitCode): $($run.StdErr)" }
        $line = $run.StdOut.Trim()  # empty: a windowed executable has no stdout
        if ($line -and $line -notmatch '^concord \S+$') { throw "unexpected output: '$line'" }
        "exit 0 ({0:N2} s){1}" -f $run.Seconds, $(if ($line) { ", $line" } else { '' })
    }

    Invoke-Step 'concord --self-test' {
        $run = Invoke-Executable $App @('--self-test', '--report', $Report) 180
        if (-not (Test-Path -LiteralPath $Report)) {
            throw "exit code $($run.ExitCode) and no report at $Report. stderr: $($run.StdErr)"
        }
        $text = Get-Content -LiteralPath $Report -Raw -Encoding UTF8
        Write-Host $text.TrimEnd()
        if ($run.ExitCode -ne 0) { throw "exit code $($run.ExitCode)" }
        if ($text -notmatch '(?m)^all checks passed\s*$') { throw "the report does not say 'all checks passed'" }
        # "  [PASS] app identity: io.github.concordchat.Concord 0.1.0, icon 16-256 px"
        if ($text -match '\[PASS\] app identity: (\S+) (\S+),') {
            if ($Matches[1] -ne $AppId) { throw "app id '$($Matches[1])', expected '$AppId'" }
            $script:AppVersion = $Matches[2]
        } else {
            throw 'no app identity line in the report'
        }
        "all checks passed ({0:N2} s)" -f $run.Seconds
    }

    Invoke-Step 'versions agree' {
        if (-not $script:ServerVersion -or -not $script:AppVersion) { throw 'a version is unknown (see above)' }
        if ($script:ServerVersion -ne $script:AppVersion) {
            throw "concord-server $($script:ServerVersion) but concord $($script:AppVersion)"
        }
        if ($ExpectVersion -and $script:AppVersion -ne $ExpectVersion) {
            throw "version $($script:AppVersion), expected $ExpectVersion"
        }
        "both $($script:AppVersion)"
    }

    Invoke-Step 'server health' {
        $port = Get-FreePort
        $outLog = Join-Path $script:Work 'server.out.log'
        $errLog = Join-Path $script:Work 'server.err.log'
        $script:ServerProcess = Start-Process -FilePath $Server -PassThru -NoNewWindow `
            -WorkingDirectory $script:Work -RedirectStandardOutput $outLog -RedirectStandardError $errLog `
            -ArgumentList @('serve', '--host', '127.0.0.1', '--port', "$port",
                '--data-dir', (ConvertTo-Argument $Dirs['server-data']), '--log-level', 'warning')
        $proc = $script:ServerProcess  # the finally below stops it if this step fails half-way
        $null = $proc.Handle  # keeps the handle open, or ExitCode reads as empty after exit
        $url = "http://127.0.0.1:$port/api/v1/health"
        $watch = [Diagnostics.Stopwatch]::StartNew()
        $healthy = $false
        $body = ''
        while ($watch.Elapsed.TotalSeconds -lt $ServerTimeout) {
            if ($proc.HasExited) {
                $logs = (Get-Content -Raw $outLog, $errLog -ErrorAction SilentlyContinue) -join "`n"
                throw "the server exited with code $($proc.ExitCode): $logs"
            }
            try {
                $response = Invoke-WebRequest -UseBasicParsing -TimeoutSec 2 -Uri $url
                if ($response.StatusCode -eq 200) { $healthy = $true; $body = [string] $response.Content; break }
            } catch {
                Start-Sleep -Milliseconds 100
            }
        }
        $ready = $watch.Elapsed.TotalSeconds
        if (-not $healthy) {
            $logs = (Get-Content -Raw $outLog, $errLog -ErrorAction SilentlyContinue) -join "`n"
            throw "no 200 from $url within $ServerTimeout s: $logs"
        }
        if (-not (Test-Path -LiteralPath (Join-Path $Dirs['server-data'] 'concord.db'))) {
            throw "the server did not create its database in --data-dir $($Dirs['server-data'])"
        }
        # Windows has no SIGTERM: Stop-Process terminates the process (the server's database is
        # SQLite in WAL mode and commits with fsync, so a hard stop loses nothing committed).
        Stop-Process -Id $proc.Id -Force
        if (-not $proc.WaitForExit(15000)) { throw 'the server did not stop within 15 s' }
        $closed = $false
        for ($i = 0; $i -lt 50 -and -not $closed; $i++) {
            $closed = -not (Test-PortOpen $port)
            if (-not $closed) { Start-Sleep -Milliseconds 100 }
        }
        if (-not $closed) { throw "port $port still accepts connections after the server stopped" }
        if ($script:ServerVersion -and $body -notmatch ('"version"\s*:\s*"' + [regex]::Escape($script:ServerVersion) + '"')) {
            throw "the health answer does not name version $($script:ServerVersion): $body"
        }
        "200 after {0:N2} s on port {1} ({2}); stopped" -f $ready, $port, $body.Trim()
    }

    Invoke-Step 'budget concord-server --version' {
        Assert-MedianWithin $VersionBudget $Server @('--version')
    }
    Invoke-Step 'budget concord --version' {
        Assert-MedianWithin $VersionBudget $App @('--version')
    }
    Invoke-Step 'budget concord --self-test' {
        Assert-MedianWithin $SelfTestBudget $App @('--self-test')
    }

    foreach ($path in $Watched) {
        if (Test-Path -LiteralPath $path) {
            $message = "the smoke wrote to the real profile: $path (expected only the private dirs)"
            if ($env:GITHUB_ACTIONS -eq 'true') { Write-Host "::warning title=Windows smoke::$message" }
            Write-Host "WARNING: $message" -ForegroundColor Yellow
        }
    }
} finally {
    if ($null -ne $script:ServerProcess -and -not $script:ServerProcess.HasExited) {
        Stop-Process -Id $script:ServerProcess.Id -Force -ErrorAction SilentlyContinue
        $script:ServerProcess.WaitForExit(10000) | Out-Null
    }
    foreach ($key in $SavedEnv.Keys) {
        [Environment]::SetEnvironmentVariable($key, $SavedEnv[$key])
    }
    $script:Results | Format-Table -AutoSize -Wrap | Out-String -Width 200 | Write-Host
    Remove-Item -LiteralPath $script:Work -Recurse -Force -ErrorAction SilentlyContinue
}

if ($script:Failures -gt 0) {
    Write-Host "Concord smoke FAILED: $($script:Failures) step(s) failed ($Prefix)" -ForegroundColor Red
    exit 1
}
Write-Host "Concord smoke passed ($Prefix)" -ForegroundColor Green
exit 0
