/* TEST-ONLY: holds a file open with no sharing, as SQL Server holds its .mdf, so the Wine tests
 * can check that sitevault retries such a file and then reports it as unreadable (exit 3).
 *
 *   holdopen.exe <file> <seconds>
 *
 * Prints "held" once the file is open, then sleeps, then exits 0 (the handle closes on exit).
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>

int wmain(int argc, wchar_t **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: holdopen <file> <seconds>\n");
        return 2;
    }
    HANDLE h = CreateFileW(argv[1], GENERIC_READ | GENERIC_WRITE, 0 /* no sharing */, NULL,
                           OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "cannot open: error %lu\n", GetLastError());
        return 1;
    }
    printf("held\n");
    fflush(stdout);
    Sleep((DWORD)_wtoi(argv[2]) * 1000);
    CloseHandle(h);
    return 0;
}
