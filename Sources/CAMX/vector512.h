// AVX-512 (F, BW, VL) building blocks shared by the CAMX element-wise kernels: the exp, the bf16
// rounding and widening, and lane masks. Callers check the CPU before calling into them.
#pragma once
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>

#define ROWS_TARGET __attribute__((target("avx512f,avx512bw,avx512vl")))

// e^x, Vector.swift's exp16 (Cephes' expf): the same constants, fused multiply-adds and order.
ROWS_TARGET static inline __m512 exp16(__m512 x0) {
    // Bound first, input second: a NaN input stays NaN, as Vector.swift's vmax/vmin keep it.
    __m512 x = _mm512_min_ps(_mm512_set1_ps(88.3f), _mm512_max_ps(_mm512_set1_ps(-87.3f), x0));
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 shifted = _mm512_fmadd_ps(x, _mm512_set1_ps(1.4426950408889634f), magic);
    __m512 n = _mm512_sub_ps(shifted, magic);
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693359375f), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.121944400546905827679e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 y = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_castps_si512(shifted), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(bits));
}

// Round to nearest even in integer arithmetic, NaN → quiet NaN: the bits of AIMTensor's scalar
// toBF16 and of PyTorch's conversion, subnormals included (the AVX512_BF16 instruction would
// flush those to zero).
ROWS_TARGET static inline void store_bf16(uint16_t *out, __m512 v, __mmask16 m) {
    __m512i u = _mm512_castps_si512(v);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), lsb), 16);
    __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
    _mm256_mask_storeu_epi16(out, m, _mm512_cvtepi32_epi16(r));
}

// The first min(n, 16) lanes.
static inline __mmask16 lanes(long n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

// 16 bf16 values (the first lanes of m; the others 0) widened to fp32: exact.
ROWS_TARGET static inline __m512 load_bf16(const uint16_t *x, __mmask16 m) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, x));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}
#endif
