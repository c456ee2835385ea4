// GELU and QuickGELU on bf16 inputs with AVX-512 (the bf16 MLP's activation and its gradient):
// the activation's input is widened, the result rounded, all in registers, 16 lanes at a time.
// The arithmetic is Activations.swift's, operation for operation (the same constants, the same
// fused multiply-adds, the same order), so the bits equal those of its fp32 functions on the
// widened input, rounded; AIMTensor's tests compare them. Why in C: the Swift package is built
// for AVX2, and its block-wise widening and rounding made the bf16 activation cost 1.8–2.5× the
// fp32 one instead of less.
#include "camx.h"
#if defined(__x86_64__)
#include "vector512.h"

#define QUICK_ALPHA 1.702f
#define INV_SQRT2 0.7071067811865475244f
#define INV_SQRT2PI 0.3989422804014326779f

ROWS_TARGET static inline __m512 splat(float v) { return _mm512_set1_ps(v); }

// Vector.swift's erf16: x·P(x²)/Q(x²) on [-4, 4].
ROWS_TARGET static inline __m512 erf16(__m512 x0) {
    __m512 x = _mm512_min_ps(splat(4.0f), _mm512_max_ps(splat(-4.0f), x0));
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 p = splat(-2.72614225801306e-10f);
    p = _mm512_fmadd_ps(p, x2, splat(2.77068142495902e-08f));
    p = _mm512_fmadd_ps(p, x2, splat(-2.10102402082508e-06f));
    p = _mm512_fmadd_ps(p, x2, splat(-5.69250639462346e-05f));
    p = _mm512_fmadd_ps(p, x2, splat(-7.34990630326855e-04f));
    p = _mm512_fmadd_ps(p, x2, splat(-2.95459980854025e-03f));
    p = _mm512_fmadd_ps(p, x2, splat(-1.60960333262415e-02f));
    __m512 q = splat(-1.45660718464996e-05f);
    q = _mm512_fmadd_ps(q, x2, splat(-2.13374055278905e-04f));
    q = _mm512_fmadd_ps(q, x2, splat(-1.68282697438203e-03f));
    q = _mm512_fmadd_ps(q, x2, splat(-7.37332916720468e-03f));
    q = _mm512_fmadd_ps(q, x2, splat(-1.42647390514189e-02f));
    return _mm512_div_ps(_mm512_mul_ps(x, p), q);
}

// σ(z) = 1 / (1 + e^-z)
ROWS_TARGET static inline __m512 sigmoid16(__m512 z) {
    __m512 minus = _mm512_sub_ps(_mm512_setzero_ps(), z);
    return _mm512_div_ps(splat(1.0f), _mm512_add_ps(splat(1.0f), exp16(minus)));
}

// x·σ(αx)
ROWS_TARGET static inline __m512 quick_value(__m512 x) {
    return _mm512_mul_ps(x, sigmoid16(_mm512_mul_ps(splat(QUICK_ALPHA), x)));
}

// σ + α·x·σ·(1-σ), evaluated as σ + ((α·x)·σ)·(1-σ)
ROWS_TARGET static inline __m512 quick_derivative(__m512 x) {
    __m512 s = sigmoid16(_mm512_mul_ps(splat(QUICK_ALPHA), x));
    __m512 t = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(splat(QUICK_ALPHA), x), s), _mm512_sub_ps(splat(1.0f), s));
    return _mm512_add_ps(s, t);
}

// (0.5·x)·(1 + erf(x/√2))
ROWS_TARGET static inline __m512 gelu_value(__m512 x) {
    __m512 e = erf16(_mm512_mul_ps(x, splat(INV_SQRT2)));
    return _mm512_mul_ps(_mm512_mul_ps(splat(0.5f), x), _mm512_add_ps(splat(1.0f), e));
}

// 0.5·(1 + erf(x/√2)) + (x·φ₀)·e^((-0.5·x)·x)
ROWS_TARGET static inline __m512 gelu_derivative(__m512 x) {
    __m512 e = erf16(_mm512_mul_ps(x, splat(INV_SQRT2)));
    __m512 a = _mm512_mul_ps(splat(0.5f), _mm512_add_ps(splat(1.0f), e));
    __m512 g = exp16(_mm512_mul_ps(_mm512_mul_ps(splat(-0.5f), x), x));
    return _mm512_add_ps(a, _mm512_mul_ps(_mm512_mul_ps(x, splat(INV_SQRT2PI)), g));
}

ROWS_TARGET void camx_activation_bf16(int quick, uint16_t *out, const uint16_t *x, long n) {
    for (long i = 0; i < n; i += 16) {
        __mmask16 m = lanes(n - i);
        __m512 v = load_bf16(x + i, m);
        store_bf16(out + i, quick ? quick_value(v) : gelu_value(v), m);
    }
}

ROWS_TARGET void camx_activation_backward_bf16(int quick, uint16_t *dx16, float *dx32, const float *dy, const uint16_t *x,
                                               long n) {
    for (long i = 0; i < n; i += 16) {
        __mmask16 m = lanes(n - i);
        __m512 v = load_bf16(x + i, m);
        __m512 d = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + i), quick ? quick_derivative(v) : gelu_derivative(v));
        if (dx16) store_bf16(dx16 + i, d, m); else _mm512_mask_storeu_ps(dx32 + i, m, d);
    }
}
#else
void camx_activation_bf16(int quick, uint16_t *out, const uint16_t *x, long n) {}
void camx_activation_backward_bf16(int quick, uint16_t *dx16, float *dx32, const float *dy, const uint16_t *x, long n) {}
#endif
