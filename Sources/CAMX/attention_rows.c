// The element-wise parts of the bf16 tile attention (AIMTensor/Kernels/AttentionTiles.swift):
// softmax by rows or by columns, the softmax backward, and fp32 → bf16 rounding, 16 lanes at a
// time with AVX-512 (F, BW, VL). In C because Swift cannot reach it (the package is built for
// AVX2; these are intrinsics over builtins); every CPU with AMX has it. The bulk rounding
// (`camx_to_bf16`) also serves the bf16 linear layers on CPUs with AVX-512. The exp is
// Softmax.swift's (Cephes' expf, the same constants and operation order).
#include "camx.h"
#if defined(__x86_64__)
#include <immintrin.h>
#include <float.h>
#include <math.h>

#include "vector512.h"

// e^d for d = x − max ≤ 0, exactly 0 below −80 (Softmax.swift's underflowingExp).
ROWS_TARGET static inline __m512 underflowing_exp16(__m512 d) {
    __mmask16 low = _mm512_cmp_ps_mask(d, _mm512_set1_ps(-80.0f), _CMP_LT_OQ);
    return _mm512_mask_mov_ps(exp16(d), low, _mm512_setzero_ps());
}

// Probabilities below the smallest normal float become 0 (as Softmax.swift's).
ROWS_TARGET static inline __m512 flush_tiny(__m512 p) {
    __mmask16 tiny = _mm512_cmp_ps_mask(p, _mm512_set1_ps(FLT_MIN), _CMP_LT_OQ);
    return _mm512_mask_mov_ps(p, tiny, _mm512_setzero_ps());
}

ROWS_TARGET void camx_to_bf16(uint16_t *out, const float *x, long n) {
    for (long i = 0; i < n; i += 16) {
        __mmask16 m = lanes(n - i);
        store_bf16(out + i, _mm512_maskz_loadu_ps(m, x + i), m);
    }
}

ROWS_TARGET void camx_softmax_rows_bf16(uint16_t *out, long ldo, float *x, long ldx, long rows, long n, long padded,
                                        float scale) {
    const __m512 s = _mm512_set1_ps(scale);
    for (long r = 0; r < rows; r++) {
        float *row = x + r * ldx;
        uint16_t *o = out + r * ldo;
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (long j = 0; j < n; j += 16) {
            __mmask16 m = lanes(n - j);
            mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, row + j));
        }
        // max(scale · x) = scale · max(x) exactly: rounding is monotonic and scale > 0.
        const __m512 shift = _mm512_set1_ps(_mm512_reduce_max_ps(mx) * scale);
        __m512 sum = _mm512_setzero_ps();
        for (long j = 0; j < n; j += 16) {
            __mmask16 m = lanes(n - j);
            __m512 e = underflowing_exp16(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(m, row + j), s, shift));
            e = _mm512_maskz_mov_ps(m, e);
            _mm512_mask_storeu_ps(row + j, m, e);
            sum = _mm512_add_ps(sum, e);
        }
        const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
        for (long j = 0; j < padded; j += 16) {
            __mmask16 m = lanes(padded - j), valid = j < n ? lanes(n - j) : 0;
            __m512 p = flush_tiny(_mm512_mul_ps(_mm512_maskz_loadu_ps(valid, row + j), inv));
            store_bf16(o + j, p, m);
        }
    }
}

ROWS_TARGET void camx_softmax_columns_bf16(uint16_t *out, float *s, long ld, long rows, long columns, float scale) {
    const __m512 sc = _mm512_set1_ps(scale);
    for (long c = 0; c < columns; c += 16) {
        float *col = s + c;
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (long j = 0; j < rows; j++) {
            __m512 x = _mm512_mul_ps(_mm512_loadu_ps(col + j * ld), sc);
            _mm512_storeu_ps(col + j * ld, x);
            mx = _mm512_max_ps(mx, x);
        }
        __m512 sum = _mm512_setzero_ps();
        for (long j = 0; j < rows; j++) {
            __m512 e = underflowing_exp16(_mm512_sub_ps(_mm512_loadu_ps(col + j * ld), mx));
            _mm512_storeu_ps(col + j * ld, e);
            sum = _mm512_add_ps(sum, e);
        }
        const __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), sum);
        for (long j = 0; j < rows; j++) {
            __m512 p = flush_tiny(_mm512_mul_ps(_mm512_loadu_ps(col + j * ld), inv));
            _mm512_storeu_ps(col + j * ld, p);
            store_bf16(out + j * ld + c, p, 0xFFFF);
        }
    }
}

ROWS_TARGET void camx_score_gradients_bf16(uint16_t *out, const float *p, const float *dp, long ld, long rows,
                                           long columns, float scale) {
    const __m512 sc = _mm512_set1_ps(scale);
    for (long c = 0; c < columns; c += 16) {
        __m512 dot = _mm512_setzero_ps();
        for (long j = 0; j < rows; j++)
            dot = _mm512_fmadd_ps(_mm512_loadu_ps(p + j * ld + c), _mm512_loadu_ps(dp + j * ld + c), dot);
        for (long j = 0; j < rows; j++) {
            __m512 g = _mm512_sub_ps(_mm512_loadu_ps(dp + j * ld + c), dot);
            g = _mm512_mul_ps(_mm512_mul_ps(sc, _mm512_loadu_ps(p + j * ld + c)), g);
            store_bf16(out + j * ld + c, g, 0xFFFF);
        }
    }
}
ROWS_TARGET void camx_store_rows(float *dst, long ldd, const float *src, long lds, long rows, long cols, long transposed) {
    int aligned = ((uintptr_t)dst % 64 == 0) && (ldd % 16 == 0) && (cols % 16 == 0);
    if (cols % 16 != 0) {
        for (long r = 0; r < rows; r++)
            for (long c = 0; c < cols; c++) dst[r * ldd + c] = transposed ? src[c * lds + r] : src[r * lds + c];
        return;
    }
    const __m512i across = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                              _mm512_set1_epi32((int)lds));
    for (long r = 0; r < rows; r++) {
        for (long c = 0; c < cols; c += 16) {
            __m512 v = transposed ? _mm512_i32gather_ps(across, src + c * lds + r, 4) : _mm512_loadu_ps(src + r * lds + c);
            if (aligned) _mm512_stream_ps(dst + r * ldd + c, v); else _mm512_storeu_ps(dst + r * ldd + c, v);
        }
    }
    _mm_sfence();
}
#else
void camx_to_bf16(uint16_t *out, const float *x, long n) {}
void camx_store_rows(float *dst, long ldd, const float *src, long lds, long rows, long cols, long transposed) {}
void camx_softmax_rows_bf16(uint16_t *out, long ldo, float *x, long ldx, long rows, long n, long padded, float scale) {}
void camx_softmax_columns_bf16(uint16_t *out, float *s, long ld, long rows, long columns, float scale) {}
void camx_score_gradients_bf16(uint16_t *out, const float *p, const float *dp, long ld, long rows, long columns,
                               float scale) {}
#endif
