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

// The bf16 tile attention's element-wise kernels (attention_rows.c; AVX-512 F/BW/VL, which every
// CPU with AMX has: callers check). bf16 rounding is to nearest even, NaN kept as a quiet NaN,
// the same bits as AIMTensor's scalar toBF16. ld/ldo/ldx are row strides in elements.

/// out[i] = bf16(x[i]) for i < n.
void camx_to_bf16(uint16_t *out, const float *x, long n);

/// For each of `rows` rows: out[0..<n) = bf16(softmax(scale · x[0..<n))), out[n..<padded) = 0;
/// x is overwritten (scratch). padded ≤ ldo.
void camx_softmax_rows_bf16(uint16_t *out, long ldo, float *x, long ldx, long rows, long n, long padded, float scale);

/// For each column c < columns (a multiple of 16): s[j][c] for j < rows becomes the softmax down
/// the column of scale · s, and out[j][c] its bf16 (out has row stride ld too).
void camx_softmax_columns_bf16(uint16_t *out, float *s, long ld, long rows, long columns, float scale);

/// The softmax backward down columns: out[j][c] = bf16(scale · p[j][c] · (dp[j][c] − Σ_j' p[j'][c]·dp[j'][c]))
/// for j < rows, c < columns (a multiple of 16); all three with row stride ld.
void camx_score_gradients_bf16(uint16_t *out, const float *p, const float *dp, long ld, long rows, long columns,
                               float scale);

/// dst rows [rows, cols] (stride ldd) = src (stride lds), or its transpose (src [cols, rows]) when
/// `transposed`; non-temporal stores where dst rows are whole cache lines (results that the next
/// layer reads much later: writing them through the cache fetched each line first).
void camx_store_rows(float *dst, long ldd, const float *src, long lds, long rows, long cols, long transposed);

// The bf16 MLP's activation (activations_bf16.c; AVX-512 F/BW/VL: callers check). quick: QuickGELU
// x·σ(1.702x), else GELU (erf). Bits: Activations.swift's fp32 functions on the widened input,
// rounded as camx_to_bf16 rounds.

/// out[i] = bf16(act(x[i])) for i < n.
void camx_activation_bf16(int quick, uint16_t *out, const uint16_t *x, long n);

/// d = dy[i] · act'(x[i]) for i < n, written to dx16 as bf16 when dx16 is not NULL, else to dx32
/// (which may be dy itself).
void camx_activation_backward_bf16(int quick, uint16_t *dx16, float *dx32, const float *dy, const uint16_t *x, long n);

// Attention over short sequences (attention_short.c; AVX-512 F/BW/VL: callers check), for
// sequences s in [first, first + count) of L ≤ 16 rows, D = H · dh with dh a multiple of 16, at
// most 256. q | k | v: bf16 rows [S, L, 3D]. Results in fp32, or rounded to bf16 where the bf16
// pointer is not NULL. Backward recomputes the probabilities. groups = 1: sequence s holds rows
// s·L + i; groups > 1 (interleaved, e.g. the frames of each token in frame order): sequence s holds
// rows ((s / groups)·L + i)·groups + s % groups.

/// out [S, L, D] = softmax(q·kᵀ/√dh)·v per head.
void camx_short_attention_forward(const uint16_t *qkv, float *out, uint16_t *out16, long first, long count, long L,
                                  long D, long H, long groups);

/// dqkv [S, L, 3D] = the gradients of q | k | v for dout [S, L, D] (fp32).
void camx_short_attention_backward(const uint16_t *qkv, const float *dout, float *dqkv, uint16_t *dqkv16, long first,
                                   long count, long L, long D, long H, long groups);

// AdamW's element-wise update with AVX2 (adamw.c; every x86-64 CPU the package is built for has it),
// the bits of AIMTensor's scalar adamWStep: m ← m + c1·(g − m), v ← v·β2 + c2·g²,
// p ← p·decay − step_size · (m / (√v / bc2_sqrt + eps)). Returns 1 when any p, m or v it wrote
// is inf or NaN, else 0 (-1 off x86-64: nothing done).
int camx_adamw(float *p, const float *g, float *m, float *v, long n, float decay, float step_size, float bc2_sqrt, float eps,
               float beta2, float c1, float c2);
