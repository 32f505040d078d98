@echo off
rem AfterBackup.bat: Configuration Manager runs this after the Backup Site Server task succeeds.
rem Put it in <ConfigMgrInstallationFolder>\Inboxes\Smsbkup.box\ next to smsbkup.ctl.
rem sitevault verifies the site backup, archives it with the content library, package sources and
rem SCUP databases as one recovery point, applies retention and writes the log named in the config.
rem Exit codes: 0 archived, 1 refused or failed (nothing archived), 3 archived but incomplete.

setlocal
rem Where sitevault and its config are, unless the machine environment says otherwise.
if not defined SITEVAULT_EXE set "SITEVAULT_EXE=C:\Program Files\sitevault\sitevault.exe"
if not defined SITEVAULT_CONFIG set "SITEVAULT_CONFIG=C:\ProgramData\sitevault\sitevault.toml"

"%SITEVAULT_EXE%" afterbackup --config "%SITEVAULT_CONFIG%"
set RESULT=%ERRORLEVEL%

if %RESULT%==0 goto done
if %RESULT%==3 (
    eventcreate /T WARNING /ID 903 /L APPLICATION /SO sitevault /D "sitevault archived the site backup, but some files could not be read. See the sitevault log." >nul 2>&1
    goto done
)
eventcreate /T ERROR /ID 901 /L APPLICATION /SO sitevault /D "sitevault did not archive the site backup (exit code %RESULT%). See the sitevault log." >nul 2>&1

:done
endlocal & exit /b %RESULT%
