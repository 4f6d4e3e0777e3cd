/*
 * TEST SCAFFOLDING for the Windows CI lane (.ci/run), never shipped to learners.
 *
 * Rust's std (1.78+) on Windows gets its random seeds (HashMap keys) from ProcessPrng in
 * bcryptprimitives.dll, and a Rust .exe cannot start without it. Real Windows 10/11 has this
 * DLL; Wine 8.0 (Debian 12) does not, so every test binary would exit at once with status 53.
 * This stand-in exports ProcessPrng and forwards to RtlGenRandom (advapi32's
 * SystemFunction036), which Wine has. .ci/windows/prefix.sh builds it with mingw and copies
 * it into the Wine prefix's system32.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length); /* RtlGenRandom */

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T size)
{
    /* RtlGenRandom takes a 32-bit length: hand over a large request in pieces. */
    while (size > 0) {
        ULONG piece = size > 0x10000000 ? 0x10000000 : (ULONG)size;
        if (!SystemFunction036(data, piece))
            return FALSE;
        data += piece;
        size -= piece;
    }
    return TRUE; /* like the real one: ProcessPrng always succeeds */
}
