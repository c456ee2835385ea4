// CPUID and XGETBV for run-time CPU feature detection: both are compiler macros / inline asm
// (<cpuid.h>), which Swift cannot call, so they are wrapped here. x86-64 only; elsewhere the
// functions report nothing.
#pragma once
#include <stdint.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

/// regs = {eax, ebx, ecx, edx} of CPUID(leaf, subleaf); returns 0 when the leaf is not supported.
static inline int aim_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t regs[4]) {
#if defined(__x86_64__)
    if (__get_cpuid_max(leaf & 0x80000000u, 0) < leaf) { regs[0] = regs[1] = regs[2] = regs[3] = 0; return 0; }
    __cpuid_count(leaf, subleaf, regs[0], regs[1], regs[2], regs[3]);
    return 1;
#else
    regs[0] = regs[1] = regs[2] = regs[3] = 0;
    return 0;
#endif
}

/// XCR0: which register states the OS saves (bits 1-2 SSE/AVX, 5-7 AVX-512, 17-18 AMX tiles).
static inline uint64_t aim_xgetbv0(void) {
#if defined(__x86_64__)
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
#else
    return 0;
#endif
}
