// Intel AMX bf16 tile products for the linear layers' bf16 GEMMs (model.precision: bf16).
// AMX is reached only through compiler intrinsics that are macros over builtins taking tile
// numbers as immediates, which Swift cannot call; this is the thin part in C. Packing, blocking
// and threading are in Swift (AIMTensor/Kernels/AMXMatmul.swift).
#pragma once
#include <stdint.h>

/// Asks Linux for this process's AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM); 0 when granted,
/// -1 when the kernel or the CPU refuses (then no other function here may be called).
int camx_request_permission(void);

/// Loads the calling thread's tile configuration: eight tiles of 16 rows × 64 bytes.
void camx_configure(void);

/// Returns the calling thread's tiles to the init state (no 8 KB tile state saved on context switches).
void camx_release(void);

/// One 32 × 32 block: C[32, 32] (fp32, row stride ldc floats) = start + A[32, k] · B[k, 32].
/// A: bf16 rows with stride lda elements; B: two packed strips of 16 columns, the second
/// `strip` elements after the first, each laid out [k/2][16][2] (pairs of k for each column,
/// the layout TDPBF16PS reads). k is a multiple of 32. start: 0 zeros, 1 C's old values,
/// 2 the 32 floats at `bias` in every row. Needs camx_configure on this thread.
void camx_block32(const uint16_t *a, long lda, const uint16_t *b, long strip, float *c, long ldc, long k,
                  int start, const float *bias);
