/* TEST-ONLY stand-in for Windows' bcryptprimitives.dll, for running Rust programs under Wine 8.0.
 *
 * Rust's std (1.78+) gets its random seeds from ProcessPrng in bcryptprimitives.dll (Windows 10+).
 * Wine 8.0 has no such DLL, so every Rust program exits silently with code 53 before main.
 * .ci/windows.sh builds this file with mingw and copies the DLL into the Wine prefix's
 * system32 only. It must never be shipped, nor put next to sitevault.exe in a release.
 *
 * ProcessPrng fills the buffer from RtlGenRandom (advapi32!SystemFunction036), which Wine has.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom */

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len; /* RtlGenRandom takes a ULONG */
        if (!SystemFunction036(data, n))
            return FALSE; /* never expected; real ProcessPrng always returns TRUE */
        data += n;
        len -= n;
    }
    return TRUE;
}
