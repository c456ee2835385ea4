// Attention over short sequences (the temporal pass of a bf16 model: the T = 8 frames of each
// token) with AVX-512, one (sequence, head) at a time in registers and on the stack: q, k, v read
// in bf16 (as autocast's in_proj returns them), scores, softmax and sums in fp32, the results
// written in fp32 or rounded to bf16 for the next bf16 product. Why: through a matmul library
// these are thousands of 8 × 8 × 64 products per call, each costing more in calls than in
// arithmetic (3.8 ms per ViT-B/16 block, forward and backward, against 1.2 ms of bare products).
// Backward recomputes the probabilities (an L × L softmax per head) instead of keeping them.
#include "camx.h"
#if defined(__x86_64__)
#include <math.h>
#include "vector512.h"

#define MAX_L 16
#define MAX_DH 256
// Inlined into each size-specialised copy of the kernels below, so that with the sizes known
// the loops unroll and the sixteen accumulators of `products` stay in registers (about 3× faster
// than one generic copy for ViT's L = 8, dh = 64).
#define INLINE static inline __attribute__((always_inline))

// r[k] = the sum of v[k]'s 16 lanes, for k < 16: a transposing tree of 45 shuffles and adds
// instead of 16 separate reductions (a fixed order, so the same bits on every call).
ROWS_TARGET INLINE __m512 sum16x16(const __m512 v[16]) {
    __m512 w[8], x[4], y[2];
    for (int k = 0; k < 8; k++)   // per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3]
        w[k] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * k], v[2 * k + 1]), _mm512_unpackhi_ps(v[2 * k], v[2 * k + 1]));
    for (int m = 0; m < 4; m++) { // per 128-bit lane: the partial sums of v[4m..4m+3]
        __m512d a = _mm512_castps_pd(w[2 * m]), b = _mm512_castps_pd(w[2 * m + 1]);
        x[m] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
    for (int n = 0; n < 2; n++)   // the four 128-bit lanes summed in pairs
        y[n] = _mm512_add_ps(_mm512_shuffle_f32x4(x[2 * n], x[2 * n + 1], 0x88), _mm512_shuffle_f32x4(x[2 * n], x[2 * n + 1], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_f32x4(y[0], y[1], 0x88), _mm512_shuffle_f32x4(y[0], y[1], 0xDD));
}

// Head h's rows of one sequence widened to fp32: dst[i * dh + c] for i < L, c < dh.
ROWS_TARGET INLINE void widen_rows(float *dst, const uint16_t *src, long ld, long L, long dh) {
    for (long i = 0; i < L; i++)
        for (long c = 0; c < dh; c += 16)
            _mm512_storeu_ps(dst + i * dh + c, load_bf16(src + i * ld + c, 0xFFFF));
}

// s[i][j] = scale · a_i · b_j for i, j < L (rows of dh floats): two rows of a at a time when
// L ≤ 8 (their 2 × 8 dot products in one tree), else one.
ROWS_TARGET INLINE void products(float s[MAX_L][MAX_L], const float *a, const float *b, long L, long dh, float scale) {
    const long rows = L <= 8 ? 2 : 1, slots = 16 / rows;
    for (long i = 0; i < L; i += rows) {
        __m512 v[16];
        for (int k = 0; k < 16; k++) v[k] = _mm512_setzero_ps();
        for (long r = 0; r < rows && i + r < L; r++)
            for (long j = 0; j < L; j++) {
                const float *x = a + (i + r) * dh, *y = b + j * dh;
                __m512 acc = _mm512_mul_ps(_mm512_loadu_ps(x), _mm512_loadu_ps(y));
                for (long c = 16; c < dh; c += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(x + c), _mm512_loadu_ps(y + c), acc);
                v[r * slots + j] = acc;
            }
        __m512 sums = _mm512_mul_ps(sum16x16(v), _mm512_set1_ps(scale));
        float t[16];
        _mm512_storeu_ps(t, sums);
        for (long r = 0; r < rows && i + r < L; r++)
            for (long j = 0; j < L; j++) s[i + r][j] = t[r * slots + j];
    }
}

// p[i][j] = softmax_j(scale · q_i · k_j) for i, j < L (rows of MAX_L floats).
ROWS_TARGET INLINE void probabilities(float p[MAX_L][MAX_L], const float *q, const float *k, long L, long dh, float scale) {
    const __mmask16 m = lanes(L);
    products(p, q, k, L, dh, scale);
    for (long i = 0; i < L; i++) {
        __m512 s = _mm512_maskz_loadu_ps(m, p[i]);
        float mx = _mm512_mask_reduce_max_ps(m, s);
        __m512 e = _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(s, _mm512_set1_ps(mx))));
        float inv = 1.0f / _mm512_reduce_add_ps(e);
        _mm512_mask_storeu_ps(p[i], m, _mm512_mul_ps(e, _mm512_set1_ps(inv)));
    }
}

// A row of dh fp32 values to `out32` or, rounded, to `out16`.
ROWS_TARGET INLINE void store_row(float *out32, uint16_t *out16, long at, const float *row, long dh) {
    for (long c = 0; c < dh; c += 16) {
        __m512 v = _mm512_loadu_ps(row + c);
        if (out16) store_bf16(out16 + at + c, v, 0xFFFF); else _mm512_storeu_ps(out32 + at + c, v);
    }
}

// row = Σ_j w[j] · rows[j] over j < L (rows of dh floats), scaled by `scale`.
ROWS_TARGET INLINE void weighted_sum(float *row, const float *w, long wstride, const float *rows, long L, long dh, float scale) {
    for (long c = 0; c < dh; c += 16) {
        __m512 acc = _mm512_setzero_ps();
        for (long j = 0; j < L; j++) acc = _mm512_fmadd_ps(_mm512_set1_ps(w[j * wstride]), _mm512_loadu_ps(rows + j * dh + c), acc);
        _mm512_storeu_ps(row + c, _mm512_mul_ps(acc, _mm512_set1_ps(scale)));
    }
}

// Asks for the next sequence's bf16 rows [L, 3D] while this one computes: each head reads its
// slices of all L rows, a pattern of strides the hardware prefetchers did not follow (out of
// cache the kernel ran at half its in-cache speed).
// L rows of `bytes` bytes each, `stride` bytes apart.
ROWS_TARGET INLINE void prefetch_rows(const void *first, long L, long stride, long bytes) {
    for (long i = 0; i < L; i++) {
        const char *b = (const char *)first + i * stride;
        for (long at = 0; at < bytes; at += 64) _mm_prefetch(b + at, _MM_HINT_T1);
    }
}

// One sequence's heads; L and dh are constants in the specialised copies.
ROWS_TARGET INLINE void forward_sequence(const uint16_t *rows, float *out, uint16_t *out16, long at, long L, long D, long H,
                                         long dh, long groups) {
    const long ld = 3 * D * groups, ldo = D * groups;
    const float scale = 1.0f / sqrtf((float)dh);
    float q[MAX_L * MAX_DH], k[MAX_L * MAX_DH], v[MAX_L * MAX_DH], o[MAX_DH], p[MAX_L][MAX_L];
    for (long h = 0; h < H; h++) {
        widen_rows(q, rows + h * dh, ld, L, dh);
        widen_rows(k, rows + D + h * dh, ld, L, dh);
        widen_rows(v, rows + 2 * D + h * dh, ld, L, dh);
        probabilities(p, q, k, L, dh, scale);
        for (long i = 0; i < L; i++) {
            weighted_sum(o, p[i], 1, v, L, dh, 1.0f);
            store_row(out, out16, at + i * ldo + h * dh, o, dh);
        }
    }
}

// Sequence s's first row: s · L, or with interleaved sequences (groups > 1: sequence s = (b, n)
// holds rows (b·L + i)·groups + n, frames of tokens in frame order) (s / groups)·L·groups + s % groups.
static inline long first_row(long s, long L, long groups) { return (s / groups) * L * groups + s % groups; }

ROWS_TARGET void camx_short_attention_forward(const uint16_t *qkv, float *out, uint16_t *out16, long first, long count, long L,
                                              long D, long H, long groups) {
    const long dh = D / H;
    for (long s = first; s < first + count; s++) {
        const long r = first_row(s, L, groups);
        if (s + 1 < first + count) prefetch_rows(qkv + first_row(s + 1, L, groups) * 3 * D, L, 3 * D * groups * 2, 3 * D * 2);
        if (L == 8 && dh == 64) forward_sequence(qkv + r * 3 * D, out, out16, r * D, 8, D, H, 64, groups);
        else forward_sequence(qkv + r * 3 * D, out, out16, r * D, L, D, H, dh, groups);
    }
}

ROWS_TARGET INLINE void backward_sequence(const uint16_t *rows, const float *dout, float *dqkv, uint16_t *dqkv16, long r, long L,
                                          long D, long H, long dh, long groups) {
    const long ld = 3 * D * groups, ldo = D * groups, base = r * 3 * D;
    const float scale = 1.0f / sqrtf((float)dh);
    float q[MAX_L * MAX_DH], k[MAX_L * MAX_DH], v[MAX_L * MAX_DH], dO[MAX_L * MAX_DH], row[MAX_DH];
    float p[MAX_L][MAX_L], ds[MAX_L][MAX_L];
    for (long h = 0; h < H; h++) {
        widen_rows(q, rows + h * dh, ld, L, dh);
        widen_rows(k, rows + D + h * dh, ld, L, dh);
        widen_rows(v, rows + 2 * D + h * dh, ld, L, dh);
        for (long i = 0; i < L; i++)
            for (long c = 0; c < dh; c += 16)
                _mm512_storeu_ps(dO + i * dh + c, _mm512_loadu_ps(dout + r * D + i * ldo + h * dh + c));
        probabilities(p, q, k, L, dh, scale);
        // dS = P ⊙ (dP − Σ_j P·dP), dP[i][j] = dO_i · v_j
        products(ds, dO, v, L, dh, 1.0f);
        for (long i = 0; i < L; i++) {
            float rowdot = 0;
            for (long j = 0; j < L; j++) rowdot += p[i][j] * ds[i][j];
            for (long j = 0; j < L; j++) ds[i][j] = p[i][j] * (ds[i][j] - rowdot);
        }
        for (long i = 0; i < L; i++) {   // dQ_i = scale · Σ_j dS[i][j] k_j
            weighted_sum(row, ds[i], 1, k, L, dh, scale);
            store_row(dqkv, dqkv16, base + i * ld + h * dh, row, dh);
        }
        for (long j = 0; j < L; j++) {   // dK_j = scale · Σ_i dS[i][j] q_i;  dV_j = Σ_i P[i][j] dO_i
            weighted_sum(row, &ds[0][j], MAX_L, q, L, dh, scale);
            store_row(dqkv, dqkv16, base + j * ld + D + h * dh, row, dh);
            weighted_sum(row, &p[0][j], MAX_L, dO, L, dh, 1.0f);
            store_row(dqkv, dqkv16, base + j * ld + 2 * D + h * dh, row, dh);
        }
    }
}

ROWS_TARGET void camx_short_attention_backward(const uint16_t *qkv, const float *dout, float *dqkv, uint16_t *dqkv16, long first,
                                               long count, long L, long D, long H, long groups) {
    const long dh = D / H;
    for (long s = first; s < first + count; s++) {
        const long r = first_row(s, L, groups);
        if (s + 1 < first + count) {
            const long next = first_row(s + 1, L, groups);
            prefetch_rows(qkv + next * 3 * D, L, 3 * D * groups * 2, 3 * D * 2);
            prefetch_rows(dout + next * D, L, D * groups * 4, D * 4);
        }
        if (L == 8 && dh == 64) backward_sequence(qkv + r * 3 * D, dout, dqkv, dqkv16, r, 8, D, H, 64, groups);
        else backward_sequence(qkv + r * 3 * D, dout, dqkv, dqkv16, r, L, D, H, dh, groups);
    }
}
#else
void camx_short_attention_forward(const uint16_t *qkv, float *out, uint16_t *out16, long first, long count, long L, long D,
                                  long H, long groups) {}
void camx_short_attention_backward(const uint16_t *qkv, const float *dout, float *dqkv, uint16_t *dqkv16, long first,
                                   long count, long L, long D, long H, long groups) {}
#endif
