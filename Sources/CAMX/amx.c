#include "camx.h"
#if defined(__x86_64__)
#include <immintrin.h>
#include <unistd.h>
#include <sys/syscall.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

int camx_request_permission(void) {
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 ? 0 : -1;
}

// palette 1; tiles 0-3 accumulate C, 4-5 hold A's two 16-row halves, 6-7 B's two strips.
// A static constant: compilers may drop stores into a local that only ldtilecfg reads.
static const struct { uint8_t palette, start_row, reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; } config = {
    1, 0, {0}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}};

__attribute__((target("amx-tile")))
void camx_configure(void) { _tile_loadconfig(&config); }

__attribute__((target("amx-tile")))
void camx_release(void) { _tile_release(); }

__attribute__((target("amx-tile,amx-bf16")))
void camx_block32(const uint16_t *a, long lda, const uint16_t *b, long strip, float *c, long ldc, long k,
                  int start, const float *bias) {
    const long cs = ldc * 4, as = lda * 2;
    const uint16_t *b1 = b + strip;
    if (start == 1) {
        _tile_loadd(0, c, cs); _tile_loadd(1, c + 16, cs); _tile_loadd(2, c + 16 * ldc, cs); _tile_loadd(3, c + 16 * ldc + 16, cs);
    } else if (start == 2) {
        _tile_loadd(0, bias, 0); _tile_loadd(1, bias + 16, 0); _tile_loadd(2, bias, 0); _tile_loadd(3, bias + 16, 0);
    } else {
        _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    }
    for (long p = 0; p < k; p += 32) {
        // The next step's operands into L1 while this step multiplies (every other line: the
        // adjacent-line prefetcher brings its pair).
        if (p + 32 < k) {
            for (int r = 0; r < 32; r += 2) _mm_prefetch((const char *)(a + r * lda + p + 32), _MM_HINT_T0);
            for (int l = 0; l < 16; l += 2) {
                _mm_prefetch((const char *)(b + (p + 32) * 16 + l * 32), _MM_HINT_T0);
                _mm_prefetch((const char *)(b1 + (p + 32) * 16 + l * 32), _MM_HINT_T0);
            }
        }
        _tile_loadd(4, a + p, as);
        _tile_loadd(6, b + p * 16, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_loadd(7, b1 + p * 16, 64);
        _tile_dpbf16ps(1, 4, 7);
        _tile_loadd(5, a + 16 * lda + p, as);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, c, cs); _tile_stored(1, c + 16, cs); _tile_stored(2, c + 16 * ldc, cs); _tile_stored(3, c + 16 * ldc + 16, cs);
}
#else
int camx_request_permission(void) { return -1; }
void camx_configure(void) {}
void camx_release(void) {}
void camx_block32(const uint16_t *a, long lda, const uint16_t *b, long strip, float *c, long ldc, long k,
                  int start, const float *bias) {}
#endif
